package session

import (
	"fmt"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/server"
)

// disablePoll makes the kernel stop sending POLL for this connection (see
// server.PollHackName): it opens the hack file and registers it with an
// epoll instance through a real syscall, which the server answers with
// ENOSYS. On a mount for another user (owner not nil) it does that as the
// owner, whom alone the kernel lets in.
func disablePoll(dir string, owner *ids) error {
	if owner != nil {
		return asUser(*owner, func() error { return disablePoll(dir, nil) })
	}
	fd, err := unix.Open(filepath.Join(dir, server.PollHackName), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("session: open poll hack: %w", err)
	}
	defer unix.Close(fd)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("session: epoll_create1: %w", err)
	}
	defer unix.Close(ep)
	// The registration itself triggers POLL; its result does not matter.
	// It must be a blocking syscall: unix.EpollCtl is a raw one, which
	// would keep this thread's P while the server needs it.
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	unix.Syscall6(unix.SYS_EPOLL_CTL, uintptr(ep), unix.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	runtime.KeepAlive(&ev)
	return nil
}

// asUser runs f on an OS thread of its own that has become user u: real,
// effective and saved IDs, and no supplementary groups. Such a thread has
// lost the privileges to come back, so its goroutine never unlocks it, and
// Go ends the thread when the goroutine returns. The raw system calls change
// that thread alone (Go's syscall.Setresuid would change every thread).
func asUser(u ids, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			done <- fmt.Errorf("session: setgroups: %w", e)
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.gid), uintptr(u.gid), uintptr(u.gid)); e != 0 {
			done <- fmt.Errorf("session: setresgid %d: %w", u.gid, e)
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.uid), uintptr(u.uid), uintptr(u.uid)); e != 0 {
			done <- fmt.Errorf("session: setresuid %d: %w", u.uid, e)
			return
		}
		done <- f()
	}()
	return <-done
}
