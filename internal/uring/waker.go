package uring

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Waker lets any goroutine wake the thread that owns a Ring, typically while
// it blocks in SubmitAndWait. It is an eventfd on which the owner keeps a
// one-shot POLL_ADD armed:
//
//	w, _ := uring.NewWaker()
//	r.ArmWaker(w, wakeTag)          // owner, before its first wait
//	for {
//		r.SubmitAndWait(1)
//		for each CQE c {
//			if c.UserData == wakeTag {
//				r.ArmWaker(w, wakeTag) // re-arm first ...
//				drain the work queue    // ... then look for work
//			}
//		}
//	}
//
//	queue.push(item); w.Wake()      // any goroutine
//
// Re-arming before draining the work queue means a wake that races with the
// drain is never lost: either the drain sees the item, or the new poll fires.
// Wakes coalesce; one CQE may stand for many Wake calls.
//
// Wake is safe for concurrent use. Close must wait until no goroutine can
// call Wake any more (the fd number could otherwise be reused), and until the
// ring no longer polls it.
type Waker struct {
	fd     int
	closed atomic.Bool
}

// NewWaker creates a Waker backed by a non-blocking, close-on-exec eventfd.
func NewWaker() (*Waker, error) {
	fd, err := eventfd()
	if err != nil {
		return nil, fmt.Errorf("uring: eventfd: %w", err)
	}
	return &Waker{fd: fd}, nil
}

// Fd returns the eventfd.
func (w *Waker) Fd() int { return w.fd }

// Wake makes an armed poll on the waker complete. It never blocks.
func (w *Waker) Wake() error {
	if w.closed.Load() {
		return ErrClosed
	}
	for {
		errno := eventfdIO(unix.SYS_WRITE, w.fd, 1)
		switch errno {
		case 0, unix.EAGAIN:
			// EAGAIN means the counter is saturated: a wake is
			// pending already.
			return nil
		case unix.EINTR:
			continue
		}
		return fmt.Errorf("uring: wake: %w", errno)
	}
}

// eventfdIO reads or writes the 8-byte eventfd counter. It calls the system
// call directly rather than through unix.Read/Write, whose race-detector
// hooks make the buffer escape and allocate on every wake.
func eventfdIO(trap uintptr, fd int, v uint64) unix.Errno {
	_, _, errno := unix.Syscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&v)), 8)
	return errno
}

// drain resets the eventfd counter so that a re-armed poll waits for the
// next Wake instead of firing at once on an old one.
func (w *Waker) drain() {
	for eventfdIO(unix.SYS_READ, w.fd, 0) == unix.EINTR {
	}
	// Anything else, typically EAGAIN, means the counter is zero now.
}

// Close closes the eventfd. It is idempotent.
func (w *Waker) Close() error {
	if w.closed.Swap(true) {
		return nil
	}
	if err := unix.Close(w.fd); err != nil {
		return fmt.Errorf("uring: close waker: %w", err)
	}
	return nil
}

// ArmWaker resets w and queues a one-shot POLL_ADD on it whose CQE carries
// userData; the next Submit or SubmitAndWait publishes it. Call it once
// before the first wait and again each time that CQE arrives. It returns
// [ErrSQFull] when no SQE is free; reserve one SQ slot for the waker when
// sizing the ring.
func (r *Ring) ArmWaker(w *Waker, userData uint64) error {
	if w.closed.Load() {
		return ErrClosed
	}
	sqe := r.NextSQE()
	if sqe == nil {
		if r.sqes == nil {
			return ErrClosed
		}
		return ErrSQFull
	}
	w.drain()
	sqe.PrepPollAdd(int32(w.fd), unix.POLLIN, userData)
	return nil
}
