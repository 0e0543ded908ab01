package fsx

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Side is one directory tree operations are applied to, with its
// descriptor slots. It is not safe for concurrent use.
type Side struct {
	// Name labels the side in reports ("ringfuse", "native").
	Name string
	// Root is the directory the operation paths are relative to.
	Root string
	fds  [NumSlots]int // -1 when closed
	// memfd carries data to and from mappings; see mmapRead.
	memfd int
	// jobs feeds the thread that runs operations as Op.User; nil when
	// every operation runs as the process (root).
	jobs chan job
}

// job is an operation for the user thread, and where to send its result.
type job struct {
	op   Op
	done chan<- Result
}

// NewSide returns a side for the tree at root, with every slot closed.
// With users, operations run as their Op.User (see runAsUsers). Close
// releases its descriptors.
func NewSide(name, root string, users bool) (*Side, error) {
	memfd, err := unix.MemfdCreate("fsx-"+name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsx: memfd_create: %w", err)
	}
	s := &Side{Name: name, Root: root, memfd: memfd}
	for i := range s.fds {
		s.fds[i] = -1
	}
	if users {
		s.jobs = make(chan job)
		ready := make(chan error)
		go s.runAsUsers(s.jobs, ready)
		if err := <-ready; err != nil {
			unix.Close(memfd)
			return nil, err
		}
	}
	return s, nil
}

// runAsUsers applies the operations sent on jobs on a thread of its
// own, with the thread's filesystem uid and gid set to each operation's
// User and no supplementary groups. setfsuid, setfsgid and setgroups
// change only the calling thread, and a root fsuid that becomes
// non-zero loses the filesystem capabilities (CAP_DAC_OVERRIDE,
// CAP_FOWNER, CAP_CHOWN...), so the operation is checked as the user's
// would be; FUSE sends the fsuid and fsgid in the request header. The
// thread is never unlocked: when the goroutine returns, at Close, the
// runtime ends the thread rather than reuse its credentials.
func (s *Side) runAsUsers(jobs <-chan job, ready chan<- error) {
	runtime.LockOSThread()
	if err := unix.Setgroups(nil); err != nil {
		ready <- fmt.Errorf("fsx: setgroups on the user thread: %w", err)
		return
	}
	close(ready)
	cur := 0
	for j := range jobs {
		if j.op.User != cur {
			// setfsuid reports the previous id, and errors only
			// without CAP_SETUID, which the thread keeps.
			unix.Setfsgid(j.op.User)
			unix.Setfsuid(j.op.User)
			cur = j.op.User
		}
		j.done <- s.apply(j.op)
	}
}

// Close closes every open slot and the side's own descriptor, and stops
// its user thread. Later calls do nothing.
func (s *Side) Close() {
	if s.jobs != nil {
		close(s.jobs)
		s.jobs = nil
	}
	for i, fd := range s.fds {
		if fd >= 0 {
			unix.Close(fd)
			s.fds[i] = -1
		}
	}
	if s.memfd >= 0 {
		unix.Close(s.memfd)
		s.memfd = -1
	}
}

// Result is what an operation returned: an errno (0 for success) and,
// depending on the operation, a count or offset, bytes, and a summary.
type Result struct {
	Errno unix.Errno
	N     int64
	Data  []byte
	// Info summarizes structured results: stat attributes, sorted xattr
	// or directory names.
	Info string
}

// Equal reports whether r and o are the same result.
func (r Result) Equal(o Result) bool {
	return r.Errno == o.Errno && r.N == o.N && bytes.Equal(r.Data, o.Data) && r.Info == o.Info
}

// maxShownData bounds the bytes a printed result shows.
const maxShownData = 24

func (r Result) String() string {
	if r.Errno != 0 {
		if r.Info != "" {
			return fmt.Sprintf("%s (%s)", unix.ErrnoName(r.Errno), r.Info)
		}
		return unix.ErrnoName(r.Errno)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ok %d", r.N)
	if r.Data != nil {
		d := r.Data
		if len(d) > maxShownData {
			fmt.Fprintf(&b, " data[%d]=%x...", len(d), d[:maxShownData])
		} else {
			fmt.Fprintf(&b, " data=%q", d)
		}
	}
	if r.Info != "" {
		fmt.Fprintf(&b, " {%s}", r.Info)
	}
	return b.String()
}

func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}

func fail(err error) Result { return Result{Errno: errnoOf(err)} }

func (s *Side) path(rel string) string { return s.Root + "/" + rel }

// Apply performs op on the side, as op.User if the side was made with
// users, and returns its result.
func (s *Side) Apply(op Op) Result {
	if s.jobs == nil {
		return s.apply(op)
	}
	done := make(chan Result, 1)
	s.jobs <- job{op, done}
	return <-done
}

// apply does op on this side and returns what it gave.
func (s *Side) apply(op Op) Result {
	switch op.Kind {
	case OpOpen, OpClose, OpRead, OpPread, OpWrite, OpPwrite, OpSeek, OpTruncate, OpFtruncate,
		OpFallocate, OpMmapRead, OpMmapWrite, OpFsync:
		return s.applyData(op)
	}
	return s.applyMeta(op)
}

// applyData does the operations on a file's data and descriptors.
func (s *Side) applyData(op Op) Result {
	p := s.path(op.Path)
	fd := s.slotFd(op.Slot)
	switch op.Kind {
	case OpOpen:
		if fd >= 0 {
			unix.Close(fd)
			s.fds[op.Slot] = -1
		}
		nfd, err := unix.Open(p, op.Flags|unix.O_CLOEXEC, op.Mode)
		if err != nil {
			return fail(err)
		}
		s.fds[op.Slot] = nfd
		return Result{}
	case OpClose:
		err := unix.Close(fd)
		s.fds[op.Slot] = -1
		return fail(err)
	case OpRead:
		buf := make([]byte, op.Len)
		n, err := unix.Read(fd, buf)
		if err != nil {
			return fail(err)
		}
		return Result{N: int64(n), Data: buf[:n]}
	case OpPread:
		buf := make([]byte, op.Len)
		n, err := unix.Pread(fd, buf, op.Off)
		if err != nil {
			return fail(err)
		}
		return Result{N: int64(n), Data: buf[:n]}
	case OpWrite:
		n, err := unix.Write(fd, Data(op.Pat, op.Len))
		return Result{Errno: errnoOf(err), N: int64(n)}
	case OpPwrite:
		n, err := unix.Pwrite(fd, Data(op.Pat, op.Len), op.Off)
		return Result{Errno: errnoOf(err), N: int64(n)}
	case OpSeek:
		if isDir(fd) {
			// A directory offset is a cookie. ext4 seeks a hashed
			// directory within its hash range (SEEK_END, SEEK_DATA and
			// SEEK_HOLE answer near 2^63), while the FUSE kernel seeks
			// a directory as a file of i_size (generic_file_llseek in
			// fuse_dir_operations) without asking the server. The
			// difference is the kernel's, so it is not compared.
			return Result{Info: "directory: not compared"}
		}
		if op.Flags == unix.SEEK_DATA || op.Flags == unix.SEEK_HOLE {
			return seekQuery(fd, op.Off, op.Flags)
		}
		off, err := unix.Seek(fd, op.Off, op.Flags)
		if err != nil {
			return fail(err)
		}
		return Result{N: off}
	case OpTruncate:
		return fail(unix.Truncate(p, op.Off))
	case OpFtruncate:
		return fail(unix.Ftruncate(fd, op.Off))
	case OpFallocate:
		return fail(unix.Fallocate(fd, uint32(op.Flags), op.Off, op.Len))
	case OpMmapRead:
		return s.mmapRead(fd, op.Off, op.Len)
	case OpMmapWrite:
		return s.mmapWrite(fd, op.Off, Data(op.Pat, op.Len))
	case OpFsync:
		if op.Flags == 1 {
			return fail(unix.Fdatasync(fd))
		}
		return fail(unix.Fsync(fd))
	}
	return Result{Errno: unix.ENOSYS}
}

// applyMeta does the operations on names, attributes and directories.
func (s *Side) applyMeta(op Op) Result {
	p := s.path(op.Path)
	fd := s.slotFd(op.Slot)
	switch op.Kind {
	case OpRename:
		return fail(unix.Renameat2(unix.AT_FDCWD, p, unix.AT_FDCWD, s.path(op.Path2), uint(op.Flags)))
	case OpLink:
		return fail(unix.Linkat(unix.AT_FDCWD, p, unix.AT_FDCWD, s.path(op.Path2), op.Flags))
	case OpUnlink:
		return fail(unix.Unlink(p))
	case OpMkdir:
		return fail(unix.Mkdir(p, op.Mode))
	case OpRmdir:
		return fail(unix.Rmdir(p))
	case OpSymlink:
		return fail(unix.Symlink(op.Target, p))
	case OpReadlink:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlink(p, buf)
		if err != nil {
			return fail(err)
		}
		return Result{N: int64(n), Data: buf[:n]}
	case OpStat:
		var st unix.Stat_t
		if err := unix.Fstatat(unix.AT_FDCWD, p, &st, op.Flags); err != nil {
			return fail(err)
		}
		return Result{Info: statInfo(&st)}
	case OpSetxattr:
		set := unix.Setxattr
		if op.Nofollow {
			set = unix.Lsetxattr
		}
		return fail(set(p, op.Name, Data(op.Pat, op.Len), op.Flags))
	case OpGetxattr:
		get := unix.Getxattr
		if op.Nofollow {
			get = unix.Lgetxattr
		}
		buf := make([]byte, op.Len)
		n, err := get(p, op.Name, buf)
		if err != nil {
			return fail(err)
		}
		return Result{N: int64(n), Data: buf[:min(n, len(buf))]}
	case OpListxattr:
		list := unix.Listxattr
		if op.Nofollow {
			list = unix.Llistxattr
		}
		buf := make([]byte, op.Len)
		n, err := list(p, buf)
		if err != nil {
			return fail(err)
		}
		return Result{N: int64(n), Info: strings.Join(xattrList(buf[:min(n, len(buf))]), ",")}
	case OpRemovexattr:
		if op.Nofollow {
			return fail(unix.Lremovexattr(p, op.Name))
		}
		return fail(unix.Removexattr(p, op.Name))
	case OpChmod:
		return fail(unix.Chmod(p, op.Mode))
	case OpFchmod:
		return fail(unix.Fchmod(fd, op.Mode))
	case OpChown:
		if op.Nofollow {
			return fail(unix.Lchown(p, op.UID, op.GID))
		}
		return fail(unix.Chown(p, op.UID, op.GID))
	case OpUtimes:
		ts := []unix.Timespec{
			{Sec: op.Atime.Sec, Nsec: op.Atime.Nsec},
			{Sec: op.Mtime.Sec, Nsec: op.Mtime.Nsec},
		}
		return fail(unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, op.Flags))
	case OpReaddir:
		names, err := readdirFd(fd)
		if err != nil {
			return fail(err)
		}
		return Result{N: int64(len(names)), Info: strings.Join(names, ",")}
	case OpAccess:
		return fail(unix.Faccessat(unix.AT_FDCWD, p, op.Mode, 0))
	case OpCopyRange:
		offIn, offOut := op.Off2, op.Off
		n, err := unix.CopyFileRange(s.slotFd(op.Slot2), &offIn, fd, &offOut, int(op.Len), 0)
		return Result{Errno: errnoOf(err), N: int64(n)}
	}
	return Result{Errno: unix.ENOSYS}
}

// xattrList splits a listxattr buffer into sorted names. The order of
// listxattr is the backing filesystem's storage order, which POSIX does
// not define; the names and the total size are what is compared.
func xattrList(b []byte) []string {
	var names []string
	for _, n := range bytes.Split(b, []byte{0}) {
		if len(n) > 0 {
			names = append(names, string(n))
		}
	}
	slices.Sort(names)
	return names
}

// dirBufSize is the getdents buffer for listings.
const dirBufSize = 8 << 10

// readdirFd lists directory fd from its start and returns the sorted
// names without "." and "..". The order of getdents is the backing
// filesystem's hash order, which POSIX leaves undefined.
func readdirFd(fd int) ([]string, error) {
	if _, err := unix.Seek(fd, 0, unix.SEEK_SET); err != nil {
		return nil, err
	}
	buf := make([]byte, dirBufSize)
	names := []string{}
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	slices.Sort(names)
	return names, nil
}

// The mmap operations never touch mapped memory from Go code. A page
// fault on a FUSE mapping waits for this very process's server; taken in
// Go code it would hold a P that the runtime cannot stop, and a garbage
// collection starting meanwhile would wait for it while the server
// goroutines that must answer the fault sit stopped. So the data moves
// between the mapping and a memfd with pread and pwrite, and every fault
// happens inside a system call, where the runtime does not wait for the
// thread. (Bytes beyond EOF are never touched: they would fault with
// SIGBUS, or in a syscall EFAULT.)

// mapRange maps [off, off+n) of fd, from the page holding off, and returns
// the mapping and the index of off in it.
func mapRange(fd int, off, n int64, prot int) ([]byte, int64, error) {
	base := off &^ (pageSize - 1)
	m, err := unix.Mmap(fd, base, int(off+n-base), prot, unix.MAP_SHARED)
	return m, off - base, err
}

// below returns how many of the n bytes from off lie below fd's EOF.
func below(fd int, off, n int64) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return max(0, min(off+n, st.Size)-off), nil
}

// mmapRead maps [off, off+n) of fd read-only and reads the part below
// EOF.
func (s *Side) mmapRead(fd int, off, n int64) Result {
	if n <= 0 {
		return Result{Errno: unix.EINVAL}
	}
	valid, err := below(fd, off, n)
	if err != nil {
		return fail(err)
	}
	m, i, err := mapRange(fd, off, n, unix.PROT_READ)
	if err != nil {
		return fail(err)
	}
	defer unix.Munmap(m)
	buf := make([]byte, valid)
	if valid > 0 {
		if err := fullPwrite(s.memfd, m[i:i+valid]); err != nil {
			return Result{Errno: errnoOf(err), Info: "copy from mapping"}
		}
		if _, err := unix.Pread(s.memfd, buf, 0); err != nil {
			return Result{Errno: errnoOf(err), Info: "memfd"}
		}
	}
	return Result{N: valid, Data: buf}
}

// mmapWrite maps [off, off+len(data)) of fd shared and writable, stores
// the part of data below EOF and msyncs.
func (s *Side) mmapWrite(fd int, off int64, data []byte) Result {
	n := int64(len(data))
	if n <= 0 {
		return Result{Errno: unix.EINVAL}
	}
	valid, err := below(fd, off, n)
	if err != nil {
		return fail(err)
	}
	m, i, err := mapRange(fd, off, n, unix.PROT_READ|unix.PROT_WRITE)
	if err != nil {
		return fail(err)
	}
	defer unix.Munmap(m)
	if valid > 0 {
		if err := fullPwrite(s.memfd, data[:valid]); err != nil {
			return Result{Errno: errnoOf(err), Info: "memfd"}
		}
		// The kernel copies into the mapping, faulting the pages in.
		got, err := unix.Pread(s.memfd, m[i:i+valid], 0)
		if err != nil || int64(got) != valid {
			return Result{Errno: errnoOf(err), N: int64(got), Info: "copy to mapping"}
		}
	}
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		return Result{Errno: errnoOf(err), Info: "msync"}
	}
	return Result{N: valid}
}

// fullPwrite writes all of b at offset 0 of fd.
func fullPwrite(fd int, b []byte) error {
	for done := 0; done < len(b); {
		n, err := unix.Pwrite(fd, b[done:], int64(done))
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		done += n
	}
	return nil
}

// seekQuery answers SEEK_DATA or SEEK_HOLE from off on fd and puts the
// file offset back. Both sides may report a range of zeros differently
// (see SeekEquivalent); a difference the comparison tolerates must not
// leave the two descriptors at different offsets.
func seekQuery(fd int, off int64, whence int) Result {
	cur, err := unix.Seek(fd, 0, unix.SEEK_CUR)
	if err != nil {
		return fail(err)
	}
	pos, err := unix.Seek(fd, off, whence)
	if _, err := unix.Seek(fd, cur, unix.SEEK_SET); err != nil {
		return Result{Errno: errnoOf(err), Info: "restoring the offset"}
	}
	if err != nil {
		return fail(err)
	}
	return Result{N: pos}
}

// SeekEquivalent reports whether two different results of a SEEK_DATA
// or SEEK_HOLE operation op on sides a and b say the same thing about
// the file: whether a range of zeros is a hole or data is left to the
// filesystem, and ext4 reports an unwritten (fallocated) extent as data
// where its pages are in the page cache. Which pages are cached differs
// between the native file and the daemon's backing file, which the FUSE
// kernel reads ahead through the server; so answers are equivalent when
// every byte between them reads as zero on both sides (ENXIO standing
// for the end of the file).
func SeekEquivalent(a, b *Side, op Op, ra, rb Result) bool {
	if op.Kind != OpSeek || op.Flags != unix.SEEK_DATA && op.Flags != unix.SEEK_HOLE {
		return false
	}
	var pos [2]int64
	for i, c := range []struct {
		s *Side
		r Result
	}{{a, ra}, {b, rb}} {
		fd := c.s.slotFd(op.Slot)
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			return false
		}
		switch c.r.Errno {
		case 0:
			pos[i] = c.r.N
		case unix.ENXIO:
			pos[i] = st.Size
		default:
			return false
		}
	}
	lo, hi := min(pos[0], pos[1]), max(pos[0], pos[1])
	return lo < hi && a.zeros(op.Slot, lo, hi) && b.zeros(op.Slot, lo, hi)
}

// slotFd returns the descriptor in slot, or -1.
func (s *Side) slotFd(slot int) int {
	if slot < 0 || slot >= NumSlots {
		return -1
	}
	return s.fds[slot]
}

// zeros reports whether bytes [lo, hi) of the file in slot read as
// zeros, through a fresh read-only descriptor (the slot's may be
// write-only; its offset is left alone).
func (s *Side) zeros(slot int, lo, hi int64) bool {
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", s.slotFd(slot)), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	buf := make([]byte, hi-lo)
	if n, err := unix.Pread(fd, buf, lo); err != nil || int64(n) != hi-lo {
		return false
	}
	return !slices.ContainsFunc(buf, func(c byte) bool { return c != 0 })
}

// isDir reports whether fd is an open directory.
func isDir(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}
