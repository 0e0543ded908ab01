package kmodel

import (
	"fmt"
	"syscall"
	"time"

	"github.com/ringfuse/ringfuse/wire"
)

// EntryState is the state of a ring entry, as enum fuse_ring_req_state in
// fs/fuse/dev_uring_i.h.
type EntryState uint8

// Entry states.
const (
	FRRS_INVALID   EntryState = 0
	FRRS_COMMIT    EntryState = 1 // a commit is being processed
	FRRS_AVAILABLE EntryState = 2 // its command is parked, waiting for a request
	FRRS_FUSE_REQ  EntryState = 3 // a request is assigned, not yet copied
	FRRS_USERSPACE EntryState = 4 // the server has it
	FRRS_TEARDOWN  EntryState = 5
	FRRS_RELEASED  EntryState = 6
	numStates                 = 7
)

var stateNames = [numStates]string{"INVALID", "COMMIT", "AVAILABLE", "FUSE_REQ", "USERSPACE", "TEARDOWN", "RELEASED"}

func (s EntryState) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("EntryState(%d)", uint8(s))
}

// kring is struct fuse_ring.
type kring struct {
	nrQueues     int
	maxPayload   int
	queues       []*kqueue
	ready        bool
	forgetCommit bool // the patch's ring->forget_ring_commit
}

// kqueue is struct fuse_ring_queue.
type kqueue struct {
	qid        int
	maxPayload int // the ring's max_payload_sz
	ents       []*kent
	avail      []*kent // ent_avail_queue; the kernel list_move()s to the head and takes the first: LIFO
	reqs       fifo[*request]
	fpq        map[uint64]*request
	stopped    bool
	// lost holds, by commit id, the requests the server was serving when
	// the ring was torn down, so that the commits that come too late
	// can be told apart in the accounting (see UnsettledLookups).
	lost map[uint64]*request

	// The series' per-queue forget list (patches 0002-0004).
	forgets        fifo[wire.ForgetOne] // forget_head: forgets waiting for an entry
	forgetReq      *request             // forget_req: waits in reqs to take them
	forgetDue      bool                 // forget_due: threshold reached or delay over
	forgetTimer    *time.Timer          // forget_work
	forgetTimerSet bool                 // forget_work is pending

	// Entries registered with a payload buffer below max_payload_sz
	// (uring_small_ents, 0006) and with a full-sized one.
	nrSmall, nrLarge int

	st queueCounters
}

// kent is struct fuse_ring_ent.
type kent struct {
	q       *kqueue
	hdr     *wire.UringReqHeader
	payload []byte
	// payloadSz is min(len(payload), max_payload_sz): what a request
	// copied into the entry may use.
	payloadSz int
	state     EntryState
	owner     *modelRing // ring whose command the entry holds (the task that copies)
	tag       int        // that command's entry index, reported in its completion
	req       *request
}

// uringCmd is fuse_uring_cmd for one command submitted on r.
func (c *Conn) uringCmd(r *modelRing, s sqe) {
	tag := -1
	if s.e != nil {
		tag = s.e.Index
	}
	res := c.uringCmdRes(r, s, tag)
	if res != cmdParked && r.post(tag, res) {
		if c.ring != nil && int(s.qid) < len(c.ring.queues) && c.ring.queues[s.qid] != nil {
			c.ring.queues[s.qid].st.cqes++
		}
	}
}

// cmdParked: the command stays with the kernel (or its completion has been
// posted already).
const cmdParked = 1

func (c *Conn) uringCmdRes(r *modelRing, s sqe, tag int) int32 {
	switch {
	case !c.uringEnabled() && !c.ioUring:
		return -int32(syscall.EOPNOTSUPP)
	case c.aborted:
		return -int32(syscall.ECONNABORTED)
	case !c.connected:
		if s.op == wire.FUSE_IO_URING_CMD_COMMIT_AND_FETCH {
			c.lateCommit(s)
		}
		return -int32(syscall.ENOTCONN)
	case !c.initialized:
		return -int32(syscall.EAGAIN)
	}
	switch s.op {
	case wire.FUSE_IO_URING_CMD_REGISTER:
		if res := c.register(r, s, tag); res != 0 {
			// Any failed REGISTER drops the ring for the connection
			// and releases the requests waiting for it.
			c.ioUring = false
			c.unblock()
			return res
		}
		return cmdParked
	case wire.FUSE_IO_URING_CMD_COMMIT_AND_FETCH:
		return c.commitFetch(r, s, tag)
	}
	return -int32(syscall.EINVAL)
}

// register is fuse_uring_register.
func (c *Conn) register(r *modelRing, s sqe, tag int) int32 {
	if c.ring == nil {
		c.ring = &kring{
			nrQueues:   c.cfg.NrQueues,
			maxPayload: c.maxPayload(),
			queues:     make([]*kqueue, c.cfg.NrQueues),
		}
	}
	kr := c.ring
	qid := int(s.qid)
	if qid >= kr.nrQueues {
		return -int32(syscall.EINVAL)
	}
	q := kr.queues[qid]
	if q == nil {
		q = &kqueue{qid: qid, fpq: make(map[uint64]*request), maxPayload: kr.maxPayload}
		q.st.since = time.Now()
		q.st.last = q.st.since
		kr.queues[qid] = q
	}
	if e := c.faults.RefuseRegister; e != 0 {
		return -int32(e)
	}
	if s.e == nil || s.e.Header == nil {
		return -int32(syscall.EFAULT)
	}
	psz := len(s.e.Payload)
	if psz < kr.maxPayload && (!c.smallEnts() || psz < wire.FUSE_MIN_READ_BUFFER) {
		return -int32(syscall.EINVAL)
	}
	ent := &kent{q: q, hdr: s.e.Header, payload: s.e.Payload, payloadSz: min(psz, kr.maxPayload), owner: r, tag: tag}
	if ent.small() {
		q.nrSmall++
	} else {
		q.nrLarge++
	}
	if c.cfg.Patched && s.flags&wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT != 0 {
		kr.forgetCommit = true
	}
	q.ents = append(q.ents, ent)
	q.st.states[FRRS_INVALID]++
	q.makeAvail(ent)
	if !kr.ready && c.isRingReady(qid) {
		kr.ready = true
		close(c.readyCh)
		c.unblock()
	}
	return 0
}

// isRingReady is is_ring_ready: every queue has an available entry, and
// an entry that any request fits (0006).
func (c *Conn) isRingReady(current int) bool {
	for qid, q := range c.ring.queues {
		if q == nil || q.nrLarge == 0 {
			return false
		}
		if qid != current && len(q.avail) == 0 {
			return false
		}
	}
	return true
}

// lateCommit notes the lookups in the reply of a commit that arrives after
// the connection ended for a request the server was serving then. The
// kernel refuses it with -ENOTCONN, the errno it also gives the cancelled
// fetch of a commit it took, so the server cannot tell that this reply
// never arrived.
func (c *Conn) lateCommit(s sqe) {
	if c.ring == nil || int(s.qid) >= len(c.ring.queues) || s.e == nil || s.e.Header == nil {
		return
	}
	q := c.ring.queues[s.qid]
	if q == nil {
		return
	}
	req := q.lost[s.commitID]
	if req == nil {
		return
	}
	delete(q.lost, s.commitID)
	oh := *wire.View[wire.OutHeader](s.e.Header.InOut[:])
	psz := int(s.e.Header.RingEnt.PayloadSz)
	if oh.Error != 0 || oh.Unique != req.h.Unique || psz > len(s.e.Payload) || !outArgsFit(req, psz) {
		return
	}
	eachLookup(req.h.Opcode, s.e.Payload[:psz], func(id uint64) { c.node(id).unsettled++ })
}

// commitFetch is fuse_uring_commit_fetch.
func (c *Conn) commitFetch(r *modelRing, s sqe, tag int) int32 {
	kr := c.ring
	if kr == nil {
		return -int32(syscall.ENOTCONN)
	}
	if int(s.qid) >= kr.nrQueues {
		return -int32(syscall.EINVAL)
	}
	q := kr.queues[s.qid]
	if q == nil || !c.connected || q.stopped {
		return -int32(syscall.ENOTCONN)
	}
	req := q.fpq[s.commitID]
	if req == nil {
		q.st.commitErrors++
		return -int32(syscall.ENOENT)
	}
	delete(q.fpq, s.commitID)
	ent := req.ent
	if ent.hdr == nil {
		// The ring that registered the entry is gone, and its buffers
		// with it.
		q.st.commitErrors++
		c.endRing(ent, -int32(syscall.EFAULT), nil)
		return -int32(syscall.EFAULT)
	}
	if ent.state != FRRS_USERSPACE {
		q.st.commitErrors++
		c.endRing(ent, -int32(syscall.EIO), nil)
		return -int32(syscall.EIO)
	}
	q.setState(ent, FRRS_COMMIT)
	ent.owner, ent.tag = r, tag
	q.st.commits++
	if req.forgets != nil {
		r.forgetWork = true
	}
	c.uringCommit(ent, req)
	c.nextRequest(ent)
	return cmdParked
}

// uringCommit is fuse_uring_commit: it validates the reply in ent's
// buffers and ends the request with it. Errors go to the client, never to
// the command.
func (c *Conn) uringCommit(ent *kent, req *request) {
	q := ent.q
	oh := *wire.View[wire.OutHeader](ent.hdr.InOut[:])
	var errno int32
	var payload []byte
	switch {
	case oh.Unique == 0:
		errno = -int32(syscall.EINVAL) // notifications are not supported on the ring
	case oh.Error <= -512 || oh.Error > 0:
		errno = -int32(syscall.EINVAL)
	case oh.Error != 0:
		errno = oh.Error
	case oh.Unique&^1 != req.h.Unique:
		errno = -int32(syscall.ENOENT)
	default:
		psz := int(ent.hdr.RingEnt.PayloadSz)
		if psz > len(ent.payload) || !outArgsFit(req, psz) {
			errno = -int32(syscall.EINVAL)
		} else {
			payload = ent.payload[:psz]
		}
	}
	if req.forgets != nil {
		q.st.forgetCommits++
		if oh.Error != 0 || oh.Unique != req.h.Unique || ent.hdr.RingEnt.PayloadSz != 0 {
			q.st.forgetBadCommits++
		}
		errno, payload = 0, nil // noreply: the result is ignored
	} else if errno != 0 && (oh.Error == 0 || errno != oh.Error) {
		q.st.replyErrors++
	}
	c.endRing(ent, errno, payload)
}

// endRing ends the request ent holds, detaching it.
func (c *Conn) endRing(ent *kent, errno int32, payload []byte) {
	req := ent.req
	if req == nil {
		return
	}
	q := ent.q
	ent.req, req.ent = nil, nil
	delete(q.fpq, req.h.Unique)
	if req.forgets != nil {
		q.holdForget(-1)
		c.forgetDrained(len(req.forgets))
	}
	c.end(req, errno, payload)
}

// nextRequest is fuse_uring_get_next_fuse_req: ent becomes available and,
// if a request waits on its queue, takes it at once; the copy happens now,
// in the committing task. Forgets left on the queue's list get another
// request, and free entries take what waits (fuse_uring_flush_forgets).
func (c *Conn) nextRequest(ent *kent) {
	q := ent.q
	q.makeAvail(ent)
	req := c.nextReq(ent)
	if req != nil {
		q.removeAvail(ent)
		c.assign(ent, req)
	}
	// Forgets left need another request, or requests wait while entries
	// are free: held back by the cap, or too large for them.
	if c.forgetsNeedReq(q) || (q.reqs.len() > 0 && len(q.avail) > 0) {
		c.flushForgets(q)
	}
	if req != nil {
		c.deliver(ent)
	}
}

// fitScan is FUSE_URING_FIT_SCAN: the queued requests a free entry looks
// at for one that fits it.
const fitScan = 16

// nextReq is fuse_uring_next_req (0003, 0006): it takes the oldest queued
// request that fits ent, among the first fitScan; the forget request lets
// the ones behind it pass while forgets hold as many entries as
// uring_forget_cap allows. Without small entries every request fits.
func (c *Conn) nextReq(ent *kent) *request {
	q := ent.q
	scan := fitScan
	for i := 0; i < q.reqs.len(); i++ {
		req := q.reqs.at(i)
		if req == q.forgetReq && !c.forgetCapOK(q) {
			continue
		}
		if c.fits(ent, req) {
			return q.reqs.removeAt(i)
		}
		if scan--; scan == 0 {
			break
		}
	}
	return nil
}

// smallEnts is uring_small_ents, a parameter of the Patched kernel.
func (c *Conn) smallEnts() bool { return c.cfg.Patched && c.cfg.UringSmallEnts }

// small is fuse_uring_ent_is_small.
func (ent *kent) small() bool { return ent.payloadSz < ent.q.maxPayload }

// fits is fuse_uring_ent_fits: with entries of several sizes on the
// queue, forgets go only to small entries and other requests to entries
// whose payload holds their arguments and their reply.
func (c *Conn) fits(ent *kent, req *request) bool {
	if ent.q.nrSmall == 0 {
		return true
	}
	if req == ent.q.forgetReq || req.forgets != nil {
		return ent.small()
	}
	in := len(req.msg) - wire.SizeofInHeader - req.argLen
	return max(in, req.outSize) <= ent.payloadSz
}

// pickEnt is fuse_uring_pick_ent: a free entry that fits req, small ones
// first, most recently freed first; with req nil, a free entry and the
// queued request it takes. The entry stays on the avail list.
func (c *Conn) pickEnt(q *kqueue, req *request) (*kent, *request) {
	first := 1
	if q.nrSmall > 0 {
		first = 0
	}
	for pass := first; pass < 2; pass++ {
		for i := len(q.avail) - 1; i >= 0; i-- {
			ent := q.avail[i]
			if pass == 0 && !ent.small() {
				continue
			}
			if req != nil {
				if c.fits(ent, req) {
					return ent, req
				}
				continue
			}
			if r := c.nextReq(ent); r != nil {
				return ent, r
			}
		}
	}
	return nil, nil
}

// assign is fuse_uring_add_req_to_ring_ent: the request is filed in the
// queue's processing table at once. The queue's forget request takes its
// forgets now (fuse_uring_take_forgets).
func (c *Conn) assign(ent *kent, req *request) {
	q := ent.q
	if req == q.forgetReq {
		req = c.takeForgets(ent)
	}
	ent.req, req.ent = req, ent
	q.setState(ent, FRRS_FUSE_REQ)
	req.state = reqSent
	q.fpq[req.h.Unique] = req
	if req.forgets != nil {
		q.holdForget(+1)
	}
}

// dispatch hands ent, which now holds a request, to the task that must copy
// it (fuse_uring_dispatch_ent).
func (c *Conn) dispatch(ent *kent) {
	r := ent.owner
	r.tw = append(r.tw, ent)
	r.signal()
}

// deliver is fuse_uring_prepare_send + fuse_uring_send: the request is
// copied into ent's buffers and the entry's command completes with 0.
func (c *Conn) deliver(ent *kent) {
	q := ent.q
	req := ent.req
	if req == nil || req.state == reqDone {
		// Ended while waiting for the copy: take the next one.
		ent.req = nil
		c.nextRequest(ent)
		return
	}
	h := ent.hdr
	body := req.msg[wire.SizeofInHeader:]
	arg, payload := body[:req.argLen], body[req.argLen:]
	if len(payload) > ent.payloadSz {
		c.endRing(ent, -int32(syscall.EIO), nil)
		c.nextRequest(ent)
		return
	}
	in := req.h
	psz := copy(ent.payload, payload)
	copy(h.OpIn[:], arg) // the rest of op_in is not cleared
	if t := c.faults.Truncate; t != nil && req.forgets == nil {
		if k := t(in.Opcode, in.Unique); k > 0 {
			if psz >= k {
				psz -= k
			} else {
				in.Len += uint32(k)
			}
		}
	}
	h.RingEnt = wire.UringEntInOut{CommitID: req.h.Unique, PayloadSz: uint32(psz)}
	*wire.View[wire.InHeader](h.InOut[:]) = in // written last
	q.setState(ent, FRRS_USERSPACE)
	q.st.requests++
	if ent.owner.post(ent.tag, 0) {
		q.st.cqes++
	}
	if req.forgets != nil {
		ent.owner.forgetWork = true
		q.st.forgetMsgs++
		q.st.forgets += uint64(len(req.forgets))
		for _, f := range req.forgets {
			c.forgetsDelivered(f)
		}
	}
	if req.interr {
		c.queueInterrupt(req)
	}
}

// taskToQueue is fuse_uring_task_to_queue: the queue of the client's CPU.
func (c *Conn) taskToQueue(cpu int) *kqueue {
	kr := c.ring
	if cpu < 0 || cpu >= kr.nrQueues {
		cpu = 0 // the kernel WARNs and uses queue 0
	}
	return kr.queues[cpu]
}

// queueRing is fuse_uring_queue_fuse_req.
func (c *Conn) queueRing(req *request) {
	q := c.taskToQueue(req.cpu)
	if q == nil {
		c.fail(req, syscall.EINVAL)
		return
	}
	c.setUnique(req)
	req.channel, req.qid = ChannelRing, q.qid
	if q.stopped {
		c.fail(req, syscall.ENOTCONN)
		return
	}
	if ent, _ := c.pickEnt(q, req); ent != nil {
		q.removeAvail(ent)
		c.assign(ent, req)
		c.dispatch(ent)
		return
	}
	req.state = reqPending
	q.reqs.push(req)
}

// ringTeardown is fuse_uring_abort: queued requests end, entries the
// server holds lose their requests, and parked commands complete with
// -ENOTCONN. Entries in transient states are torn down at once.
func (c *Conn) ringTeardown() {
	for _, q := range c.ring.queues {
		if q == nil {
			continue
		}
		q.stopped = true
		if q.forgetTimer != nil {
			q.forgetTimer.Stop()
			q.forgetTimerSet = false
		}
		for q.reqs.len() > 0 {
			req := q.reqs.pop()
			if req == q.forgetReq {
				continue // its forgets are on the list, dropped below
			}
			if req.forgets != nil {
				c.fg.dropped += uint64(len(req.forgets))
				c.forgetDrained(len(req.forgets))
			}
			c.end(req, -int32(syscall.ECONNABORTED), nil)
		}
		q.forgetReq = nil
		c.fg.dropped += uint64(q.forgets.len())
		c.forgetDrained(q.forgets.len())
		q.forgets.reset()
		for _, ent := range q.ents {
			switch ent.state {
			case FRRS_AVAILABLE, FRRS_FUSE_REQ:
				if ent.req != nil && ent.req.forgets != nil {
					c.fg.dropped += uint64(len(ent.req.forgets)) // never copied
				}
				c.endRing(ent, -int32(syscall.ECONNABORTED), nil)
				if ent.owner.post(ent.tag, -int32(syscall.ENOTCONN)) {
					q.st.cqes++
				}
			case FRRS_USERSPACE, FRRS_COMMIT:
				if req := ent.req; req != nil && req.forgets == nil {
					if q.lost == nil {
						q.lost = make(map[uint64]*request)
					}
					q.lost[req.h.Unique] = req
				}
				c.endRing(ent, -int32(syscall.ECONNABORTED), nil)
			default:
				continue
			}
			q.setState(ent, FRRS_RELEASED)
			ent.owner = nil
		}
		q.avail = q.avail[:0]
		for _, req := range q.fpq {
			if req.ent != nil {
				c.endRing(req.ent, -int32(syscall.ECONNABORTED), nil)
			} else {
				c.end(req, -int32(syscall.ECONNABORTED), nil)
			}
		}
		clear(q.fpq)
	}
}

// makeAvail is fuse_uring_ent_avail.
func (q *kqueue) makeAvail(ent *kent) {
	q.setState(ent, FRRS_AVAILABLE)
	q.avail = append(q.avail, ent)
}

func (q *kqueue) removeAvail(ent *kent) {
	for i, e := range q.avail {
		if e == ent {
			q.avail = append(q.avail[:i], q.avail[i+1:]...)
			return
		}
	}
}

func (q *kqueue) setState(ent *kent, s EntryState) {
	q.st.states[ent.state]--
	ent.state = s
	q.st.states[s]++
}
