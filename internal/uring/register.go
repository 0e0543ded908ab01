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
// unregisterFiles before registering another.
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

// unregisterFiles drops the fixed-file table registered with RegisterFiles.
func (r *Ring) unregisterFiles() error {
	if err := r.register(IORING_UNREGISTER_FILES, nil, 0); err != nil {
		return fmt.Errorf("uring: unregister files: %w", err)
	}
	return nil
}
