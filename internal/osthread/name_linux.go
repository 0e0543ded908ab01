package osthread

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SetName names the calling thread (PR_SET_NAME keeps 15 bytes). The
// goroutine should have locked its thread, or the name lands on whichever
// thread runs it now.
func SetName(name string) {
	var b [16]byte
	copy(b[:15], name)
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}

// SetTimerSlack sets how late the kernel may fire the calling thread's
// timers (PR_SET_TIMERSLACK; the default is 50 µs).
func SetTimerSlack(d time.Duration) {
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(d.Nanoseconds()), 0, 0, 0)
}
