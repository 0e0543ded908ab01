package server

import (
	"runtime/debug"
	"syscall"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// Worker serves requests for one thread of one channel. It holds the
// scratch state of the request in progress, so serving allocates nothing,
// and its own statistics counters.
type Worker struct {
	s       *Server
	channel string
	req     wire.Request
	// decodeErr is why the request of DecodeRing did not decode.
	decodeErr error
	ctx       reqCtx
	stats     counters

	entry ringfuse.Entry
	attr  ringfuse.AttrOut
	statx ringfuse.StatxOut
	open  ringfuse.OpenOut
	dw    dirWriter

	// forgets and forgetOne are the scratch of the FORGET and
	// BATCH_FORGET handler.
	forgets   Forgets
	forgetOne [1]wire.ForgetOne

	// handout is what the last reply hands the kernel, kept so that it
	// can be taken back if the kernel refuses the reply.
	handout Handout
}

// Handout is what one reply hands the kernel: the lookups it counted and
// the file handle it opened. A channel that learns whether the kernel took
// a reply only later (the ring, at the commit's completion) moves it out of
// the worker with [Worker.TakeHandout] and, if the kernel refused the
// reply, gives it back with [Worker.Refused].
type Handout struct {
	// counted lists the node IDs whose lookups the reply counted.
	counted []uint64
	// opened is the handle an OPEN, OPENDIR or CREATE reply carried.
	opened     uint64
	openedID   uint64 // the node ID of that open
	openedNode ringfuse.Node
	openedDir  bool
}

// Empty reports whether the reply handed out nothing.
func (h *Handout) Empty() bool { return len(h.counted) == 0 && h.openedNode == nil }

// Clear forgets h's content: the kernel took the reply, and what it
// carried is the kernel's now.
func (h *Handout) Clear() {
	h.counted = h.counted[:0]
	h.openedNode = nil
}

// Reply describes the answer to one request. The payload is in the out
// buffer given to Handle; the channel writes the fuse_out_header.
type Reply struct {
	Unique uint64
	Opcode wire.Opcode
	// Error is 0 or a negative errno; with an error, Len is 0.
	Error int32
	// Len is the number of payload bytes written to the out buffer.
	Len int
	// None is set for requests that take no reply on /dev/fuse: FORGET,
	// BATCH_FORGET, INTERRUPT and NOTIFY_REPLY, and malformed messages
	// without a unique to answer (too short, or unique 0, which in a
	// reply marks a notification). On a ring they must still be
	// committed.
	None bool
	// Init is set for the reply that ends the INIT handshake (not for
	// the answer to a newer major, after which the kernel sends INIT
	// again): call Server.InitReplied once it is written.
	Init bool
}

// OwnThread tells the worker that the goroutine calling it is locked to its
// OS thread (runtime.LockOSThread) and will never unlock it, so that
// per-thread state a filesystem leaves between requests, such as a
// caller's credentials (package creds), never reaches other goroutines: Go
// ends a thread whose goroutine exits locked. Call it before the first
// request, from that goroutine.
func (w *Worker) OwnThread() { w.ctx.owned = true }

// Channel returns the name of the channel the worker serves.
func (w *Worker) Channel() string { return w.channel }

// Request returns the request decoded by the last Handle call.
func (w *Worker) Request() *wire.Request { return &w.req }

func (w *Worker) conn() *wire.Conn {
	if c := w.s.conn.Load(); c != nil {
		return &c.wire
	}
	return nil
}

// HandleDev decodes and serves one message read from /dev/fuse; the reply
// payload goes to out.
func (w *Worker) HandleDev(msg, out []byte) Reply {
	if err := wire.ParseDev(msg, w.conn(), &w.req); err != nil {
		return w.decodeFailed(err)
	}
	return w.dispatch(out)
}

// HandleRing decodes and serves one request delivered to a ring entry: the
// entry header's in_out and op_in areas, and the used part of its payload
// buffer. The reply payload goes to out, which may be the payload buffer
// itself: every input in it is consumed before the reply is written.
func (w *Worker) HandleRing(inOut, opIn, payload, out []byte) Reply {
	w.DecodeRing(inOut, opIn, payload)
	return w.Serve(out)
}

// DecodeRing decodes a ring request as HandleRing does, for a channel that
// looks at it ([Worker.StartFileIO]) before it serves it with
// [Worker.Serve].
func (w *Worker) DecodeRing(inOut, opIn, payload []byte) {
	w.decodeErr = wire.ParseRing(inOut, opIn, payload, w.conn(), &w.req)
}

// Serve serves the request decoded by DecodeRing; the reply payload goes
// to out, as for HandleRing.
func (w *Worker) Serve(out []byte) Reply {
	if err := w.decodeErr; err != nil {
		w.decodeErr = nil
		return w.decodeFailed(err)
	}
	return w.dispatch(out)
}

func (w *Worker) decodeFailed(err error) Reply {
	h := &w.req.Header
	// This reply hands out nothing: a ReplyFailed for it must not undo
	// what the previous reply carried.
	w.handout.Clear()
	w.stats.decodeErrors.Add(1)
	w.s.log.Printf("%s: undecodable request: %v", w.channel, err)
	r := Reply{Unique: h.Unique, Opcode: h.Opcode, Error: -int32(syscall.EIO)}
	if h.Unique == 0 || h.Opcode.NoReply() {
		r.None = true
	}
	if !h.Opcode.Known() {
		w.stats.unknown.Add(1)
		r.Error = -int32(syscall.ENOSYS)
	}
	return r
}

func (w *Worker) dispatch(out []byte) (r Reply) {
	h := &w.req.Header
	op := h.Opcode
	r = Reply{Unique: h.Unique, Opcode: op, None: op.NoReply()}
	w.handout.Clear()
	if h.Unique == 0 && !r.None {
		// Unique 0 marks a notification in a reply: an answer would be
		// misread, and anything it handed out (a lookup, a handle)
		// would never reach the kernel. The kernel numbers every
		// request, so this one is malformed: serve nothing.
		w.stats.decodeErrors.Add(1)
		w.s.log.Printf("%s: %v request with unique 0 ignored", w.channel, op)
		r.None, r.Error = true, -int32(syscall.EIO)
		return r
	}
	if op >= wire.OpcodeMax || handlers[op] == nil {
		if op.Known() {
			w.stats.ops[op].Add(1) // unsupported on purpose (POLL, IOCTL...)
		} else {
			w.stats.unknown.Add(1)
		}
		if w.s.opts.Debug {
			w.s.log.Printf("%s: unique %d: unsupported opcode %v", w.channel, h.Unique, op)
		}
		r.Error = -int32(syscall.ENOSYS)
		return r
	}
	if op != wire.FUSE_FORGET && op != wire.FUSE_BATCH_FORGET {
		w.stats.ops[op].Add(1) // forgets are counted by ApplyForgets
	}
	if op == wire.FUSE_INIT {
		r.Init = true
	} else if w.s.conn.Load() == nil {
		r.Error = -int32(syscall.EIO) // the kernel sends nothing before INIT
		return r
	}
	w.ctx.begin(h.Unique, ringfuse.Caller{UID: h.UID, GID: h.GID, PID: h.PID})
	if w.s.disconnected.Load() {
		w.ctx.interrupt(h.Unique) // nobody waits for this answer any more
	}
	defer func() {
		w.ctx.end()
		if p := recover(); p != nil {
			w.s.log.Printf("%s: panic serving %v (unique %d): %v\n%s", w.channel, op, h.Unique, p, debug.Stack())
			w.undoCounted(&w.handout)
			r.Error, r.Len = -int32(syscall.EIO), 0
		}
	}()
	var n int
	var errno syscall.Errno
	if h.NodeID == pollHackID {
		n, errno = w.doPollHack(out)
	} else {
		n, errno = handlers[op](w, out)
	}
	if errno != 0 {
		w.stats.errors.Add(1)
		if errno > wire.MaxErrno {
			errno = syscall.EIO
		}
		r.Error = -int32(errno)
		n = 0
	}
	r.Len = n
	if r.Init && r.Error == 0 && w.s.conn.Load() == nil {
		// Our major in answer to a newer one: the kernel sends INIT
		// again, and only that INIT ends the handshake.
		r.Init = false
	}
	if w.s.opts.Debug {
		w.s.log.Printf("%s: unique %d %v node %d: error %d, %d bytes", w.channel, h.Unique, op, h.NodeID, r.Error, r.Len)
	}
	return r
}

// ReplyFailed tells the worker that the kernel refused its last reply
// (ENOENT: the request was interrupted or the connection went away), so
// the lookups and open handles it carried never reached the kernel.
func (w *Worker) ReplyFailed() { w.Refused(&w.handout) }

// TakeHandout moves what the last reply handed out into h, which must be
// empty or hold a handout the kernel took, and leaves the worker with none.
// The two swap their storage, so neither allocates once warm.
func (w *Worker) TakeHandout(h *Handout) {
	h.Clear()
	*h, w.handout = w.handout, *h
}

// Refused gives back what h holds, a reply the kernel refused: the
// lookups are dropped and the handle released, as if the kernel had
// forgotten and closed them. h is empty afterwards.
func (w *Worker) Refused(h *Handout) {
	w.stats.replyFailed.Add(1)
	w.undoCounted(h)
	if n := h.openedNode; n != nil {
		h.openedNode = nil
		if h.openedDir {
			if w.s.ops.releasdir != nil {
				w.s.ops.releasdir.ReleaseDir(&w.ctx, n, h.opened)
			}
		} else {
			w.s.releaseBacking(h.openedID, h.opened)
			if w.s.ops.release != nil {
				w.s.ops.release.Release(&w.ctx, n, h.opened, 0)
			}
		}
	}
}

func (w *Worker) undoCounted(h *Handout) {
	for _, id := range h.counted {
		w.s.forgetNode(id, 1)
	}
	h.counted = h.counted[:0]
}
