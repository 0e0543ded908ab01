package uring

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// register calls io_uring_register(2). The kernel copies arg during the call,
// so arg may point to ordinary Go memory; the caller keeps it alive.
func (r *Ring) register(op uint32, arg unsafe.Pointer, nrArgs uint32) error {
	if r.fd < 0 {
		return ErrClosed
	}
	for {
		errno := sysRegister(r.fd, op, arg, nrArgs)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}

// RegisterFiles registers fds as the ring's fixed files
// (IORING_REGISTER_FILES): an SQE with IOSQE_FIXED_FILE then names fds[i] by
// its index i in SQE.Fd, which saves the per-request fd lookup. An entry of
// -1 leaves a slot empty. The kernel takes its own references, so the caller
// may close its fds afterwards. A ring has one fixed-file table; call
// UnregisterFiles before registering another.
func (r *Ring) RegisterFiles(fds []int32) error {
	if len(fds) == 0 {
		return fmt.Errorf("uring: register files: empty table: %w", unix.EINVAL)
	}
	err := r.register(IORING_REGISTER_FILES, unsafe.Pointer(&fds[0]), uint32(len(fds)))
	runtime.KeepAlive(fds)
	if err != nil {
		return fmt.Errorf("uring: register files: %w", err)
	}
	return nil
}

// UnregisterFiles drops the fixed-file table registered with RegisterFiles.
func (r *Ring) UnregisterFiles() error {
	if err := r.register(IORING_UNREGISTER_FILES, nil, 0); err != nil {
		return fmt.Errorf("uring: unregister files: %w", err)
	}
	return nil
}

// RegisterEventfd makes the kernel signal the eventfd fd whenever it posts a
// CQE (IORING_REGISTER_EVENTFD), so that an epoll loop can watch the ring.
// This is unrelated to [Waker], which signals in the other direction.
func (r *Ring) RegisterEventfd(fd int) error {
	efd := int32(fd)
	err := r.register(IORING_REGISTER_EVENTFD, unsafe.Pointer(&efd), 1)
	runtime.KeepAlive(&efd)
	if err != nil {
		return fmt.Errorf("uring: register eventfd: %w", err)
	}
	return nil
}

// UnregisterEventfd removes the eventfd registered with RegisterEventfd.
func (r *Ring) UnregisterEventfd() error {
	if err := r.register(IORING_UNREGISTER_EVENTFD, nil, 0); err != nil {
		return fmt.Errorf("uring: unregister eventfd: %w", err)
	}
	return nil
}
