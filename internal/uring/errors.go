package uring

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Sentinel errors. Errors returned by this package wrap one of these or a
// [unix.Errno] and name the step that failed ("uring: setup: ..."); match them
// with [errors.Is].
var (
	// ErrNotSupported means io_uring cannot be used at all: the kernel lacks
	// it (ENOSYS) or it is disabled by /proc/sys/kernel/io_uring_disabled or
	// a seccomp/LSM policy (EPERM). The wrapped error also matches the errno.
	ErrNotSupported = errors.New("io_uring not supported")

	// ErrClosed is returned by methods called after [Ring.Close] or
	// [Waker.Close].
	ErrClosed = errors.New("uring: closed")

	// ErrSQFull is returned when a helper needs an SQE and the submission
	// queue has no free slot. Submit (and reap) first.
	ErrSQFull = errors.New("uring: submission queue full")
)

// Pre-wrapped errors for the errno values io_uring_enter returns under load,
// so the retry path does not allocate.
var (
	errEnterAgain = fmt.Errorf("uring: enter: %w", unix.EAGAIN)
	errEnterBusy  = fmt.Errorf("uring: enter: %w", unix.EBUSY)
)

// enterError wraps an io_uring_enter errno with the step name.
func enterError(errno unix.Errno) error {
	switch errno {
	case unix.EAGAIN:
		return errEnterAgain
	case unix.EBUSY:
		return errEnterBusy
	case unix.EEXIST:
		// IORING_SETUP_SINGLE_ISSUER rejects every thread but the one
		// that created the ring.
		return fmt.Errorf("uring: enter: not the ring's single issuer thread: %w", errno)
	}
	return fmt.Errorf("uring: enter: %w", errno)
}
