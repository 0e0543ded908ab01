package kmodel

import (
	"sort"
	"time"

	"ringfuse/wire"
)

// forgetCounters count forgets over the whole connection.
type forgetCounters struct {
	queued    uint64 // forgets queued by evictions
	delivered uint64 // forgets the server received
	dropped   uint64 // forgets dropped at unmount or abort
	toRing    uint64 // forgets routed to a ring queue
	spilled   uint64 // forgets sent to /dev/fuse by ForgetEntryCap
}

// Forget models the eviction of an inode by a task running on cpu: nlookup
// lookups of nodeid are forgotten (fuse_queue_forget). The forget goes to
// the /dev/fuse forget list, or, on a Patched kernel whose server opted in
// once the ring is ready, to the ring queue of cpu. After the connection
// ended it is dropped, as the kernel does.
func (c *Conn) Forget(cpu int, nodeid, nlookup uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forget(cpu, nodeid, nlookup)
}

func (c *Conn) forget(cpu int, nodeid, nlookup uint64) {
	if !c.connected {
		return
	}
	if n := c.nodes[nodeid]; n != nil {
		n.kernel -= min(n.kernel, nlookup)
	}
	f := wire.ForgetOne{NodeID: nodeid, Nlookup: nlookup}
	c.fg.queued++
	c.outstanding++
	if c.cfg.Patched && c.ringReady() && c.ring.forgetCommit && c.sendForgetRing(cpu, f) {
		c.fg.toRing++
		return
	}
	c.forgets.push(f)
	c.readCond.Signal()
}

// Evict forgets every lookup of nodeid the kernel holds, from a task on
// cpu, unless the node is open or holds no lookup. It reports whether a
// forget was queued.
func (c *Conn) Evict(cpu int, nodeid uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[nodeid]
	if n == nil || n.kernel == 0 || n.opens > 0 || !c.connected {
		return false
	}
	c.forget(cpu, nodeid, n.kernel)
	return true
}

// EvictAll models drop_caches: every node the kernel holds a lookup of
// and that is not open is forgotten, in node ID order. cpu picks the CPU
// the eviction of each node runs on; nil means spreading them over the
// queues by node ID. It returns the number of forgets queued.
func (c *Conn) EvictAll(cpu func(nodeid uint64) int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.connected {
		return 0
	}
	ids := make([]uint64, 0, len(c.nodes))
	for id, n := range c.nodes {
		if n.kernel > 0 && n.opens == 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		k := int(id % uint64(c.cfg.NrQueues))
		if cpu != nil {
			k = cpu(id)
		}
		c.forget(k, id, c.nodes[id].kernel)
	}
	return len(ids)
}

// forgetCapOK reports whether ForgetEntryCap lets one more entry of q
// take forgets.
func (c *Conn) forgetCapOK(q *kqueue) bool {
	return c.cfg.ForgetEntryCap == 0 || q.st.held < c.cfg.ForgetEntryCap
}

// sendForgetRing is the patch's fuse_io_uring_send_forget, with the
// model's policies. It reports false when the forget must go to the
// /dev/fuse forget list instead.
func (c *Conn) sendForgetRing(cpu int, f wire.ForgetOne) bool {
	q := c.taskToQueue(cpu)
	if q == nil {
		return false
	}
	if c.cfg.ForgetBatchOnRing > 0 {
		if q.stopped {
			c.fg.dropped++
			c.forgetDrained(1)
			return true
		}
		q.forgets.push(f)
		if c.forgetCapOK(q) {
			if ent := q.popAvail(); ent != nil {
				c.assign(ent, c.forgetMsg(q))
				c.dispatch(ent)
			}
		}
		return true
	}
	if cp := c.cfg.ForgetEntryCap; cp > 0 && q.st.held+q.forgetQueued >= cp {
		c.fg.spilled++
		return false
	}
	// One FUSE_FORGET request per forget: force, noreply, fuse_forget_in
	// as in_args[0].
	in := wire.ForgetIn{Nlookup: f.Nlookup}
	req := newRequest(cpu, Request{Op: wire.FUSE_FORGET, NodeID: f.NodeID, Arg: wire.AsBytes(&in)})
	req.forgets = []wire.ForgetOne{f}
	if q.stopped {
		// fuse_uring_queue_fuse_req ends it with -ENOTCONN: the forget is lost.
		c.fg.dropped++
		c.forgetDrained(1)
		return true
	}
	c.queueRing(req)
	return true
}

// forgetMsg builds the next forget message of q's forget list: a
// FUSE_FORGET for a single forget, else a FUSE_BATCH_FORGET of up to
// ForgetBatchOnRing forgets (bounded by the payload buffer).
func (c *Conn) forgetMsg(q *kqueue) *request {
	limit := min(c.cfg.ForgetBatchOnRing, c.ring.maxPayload/wire.SizeofForgetOne)
	n := min(max(1, limit), q.forgets.len())
	var req *request
	if n == 1 {
		f := q.forgets.pop()
		in := wire.ForgetIn{Nlookup: f.Nlookup}
		req = newRequest(q.qid, Request{Op: wire.FUSE_FORGET, NodeID: f.NodeID, Arg: wire.AsBytes(&in)})
		req.forgets = []wire.ForgetOne{f}
	} else {
		ones := make([]wire.ForgetOne, n)
		for i := range ones {
			ones[i] = q.forgets.pop()
		}
		in := wire.BatchForgetIn{Count: uint32(n)}
		payload := make([]byte, 0, n*wire.SizeofForgetOne)
		for i := range ones {
			payload = append(payload, wire.AsBytes(&ones[i])...)
		}
		req = newRequest(q.qid, Request{Op: wire.FUSE_BATCH_FORGET, Arg: wire.AsBytes(&in), Payload: payload})
		req.forgets = ones
	}
	c.setUnique(req)
	req.channel, req.qid = ChannelRing, q.qid
	return req
}

// holdForget changes the number of q's entries holding forgets by d,
// integrating it over time.
func (q *kqueue) holdForget(d int) {
	now := time.Now()
	s := &q.st
	s.heldArea += float64(s.held) * now.Sub(s.last).Seconds()
	s.last = now
	s.held += d
	s.heldMax = max(s.heldMax, s.held)
}
