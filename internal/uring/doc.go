// Package uring is a thin, cgo-free io_uring layer over golang.org/x/sys/unix,
// shaped for FUSE-over-io_uring.
//
// A [Ring] always uses 128-byte SQEs (IORING_SETUP_SQE128) because FUSE
// passes its fuse_uring_cmd_req in the 80-byte command area of an
// IORING_OP_URING_CMD SQE. The package owns the kernel ABI (the structs and
// constants of include/uapi/linux/io_uring.h, spelled as in the header), the
// three ring mmaps, io_uring_enter and io_uring_register. It knows nothing of
// FUSE.
//
// # Usage
//
//	r, err := uring.New(64, &uring.Options{CQEntries: 128})
//	if err != nil { ... }       // errors.Is(err, uring.ErrNotSupported) when io_uring is unavailable
//	defer r.Close()
//	sqe := r.NextSQE()          // nil when the SQ is full: submit or reap first
//	sqe.PrepRW(false, fd, buf, 0, 42) // read buf from offset 0; buf must not move (see Memory)
//	r.SubmitAndWait(1)          // publishes every SQE taken so far, waits for one CQE
//	n := r.ReapCQEs(cqes)       // n == 1, cqes[0].UserData == 42, cqes[0].Res the byte count
//
// # Threads
//
// A Ring is not safe for concurrent use: one goroutine owns it. io_uring runs
// completion task work (FUSE copies requests into the entry buffers there) on
// the OS thread that submitted, so the owner should call
// [runtime.LockOSThread] before [New] and keep that thread for the life of the
// ring. With [Options.SingleIssuer] this is required: the kernel binds the
// ring to the thread that created it and rejects submissions and
// registrations from any other thread with EEXIST.
//
// Other goroutines wake the owner through a [Waker]: the owner arms a
// one-shot POLL_ADD on the waker's eventfd with [Ring.ArmWaker]; [Waker.Wake]
// makes that poll complete, so a thread blocked in [Ring.SubmitAndWait]
// returns with a CQE carrying the waker's user_data. Closing the ring fd does
// not wake a blocked io_uring_enter, so a waker is also how shutdown begins.
//
// # Memory
//
// The kernel reads addresses from SQEs (Addr, the iovec array of a FUSE
// REGISTER, read buffers) after Submit returns, possibly from an io-wq worker.
// Such memory must never be on a goroutine stack (stacks move) and must stay
// referenced and unmoved until the CQE arrives: use mmap'd memory, or heap
// memory kept alive and pinned with [runtime.Pinner]. SQEs hold addresses
// only as integers, so the garbage collector cannot see them; never let an
// SQE hold the only reference to a Go object.
//
// # Completions
//
// [Ring.ReapCQEs] reads the CQ ring
// without system calls or allocation. With [Options.DeferTaskrun] or
// [Options.CoopTaskrun], or after the CQ has overflowed, completions become
// visible only after the owner enters the kernel: [Ring.Submit] does that on
// its own when the kernel flags it (IORING_SQ_TASKRUN, IORING_SQ_CQ_OVERFLOW),
// and [Ring.SubmitAndWait] always does.
//
// Only little-endian Linux (amd64, arm64) is supported: poll32_events would
// need word swapping on big-endian machines.
package uring
