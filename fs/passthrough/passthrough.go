//go:build linux

package passthrough

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/creds"
	"github.com/ringfuse/ringfuse/internal/offheap"
)

// FS is a passthrough filesystem serving a directory tree. Its methods are
// safe for concurrent use, as the server calls them.
type FS struct {
	opts Options
	// umask is the process umask at New, which creating files as the
	// caller would apply a second time (see fixMode).
	umask uint32
	// handleFlags are added to every name_to_handle_at:
	// atHandleMntIDUnique where the kernel has it.
	handleFlags int
	// pinAll pins every node (see nodeAt): the daemon may not open by
	// handle, having no CAP_DAC_READ_SEARCH (a user's daemon).
	pinAll bool
	rootFd int
	root   *node
	shards [nShards]shard

	mountMu sync.Mutex
	mounts  atomic.Pointer[[]mountEnt]

	handles   handleTable
	nodes     atomic.Int64
	openFiles atomic.Int64

	// The server's default timeouts, as seen prefilled in a Lookup, for
	// the READDIRPLUS entries this filesystem builds itself.
	entryTimeout, attrTimeout atomic.Int64

	// spare is a descriptor kept open so that it can be closed to make
	// room when the process is out of descriptors (see retryFds); -1
	// while in use. Guarded by spareMu.
	spareMu sync.Mutex
	spare   int

	closeOnce sync.Once
}

// mountEnt maps a backing mount ID to a descriptor on that mount, for
// open_by_handle_at.
type mountEnt struct {
	id uint64
	fd int32
}

// Compile-time checks that FS implements every operation but locking.
var (
	_ ringfuse.FileSystem     = (*FS)(nil)
	_ ringfuse.Lookuper       = (*FS)(nil)
	_ ringfuse.NodeTable      = (*FS)(nil)
	_ ringfuse.Forgetter      = (*FS)(nil)
	_ ringfuse.GetAttrer      = (*FS)(nil)
	_ ringfuse.Statxer        = (*FS)(nil)
	_ ringfuse.SetAttrer      = (*FS)(nil)
	_ ringfuse.Readlinker     = (*FS)(nil)
	_ ringfuse.Symlinker      = (*FS)(nil)
	_ ringfuse.Mknoder        = (*FS)(nil)
	_ ringfuse.Mkdirer        = (*FS)(nil)
	_ ringfuse.Unlinker       = (*FS)(nil)
	_ ringfuse.Rmdirer        = (*FS)(nil)
	_ ringfuse.Renamer        = (*FS)(nil)
	_ ringfuse.Linker         = (*FS)(nil)
	_ ringfuse.Opener         = (*FS)(nil)
	_ ringfuse.Reader         = (*FS)(nil)
	_ ringfuse.Writer         = (*FS)(nil)
	_ ringfuse.StatFSer       = (*FS)(nil)
	_ ringfuse.Releaser       = (*FS)(nil)
	_ ringfuse.Fsyncer        = (*FS)(nil)
	_ ringfuse.Flusher        = (*FS)(nil)
	_ ringfuse.Xattrer        = (*FS)(nil)
	_ ringfuse.DirOpener      = (*FS)(nil)
	_ ringfuse.DirReader      = (*FS)(nil)
	_ ringfuse.DirReleaser    = (*FS)(nil)
	_ ringfuse.DirFsyncer     = (*FS)(nil)
	_ ringfuse.Accesser       = (*FS)(nil)
	_ ringfuse.Creater        = (*FS)(nil)
	_ ringfuse.Allocater      = (*FS)(nil)
	_ ringfuse.Seeker         = (*FS)(nil)
	_ ringfuse.CopyFileRanger = (*FS)(nil)
)

// New returns a filesystem serving the directory tree at source. opts may
// be nil. Reopening nodes by handle needs CAP_DAC_READ_SEARCH (for
// open_by_handle_at); a daemon without it that is not root pins every node
// instead (an O_PATH descriptor each, until Forget). Giving new nodes to
// their callers needs CAP_CHOWN. Call Close after
// unmounting to release the descriptors.
func New(source string, opts *Options) (*FS, error) {
	old := unix.Umask(0)
	unix.Umask(old)
	fs := &FS{umask: uint32(old)}
	if opts != nil {
		fs.opts = *opts
	}
	size := fs.opts.FdCacheSize
	switch {
	case size == 0:
		size = DefaultFdCacheSize
	case size < 0:
		size = 0
	}
	for i := range fs.shards {
		c := size / nShards
		if i < size%nShards {
			c++
		}
		fs.shards[i].init(c)
	}

	// The root descriptor doubles as the mount descriptor, which
	// open_by_handle_at wants not O_PATH.
	fd, err := unix.Open(source, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("passthrough: open %s: %w", source, err)
	}
	var st unix.Stat_t
	if e := fstatFd(fd, &st); e != 0 {
		closeFd(fd)
		return nil, fmt.Errorf("passthrough: stat %s: %w", source, e)
	}
	fs.rootFd = fd
	rootKey := ringfuse.InodeKey{Dev: st.Dev, Ino: st.Ino}
	var rootHandle []byte
	mounts := []mountEnt{}
	var hb handleBuf
	fs.handleFlags = atHandleMntIDUnique
	hl, mid, e := nameToHandleAt(fd, "", unix.AT_EMPTY_PATH|fs.handleFlags, &hb)
	if e == syscall.EINVAL {
		// Before Linux 6.12: legacy mount IDs, which a mount made after
		// an unmount may reuse.
		fs.handleFlags = 0
		hl, mid, e = nameToHandleAt(fd, "", unix.AT_EMPTY_PATH, &hb)
	}
	switch {
	case e == 0:
		rootHandle = hb[:hl]
		mounts = append(mounts, mountEnt{id: mid, fd: int32(fd)})
		// Probe that this process may open by handle at all.
		pfd, e := openByHandleAt(fd, rootHandle, unix.O_PATH|unix.O_CLOEXEC)
		switch {
		case e == syscall.EPERM && unix.Geteuid() != 0:
			// A user's daemon: pin every node, as passthrough_hp
			// does, so that RLIMIT_NOFILE bounds the inodes the
			// kernel may hold.
			fs.pinAll, rootHandle, mounts = true, nil, mounts[:0]
		case e != 0:
			closeFd(fd)
			return nil, fmt.Errorf("passthrough: open_by_handle_at %s (needs CAP_DAC_READ_SEARCH): %w", source, e)
		default:
			closeFd(pfd)
		}
	case errors.Is(e, syscall.EOPNOTSUPP):
		// Nodes on this filesystem will be pinned.
	default:
		closeFd(fd)
		return nil, fmt.Errorf("passthrough: name_to_handle_at %s: %w", source, e)
	}
	fs.mounts.Store(&mounts)
	// The root is a node like the others, with a reference the server
	// never gives back, and its pinned descriptor is the mount's.
	root, errno := fs.shardOf(rootKey).add(rootKey, rootHandle, int32(fd), fd)
	if errno != 0 {
		closeFd(fd)
		return nil, fmt.Errorf("passthrough: no memory for the root node: %w", errno)
	}
	fs.root = root
	// The nodes live outside the Go heap: unmap them once nothing can
	// reach the filesystem.
	runtime.AddCleanup(fs, offheap.Owned.Close, fs.shardMemory())
	fs.spare = -1
	fs.reserveSpare()
	return fs, nil
}

// Root returns the node of source.
func (fs *FS) Root() ringfuse.Node { return fs.root }

// Stats returns a snapshot of the filesystem's resource use.
func (fs *FS) Stats() Stats {
	s := Stats{Nodes: fs.nodes.Load(), OpenFiles: fs.openFiles.Load()}
	for i := range fs.shards {
		sh := &fs.shards[i]
		sh.mu.Lock()
		s.CachedFds += sh.cached()
		sh.mu.Unlock()
	}
	return s
}

// Close releases every descriptor the filesystem holds: open files, cached
// and pinned node descriptors and mount descriptors. Call it only once the
// filesystem is no longer served. Later calls do nothing.
func (fs *FS) Close() error {
	fs.closeOnce.Do(func() {
		for _, f := range fs.handles.drain() {
			fs.openFiles.Add(-1)
			f.put()
		}
		for i := range fs.shards {
			sh := &fs.shards[i]
			sh.mu.Lock()
			for i := range uint32(sh.nodes.Slots()) {
				if n := sh.nodes.At(i); sh.nodes.InUse(i) && n != fs.root {
					closeFd(sh.detach(n))
					if n.pfd >= 0 {
						closeFd(int(n.pfd))
						n.pfd = -1
					}
				}
			}
			for j := range sh.slots {
				if s := &sh.slots[j]; s.n == nil && s.users > 0 {
					closeFd(int(s.fd)) // orphaned and never released
					s.users = 0
				}
			}
			sh.mu.Unlock()
		}
		for _, m := range *fs.mounts.Load() {
			if int(m.fd) != fs.rootFd {
				closeFd(int(m.fd))
			}
		}
		closeFd(fs.rootFd)
		fs.spareMu.Lock()
		closeFd(fs.spare)
		fs.spare = -1
		fs.spareMu.Unlock()
	})
	return nil
}

// nodeOf converts the server's node value back.
func nodeOf(n ringfuse.Node) (*node, syscall.Errno) {
	p, ok := n.(*node)
	if !ok || p == nil {
		return nil, syscall.EINVAL
	}
	return p, 0
}

// checkName validates a single path component from the kernel. Names are
// resolved only relative to a directory descriptor, so a name must not be
// able to walk anywhere: "", ".", "..", and names with '/' or NUL are
// refused. dotErr is the error for "." and "..".
func checkName(name string, dotErr syscall.Errno) syscall.Errno {
	switch {
	case name == "" || strings.ContainsAny(name, "/\x00"):
		return syscall.EINVAL
	case name == "." || name == "..":
		return dotErr
	case len(name) > unix.NAME_MAX:
		return syscall.ENAMETOOLONG
	}
	return 0
}

// mountFd returns the descriptor registered for a backing mount ID, or -1.
func (fs *FS) mountFd(id uint64) int32 {
	for _, m := range *fs.mounts.Load() {
		if m.id == id {
			return m.fd
		}
	}
	return -1
}

// addMount registers a descriptor for mount id, which directory dirfd is
// on. open_by_handle_at refuses O_PATH mount descriptors, so the directory
// is opened O_RDONLY, with the daemon's rights: it serves every caller.
func (fs *FS) addMount(ctx context.Context, id uint64, dirfd int) (int32, syscall.Errno) {
	fs.mountMu.Lock()
	defer fs.mountMu.Unlock()
	if fd := fs.mountFd(id); fd >= 0 {
		return fd, 0
	}
	var fd int
	e := creds.Daemon(ctx, func() syscall.Errno {
		return fs.retryFds(false, func() syscall.Errno {
			var err error
			fd, err = unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			return errnoOf(err)
		})
	})
	if e != 0 {
		return -1, e
	}
	old := *fs.mounts.Load()
	nm := make([]mountEnt, len(old), len(old)+1)
	copy(nm, old)
	nm = append(nm, mountEnt{id: id, fd: int32(fd)})
	fs.mounts.Store(&nm)
	return int32(fd), 0
}

// nodeAt finds or makes the node for the object fd refers to (an O_PATH
// or open descriptor), whose attributes are st. The node is keyed by what
// fd reaches, so a rename of the name it was opened by cannot mix two
// files.
func (fs *FS) nodeAt(ctx context.Context, fd int, st *unix.Stat_t) (*node, syscall.Errno) {
	key := ringfuse.InodeKey{Dev: st.Dev, Ino: st.Ino}
	var hb handleBuf
	hl, mid, e := 0, uint64(0), syscall.EOPNOTSUPP
	if !fs.pinAll {
		hl, mid, e = nameToHandleAt(fd, "", unix.AT_EMPTY_PATH|fs.handleFlags, &hb)
	}
	mfd := int32(-1)
	if e == 0 {
		mfd = fs.mountFd(mid)
		if mfd < 0 && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if mfd, e = fs.addMount(ctx, mid, fd); e != 0 {
				return nil, e
			}
		}
		if mfd < 0 {
			// A non-directory mounted on its own (a file bind mount):
			// there is no directory to open the mount with, so pin it.
			e = syscall.EOPNOTSUPP
		}
	}
	switch {
	case e == 0:
		return fs.intern(key, hb[:hl], mfd, -1)
	case e == syscall.EOPNOTSUPP:
		// No file handles on this filesystem: the node keeps an O_PATH
		// descriptor for its whole life.
		var pfd int
		e := fs.retryFds(false, func() syscall.Errno {
			var err error
			pfd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
			return errnoOf(err)
		})
		if e != 0 {
			return nil, e
		}
		return fs.intern(key, nil, -1, pfd)
	default:
		return nil, e
	}
}

// fillEntry answers for node n with attributes st.
func fillEntry(out *ringfuse.Entry, n *node, st *unix.Stat_t) {
	out.Node = n
	out.Key = n.key
	out.Generation = 0
	fillAttr(&out.Attr, st)
}

// openPath opens name in dirfd as an O_PATH descriptor, without following
// a symlink, with the caller's rights: the caller must be allowed to
// search dirfd. want is the file type to insist on (S_IFDIR), or 0.
func (fs *FS) openPath(ctx context.Context, dirfd int, name string, want uint32) (int, syscall.Errno) {
	flags := unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if want == unix.S_IFDIR {
		flags |= unix.O_DIRECTORY
	}
	var fd int
	e := fs.retryFds(false, func() syscall.Errno {
		return creds.Run(ctx, func() (e syscall.Errno) {
			fd, e = openat(dirfd, name, flags, 0)
			return e
		})
	})
	return fd, e
}

// entryOf fills out with the entry for the object fd refers to, which the
// cache then takes (or closes). It returns the node, whose reference the
// caller now holds.
func (fs *FS) entryOf(ctx context.Context, fd int, out *ringfuse.Entry) (*node, syscall.Errno) {
	var st unix.Stat_t
	if e := fstatFd(fd, &st); e != 0 {
		closeFd(fd)
		return nil, e
	}
	n, e := fs.nodeAt(ctx, fd, &st)
	if e != 0 {
		closeFd(fd)
		return nil, e
	}
	fillEntry(out, n, &st)
	fs.offer(n, fd)
	return n, 0
}

// lookupAt fills out with the entry for name in dirfd. The name is
// resolved once, as the caller, and the attributes and the file handle
// both come from the descriptor it gave.
func (fs *FS) lookupAt(ctx context.Context, dirfd int, name string, out *ringfuse.Entry) (*node, syscall.Errno) {
	fd, e := fs.openPath(ctx, dirfd, name, 0)
	if e != 0 {
		return nil, e
	}
	return fs.entryOf(ctx, fd, out)
}

// Lookup finds name in parent. It never follows a symlink: a symlink is
// looked up as itself. "." and ".." are refused with ENOENT, so the root's
// parent is unreachable.
func (fs *FS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	fs.noteTimeouts(out)
	if e := checkName(name, syscall.ENOENT); e != 0 {
		return e
	}
	pn, e := nodeOf(parent)
	if e != 0 {
		return e
	}
	return fs.usingNode(ctx, pn, func(fd int) syscall.Errno {
		_, e := fs.lookupAt(ctx, fd, name, out)
		return e
	})
}

// noteTimeouts records the server's default timeouts, prefilled in out.
func (fs *FS) noteTimeouts(out *ringfuse.Entry) {
	if out.EntryTimeout != 0 || out.AttrTimeout != 0 {
		if time.Duration(fs.entryTimeout.Load()) != out.EntryTimeout {
			fs.entryTimeout.Store(int64(out.EntryTimeout))
		}
		if time.Duration(fs.attrTimeout.Load()) != out.AttrTimeout {
			fs.attrTimeout.Store(int64(out.AttrTimeout))
		}
	}
}

// createMode returns the mode bits to create an object with, and the
// bits of it that the process umask at New may take away, for fixMode to
// put back. mode loses the caller's umask where the kernel left that to
// us (server.Options ApplyUmask or PosixACL; otherwise mode has none of
// its bits) unless the directory has a default ACL, which then decides,
// as it also overrides the process umask.
func (fs *FS) createMode(parentFd int, mode, umask uint32) (bits, restore uint32) {
	mode &= 0o7777
	if mode&(umask|fs.umask) == 0 {
		return mode, 0
	}
	if _, e := getxattrFd(parentFd, "system.posix_acl_default", nil); e == 0 {
		return mode, 0
	}
	mode &^= umask
	return mode, mode & fs.umask
}

// fixMode puts back the permission bits restore (from createMode) that
// the process umask took from a new object (the daemon should run with
// umask 0; cmd/ringfuse does). It runs with the daemon's rights: a chmod by
// a caller outside the object's group would also drop the S_ISGID the
// backing filesystem rightly gave it.
func (fs *FS) fixMode(ctx context.Context, fd int, st *unix.Stat_t, restore uint32) syscall.Errno {
	lost := restore &^ st.Mode
	if lost == 0 || st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return 0
	}
	e := creds.Daemon(ctx, func() syscall.Errno { return chmodFd(fd, st.Mode&0o7777|lost) })
	if e != 0 {
		return e
	}
	return fstatFd(fd, st)
}

// newNodeAt answers for name in parentFd, a directory, FIFO, device or
// symlink just made as the caller: it opens the object as the caller,
// without following it, puts back the mode bits restore (see createMode)
// and fills out.
func (fs *FS) newNodeAt(ctx context.Context, parentFd int, name string, typ, restore uint32, out *ringfuse.Entry) syscall.Errno {
	fd, e := fs.openPath(ctx, parentFd, name, typ)
	if e != 0 {
		return e
	}
	var st unix.Stat_t
	if e := fstatFd(fd, &st); e != 0 {
		closeFd(fd)
		return e
	}
	// The name was resolved again after the make: it may name another
	// object by now, which must not get the daemon's chmod.
	if st.Mode&unix.S_IFMT == typ && st.Uid == creds.Owner(ctx) {
		if e := fs.fixMode(ctx, fd, &st, restore); e != 0 {
			closeFd(fd)
			return e
		}
	}
	n, e := fs.nodeAt(ctx, fd, &st)
	if e != 0 {
		closeFd(fd)
		return e
	}
	fillEntry(out, n, &st)
	fs.offer(n, fd)
	return 0
}

// Running out of descriptors. The fd cache may hold up to FdCacheSize
// O_PATH descriptors, more than RLIMIT_NOFILE leaves once clients hold
// many files open, and it gives one up only when its node is forgotten or
// another node needs the slot. So a call that fails with EMFILE or ENFILE
// closes idle cached descriptors and tries once more (retryFds): it then
// fails only when every descriptor is really in use. A short operation
// that still finds none (a stat, a lookup) runs once with the spare
// descriptor closed, so that its own descriptor can take that number; the
// spare is reopened afterwards, giving up a cached descriptor if need be.
// Stat and lookup thus keep working while clients hold every descriptor
// the daemon may have. Every call that opens a descriptor should go
// through retryFds, or usingNode for a node's O_PATH descriptor.

// shedBatch is how many idle cached descriptors one EMFILE gives up:
// enough that the next operations do not run into the limit at once, few
// enough to keep most of the cache.
const shedBatch = 16

// outOfFds says whether e means the process or system has no descriptor
// left.
func outOfFds(e syscall.Errno) bool { return e == syscall.EMFILE || e == syscall.ENFILE }

// shedFds closes up to max idle descriptors of the fd cache and returns
// how many it closed.
func (fs *FS) shedFds(max int) int {
	shed := 0
	var victims []int
	for i := range fs.shards {
		if shed >= max {
			break
		}
		sh := &fs.shards[i]
		victims = victims[:0]
		sh.mu.Lock()
		for shed < max && sh.tail >= 0 {
			// Idle slots are in the LRU list, and each holds a node.
			j := sh.tail
			s := &sh.slots[j]
			sh.lruRemove(j)
			s.n.slot = -1
			s.n = nil
			sh.free = append(sh.free, j)
			victims = append(victims, int(s.fd))
			shed++
		}
		sh.mu.Unlock()
		for _, fd := range victims {
			closeFd(fd)
		}
	}
	return shed
}

// reserveSpare opens the spare descriptor if it is not open, shedding a
// cached descriptor if the process is out of them. The caller holds
// spareMu, or is New.
func (fs *FS) reserveSpare() {
	if fs.spare >= 0 {
		return
	}
	for {
		fd, err := unix.FcntlInt(uintptr(fs.rootFd), unix.F_DUPFD_CLOEXEC, 0)
		if err == nil {
			fs.spare = fd
			return
		}
		if !outOfFds(errnoOf(err)) || fs.shedFds(1) == 0 {
			return
		}
	}
}

// retryFds runs f, which needs descriptors, and runs it again when it
// fails with EMFILE or ENFILE, after shedding idle cached descriptors and,
// if spare is set, once more with the spare descriptor closed. f must be
// safe to repeat after such a failure. Set spare only for calls that
// normally leave no new descriptor open (other than in the fd cache):
// otherwise the spare cannot be reopened until a cached descriptor can be
// given up.
func (fs *FS) retryFds(spare bool, f func() syscall.Errno) syscall.Errno {
	e := f()
	if !outOfFds(e) {
		return e
	}
	if fs.shedFds(shedBatch) > 0 {
		if e = f(); !outOfFds(e) {
			return e
		}
	}
	if !spare {
		return e
	}
	fs.spareMu.Lock()
	defer fs.spareMu.Unlock()
	if fs.spare < 0 {
		fs.reserveSpare() // for the next time
		return e
	}
	closeFd(fs.spare)
	fs.spare = -1
	e = f()
	fs.reserveSpare()
	return e
}

// usingNode runs f with an O_PATH descriptor for n, through retryFds,
// so that f runs even when the process is out of descriptors. f runs
// again after it failed with EMFILE or ENFILE itself, so it must be safe
// to repeat after such a failure.
func (fs *FS) usingNode(ctx context.Context, n *node, f func(fd int) syscall.Errno) syscall.Errno {
	return fs.retryFds(true, func() syscall.Errno {
		p, e := fs.acquire(ctx, n)
		if e != 0 {
			return e
		}
		defer fs.release(p)
		return f(p.fd)
	})
}
