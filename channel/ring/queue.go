package ring

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/internal/osthread"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// queue is one FUSE queue: a goroutine locked to its OS thread, its ring,
// its entries and the worker that serves them. Everything but mu, ring (for
// Wake) and stats belongs to the queue goroutine alone.
type queue struct {
	c    *Channel
	s    *server.Server
	qid  int
	tid  int // the OS thread the queue goroutine is locked to
	conn wire.Conn
	ring QueueRing
	w    *server.Worker
	ents []Entry
	cqes []Completion

	// fio is the ring as a FileIORing if Options.FileIO is set and the
	// ring can do file I/O; ios holds each entry's read or write, and
	// ioPending counts those on the ring.
	fio       FileIORing
	ios       []server.FileIO
	ioPending int

	// forgets collects the forgets that arrived on the ring during one
	// completion batch; they are applied after the batch, once their
	// entries' empty commits are queued.
	forgets  server.Forgets
	scratch  wire.Request // forget decoding
	live     int          // entries not dead
	backoff  bool         // a REGISTER came back -EAGAIN in this batch
	parallel bool         // this batch may hand requests to the pool
	refused  bool         // a REGISTER refusal was logged
	// recent counts down the batches, after one that was parallel, in
	// which data requests still go to the pool (see parallelMemory).
	recent int

	mu     sync.Mutex // orders wake against close
	closed bool

	// The kernel sends every request of a CPU to that CPU's queue and
	// never to another, so a client that keeps many requests in flight
	// would be served one at a time. When more than one request is
	// pending, requests that may wait on I/O go to a pool of goroutines
	// (any CPU); the pool hands finished entries back through done, and
	// only the queue goroutine talks to the ring.
	async    chan *Entry
	pool     sync.WaitGroup
	inflight int // entries with the pool (queue goroutine only)
	doneMu   sync.Mutex
	done     []int
	drained  []int

	stats queueStats
}

func newQueue(c *Channel, s *server.Server, qid, depth int, conn wire.Conn) *queue {
	return &queue{
		c:    c,
		s:    s,
		qid:  qid,
		conn: conn,
		ents: make([]Entry, depth),
		cqes: make([]Completion, depth),
	}
}

// run is the queue goroutine. It reports on ready whether its ring could be
// made, waits for Start, serves until every entry is dead or Stop is
// called, and closes the ring.
func (q *queue) run(ready chan<- error) {
	defer q.c.wg.Done()
	// The kernel delivers requests in the context of the thread that
	// submitted the entry's command, and an exiting thread takes its
	// parked commands with it: keep this goroutine on one thread for its
	// whole life. It never unlocks, so the thread (and its CPU mask) ends
	// with the goroutine.
	runtime.LockOSThread()
	if !q.c.opts.NoAffinity {
		_ = q.c.host.PinThread(q.qid) // best effort: the CPU may be outside our cpuset
	}
	q.tid = gettid()
	osthread.SetName("fuse-ring")
	if q.c.opts.SchedIdle {
		if err := q.c.host.SetSchedIdle(0, true); err != nil {
			q.s.Logf("ring: queue %d: %v; staying in the normal scheduling class", q.qid, err)
		}
	}
	r, err := q.c.newRing(RingConfig{Fd: q.c.fd, Qid: q.qid, Depth: len(q.ents), Options: &q.c.opts})
	if err != nil {
		ready <- fmt.Errorf("ring: queue %d: %w", q.qid, err)
		return
	}
	q.mu.Lock()
	q.ring = r
	q.mu.Unlock()
	q.w = q.s.NewWorker("uring")
	q.w.OwnThread()
	if fio, ok := r.(FileIORing); ok && q.c.opts.FileIO {
		q.fio, q.ios = fio, make([]server.FileIO, len(q.ents))
	}
	q.startPool()
	ready <- nil

	select {
	case <-q.c.start:
		q.loop()
		q.drainIO()
	case <-q.c.stop:
	}
	// The pool writes into entries and wakes the ring: it must be gone
	// before the ring closes and the buffers are unmapped.
	close(q.async)
	q.pool.Wait()
	q.dropUncommitted()

	q.mu.Lock()
	q.closed = true
	if err := r.Close(); err != nil {
		q.s.Logf("ring: queue %d: close: %v", q.qid, err)
	}
	q.mu.Unlock()
}

// wake makes the queue goroutine look at the stop flag.
func (q *queue) wake() {
	q.mu.Lock()
	if q.ring != nil && !q.closed {
		_ = q.ring.Wake()
	}
	q.mu.Unlock()
}

func (q *queue) loop() {
	var flags uint64
	if q.c.opts.ForgetCommit {
		flags |= wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT
	}
	q.live = len(q.ents)
	for i := range q.ents {
		q.register(&q.ents[i], flags)
	}
	for q.live > 0 && !q.c.stopping.Load() {
		err := q.ring.SubmitAndWait()
		q.stats.enters.Add(1)
		if err != nil && !transient(err) {
			q.s.Logf("ring: queue %d: %v; requests from CPU %d wait until the connection ends", q.qid, err, q.qid)
			return
		}
		n := q.ring.Reap(q.cqes)
		q.stats.cqes.Add(uint64(n))
		// Parallelism is judged by the requests that arrived, not by
		// the reads and writes of earlier ones that ended.
		reqs, busy := n, q.inflight+q.ioPending
		for _, c := range q.cqes[:n] {
			if c.IO {
				reqs--
				busy--
			}
		}
		switch {
		case reqs > 1 || reqs == 1 && busy > 0:
			q.recent = parallelMemory
		case reqs == 1 && q.recent > 0:
			q.recent--
		}
		q.parallel = q.recent > 0
		for _, c := range q.cqes[:n] {
			q.complete(c, flags)
		}
		q.commitDone()
		if q.forgets.Messages() > 0 {
			q.w.ApplyForgets(&q.forgets)
		}
		if q.backoff {
			// The kernel has not processed the INIT reply yet; do
			// not spin on it.
			q.backoff = false
			time.Sleep(time.Millisecond)
		}
	}
}

func transient(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EBUSY)
}

func (q *queue) register(e *Entry, flags uint64) {
	if e.state == entryIdle {
		q.stats.registered.Add(1)
	}
	e.state = entryRegister
	if err := q.ring.Register(e, flags); err != nil {
		q.s.Logf("ring: queue %d: register entry %d: %v", q.qid, e.Index, err)
		q.stats.registered.Add(^uint64(0))
		q.stats.registerFailures.Add(1)
		q.kill(e)
	}
}

func (q *queue) commit(e *Entry, commitID uint64) {
	e.state, e.commitID = entryCommit, commitID
	if err := q.ring.Commit(e, commitID); err != nil {
		q.s.Logf("ring: queue %d: commit entry %d: %v", q.qid, e.Index, err)
		q.refuse(e)
		q.stats.stranded.Add(1)
		q.kill(e)
		return
	}
	q.stats.commits.Add(1)
}

// refuse gives back what the reply in e handed out: the kernel never
// took it.
func (q *queue) refuse(e *Entry) {
	if !e.handout.Empty() {
		q.stats.refused.Add(1)
		q.w.Refused(&e.handout)
	}
}

// kill marks e dead: the queue no longer waits for it.
func (q *queue) kill(e *Entry) {
	if e.state != entryDead {
		e.state = entryDead
		q.live--
	}
}

// complete handles one completion.
func (q *queue) complete(c Completion, flags uint64) {
	if c.Entry < 0 || c.Entry >= len(q.ents) {
		q.s.Logf("ring: queue %d: completion for unknown entry %d (res %d)", q.qid, c.Entry, c.Res)
		return
	}
	e := &q.ents[c.Entry]
	if c.IO {
		if e.state != entryIO {
			q.s.Logf("ring: queue %d: I/O completion for entry %d, which has none (res %d)", q.qid, c.Entry, c.Res)
			return
		}
		q.ioPending--
		q.finishIO(e, c.Res)
		return
	}
	if e.state != entryRegister && e.state != entryCommit {
		q.s.Logf("ring: queue %d: completion for idle entry %d (res %d)", q.qid, c.Entry, c.Res)
		return
	}
	if c.Res == 0 {
		// A new request in the entry: the kernel took the last reply.
		e.handout.Clear()
		q.serve(e)
		return
	}
	switch errno := syscall.Errno(-c.Res); errno {
	case unix.ENOTCONN, unix.ECANCELED:
		// Unmount, or the thread is going away: normal teardown. For
		// a commit this is also what a connection that ended before
		// it answers, so whether the reply arrived is unknown.
		if !e.handout.Empty() {
			q.stats.unsettled.Add(1)
			e.handout.Clear()
		}
		q.stats.dead.Add(1)
		q.kill(e)
	case unix.ECONNABORTED:
		// Sent only to commands submitted after an abort (fetches
		// the abort cancels end with -ENOTCONN): a commit's reply
		// never arrived.
		q.refuse(e)
		q.stats.dead.Add(1)
		q.kill(e)
	case unix.EAGAIN, unix.EINTR:
		q.stats.retries.Add(1)
		if e.state == entryRegister {
			if errno == unix.EAGAIN {
				q.backoff = true
			}
			q.register(e, flags)
		} else {
			q.commit(e, e.commitID)
		}
	default:
		if e.state == entryRegister {
			// A failed REGISTER makes the kernel drop the ring for
			// this connection (fc->io_uring = 0) and release the
			// requests waiting for it to /dev/fuse.
			q.stats.registered.Add(^uint64(0))
			q.stats.registerFailures.Add(1)
			if !q.refused {
				q.refused = true
				q.s.Logf("ring: queue %d: REGISTER refused: %v; serving over /dev/fuse", q.qid, errno)
			}
		} else {
			// -ENOENT: the kernel knows no request with this commit
			// id on this queue; the entry stays with it, unusable.
			q.refuse(e)
			q.stats.stranded.Add(1)
			q.s.Logf("ring: queue %d: COMMIT_AND_FETCH of entry %d (commit id %d): %v; entry stranded",
				q.qid, e.Index, e.commitID, errno)
		}
		q.kill(e)
	}
}

// serve answers the request delivered into e and queues its commit.
func (q *queue) serve(e *Entry) {
	h := e.Header
	commitID := h.RingEnt.CommitID
	psz := min(int(h.RingEnt.PayloadSz), len(e.Payload))
	in := (*wire.InHeader)(unsafe.Pointer(&h.InOut[0]))

	if op := in.Opcode; op == wire.FUSE_FORGET || op == wire.FUSE_BATCH_FORGET {
		// Commit first, process after: the entry goes back to the
		// kernel with the next submit, and the forgets are applied
		// once the whole batch has been handled.
		q.takeForgets(h, e.Payload[:psz])
		putReply(e, commitID, server.Reply{None: true})
		q.commit(e, commitID)
		return
	}

	// Reads and writes go on the ring while the client keeps several in
	// flight. A lone one is served inline below: a synchronous pread is
	// one wake-up, the ring's completion a second trip through
	// io_uring_enter (4-10% of IOPS at QD1 on ext4).
	decoded := false
	if q.fio != nil && (q.parallel || q.ioPending > 0 || q.c.opts.FileIOAlways) &&
		(in.Opcode == wire.FUSE_READ || in.Opcode == wire.FUSE_WRITE) {
		q.w.DecodeRing(h.InOut[:], h.OpIn[:], e.Payload[:psz])
		if q.startIO(e, commitID) {
			return
		}
		decoded = true
	}

	e.psz = psz
	if q.parallel && in.Opcode.MayBlock() {
		e.state, e.commitID = entryAsync, commitID
		q.inflight++
		q.stats.pooled.Add(1)
		q.async <- e
		return
	}
	if decoded {
		q.reply(q.w, e, commitID, q.w.Serve(e.Payload))
	} else {
		q.handle(q.w, e, commitID)
	}
	q.commit(e, commitID)
}

// parallelMemory is how many batches a queue keeps handing data requests
// to the pool (or, with Options.FileIO, reads and writes to its ring)
// after it last saw two requests at once. A client that keeps
// several requests in flight leaves gaps where only one is pending; served
// inline, that one would hold the queue thread through its I/O while the
// client's next requests wait unseen in the ring. A client that never has
// two requests in flight is always served inline.
const parallelMemory = 64

// poolSize bounds the goroutines per queue: as many as entries, since each
// may block, but not more than enough to keep a deep device queue busy.
const poolSize = 16

// startPool starts the goroutines that serve the requests handed off by
// this queue. Each has its own worker; an entry it gets is its own until it
// hands it back.
func (q *queue) startPool() {
	q.async = make(chan *Entry, len(q.ents))
	for range min(max(len(q.ents), 1), poolSize) {
		w := q.s.NewWorker("uring")
		q.pool.Add(1)
		go func() {
			defer q.pool.Done()
			// Locked for good, like the queue thread: a filesystem
			// may leave a caller's credentials on it (package creds).
			runtime.LockOSThread()
			w.OwnThread()
			osthread.SetName("fuse-pool")
			for e := range q.async {
				q.handle(w, e, e.commitID)
				q.doneMu.Lock()
				first := len(q.done) == 0
				q.done = append(q.done, e.Index)
				q.doneMu.Unlock()
				if first {
					// Later hand-backs ride on this wake: the
					// queue takes the whole list at once.
					_ = q.ring.Wake()
				}
			}
		}()
	}
}

// dropUncommitted gives back what the replies of entries served but
// never committed (the queue stopped first) handed out. It runs once the
// pool is gone.
func (q *queue) dropUncommitted() {
	if q.w == nil {
		return
	}
	for i := range q.ents {
		if e := &q.ents[i]; e.state == entryAsync {
			q.refuse(e)
		}
	}
}

// commitDone queues the commits of the entries the pool has finished.
func (q *queue) commitDone() {
	q.doneMu.Lock()
	q.drained, q.done = q.done, q.drained[:0]
	q.doneMu.Unlock()
	for _, i := range q.drained {
		e := &q.ents[i]
		q.inflight--
		q.commit(e, e.commitID)
	}
}

// handle serves the request in e, whose payload serve measured, with w and
// writes the reply into e.
func (q *queue) handle(w *server.Worker, e *Entry, commitID uint64) {
	h := e.Header
	q.reply(w, e, commitID, w.HandleRing(h.InOut[:], h.OpIn[:], e.Payload[:e.psz], e.Payload))
}

// reply writes rep, w's reply, into e and moves what it hands out to e.
func (q *queue) reply(w *server.Worker, e *Entry, commitID uint64, rep server.Reply) {
	putReply(e, commitID, rep)
	w.TakeHandout(&e.handout)
}

// putReply writes rep into e's header (and its length into the entry).
func putReply(e *Entry, commitID uint64, rep server.Reply) {
	h := e.Header
	out := (*wire.OutHeader)(unsafe.Pointer(&h.InOut[0]))
	n := rep.Len
	switch {
	case rep.None:
		// INTERRUPT, NOTIFY_REPLY: no reply, but the entry must be
		// committed or the kernel keeps it.
		*out = wire.OutHeader{Len: wire.SizeofOutHeader, Unique: commitID}
		n = 0
	case rep.Error != 0:
		n = 0
		*out = wire.OutHeader{Len: wire.SizeofOutHeader, Error: rep.Error, Unique: rep.Unique}
	default:
		*out = wire.OutHeader{Len: uint32(wire.SizeofOutHeader + n), Unique: rep.Unique}
	}
	h.RingEnt.PayloadSz = uint32(n)
}

// takeForgets copies the forgets of a FORGET or BATCH_FORGET delivered on
// the ring into q.forgets.
func (q *queue) takeForgets(h *wire.UringReqHeader, payload []byte) {
	r := &q.scratch
	if err := wire.ParseRing(h.InOut[:], h.OpIn[:], payload, &q.conn, r); err != nil {
		q.stats.forgetErrors.Add(1)
		q.s.Logf("ring: queue %d: undecodable forget: %v", q.qid, err)
		return
	}
	n := q.forgets.Len()
	q.forgets.Add(r)    // the server counts it when the batch is applied
	*r = wire.Request{} // drop the references into the entry
	// The queue's own view, for per-queue statistics.
	q.stats.forgetMsgs.Add(1)
	q.stats.forgets.Add(uint64(q.forgets.Len() - n))
}
