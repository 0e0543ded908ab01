package uring

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls of io_uring, which exists only on Linux.

// mapPopulate prefaults the ring mappings.
const mapPopulate = unix.MAP_POPULATE

// sysSetup is io_uring_setup(2). p lives only for the duration of this
// synchronous call, which copies it in and out.
func sysSetup(entries uint32, p *Params) (int, unix.Errno) {
	fd, _, errno := unix.Syscall6(unix.SYS_IO_URING_SETUP, uintptr(entries),
		uintptr(unsafe.Pointer(p)), 0, 0, 0, 0)
	return int(fd), errno
}

// sysEnter is io_uring_enter(2).
func sysEnter(fd int, toSubmit, minComplete, flags uint32) (int, unix.Errno) {
	n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd),
		uintptr(toSubmit), uintptr(minComplete), uintptr(flags), 0, 0)
	return int(n), errno
}

// sysRegister is io_uring_register(2).
func sysRegister(fd int, op uint32, arg unsafe.Pointer, nrArgs uint32) unix.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd),
		uintptr(op), uintptr(arg), uintptr(nrArgs), 0, 0)
	return errno
}

// eventfd returns a non-blocking, close-on-exec eventfd.
func eventfd() (int, error) {
	return unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
}
