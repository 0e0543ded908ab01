package kmodel

import (
	"syscall"

	"github.com/ringfuse/ringfuse/wire"
)

// Request is one FUSE request a client system call makes, as the kernel
// builds it: the op's fixed struct (in_args[0]) and the rest of the
// in-args. Build it with the helpers ([Lookup], [Getattr], [Read], ...) or
// by hand.
type Request struct {
	Op     wire.Opcode
	NodeID uint64
	// UID, GID and PID are the caller's credentials.
	UID, GID, PID uint32
	// Arg is in_args[0], the op's fixed struct; empty for LOOKUP, UNLINK,
	// RMDIR, SYMLINK, REMOVEXATTR, READLINK and STATFS. On the ring it goes
	// to the entry's op_in area.
	Arg []byte
	// Payload is the other in-args concatenated: names with their NUL,
	// WRITE data, SETXATTR name and value. On the ring it goes to the
	// payload buffer.
	Payload []byte
	// Out, if it has room, receives the reply's payload, so that a caller
	// that reuses it does not allocate per request.
	Out []byte
}

// Reply is what the client's system call got back.
type Reply struct {
	Op     wire.Opcode
	Unique uint64
	// Channel is [ChannelDev] or [ChannelRing]: the channel the request
	// was queued on.
	Channel string
	// Queue is the ring queue the request was routed to, or -1.
	Queue int
	// Error is the errno the call returned, 0 on success.
	Error syscall.Errno
	// Out is the reply's payload (the out-args, concatenated).
	Out []byte
}

// Entry returns the fuse_entry_out of a LOOKUP, MKNOD, MKDIR, SYMLINK,
// LINK or CREATE reply, or nil.
func (r Reply) Entry() *wire.EntryOut {
	if r.Error != 0 {
		return nil
	}
	return wire.View[wire.EntryOut](r.Out)
}

// Open returns the fuse_open_out of an OPEN, OPENDIR or CREATE reply, or
// nil.
func (r Reply) Open() *wire.OpenOut {
	if r.Error != 0 {
		return nil
	}
	if r.Op == wire.FUSE_CREATE {
		if len(r.Out) < wire.SizeofEntryOut {
			return nil
		}
		return wire.View[wire.OpenOut](r.Out[wire.SizeofEntryOut:])
	}
	return wire.View[wire.OpenOut](r.Out)
}

// Attr returns the fuse_attr_out of a GETATTR or SETATTR reply, or nil.
func (r Reply) Attr() *wire.AttrOut {
	if r.Error != 0 {
		return nil
	}
	return wire.View[wire.AttrOut](r.Out)
}

// Call is a client request in flight. Its methods are safe for concurrent
// use.
type Call struct {
	c    *Conn
	r    *request
	done chan struct{}
	rep  Reply
	out  []byte
}

// Done is closed when the call has completed.
func (k *Call) Done() <-chan struct{} { return k.done }

// Wait blocks until the call completes and returns its reply; the error is
// the reply's errno, if any. As in the kernel, a request already sent to
// the server is waited for until it is answered or the connection ends.
func (k *Call) Wait() (Reply, error) {
	<-k.done
	if k.rep.Error != 0 {
		return k.rep, k.rep.Error
	}
	return k.rep, nil
}

// Unique returns the request's unique ID, 0 while it is blocked before
// being queued.
func (k *Call) Unique() uint64 {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	return k.r.h.Unique
}

// reqState is where a request is.
type reqState uint8

const (
	reqNew     reqState = iota // not queued yet
	reqPending                 // on fiq->pending or a ring queue's fuse_req_queue
	reqSent                    // in a processing table (/dev/fuse or a ring queue's fpq)
	reqDone                    // ended
)

// request is struct fuse_req.
type request struct {
	h       wire.InHeader
	msg     []byte // the request as /dev/fuse carries it; header included
	argLen  int    // size of in_args[0]
	outSize int    // sum of the out-args' sizes
	outVar  bool   // the last out-arg may be shorter (out_argvar)
	noreply bool
	cpu     int
	state   reqState
	channel string
	qid     int
	forgets []wire.ForgetOne // a forget message on the ring: what it carries
	interr  bool             // FR_INTERRUPTED
	intrQd  bool             // on fiq->interrupts
	ent     *kent
	q       *kqueue
	call    *Call
}

func newRequest(cpu int, req Request) *request {
	r := &request{cpu: cpu, qid: -1}
	r.h = wire.InHeader{Opcode: req.Op, NodeID: req.NodeID, UID: req.UID, GID: req.GID, PID: req.PID}
	r.msg = wire.AppendRequest(make([]byte, 0, wire.SizeofInHeader+len(req.Arg)+len(req.Payload)), r.h, req.Arg, req.Payload)
	r.h.Len = uint32(len(r.msg))
	r.argLen = len(req.Arg)
	r.outSize, r.outVar = wire.ReplySize(req.Op, req.Arg)
	r.noreply = req.Op.NoReply()
	return r
}

// setUnique assigns the request's unique ID (fuse_request_assign_unique).
func (c *Conn) setUnique(r *request) {
	r.h.Unique = c.nextUnique()
	wire.View[wire.InHeader](r.msg).Unique = r.h.Unique
}

// Start issues req as a client running on cpu and returns at once. The
// request blocks (as in fuse_get_req) until INIT has been processed and,
// if the server accepted FUSE_OVER_IO_URING, until the ring is ready; it
// then goes to the ring queue of cpu once the ring is ready, else to
// /dev/fuse. After the connection ended the call fails with ENOTCONN.
func (c *Conn) Start(cpu int, req Request) *Call {
	k := &Call{c: c, done: make(chan struct{}), out: req.Out}
	r := newRequest(cpu, req)
	r.call = k
	k.r = r
	k.rep = Reply{Op: req.Op, Queue: -1}
	if req.Op == wire.FUSE_INIT || req.Op == wire.FUSE_FORGET || req.Op == wire.FUSE_BATCH_FORGET || req.Op == wire.FUSE_INTERRUPT {
		// The kernel makes these itself; use Forget and Interrupt.
		k.rep.Error = syscall.EINVAL
		close(k.done)
		return k
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.Op == wire.FUSE_RELEASE || req.Op == wire.FUSE_RELEASEDIR {
		if n := c.nodes[req.NodeID]; n != nil && n.opens > 0 {
			n.opens--
		}
	}
	c.admit(r)
	return k
}

// admit is fuse_get_req followed by fuse_send_one: the request fails if
// the connection is gone, waits while fuse_block_alloc holds, and is sent
// otherwise.
func (c *Conn) admit(r *request) {
	switch {
	case !c.connected:
		c.fail(r, syscall.ENOTCONN)
	case c.connError:
		c.fail(r, syscall.ECONNREFUSED)
	case c.blocked():
		c.blockedReqs.push(r)
	default:
		c.send(r)
	}
}

// unblock re-admits the requests waiting in fuse_get_req, after INIT, the
// ring becoming ready, a failed REGISTER or the end of the connection.
func (c *Conn) unblock() {
	if c.blocked() && c.connected {
		return
	}
	for c.blockedReqs.len() > 0 {
		c.admit(c.blockedReqs.pop())
	}
}

// Do issues req as a client running on cpu and waits for the reply; see
// [Conn.Start] and [Call.Wait].
func (c *Conn) Do(cpu int, req Request) (Reply, error) {
	return c.Start(cpu, req).Wait()
}

// blocked is fuse_block_alloc for a non-background, non-forced request.
func (c *Conn) blocked() bool {
	return !c.initialized || (c.ioUring && c.connected && !c.ringReady())
}

func (c *Conn) ringReady() bool { return c.ring != nil && c.ring.ready }

// send is fuse_send_one: fiq->ops->send_req.
func (c *Conn) send(r *request) {
	if c.ringReady() {
		c.queueRing(r)
		return
	}
	c.queueDev(r)
}

// queueDev is fuse_dev_queue_req.
func (c *Conn) queueDev(r *request) {
	c.setUnique(r)
	r.channel = ChannelDev
	r.state = reqPending
	c.pending.push(r)
	c.readCond.Signal()
}

// fail ends a request that never got queued.
func (c *Conn) fail(r *request, errno syscall.Errno) {
	c.end(r, -int32(errno), nil)
}

// end is fuse_request_end: the client sees errno (0 or negative) and, on
// success, payload. The model's node accounting follows the reply.
func (c *Conn) end(r *request, errno int32, payload []byte) {
	if r.state == reqDone {
		return
	}
	r.state = reqDone
	if errno == 0 {
		c.account(r, payload)
	}
	k := r.call
	if k == nil {
		return
	}
	k.rep.Unique = r.h.Unique
	k.rep.Channel = r.channel
	k.rep.Queue = r.qid
	if errno != 0 {
		k.rep.Error = syscall.Errno(-errno)
	} else if len(payload) > 0 {
		if cap(k.out) >= len(payload) {
			k.rep.Out = k.out[:len(payload)]
		} else {
			k.rep.Out = make([]byte, len(payload))
		}
		copy(k.rep.Out, payload)
	}
	close(k.done)
}

// account updates the node table after a successful reply: every entry
// reply (and READDIRPLUS entry) the kernel accepts is one more lookup, and
// an open handle pins its inode.
func (c *Conn) account(r *request, out []byte) {
	switch op := r.h.Opcode; op {
	case wire.FUSE_OPEN, wire.FUSE_OPENDIR:
		if r.h.NodeID != wire.FUSE_ROOT_ID {
			c.node(r.h.NodeID).opens++
		}
	default:
		eachLookup(op, out, func(id uint64) {
			c.lookedUp(id)
			if op == wire.FUSE_CREATE {
				c.node(id).opens++
			}
		})
	}
}

// eachLookup calls f with the node ID of every lookup a successful reply
// of op with payload out counts (none for a negative entry, ".", "..", or
// the root, which is never forgotten).
func eachLookup(op wire.Opcode, out []byte, f func(id uint64)) {
	switch op {
	case wire.FUSE_LOOKUP, wire.FUSE_MKNOD, wire.FUSE_MKDIR, wire.FUSE_SYMLINK, wire.FUSE_LINK, wire.FUSE_CREATE:
		if eo := wire.View[wire.EntryOut](out); eo != nil && eo.NodeID != 0 && eo.NodeID != wire.FUSE_ROOT_ID {
			f(eo.NodeID)
		}
	case wire.FUSE_READDIRPLUS:
		for len(out) >= wire.SizeofDirentplus {
			dp := wire.View[wire.Direntplus](out)
			nl := int(dp.Dirent.Namelen)
			size := wire.DirentplusSize(nl)
			if size > len(out) {
				return
			}
			name := out[wire.SizeofDirentplus : wire.SizeofDirentplus+nl]
			dot := string(name) == "." || string(name) == ".."
			if dp.Entry.NodeID != 0 && dp.Entry.NodeID != wire.FUSE_ROOT_ID && !dot {
				f(dp.Entry.NodeID)
			}
			out = out[size:]
		}
	}
}

func (c *Conn) lookedUp(id uint64) {
	n := c.node(id)
	n.kernel++
	n.server++
}

// Interrupt models a signal to the client waiting for k: as
// queue_interrupt, an INTERRUPT for the request goes to /dev/fuse at once
// if the request has been sent, or as soon as it is. The request goes on;
// only the server's answer ends it.
func (c *Conn) Interrupt(k *Call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := k.r
	if r.state == reqDone || r.interr {
		return
	}
	r.interr = true
	if r.state == reqSent {
		c.queueInterrupt(r)
	}
}

// queueInterrupt puts r on fiq->interrupts.
func (c *Conn) queueInterrupt(r *request) {
	if c.noInterrupt || r.intrQd || r.state != reqSent {
		return
	}
	r.intrQd = true
	c.interrupts.push(r)
	c.readCond.Signal()
}
