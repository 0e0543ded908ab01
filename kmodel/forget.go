package kmodel

import (
	"context"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/ringfuse/ringfuse/wire"
)

// forgetCounters count forgets over the whole connection.
type forgetCounters struct {
	queued    uint64 // forgets queued by evictions
	delivered uint64 // forgets the server received
	dropped   uint64 // forgets dropped at unmount or abort
	toRing    uint64 // forgets routed to a ring queue
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
	return c.evict(cpu, nodeid)
}

func (c *Conn) evict(cpu int, nodeid uint64) bool {
	n := c.nodes[nodeid]
	if n == nil || n.kernel == 0 || n.opens > 0 || !c.connected {
		return false
	}
	c.forget(cpu, nodeid, n.kernel)
	return true
}

// EvictAll forgets, at once and under one hold of the connection's lock,
// every node the kernel holds a lookup of and that is not open, in node ID
// order, from one task on cpu. It returns the number of forgets queued.
// [Conn.EvictStorm] is the paced form.
func (c *Conn) EvictAll(cpu int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range c.evictable() {
		if c.evict(cpu, id) {
			n++
		}
	}
	return n
}

// evictable returns the nodes an eviction storm would forget, sorted.
func (c *Conn) evictable() []uint64 {
	if !c.connected {
		return nil
	}
	ids := make([]uint64, 0, len(c.nodes))
	for id, n := range c.nodes {
		if n.kernel > 0 && n.opens == 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Eviction pacing defaults. The rate is what drop_caches reached on the
// project's machines (docs/forget-study-200k/report.md: 200,000 inodes in
// about 0.8 s, 5-7 forgets per /dev/fuse message).
const (
	DefaultEvictRate  = 250_000 // evictions per second and task
	DefaultEvictBurst = 1       // forgets per hold of the connection's lock
)

// Storm describes an eviction storm for [Conn.EvictStorm].
type Storm struct {
	// CPUs are the CPUs of the evicting tasks, one task each: one CPU for
	// drop_caches (a single task), one per NUMA node for kswapd, the
	// unlinking tasks' CPUs for an unlink storm. The nodes are dealt to
	// the tasks in node ID order, round robin. Empty means one task on
	// CPU 0. A forget goes to the ring queue of its task's CPU
	// (fuse_uring_task_to_queue); queues never steal from each other.
	CPUs []int
	// Rate is each task's evictions per second. Zero means
	// [DefaultEvictRate]; negative means no pacing (each task queues all
	// of its forgets as fast as the lock allows).
	Rate float64
	// Burst is the most forgets a task queues per hold of the
	// connection's lock. Zero means [DefaultEvictBurst].
	Burst int
}

// EvictStorm models an eviction storm: every node the kernel holds a
// lookup of and that is not open when the storm starts is forgotten by
// one of s's tasks, each a goroutine that queues its forgets at s.Rate in
// bursts of s.Burst, as the kernel's eviction does inode by inode. A node
// opened or already forgotten by the time its task reaches it is skipped.
// It returns when every task is done or ctx is done, with the number of
// forgets queued.
func (c *Conn) EvictStorm(ctx context.Context, s Storm) int {
	cpus := s.CPUs
	if len(cpus) == 0 {
		cpus = []int{0}
	}
	rate := s.Rate
	if rate == 0 {
		rate = DefaultEvictRate
	}
	burst := max(s.Burst, 0)
	if burst == 0 {
		burst = DefaultEvictBurst
	}
	c.mu.Lock()
	ids := c.evictable()
	c.mu.Unlock()
	counts := make([]int, len(cpus))
	var wg sync.WaitGroup
	for t, cpu := range cpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[t] = c.evictTask(ctx, cpu, ids, t, len(cpus), rate, burst)
		}()
	}
	wg.Wait()
	n := 0
	for _, k := range counts {
		n += k
	}
	return n
}

// evictTask is one evicting task of EvictStorm: it forgets ids[first],
// ids[first+step], ... from cpu.
func (c *Conn) evictTask(ctx context.Context, cpu int, ids []uint64, first, step int, rate float64, burst int) int {
	start := time.Now()
	n, k := 0, 0 // forgets queued, nodes handled
	for i := first; i < len(ids); {
		if rate > 0 {
			due := start.Add(time.Duration(float64(k) / rate * float64(time.Second)))
			if !waitUntil(ctx, due) {
				return n
			}
		}
		c.mu.Lock()
		for b := 0; b < burst && i < len(ids); b++ {
			if c.evict(cpu, ids[i]) {
				n++
			}
			i += step
			k++
		}
		c.mu.Unlock()
		// The kernel's spinlocks are fair and its eviction gives the
		// lock up between inodes; a Go mutex re-taken at once by a task
		// that is behind would starve the readers woken meanwhile.
		runtime.Gosched()
	}
	return n
}

// waitUntil waits for t: it sleeps when t is far enough for a timer, and
// otherwise yields, as a CPU-bound task that owns its CPU would spin. It
// reports false if ctx ended first.
func waitUntil(ctx context.Context, t time.Time) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		d := time.Until(t)
		switch {
		case d <= 0:
			return true
		case d >= 200*time.Microsecond:
			time.Sleep(d - 100*time.Microsecond)
		default:
			runtime.Gosched()
		}
	}
}

// forgetsListed reports whether forgets wait on per-queue lists (patches
// 0002-0004: any of uring_forget_batch, uring_forget_cap,
// uring_forget_threshold, uring_forget_delay_ms) rather than each taking a
// request of its own (0001, patch v3).
func (c *Conn) forgetsListed() bool {
	p := &c.cfg
	return p.UringForgetBatch || p.UringForgetCap > 0 || p.UringForgetThreshold > 0 || p.UringForgetDelay > 0
}

// sendForgetRing is fuse_uring_send_forget. It reports false when the
// forget must go to the /dev/fuse forget list instead.
func (c *Conn) sendForgetRing(cpu int, f wire.ForgetOne) bool {
	q := c.taskToQueue(cpu)
	if q == nil {
		return false
	}
	if c.forgetsListed() {
		c.queueForget(q, f)
		return true
	}
	// 0001: one FUSE_FORGET request per forget, noreply, fuse_forget_in
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

// queueForget is fuse_uring_queue_forget (0002, 0004): the forget joins
// the list of the evicting task's queue.
func (c *Conn) queueForget(q *kqueue, f wire.ForgetOne) {
	if q.stopped {
		c.fg.dropped++
		c.forgetDrained(1)
		return
	}
	q.forgets.push(f)
	if t := c.cfg.UringForgetThreshold; t > 0 && q.forgets.len() >= t {
		q.forgetDue = true
	}
	if d := c.cfg.UringForgetDelay; d > 0 && q.forgets.len() == 1 && !q.forgetDue && !q.forgetTimerSet {
		// The first forget of a list that waits starts the delay.
		q.forgetTimerSet = true
		q.forgetTimer = time.AfterFunc(d, func() { c.forgetDelayEnd(q) })
	}
	c.flushForgets(q)
}

// forgetDelayEnd is fuse_uring_forget_delay_end: the list's oldest forget
// waited uring_forget_delay_ms.
func (c *Conn) forgetDelayEnd(q *kqueue) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q.forgetTimerSet = false
	if q.stopped {
		return
	}
	if q.forgets.len() > 0 {
		q.forgetDue = true
	}
	c.flushForgets(q)
}

// forgetsDue is fuse_uring_forgets_due.
func (c *Conn) forgetsDue(q *kqueue) bool {
	return q.forgetDue || (c.cfg.UringForgetThreshold == 0 && c.cfg.UringForgetDelay == 0)
}

// forgetsNeedReq is fuse_uring_forgets_need_req: forgets wait on the list
// without a request to take them.
func (c *Conn) forgetsNeedReq(q *kqueue) bool {
	return q.forgets.len() > 0 && q.forgetReq == nil && !q.stopped && c.forgetsDue(q)
}

// forgetCapOK is fuse_uring_forgets_may_take: whether uring_forget_cap
// lets one more entry of q take forgets.
func (c *Conn) forgetCapOK(q *kqueue) bool {
	return c.cfg.UringForgetCap == 0 || q.st.held < c.cfg.UringForgetCap
}

// flushForgets is fuse_uring_flush_forgets: a request waits on q to take
// the forgets of its list, and free entries take what they may.
func (c *Conn) flushForgets(q *kqueue) {
	for {
		if !q.stopped {
			if ent, req := c.pickEnt(q, nil); ent != nil {
				q.removeAvail(ent)
				c.assign(ent, req)
				c.dispatch(ent)
				continue
			}
		}
		if !c.forgetsNeedReq(q) {
			return
		}
		q.forgetReq = &request{cpu: q.qid, qid: q.qid, channel: ChannelRing, state: reqPending}
		q.reqs.push(q.forgetReq)
	}
}

// takeForgets is fuse_uring_take_forgets: ent, which picked up its
// queue's forget request, takes as many forgets of the list as its payload
// holds (one without uring_forget_batch), oldest first, in a FUSE_FORGET
// for one and a FUSE_BATCH_FORGET for more.
func (c *Conn) takeForgets(ent *kent) *request {
	q := ent.q
	limit := 1
	if c.cfg.UringForgetBatch {
		limit = ent.payloadSz / wire.SizeofForgetOne
	}
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
	if q.forgets.len() == 0 {
		q.forgetDue = false
	}
	q.forgetReq = nil
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
