//go:build !linux

package uring

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// io_uring exists only on Linux: elsewhere every call fails with ENOSYS, so
// that New reports ErrNotSupported and the package still compiles.

const mapPopulate = 0

func sysSetup(uint32, *Params) (int, unix.Errno) { return -1, unix.ENOSYS }

func sysEnter(int, uint32, uint32, uint32) (int, unix.Errno) { return 0, unix.ENOSYS }

func sysRegister(int, uint32, unsafe.Pointer, uint32) unix.Errno { return unix.ENOSYS }

func eventfd() (int, error) { return -1, unix.ENOSYS }
