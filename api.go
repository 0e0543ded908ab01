package ringfuse

import (
	"context"
	"syscall"
	"time"

	"github.com/ringfuse/ringfuse/wire"
)

// Node is the filesystem's own value for one inode. The server stores it
// with the kernel node and hands it back to every operation on that node.
type Node any

// FileSystem is the one interface every filesystem implements.
type FileSystem interface {
	// Root returns the node of the mount's root directory. It is called
	// once, at mount.
	Root() Node
}

// InodeKey identifies an inode. Two entries with the same key are the same
// kernel node: a hard link looked up under two names gets one node ID, and
// lookup counts add up. A filesystem with a single device may leave Dev
// zero.
type InodeKey struct {
	Dev, Ino uint64
}

// Entry is the answer to LOOKUP, MKNOD, MKDIR, SYMLINK, LINK and CREATE,
// and one READDIRPLUS element.
type Entry struct {
	// Node is the filesystem's value for the inode. If the server already
	// has a live kernel node for Key, it keeps the node it has and drops
	// this one.
	Node Node
	// Key identifies the inode; zero means InodeKey{Ino: Attr.Ino}.
	Key InodeKey
	// Generation distinguishes reuses of one inode number.
	Generation uint64
	// Attr holds the inode's attributes.
	Attr Attr
	// EntryTimeout and AttrTimeout say how long the kernel may cache the
	// name and the attributes. The server fills in its defaults before the
	// call; a filesystem may change them.
	EntryTimeout, AttrTimeout time.Duration
}

// AttrOut is the answer to GETATTR and SETATTR.
type AttrOut struct {
	Attr Attr
	// Timeout says how long the kernel may cache Attr; prefilled with the
	// server default.
	Timeout time.Duration
}

// StatxOut is the answer to STATX.
type StatxOut struct {
	Stat Statx
	// Timeout says how long the kernel may cache the attributes;
	// prefilled with the server default.
	Timeout time.Duration
}

// OpenOut is the answer to OPEN, OPENDIR and CREATE.
type OpenOut struct {
	// Fh is the filesystem's handle, passed back to READ, WRITE, RELEASE...
	Fh uint64
	// Flags are FOPEN_* bits (wire.FOPEN_KEEP_CACHE, ...).
	Flags uint32
	// PassthroughFd, when not negative, asks the server to let the kernel
	// do reads and writes on this descriptor directly (FUSE_PASSTHROUGH).
	// The server registers it and keeps it until RELEASE; the filesystem
	// keeps ownership of the descriptor. Prefilled with -1. Ignored unless
	// the server was started with passthrough enabled.
	PassthroughFd int
}

// Attr is an inode's attributes, as in struct fuse_attr: what stat(2)
// shows. Times are seconds and nanoseconds since the epoch; Mode holds the
// file type bits (syscall.S_IFREG, ...) and the permissions.
type Attr = wire.Attr

// Statx is the answer to STATX, as in struct fuse_statx.
type Statx = wire.Statx

// SetAttrIn is a SETATTR request: Valid holds FATTR_* bits saying which
// fields to change.
type SetAttrIn = wire.SetattrIn

// FileLock is a POSIX or BSD lock range, as in struct fuse_file_lock.
type FileLock = wire.FileLock

// StatFS is the answer to STATFS.
type StatFS = wire.Kstatfs

// DirWriter collects directory entries for READDIR and READDIRPLUS.
type DirWriter interface {
	// Plus reports whether this is READDIRPLUS: then entries should come
	// with attributes through AddEntry.
	Plus() bool
	// Add adds an entry without attributes. typ is the file type in
	// st_mode bits (syscall.S_IFDIR, ...); off is the cookie that resumes
	// the listing after this entry. It returns false when the reply is
	// full; the entry was not added.
	Add(name string, ino uint64, typ uint32, off uint64) bool
	// AddEntry adds an entry with attributes (READDIRPLUS). The server
	// counts a lookup of e's node only if the entry is added; "." and ".."
	// are never counted. It returns false when the reply is full.
	AddEntry(name string, e *Entry, off uint64) bool
}

// Caller identifies the process that made a request.
type Caller struct {
	UID, GID, PID uint32
}

// callerer is implemented by the server's request contexts.
type callerer interface{ Caller() Caller }

// CallerOf returns the credentials of the process that made the request
// whose context is ctx, or the zero Caller for a context that did not come
// from the server. It does not allocate.
func CallerOf(ctx context.Context) Caller {
	if c, ok := ctx.(callerer); ok {
		return c.Caller()
	}
	return Caller{}
}

// Optional operations. Each is its own interface; a filesystem implements
// those it supports.
type (
	// Lookuper answers LOOKUP: find name in directory parent.
	Lookuper interface {
		Lookup(ctx context.Context, parent Node, name string, out *Entry) syscall.Errno
	}
	// Forgetter is told when the kernel has forgotten every lookup of n.
	// The server calls it exactly once per kernel node, and never
	// concurrently with another operation on the same kernel node. (A
	// NodeTable filesystem gets more calls; see there.)
	Forgetter interface {
		Forget(n Node)
	}
	// NodeTable is implemented by a filesystem that keeps its nodes in a
	// table of its own and numbers them. The server then keeps a node's
	// number with each kernel node, not its Node value, and so needs no
	// Go memory per kernel node; with the filesystem's table outside the
	// Go heap too, a daemon's memory returns to where it was after the
	// kernel forgets a million inodes (docs/memory.md).
	//
	// Such a filesystem must also implement Forgetter, and it counts
	// references: every Node it puts in an Entry that the server accepts
	// (a successful LOOKUP, MKNOD, MKDIR, SYMLINK, LINK or CREATE, an
	// AddEntry that returned true) is one reference, and the server gives
	// each back through one Forget call: when the kernel forgets the
	// kernel node the entry made, or at once when the server already had
	// a kernel node for the entry's Key. Once Forget has given back the
	// last reference, nothing the server does can reach the node, so the
	// filesystem may free it and reuse its number.
	NodeTable interface {
		// NodeNumber returns n's number: not zero, and the same for as
		// long as the filesystem holds references to n. The server
		// calls it with a lock held: it must be quick and must not call
		// back into the server.
		NodeNumber(n Node) uint64
		// NodeAt returns the node numbered i.
		NodeAt(i uint64) Node
	}
	// GetAttrer answers GETATTR. fh is the file handle if the kernel sent
	// one (fstat of an open file), otherwise 0 and hasFh false.
	GetAttrer interface {
		GetAttr(ctx context.Context, n Node, fh uint64, hasFh bool, out *AttrOut) syscall.Errno
	}
	// Statxer answers STATX (statx(2) with fields beyond GETATTR's, such
	// as the birth time). flags are the AT_STATX_* sync flags, mask the
	// STATX_* fields asked for. Without it the kernel falls back to
	// GETATTR.
	Statxer interface {
		Statx(ctx context.Context, n Node, fh uint64, hasFh bool, flags, mask uint32, out *StatxOut) syscall.Errno
	}
	// SetAttrer answers SETATTR (chmod, chown, truncate, utimens).
	SetAttrer interface {
		SetAttr(ctx context.Context, n Node, in *SetAttrIn, out *AttrOut) syscall.Errno
	}
	// Readlinker answers READLINK.
	Readlinker interface {
		Readlink(ctx context.Context, n Node) ([]byte, syscall.Errno)
	}
	// Symlinker answers SYMLINK: create name in parent pointing at target.
	Symlinker interface {
		Symlink(ctx context.Context, parent Node, name, target string, out *Entry) syscall.Errno
	}
	// Mknoder answers MKNOD. umask is the caller's umask, already applied
	// to mode by the kernel unless the server was started with
	// ApplyUmask or PosixACL (then the filesystem applies it, or lets a
	// default ACL decide).
	Mknoder interface {
		Mknod(ctx context.Context, parent Node, name string, mode, rdev, umask uint32, out *Entry) syscall.Errno
	}
	// Mkdirer answers MKDIR.
	Mkdirer interface {
		Mkdir(ctx context.Context, parent Node, name string, mode, umask uint32, out *Entry) syscall.Errno
	}
	// Unlinker answers UNLINK.
	Unlinker interface {
		Unlink(ctx context.Context, parent Node, name string) syscall.Errno
	}
	// Rmdirer answers RMDIR.
	Rmdirer interface {
		Rmdir(ctx context.Context, parent Node, name string) syscall.Errno
	}
	// Renamer answers RENAME and RENAME2; flags are RENAME_NOREPLACE,
	// RENAME_EXCHANGE or RENAME_WHITEOUT.
	Renamer interface {
		Rename(ctx context.Context, parent Node, name string, newParent Node, newName string, flags uint32) syscall.Errno
	}
	// Linker answers LINK: make newName in newParent a hard link to n.
	Linker interface {
		Link(ctx context.Context, n Node, newParent Node, newName string, out *Entry) syscall.Errno
	}
	// Opener answers OPEN. flags are the open(2) flags.
	Opener interface {
		Open(ctx context.Context, n Node, flags uint32, out *OpenOut) syscall.Errno
	}
	// Reader answers READ: fill buf (len(buf) is the requested size) from
	// offset off and return the byte count. buf is the reply buffer itself,
	// so data read into it is copied to the kernel only once.
	Reader interface {
		Read(ctx context.Context, n Node, fh uint64, off int64, buf []byte) (int, syscall.Errno)
	}
	// Writer answers WRITE and returns the byte count written.
	Writer interface {
		Write(ctx context.Context, n Node, fh uint64, off int64, data []byte, flags uint32) (int, syscall.Errno)
	}
	// FdFiler lets the server read and write an open file's descriptor
	// itself instead of calling Read and Write, which the io_uring channel
	// does asynchronously on the queue's own ring: a queue then keeps many
	// reads and writes in flight without a thread per request. AcquireFd
	// returns the descriptor behind fh to read or write size bytes at off
	// (from or into a page-aligned buffer) and keeps it open until
	// ReleaseFd(hold); ok false sends the request to Read or Write. The
	// filesystem must implement those too, and the descriptor must behave
	// as they would (no O_APPEND: the kernel gives every write its offset;
	// a descriptor with O_DIRECT only for ranges aligned as it needs).
	// The ring channel uses it only when asked to (ring.Options.FileIO):
	// a filesystem that embeds one with FdFiler and overrides Read would
	// otherwise be bypassed.
	FdFiler interface {
		AcquireFd(fh uint64, off int64, size int) (fd int, hold any, ok bool)
		ReleaseFd(hold any)
	}
	// StatFSer answers STATFS.
	StatFSer interface {
		StatFS(ctx context.Context, n Node, out *StatFS) syscall.Errno
	}
	// Releaser answers RELEASE, the last close of a handle from Open or
	// Create.
	Releaser interface {
		Release(ctx context.Context, n Node, fh uint64, flags uint32)
	}
	// Fsyncer answers FSYNC; datasync is fdatasync(2).
	Fsyncer interface {
		Fsync(ctx context.Context, n Node, fh uint64, datasync bool) syscall.Errno
	}
	// Flusher answers FLUSH, sent on every close(2) of a descriptor.
	Flusher interface {
		Flush(ctx context.Context, n Node, fh uint64, lockOwner uint64) syscall.Errno
	}
	// Xattrer answers SETXATTR, GETXATTR, LISTXATTR and REMOVEXATTR.
	// GetXattr and ListXattr fill buf and return the size; with an empty
	// buf they return the size needed; with a buf too small, ERANGE.
	Xattrer interface {
		SetXattr(ctx context.Context, n Node, name string, value []byte, flags uint32) syscall.Errno
		GetXattr(ctx context.Context, n Node, name string, buf []byte) (int, syscall.Errno)
		ListXattr(ctx context.Context, n Node, buf []byte) (int, syscall.Errno)
		RemoveXattr(ctx context.Context, n Node, name string) syscall.Errno
	}
	// DirOpener answers OPENDIR.
	DirOpener interface {
		OpenDir(ctx context.Context, n Node, flags uint32, out *OpenOut) syscall.Errno
	}
	// DirReader answers READDIR and READDIRPLUS, resuming after cookie off
	// (0 is the start).
	DirReader interface {
		ReadDir(ctx context.Context, n Node, fh uint64, off uint64, w DirWriter) syscall.Errno
	}
	// DirReleaser answers RELEASEDIR.
	DirReleaser interface {
		ReleaseDir(ctx context.Context, n Node, fh uint64)
	}
	// DirFsyncer answers FSYNCDIR.
	DirFsyncer interface {
		FsyncDir(ctx context.Context, n Node, fh uint64, datasync bool) syscall.Errno
	}
	// Accesser answers ACCESS (access(2) without default_permissions).
	Accesser interface {
		Access(ctx context.Context, n Node, mask uint32) syscall.Errno
	}
	// Creater answers CREATE: create and open name in parent.
	Creater interface {
		Create(ctx context.Context, parent Node, name string, flags, mode, umask uint32, out *Entry, open *OpenOut) syscall.Errno
	}
	// Allocater answers FALLOCATE.
	Allocater interface {
		Fallocate(ctx context.Context, n Node, fh uint64, off, length int64, mode uint32) syscall.Errno
	}
	// Seeker answers LSEEK for SEEK_DATA and SEEK_HOLE.
	Seeker interface {
		Lseek(ctx context.Context, n Node, fh uint64, off int64, whence uint32) (int64, syscall.Errno)
	}
	// CopyFileRanger answers COPY_FILE_RANGE.
	CopyFileRanger interface {
		CopyFileRange(ctx context.Context, in Node, fhIn uint64, offIn int64, out Node, fhOut uint64, offOut int64, length uint64, flags uint64) (uint64, syscall.Errno)
	}
	// Locker answers GETLK, SETLK and SETLKW (POSIX locks) and flock(2)
	// when flock is true. A filesystem without it gets local locking in
	// the kernel, which is right for a filesystem only this host serves.
	Locker interface {
		GetLk(ctx context.Context, n Node, fh uint64, owner uint64, lk *FileLock, out *FileLock) syscall.Errno
		SetLk(ctx context.Context, n Node, fh uint64, owner uint64, lk *FileLock, flock, wait bool) syscall.Errno
	}
	// Destroyer is called at DESTROY, when the kernel ends the session.
	Destroyer interface {
		Destroy()
	}
)

// KernelChecked is implemented by filesystems that check no permissions of
// their own and rely on the kernel's mode checks (default_permissions),
// typically because the daemon acts with its own, privileged, credentials.
// session.Mount turns DefaultPermissions on for them whenever AllowOther is
// set: otherwise every user of the mount would act with the daemon's rights.
type KernelChecked interface {
	KernelChecksPermissions() bool
}

// Open flags an Opener, DirOpener or Creater may set in OpenOut.Flags
// (FOPEN_* in the kernel header), so that no filesystem needs the wire
// package for them.
const (
	FOPEN_DIRECT_IO   = wire.FOPEN_DIRECT_IO   // bypass the page cache
	FOPEN_KEEP_CACHE  = wire.FOPEN_KEEP_CACHE  // keep cached pages at open
	FOPEN_NONSEEKABLE = wire.FOPEN_NONSEEKABLE // the file cannot seek
	FOPEN_CACHE_DIR   = wire.FOPEN_CACHE_DIR   // cache the listing (OPENDIR)
)

// SETATTR bits of SetAttrIn.Valid (FATTR_* in the kernel header).
const (
	FATTR_MODE  = wire.FATTR_MODE
	FATTR_UID   = wire.FATTR_UID
	FATTR_GID   = wire.FATTR_GID
	FATTR_SIZE  = wire.FATTR_SIZE
	FATTR_ATIME = wire.FATTR_ATIME
	FATTR_MTIME = wire.FATTR_MTIME
)

// Flags of Renamer.Rename, as RENAME2 carries them (RENAME_* in the
// kernel's uapi fcntl.h; named here so that code using them builds on
// every system).
const (
	RENAME_NOREPLACE = 1 << 0 // fail with EEXIST if the target exists
	RENAME_EXCHANGE  = 1 << 1 // swap the two names
	RENAME_WHITEOUT  = 1 << 2 // leave a whiteout at the source
)
