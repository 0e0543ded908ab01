package passthrough

import (
	"encoding/binary"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/wire"
)

// maxHandleSize is MAX_HANDLE_SZ (include/linux/exportfs.h): the largest
// f_handle any filesystem encodes.
const maxHandleSize = 128

// handleHeader is the size of struct file_handle without f_handle:
// handle_bytes (u32) and handle_type (s32).
const handleHeader = 8

// handleBuf holds one struct file_handle: the header, then f_handle.
type handleBuf [handleHeader + maxHandleSize]byte

// cname is a NUL-terminated copy of one path component, kept on the stack
// so that the hot lookup syscalls do not allocate.
type cname [unix.NAME_MAX + 1]byte

// ptr copies name into b and returns a pointer to the C string.
func (b *cname) ptr(name string) (*byte, syscall.Errno) {
	if len(name) > unix.NAME_MAX {
		return nil, syscall.ENAMETOOLONG
	}
	copy(b[:], name)
	b[len(name)] = 0
	return &b[0], 0
}

// errnoOf turns an error from x/sys/unix into the errno it carries.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}

// atHandleMntIDUnique is AT_HANDLE_MNT_ID_UNIQUE (Linux 6.12): have
// name_to_handle_at report the 64-bit mount ID, never reused, instead of
// the legacy one.
const atHandleMntIDUnique = 0x001

// nameToHandleAt wraps name_to_handle_at(2). It fills hb with the struct
// file_handle and returns its total length (header included) and the mount
// ID, which is 64 bits wide with atHandleMntIDUnique in flags. name may be
// "" with AT_EMPTY_PATH in flags.
func nameToHandleAt(dirfd int, name string, flags int, hb *handleBuf) (int, uint64, syscall.Errno) {
	var cn cname
	p, e := cn.ptr(name)
	if e != 0 {
		return 0, 0, e
	}
	binary.NativeEndian.PutUint32(hb[0:4], maxHandleSize)
	var mountID uint64
	for {
		_, _, e = unix.Syscall6(unix.SYS_NAME_TO_HANDLE_AT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
			uintptr(unsafe.Pointer(&hb[0])), uintptr(unsafe.Pointer(&mountID)), uintptr(flags), 0)
		if e != syscall.EINTR {
			break
		}
	}
	if e != 0 {
		return 0, 0, e
	}
	n := binary.NativeEndian.Uint32(hb[0:4])
	if n > maxHandleSize {
		return 0, 0, syscall.EOVERFLOW
	}
	if flags&atHandleMntIDUnique == 0 {
		// The kernel wrote an int: keep its 32 bits only.
		mountID = uint64(*(*uint32)(unsafe.Pointer(&mountID)))
	}
	return handleHeader + int(n), mountID, 0
}

// openByHandleAt wraps open_by_handle_at(2). h is a struct file_handle as
// returned by nameToHandleAt. It needs CAP_DAC_READ_SEARCH.
func openByHandleAt(mountFd int, h []byte, flags int) (int, syscall.Errno) {
	if len(h) < handleHeader || len(h) > len(handleBuf{}) {
		return -1, syscall.ESTALE
	}
	var hb handleBuf
	copy(hb[:], h)
	for tries := 1; ; tries++ {
		r, _, e := unix.Syscall(unix.SYS_OPEN_BY_HANDLE_AT, uintptr(mountFd), uintptr(unsafe.Pointer(&hb[0])), uintptr(flags))
		if e == syscall.EINTR || e == syscall.ENOMEM && tries < handleTries {
			// ENOMEM is the one decoding failure the kernel does
			// not turn into ESTALE: an allocation that failed while
			// it reconnected the handle's directory, which a client
			// opening an existing file would never see natively.
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), 0
	}
}

// handleTries bounds the attempts of an open_by_handle_at that fails with
// ENOMEM.
const handleTries = 3

// fstatFd is fstatat(fd, "", AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW): it works
// on O_PATH descriptors, symlinks included.
func fstatFd(fd int, st *unix.Stat_t) syscall.Errno {
	return fstatat(fd, "", st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
}

// fstatat wraps fstatat(2) with the name on the stack: unix.Fstatat
// allocates its C string, and every LOOKUP and GETATTR calls this.
func fstatat(dirfd int, name string, st *unix.Stat_t, flags int) syscall.Errno {
	var cn cname
	p, e := cn.ptr(name)
	if e != 0 {
		return e
	}
	for {
		_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0)
		if e != syscall.EINTR {
			return e
		}
	}
}

// openat wraps openat(2) with the name on the stack: unix.Openat
// allocates its C string, and every LOOKUP calls this.
func openat(dirfd int, name string, flags int, mode uint32) (int, syscall.Errno) {
	var cn cname
	p, e := cn.ptr(name)
	if e != 0 {
		return -1, e
	}
	return openPtr(dirfd, p, flags, mode)
}

// openProc opens the object fd refers to through /proc/self/fd, the path
// on the stack. The magic link reaches the object itself, so the new
// descriptor is checked against the calling thread's credentials (see
// package creds), where open_by_handle_at would check nothing; a symlink
// fails with ELOOP, except with O_PATH.
func openProc(fd, flags int) (int, syscall.Errno) {
	var path procFd
	return openPtr(unix.AT_FDCWD, path.ptr(fd), flags&^unix.O_NOFOLLOW, 0)
}

func openPtr(dirfd int, p *byte, flags int, mode uint32) (int, syscall.Errno) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(flags), uintptr(mode), 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), 0
	}
}

// procPath names a descriptor of this process through /proc. It is used
// only where Linux has no call taking an O_PATH descriptor (xattrs, and
// chmod or truncate without fchmodat2 or an open file).
func procPath(fd int) string {
	return "/proc/self/fd/" + strconv.Itoa(fd)
}

// procFd is procPath(fd) as a C string on the stack.
type procFd [len("/proc/self/fd/") + 20 + 1]byte

// ptr writes the path of fd into b and returns a pointer to it.
func (b *procFd) ptr(fd int) *byte {
	n := copy(b[:], "/proc/self/fd/")
	n += len(strconv.AppendInt(b[n:n], int64(fd), 10))
	b[n] = 0
	return &b[0]
}

// xattrNameMax is XATTR_NAME_MAX (linux/limits.h); a longer name gets
// ERANGE from the kernel.
const xattrNameMax = 255

// getxattrFd is getxattr(2) of the object fd refers to, through /proc (no
// call takes an O_PATH descriptor), with both strings on the stack: the
// kernel asks for security.capability and ACLs on many requests, and
// unix.Getxattr allocates two C strings each time.
func getxattrFd(fd int, name string, buf []byte) (int, syscall.Errno) {
	if len(name) > xattrNameMax {
		return 0, syscall.ERANGE
	}
	return xattrFd(fd, name, true, buf)
}

// listxattrFd is listxattr(2) of the object fd refers to; see getxattrFd.
func listxattrFd(fd int, buf []byte) (int, syscall.Errno) {
	return xattrFd(fd, "", false, buf)
}

// xattrFd makes getxattr(2) of name (get) or listxattr(2) into buf.
func xattrFd(fd int, name string, get bool, buf []byte) (int, syscall.Errno) {
	var path procFd
	var cn cname
	var v unsafe.Pointer
	if len(buf) > 0 {
		v = unsafe.Pointer(&buf[0])
	}
	for {
		var r uintptr
		var e syscall.Errno
		if get {
			np, _ := cn.ptr(name)
			r, _, e = unix.Syscall6(unix.SYS_GETXATTR, uintptr(unsafe.Pointer(path.ptr(fd))), uintptr(unsafe.Pointer(np)), uintptr(v), uintptr(len(buf)), 0, 0)
		} else {
			r, _, e = unix.Syscall(unix.SYS_LISTXATTR, uintptr(unsafe.Pointer(path.ptr(fd))), uintptr(v), uintptr(len(buf)))
		}
		switch e {
		case syscall.EINTR:
			continue
		case 0:
			return int(r), 0
		}
		return 0, e
	}
}

// chmodFd changes the mode of the object fd refers to, which may be an
// O_PATH descriptor. fchmodat2 (Linux 6.6) takes AT_EMPTY_PATH; on older
// kernels the /proc path is used, which follows the magic link to the
// object itself.
func chmodFd(fd int, mode uint32) syscall.Errno {
	err := unix.Fchmodat(fd, "", mode, unix.AT_EMPTY_PATH)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		var st unix.Stat_t
		if e := fstatFd(fd, &st); e != 0 {
			return e
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return syscall.EOPNOTSUPP // chmod of a symlink, as lchmod
		}
		err = unix.Chmod(procPath(fd), mode)
	}
	return errnoOf(err)
}

// encodeDev encodes a dev_t as the kernel's new_encode_dev, the format of
// fuse_attr.rdev and fuse_mknod_in.rdev (fs/fuse/inode.c decodes it with
// new_decode_dev).
func encodeDev(dev uint64) uint32 {
	major, minor := unix.Major(dev), unix.Minor(dev)
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// decodeDev is new_decode_dev: the inverse of encodeDev.
func decodeDev(dev uint32) uint64 {
	major := (dev & 0xfff00) >> 8
	minor := dev&0xff | (dev>>12)&0xfff00
	return unix.Mkdev(major, minor)
}

// fillAttr converts a stat result into fuse_attr.
func fillAttr(a *wire.Attr, st *unix.Stat_t) {
	*a = wire.Attr{
		Ino:       st.Ino,
		Size:      uint64(st.Size),
		Blocks:    uint64(st.Blocks),
		Atime:     uint64(st.Atim.Sec),
		Mtime:     uint64(st.Mtim.Sec),
		Ctime:     uint64(st.Ctim.Sec),
		Atimensec: uint32(st.Atim.Nsec),
		Mtimensec: uint32(st.Mtim.Nsec),
		Ctimensec: uint32(st.Ctim.Nsec),
		Mode:      st.Mode,
		Nlink:     uint32(st.Nlink),
		UID:       st.Uid,
		GID:       st.Gid,
		Rdev:      encodeDev(st.Rdev),
		Blksize:   uint32(st.Blksize),
	}
}

// closeFd closes a descriptor this package owns, ignoring EINTR (Linux
// always releases the descriptor).
func closeFd(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
