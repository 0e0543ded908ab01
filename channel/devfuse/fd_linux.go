package devfuse

import (
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FD is a /dev/fuse descriptor used as a Device. It must be a raw blocking
// descriptor (unix.Open, not os.OpenFile), so that reads park the thread in
// the kernel rather than in Go's netpoller.
type FD int

// Read implements Device. It returns EINTR as it comes: Serve's readers
// retry it, as they do for any Device.
func (fd FD) Read(p []byte) (int, error) {
	n, err := unix.Read(int(fd), p)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Writev implements Device. It does not allocate: the iovecs live on the
// stack for up to four buffers. It retries EINTR itself (Serve does not).
func (fd FD) Writev(bufs [][]byte) (int, error) {
	var iov [4]unix.Iovec
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if n == len(iov) {
			return 0, syscall.EINVAL
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	for {
		r, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// Backing ioctls on /dev/fuse (FUSE_DEV_IOC_BACKING_OPEN/CLOSE, 6.9).
const (
	FUSE_DEV_IOC_BACKING_OPEN  = 0x4010e501
	FUSE_DEV_IOC_BACKING_CLOSE = 0x4004e502
)

// fuseBackingMap is struct fuse_backing_map.
type fuseBackingMap struct {
	Fd      int32
	Flags   uint32
	Padding uint64
}

// BackingOpen registers fd as a passthrough backing file and returns its
// backing ID.
func (fd FD) BackingOpen(file int) (int32, error) {
	m := fuseBackingMap{Fd: int32(file)}
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), FUSE_DEV_IOC_BACKING_OPEN, uintptr(unsafe.Pointer(&m)))
	if e != 0 {
		return 0, e
	}
	return int32(r), nil
}

// BackingClose unregisters a backing ID.
func (fd FD) BackingClose(id int32) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), FUSE_DEV_IOC_BACKING_CLOSE, uintptr(unsafe.Pointer(&id)))
	if e != 0 {
		return e
	}
	return nil
}

// sleepThread blocks the calling thread for d, without handing it back
// to the Go scheduler (a parked locked thread wakes later). EINTR ends it
// early; callers loop.
func sleepThread(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	_ = unix.Nanosleep(&ts, nil)
}

// setThreadNice sets the calling thread's nice value, best effort.
func setThreadNice(nice int) {
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice)
}
