package ring

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/internal/uring"
	"github.com/ringfuse/ringfuse/wire"
)

// The fuse_uring_cmd_req goes at the start of the SQE command area, and the
// REGISTER iovecs are struct iovec.
var (
	_ [uring.SizeofSQECmd - wire.SizeofUringCmdReq]byte
	_ [uring.SizeofIovec - 16]byte
	_ [16 - uring.SizeofIovec]byte
)

// wakeTag is the user_data of the waker's poll; entry indices are small.
const wakeTag = ^uint64(0)

// ioTag marks the user data of a file read or write (StartIO); the low bits
// are the entry index.
const ioTag = uint64(1) << 62

// kernelRing is the real [QueueRing]: one io_uring instance with 128-byte
// SQEs on /dev/fuse, a waker, and the REGISTER iovec arrays.
type kernelRing struct {
	r        *uring.Ring
	waker    *uring.Waker
	fd       int32 // /dev/fuse, or fixed-file index 0
	sqeFlags uint8 // IOSQE_FIXED_FILE when fd is registered
	armWaker bool  // the waker poll must be (re)queued

	// iov holds two iovecs per entry, in mmap'd memory: the kernel may
	// read them after io_uring_enter returned if the REGISTER is punted
	// to io-wq.
	iovMem []byte
	iov    []uring.Iovec
	cqes   []uring.CQE // reap scratch

	// mu orders Wake against Close, so that Wake never writes to a
	// closed (and possibly reused) eventfd number.
	mu     sync.Mutex
	closed bool
}

// NewKernelRing creates the io_uring instance for one queue on /dev/fuse
// descriptor cfg.Fd, with the setup flags of cfg.Options: SQ of Depth+2
// entries (one per entry, one for the waker's poll, one spare), CQ of twice
// that. Call it on the thread that will submit (with SingleIssuer the
// kernel insists). It registers the descriptor as fixed file 0 when it can.
func NewKernelRing(cfg RingConfig) (QueueRing, error) {
	var o Options
	if cfg.Options != nil {
		o = *cfg.Options
	}
	if cfg.Depth <= 0 {
		return nil, fmt.Errorf("ring: queue depth %d: %w", cfg.Depth, unix.EINVAL)
	}
	sq := uint32(cfg.Depth + 2)
	r, err := uring.New(sq, &uring.Options{
		CQEntries:    2 * sq,
		SingleIssuer: o.SingleIssuer,
		DeferTaskrun: o.DeferTaskrun,
		CoopTaskrun:  o.CoopTaskrun,
		SQPoll:       o.SQPoll,
		SQThreadIdle: o.SQThreadIdle,
	})
	if err != nil {
		return nil, err
	}
	k := &kernelRing{r: r, fd: int32(cfg.Fd), armWaker: true}
	if k.waker, err = uring.NewWaker(); err != nil {
		r.Close()
		return nil, err
	}
	if k.iovMem, err = mapAnon(roundUp(2*cfg.Depth*uring.SizeofIovec, pageSize)); err != nil {
		k.Close()
		return nil, err
	}
	k.iov = unsafe.Slice((*uring.Iovec)(unsafe.Pointer(&k.iovMem[0])), 2*cfg.Depth)
	k.cqes = make([]uring.CQE, r.CQEntries())
	// A fixed file saves the kernel an fd lookup per command. Without it
	// (an old kernel, a seccomp filter) the plain descriptor works too.
	if r.RegisterFiles([]int32{int32(cfg.Fd)}) == nil {
		k.fd, k.sqeFlags = 0, uring.IOSQE_FIXED_FILE
	}
	return k, nil
}

// Register implements [QueueRing].
func (k *kernelRing) Register(e *Entry, flags uint64) error {
	if e.Index < 0 || 2*e.Index+1 >= len(k.iov) {
		return fmt.Errorf("ring: register entry %d: %w", e.Index, unix.EINVAL)
	}
	iov := k.iov[2*e.Index : 2*e.Index+2]
	iov[0] = uring.Iovec{Base: uint64(uintptr(unsafe.Pointer(e.Header))), Len: wire.SizeofUringReqHeader}
	iov[1] = uring.Iovec{Len: uint64(len(e.Payload))}
	if len(e.Payload) > 0 {
		iov[1].Base = uint64(uintptr(unsafe.Pointer(&e.Payload[0])))
	}
	sqe := k.r.NextSQE()
	if sqe == nil {
		return uring.ErrSQFull
	}
	sqe.PrepURingCmd(k.fd, uint32(wire.FUSE_IO_URING_CMD_REGISTER), uint64(e.Index))
	sqe.Flags |= k.sqeFlags
	sqe.Addr = uint64(uintptr(unsafe.Pointer(&iov[0])))
	sqe.Len = wire.FUSE_URING_IOV_SEGS
	*(*wire.UringCmdReq)(unsafe.Pointer(sqe.Cmd())) = wire.UringCmdReq{Flags: flags, QID: e.Qid}
	return nil
}

// Commit implements [QueueRing].
func (k *kernelRing) Commit(e *Entry, commitID uint64) error {
	sqe := k.r.NextSQE()
	if sqe == nil {
		return uring.ErrSQFull
	}
	sqe.PrepURingCmd(k.fd, uint32(wire.FUSE_IO_URING_CMD_COMMIT_AND_FETCH), uint64(e.Index))
	sqe.Flags |= k.sqeFlags
	*(*wire.UringCmdReq)(unsafe.Pointer(sqe.Cmd())) = wire.UringCmdReq{CommitID: commitID, QID: e.Qid}
	return nil
}

// StartIO implements FileIORing with IORING_OP_READ and IORING_OP_WRITE.
func (k *kernelRing) StartIO(e *Entry, write bool, fd int, buf []byte, off int64) error {
	sqe := k.r.NextSQE()
	if sqe == nil {
		return uring.ErrSQFull
	}
	sqe.PrepRW(write, int32(fd), buf, uint64(off), ioTag|uint64(e.Index))
	return nil
}

// SubmitAndWait implements [QueueRing]: one io_uring_enter (plus retries
// when a signal interrupts it).
func (k *kernelRing) SubmitAndWait() error {
	if k.armWaker {
		// Arming resets the eventfd: a Wake between the caller's last
		// look at its work and this reset would be lost, so submit
		// without waiting and let the caller look again.
		if err := k.r.ArmWaker(k.waker, wakeTag); err != nil {
			return err
		}
		k.armWaker = false
		_, err := k.r.Submit()
		return err
	}
	_, err := k.r.SubmitAndWait(1)
	return err
}

// Reap implements [QueueRing]. The waker's CQE is consumed here and its
// poll re-armed at once, before the caller looks at the work it was woken
// for: a Wake after Reap then always ends the next SubmitAndWait.
func (k *kernelRing) Reap(dst []Completion) int {
	n := k.r.ReapCQEs(k.cqes[:min(len(dst), len(k.cqes))])
	j := 0
	for _, c := range k.cqes[:n] {
		if c.UserData == wakeTag {
			if k.r.ArmWaker(k.waker, wakeTag) != nil {
				k.armWaker = true // no free SQE: arm at the next submit
			}
			continue
		}
		if c.UserData&ioTag != 0 {
			dst[j] = Completion{Entry: int(c.UserData &^ ioTag), Res: c.Res, IO: true}
		} else {
			dst[j] = Completion{Entry: int(c.UserData), Res: c.Res}
		}
		j++
	}
	return j
}

// Wake implements [QueueRing].
func (k *kernelRing) Wake() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return uring.ErrClosed
	}
	return k.waker.Wake()
}

// Close implements [QueueRing]. It is idempotent.
func (k *kernelRing) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	var errs []error
	if k.r != nil {
		// Closing the ring cancels the commands still parked in the
		// kernel, the waker's poll among them, before the eventfd and
		// the iovecs go away.
		errs = append(errs, k.r.Close())
	}
	if k.waker != nil {
		errs = append(errs, k.waker.Close())
	}
	k.iov = nil
	errs = append(errs, unmap(k.iovMem))
	k.iovMem = nil
	return errors.Join(errs...)
}
