package kmodel

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/wire"
)

// This file is the io_uring instance of the model: the submission and
// completion queues a ring channel's queue talks to (ring.QueueRing and
// ring.FileIORing). What a FUSE command does once submitted is in ring.go.

var _ ring.FileIORing = (*modelRing)(nil)

// sqe is one queued command: a FUSE command, or with io a read or write
// (IORING_OP_READ, IORING_OP_WRITE).
type sqe struct {
	op       wire.UringCmd
	e        *ring.Entry
	flags    uint64
	commitID uint64
	qid      uint16

	io    bool
	write bool
	fd    int
	buf   []byte
	off   int64
}

// modelRing is a ring.QueueRing on the model: one io_uring instance.
type modelRing struct {
	c      *Conn
	qid    int
	sqCap  int
	sq     []sqe
	cq     fifo[ring.Completion]
	tw     []*kent // task work: entries whose request this ring's task must copy
	woken  bool
	closed bool
	sig    chan struct{}

	// Counters, under the connection's lock: io_uring_enter calls, those
	// that carried forget work, and those that blocked.
	enters, forgetEnters, sleeps uint64
	forgetWork                   bool // forget work since the last enter returned
}

// Errors of the model's rings.
var (
	// ErrRingClosed: a command was queued on a closed ring.
	ErrRingClosed = errors.New("kmodel: ring closed")
	// ErrSQFull: more commands were queued than the ring has room for.
	ErrSQFull = errors.New("kmodel: submission queue full")
)

// NewRing is a ring.Options.NewRing: it returns a QueueRing for one queue of
// the ring channel that talks to this model instead of io_uring. Requests
// are copied into an entry's buffers in the context of the ring that holds
// the entry's command, inside its SubmitAndWait or Reap, as the kernel
// copies in the submitter's task.
func (c *Conn) NewRing(cfg ring.RingConfig) (ring.QueueRing, error) {
	if cfg.Depth <= 0 {
		return nil, fmt.Errorf("kmodel: queue depth %d: %w", cfg.Depth, syscall.EINVAL)
	}
	r := &modelRing{c: c, qid: cfg.Qid, sqCap: cfg.Depth + 2, sig: make(chan struct{}, 1)}
	c.mu.Lock()
	c.rings = append(c.rings, r)
	c.mu.Unlock()
	return r, nil
}

func (r *modelRing) signal() {
	select {
	case r.sig <- struct{}{}:
	default:
	}
}

// Register implements ring.QueueRing.
func (r *modelRing) Register(e *ring.Entry, flags uint64) error {
	return r.queue(sqe{op: wire.FUSE_IO_URING_CMD_REGISTER, e: e, flags: flags, qid: e.Qid})
}

// Commit implements ring.QueueRing.
func (r *modelRing) Commit(e *ring.Entry, commitID uint64) error {
	return r.queue(sqe{op: wire.FUSE_IO_URING_CMD_COMMIT_AND_FETCH, e: e, commitID: commitID, qid: e.Qid})
}

func (r *modelRing) queue(s sqe) error {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if r.closed {
		return ErrRingClosed
	}
	if len(r.sq) >= r.sqCap {
		return ErrSQFull
	}
	r.sq = append(r.sq, s)
	return nil
}

// StartIO implements ring.FileIORing: the read or write is done when the
// command is submitted, as io_uring does one that does not block, and
// completes at once.
func (r *modelRing) StartIO(e *ring.Entry, write bool, fd int, buf []byte, off int64) error {
	return r.queue(sqe{io: true, e: e, write: write, fd: fd, buf: buf, off: off})
}

// fileIO does the read or write of s and posts its completion.
func (r *modelRing) fileIO(s sqe) {
	var n int
	var err error
	if s.write {
		n, err = syscall.Pwrite(s.fd, s.buf, s.off)
	} else {
		n, err = syscall.Pread(s.fd, s.buf, s.off)
	}
	res := int32(n)
	if err != nil {
		res = -int32(err.(syscall.Errno))
	}
	r.cq.push(ring.Completion{Entry: s.e.Index, Res: res, IO: true})
	r.signal()
}

// SubmitAndWait implements ring.QueueRing: every queued command is
// processed as io_uring_enter would, task work runs, and it then blocks
// until a completion is there or Wake is called. It counts as one
// io_uring_enter however long it waits.
func (r *modelRing) SubmitAndWait() error {
	c := r.c
	c.mu.Lock()
	r.enters++
	c.mu.Unlock()
	for {
		c.mu.Lock()
		if r.closed {
			c.mu.Unlock()
			return ErrRingClosed
		}
		for i := range r.sq {
			if r.sq[i].io {
				r.fileIO(r.sq[i])
			} else {
				c.uringCmd(r, r.sq[i])
			}
			r.sq[i] = sqe{}
		}
		r.sq = r.sq[:0]
		r.runTaskWork()
		if r.cq.len() > 0 || r.woken {
			r.woken = false
			if r.forgetWork {
				r.forgetEnters++
				r.forgetWork = false
			}
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		select {
		case <-r.sig:
			continue
		default:
		}
		c.mu.Lock()
		r.sleeps++
		c.mu.Unlock()
		<-r.sig
	}
}

// Reap implements ring.QueueRing.
func (r *modelRing) Reap(dst []ring.Completion) int {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.closed {
		return 0
	}
	r.runTaskWork()
	n := 0
	for n < len(dst) && r.cq.len() > 0 {
		dst[n] = r.cq.pop()
		n++
	}
	return n
}

// Wake implements ring.QueueRing.
func (r *modelRing) Wake() error {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if r.closed {
		return ErrRingClosed
	}
	r.woken = true
	r.signal()
	return nil
}

// Close implements ring.QueueRing. As when an io_uring instance goes away,
// its parked commands are cancelled (fuse_uring_cancel): its available
// entries leave the kernel's hands, and requests waiting for its task are
// stranded (-ECANCELED) until the connection ends.
func (r *modelRing) Close() error {
	c := r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if c.ring != nil {
		for _, q := range c.ring.queues {
			if q == nil {
				continue
			}
			for _, ent := range q.ents {
				if ent.owner != r {
					continue
				}
				switch ent.state {
				case FRRS_AVAILABLE:
					q.removeAvail(ent)
					q.setState(ent, FRRS_USERSPACE)
				case FRRS_FUSE_REQ:
					q.setState(ent, FRRS_USERSPACE)
				}
				ent.owner = nil
				ent.hdr, ent.payload = nil, nil // the buffers go away with the ring
			}
		}
	}
	r.tw = nil
	r.cq.reset()
	r.sq = nil
	return nil
}

// post completes a command of r and reports whether anyone will see it.
func (r *modelRing) post(tag int, res int32) bool {
	if r == nil || r.closed {
		return false
	}
	r.cq.push(ring.Completion{Entry: tag, Res: res})
	r.signal()
	return true
}

// runTaskWork copies requests into the entries this ring's task must fill
// (fuse_uring_send_in_task).
func (r *modelRing) runTaskWork() {
	for i := 0; i < len(r.tw); i++ {
		ent := r.tw[i]
		r.tw[i] = nil
		if ent.state == FRRS_FUSE_REQ && ent.owner == r {
			r.c.deliver(ent)
		}
	}
	r.tw = r.tw[:0]
}
