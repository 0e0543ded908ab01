package mount

// Raw system calls of the mount package. Every call that may be interrupted
// by a signal is retried here and nowhere else.

import (
	"golang.org/x/sys/unix"
)

// ignoringEINTR calls fn until it returns something other than EINTR.
func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// openDev opens a character device such as /dev/fuse as a raw, blocking,
// close-on-exec descriptor. It deliberately avoids os.OpenFile: the Go
// netpoller must not own the FUSE descriptor, whose reads block in the
// kernel until a request arrives.
func openDev(path string) (int, error) {
	fd := -1
	err := ignoringEINTR(func() error {
		var err error
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
		return err
	})
	return fd, err
}

// closeFD closes fd once. Linux releases the descriptor even when close
// reports EINTR, so it is never retried.
func closeFD(fd int) error {
	return unix.Close(fd)
}

// sysMount is mount(2).
func sysMount(source, target, fstype string, flags uintptr, data string) error {
	return ignoringEINTR(func() error {
		return unix.Mount(source, target, fstype, flags, data)
	})
}

// sysUnmount is umount2(2).
func sysUnmount(target string, flags int) error {
	return ignoringEINTR(func() error {
		return unix.Unmount(target, flags)
	})
}

// writeCtl writes s to an existing control file (fusectl, sysfs) with a
// single write(2); it never creates or truncates the file.
func writeCtl(path, s string) error {
	fd := -1
	err := ignoringEINTR(func() error {
		var err error
		fd, err = unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return err
	}
	defer closeFD(fd)
	return ignoringEINTR(func() error {
		_, err := unix.Write(fd, []byte(s))
		return err
	})
}

// msgCmsgCloexec makes descriptors received with recvmsg close-on-exec.
const msgCmsgCloexec = unix.MSG_CMSG_CLOEXEC

// socketpair returns a connected pair of close-on-exec Unix stream sockets.
func socketpair() ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}

// linuxOnly is nil here; on other systems it is [ErrLinuxOnly].
func linuxOnly() error { return nil }

// The mount(2) and umount2(2) flags this package uses, under the kernel's
// names, so that the portable files compile elsewhere.
const (
	msNosuid  = unix.MS_NOSUID
	msNodev   = unix.MS_NODEV
	msRdonly  = unix.MS_RDONLY
	msNoexec  = unix.MS_NOEXEC
	msNoatime = unix.MS_NOATIME
	mntDetach = unix.MNT_DETACH
)
