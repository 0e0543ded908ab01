//go:build linux

package ring

import (
	"bytes"
	"errors"
	"log"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"ringfuse/fs/hello"
	"ringfuse/server"
	"ringfuse/wire"
)

// This file drives the queue loop through a minimal in-test stand-in for the
// kernel side of a queue (fakeRing), so that paths the test kernel cannot
// produce — forgets delivered on the ring (the 7.46 patch), refused
// REGISTERs, lost commits — run deterministically and without a mount.

// fakeRing implements QueueRing in memory. An entry is available for a
// request once its REGISTER or COMMIT_AND_FETCH has been submitted.
type fakeRing struct {
	qid  int
	mu   sync.Mutex
	cond sync.Cond

	ents     []*Entry
	queued   []fakeCmd
	avail    []int
	pending  []Completion
	commits  []commitRec
	regs     int
	regFlags uint64
	woken    bool
	closed   bool

	// registerRes, if not zero, completes each submitted REGISTER at once
	// with it; registerAgain first answers that many REGISTERs -EAGAIN.
	registerRes   int32
	registerAgain int
	// onCommit runs inside Commit, on the queue goroutine.
	onCommit func(e *Entry, id uint64)
}

type fakeCmd struct {
	idx    int
	commit bool
	id     uint64
}

type commitRec struct {
	idx int
	id  uint64
	out wire.OutHeader
	psz uint32
}

func (f *fakeRing) Register(e *Entry, flags uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(e.Payload) == 0 || e.Header == nil || int(e.Qid) != f.qid {
		return errors.New("fake: bad entry")
	}
	f.ents[e.Index] = e
	f.regs++
	f.regFlags = flags
	f.queued = append(f.queued, fakeCmd{idx: e.Index})
	return nil
}

func (f *fakeRing) Commit(e *Entry, id uint64) error {
	if f.onCommit != nil {
		f.onCommit(e, id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued = append(f.queued, fakeCmd{idx: e.Index, commit: true, id: id})
	return nil
}

func (f *fakeRing) SubmitAndWait() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.queued {
		e := f.ents[c.idx]
		switch {
		case c.commit:
			f.commits = append(f.commits, commitRec{idx: c.idx, id: c.id,
				out: *(*wire.OutHeader)(unsafe.Pointer(&e.Header.InOut[0])), psz: e.Header.RingEnt.PayloadSz})
			f.avail = append(f.avail, c.idx)
		case f.registerAgain > 0:
			f.registerAgain--
			f.pending = append(f.pending, Completion{Entry: c.idx, Res: -int32(syscall.EAGAIN)})
		case f.registerRes != 0:
			f.pending = append(f.pending, Completion{Entry: c.idx, Res: f.registerRes})
		default:
			f.avail = append(f.avail, c.idx)
		}
	}
	f.queued = f.queued[:0]
	f.cond.Broadcast()
	for len(f.pending) == 0 && !f.woken {
		f.cond.Wait()
	}
	f.woken = false
	return nil
}

func (f *fakeRing) Reap(dst []Completion) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := copy(dst, f.pending)
	f.pending = f.pending[:copy(f.pending, f.pending[n:])]
	return n
}

func (f *fakeRing) Wake() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		panic("fake: Wake after Close")
	}
	f.woken = true
	f.cond.Broadcast()
	return nil
}

func (f *fakeRing) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.cond.Broadcast()
	return nil
}

// wait blocks until ok holds (called with f.mu held) or the test times out.
func (f *fakeRing) wait(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			f.mu.Unlock()
			t.Fatalf("queue %d: timed out waiting for %s", f.qid, what)
		}
		f.cond.Wait()
	}
}

// deliver writes a request into an available entry, as the kernel does, and
// completes its command with res 0. It returns the entry index.
func (f *fakeRing) deliver(t testing.TB, h wire.InHeader, arg, payload []byte) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deliverLocked(t, h, arg, payload)
}

// deliverBatch delivers requests with one header each and the same
// argument, all completed before the queue can reap any of them.
func (f *fakeRing) deliverBatch(t testing.TB, hs []wire.InHeader, arg []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wait(t, "available entries", func() bool { return len(f.avail) >= len(hs) })
	for _, h := range hs {
		f.deliverLocked(t, h, arg, nil)
	}
}

func (f *fakeRing) deliverLocked(t testing.TB, h wire.InHeader, arg, payload []byte) int {
	f.wait(t, "an available entry", func() bool { return len(f.avail) > 0 })
	idx := f.avail[0]
	f.avail = f.avail[:copy(f.avail, f.avail[1:])]
	e := f.ents[idx]
	h.Len = uint32(wire.SizeofInHeader + len(arg) + len(payload))
	*(*wire.InHeader)(unsafe.Pointer(&e.Header.InOut[0])) = h
	copy(e.Header.OpIn[:], arg)
	copy(e.Payload, payload)
	e.Header.RingEnt = wire.UringEntInOut{CommitID: h.Unique, PayloadSz: uint32(len(payload))}
	f.pending = append(f.pending, Completion{Entry: idx})
	f.cond.Broadcast()
	return idx
}

// fail completes the command of an available entry with res: entry idx,
// or any if idx < 0.
func (f *fakeRing) fail(t testing.TB, idx int, res int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pos := -1
	f.wait(t, "an available entry", func() bool {
		for i, a := range f.avail {
			if idx < 0 || a == idx {
				pos = i
				return true
			}
		}
		return false
	})
	idx = f.avail[pos]
	f.avail = append(f.avail[:pos], f.avail[pos+1:]...)
	f.pending = append(f.pending, Completion{Entry: idx, Res: res})
	f.cond.Broadcast()
}

// waitCommit returns the commit with id, once submitted.
func (f *fakeRing) waitCommit(t testing.TB, id uint64) commitRec {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rec commitRec
	f.wait(t, "a commit", func() bool {
		for i := len(f.commits) - 1; i >= 0; i-- {
			if f.commits[i].id == id {
				rec = f.commits[i]
				return true
			}
		}
		return false
	})
	return rec
}

// waitAvail waits until n entries are available.
func (f *fakeRing) waitAvail(t testing.TB, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wait(t, "available entries", func() bool { return len(f.avail) >= n })
}

// fakeEnv is a server with a ring channel whose queues run on fakeRings.
type fakeEnv struct {
	t     testing.TB
	s     *server.Server
	ch    *Channel
	mu    sync.Mutex
	rings map[int]*fakeRing
	log   *syncBuffer
	uniq  uint64
	dev   *server.Worker
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newFakeEnv makes the channel, answers a synthetic INIT (which runs
// Prepare) and starts the queues. setup may adjust each fakeRing before
// its queue registers.
func newFakeEnv(t testing.TB, opts Options, setup func(*fakeRing)) *fakeEnv {
	env := &fakeEnv{t: t, rings: map[int]*fakeRing{}, log: &syncBuffer{}, uniq: 100}
	opts.NewRing = func(cfg RingConfig) (QueueRing, error) {
		f := &fakeRing{qid: cfg.Qid, ents: make([]*Entry, cfg.Depth),
			commits: make([]commitRec, 0, 1<<14), avail: make([]int, 0, cfg.Depth),
			queued: make([]fakeCmd, 0, cfg.Depth+1), pending: make([]Completion, 0, cfg.Depth+1)}
		f.cond.L = &f.mu
		if setup != nil {
			setup(f)
		}
		env.mu.Lock()
		env.rings[cfg.Qid] = f
		env.mu.Unlock()
		return f, nil
	}
	env.ch = New(-1, &opts)
	env.s = server.New(&hello.FS{Name: "greeting", Data: []byte("hello\n")},
		&server.Options{Transport: env.ch, ErrorLog: log.New(env.log, "", 0), AttrTimeout: -1, EntryTimeout: -1})
	env.dev = env.s.NewWorker("devfuse")
	in := wire.InitIn{Major: 7, Minor: 45, MaxReadahead: 128 << 10, Flags: wire.FUSE_INIT_EXT,
		Flags2: uint32(wire.FUSE_OVER_IO_URING >> 32)}
	msg := wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_INIT, Unique: 2}, wire.AsBytes(&in))
	rep := env.dev.HandleDev(msg, make([]byte, 4096))
	if rep.Error != 0 {
		t.Fatalf("INIT: error %d", rep.Error)
	}
	if err := env.ch.Err(); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	env.s.InitReplied()
	t.Cleanup(func() {
		env.ch.Stop()
		if t.Failed() {
			t.Logf("server log:\n%s", env.log.String())
		}
	})
	return env
}

func (env *fakeEnv) ring(qid int) *fakeRing {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.rings[qid]
}

func (env *fakeEnv) nextUnique() uint64 {
	env.uniq += 2
	return env.uniq
}

// request delivers one request on queue qid and returns its commit.
func (env *fakeEnv) request(qid int, op wire.Opcode, node uint64, arg, payload []byte) commitRec {
	u := env.nextUnique()
	f := env.ring(qid)
	f.deliver(env.t, wire.InHeader{Opcode: op, Unique: u, NodeID: node}, arg, payload)
	return f.waitCommit(env.t, u)
}

// lookup looks "greeting" up on queue qid and returns its node ID.
func (env *fakeEnv) lookup(qid int) uint64 {
	env.t.Helper()
	rec := env.request(qid, wire.FUSE_LOOKUP, 1, nil, wire.CString("greeting"))
	if rec.out.Error != 0 || rec.psz != wire.SizeofEntryOut {
		env.t.Fatalf("LOOKUP: error %d, payload %d", rec.out.Error, rec.psz)
	}
	e := env.ring(qid).ents[rec.idx]
	return wire.View[wire.EntryOut](e.Payload).NodeID
}

func forgetArg(n uint64) []byte { return wire.AsBytes(&wire.ForgetIn{Nlookup: n}) }

func batchForget(ones ...wire.ForgetOne) (arg, payload []byte) {
	arg = wire.AsBytes(&wire.BatchForgetIn{Count: uint32(len(ones))})
	for i := range ones {
		payload = append(payload, wire.AsBytes(&ones[i])...)
	}
	return arg, payload
}

// checkEmptyCommit checks the commit of a request that takes no reply.
func checkEmptyCommit(t *testing.T, what string, rec commitRec, unique uint64) {
	t.Helper()
	if rec.id != unique || rec.out.Unique != unique || rec.out.Error != 0 || rec.psz != 0 || rec.out.Len != wire.SizeofOutHeader {
		t.Errorf("%s: commit id %d, out header %+v, payload_sz %d; want id %d, empty reply", what, rec.id, rec.out, rec.psz, unique)
	}
}

func TestFakeServe(t *testing.T) {
	env := newFakeEnv(t, Options{}, nil)
	for qid := range env.ch.Stats().Queues {
		rec := env.request(qid, wire.FUSE_GETATTR, 1, wire.AsBytes(&wire.GetattrIn{}), nil)
		if rec.out.Error != 0 || rec.psz != wire.SizeofAttrOut || rec.out.Len != wire.SizeofOutHeader+wire.SizeofAttrOut {
			t.Errorf("queue %d: GETATTR: out %+v, payload_sz %d", qid, rec.out, rec.psz)
		}
		rec = env.request(qid, wire.FUSE_LOOKUP, 1, nil, wire.CString("missing"))
		if rec.out.Error != -int32(syscall.ENOENT) || rec.psz != 0 {
			t.Errorf("queue %d: LOOKUP missing: out %+v, payload_sz %d", qid, rec.out, rec.psz)
		}
	}
	st := env.s.Stats()
	if got, want := st.Requests("uring", "GETATTR"), uint64(env.ch.Stats().Queues); got != want {
		t.Errorf("uring GETATTR count %d, want %d", got, want)
	}
	cs := env.ch.Stats()
	if cs.Registered != uint64(cs.Queues*cs.Depth) || cs.Depth != DefaultQueueDepth {
		t.Errorf("stats %+v", cs)
	}
}

// TestFakePoolMemory checks when data requests go to the pool: single
// ones are served inline until the queue sees two at once; after that,
// single ones go to the pool too, until parallelMemory batches have passed
// without a second request.
func TestFakePoolMemory(t *testing.T) {
	env := newFakeEnv(t, Options{}, nil)
	f := env.ring(0)
	node := env.lookup(0)
	arg := wire.AsBytes(&wire.ReadIn{Size: 6})
	read := func() {
		t.Helper()
		if rec := env.request(0, wire.FUSE_READ, node, arg, nil); rec.out.Error != 0 || rec.psz != 6 {
			t.Fatalf("READ: out %+v, payload_sz %d", rec.out, rec.psz)
		}
	}
	pooled := func() uint64 { return env.ch.Stats().Pooled }
	for range 10 {
		read()
	}
	if p := pooled(); p != 0 {
		t.Fatalf("%d single reads served on the pool; want inline", p)
	}
	hs := []wire.InHeader{
		{Opcode: wire.FUSE_READ, Unique: env.nextUnique(), NodeID: node},
		{Opcode: wire.FUSE_READ, Unique: env.nextUnique(), NodeID: node},
	}
	f.deliverBatch(t, hs, arg)
	for _, h := range hs {
		if rec := f.waitCommit(t, h.Unique); rec.out.Error != 0 {
			t.Fatalf("READ in a batch: out %+v", rec.out)
		}
	}
	if p := pooled(); p != 2 {
		t.Fatalf("%d reads on the pool after a batch of two; want 2", p)
	}
	read()
	if p := pooled(); p != 3 {
		t.Errorf("a single read right after a batch of two was served inline; want the pool")
	}
	for range 2 * parallelMemory {
		read()
	}
	before := pooled()
	for range 10 {
		read()
	}
	if p := pooled(); p != before {
		t.Errorf("%d of 10 single reads went to the pool %d batches after the last batch of two; want inline", p-before, 2*parallelMemory)
	}
}

func TestFakeForgetCommitFirst(t *testing.T) {
	var env *fakeEnv
	var lookupsAtCommit []uint64
	var node, forgetUnique uint64
	env = newFakeEnv(t, Options{ForgetCommit: true}, func(f *fakeRing) {
		f.onCommit = func(e *Entry, id uint64) {
			if id == forgetUnique {
				lookupsAtCommit = append(lookupsAtCommit, env.s.Lookups(node))
			}
		}
	})
	f := env.ring(0)
	f.waitAvail(t, DefaultQueueDepth)
	f.mu.Lock()
	if f.regFlags != wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT {
		t.Errorf("REGISTER flags %#x, want FORGET_COMMIT", f.regFlags)
	}
	f.mu.Unlock()
	node = env.lookup(0)
	env.lookup(0)
	env.lookup(0)
	if n := env.s.Lookups(node); n != 3 {
		t.Fatalf("lookups %d after 3 LOOKUPs", n)
	}

	// A single FORGET on the ring: committed empty before it is applied.
	u := env.nextUnique()
	forgetUnique = u
	f.deliver(t, wire.InHeader{Opcode: wire.FUSE_FORGET, Unique: u, NodeID: node}, forgetArg(1), nil)
	checkEmptyCommit(t, "FORGET", f.waitCommit(t, u), u)
	f.waitAvail(t, DefaultQueueDepth) // the batch is over once the entry is back
	if len(lookupsAtCommit) != 1 || lookupsAtCommit[0] != 3 {
		t.Errorf("lookups seen at the FORGET's commit: %v, want [3] (commit first)", lookupsAtCommit)
	}
	if n := env.s.Lookups(node); n != 2 {
		t.Errorf("lookups %d after FORGET 1, want 2", n)
	}

	// One forget over /dev/fuse and a BATCH_FORGET on another queue, at
	// once: the count ends at exactly zero.
	q := env.ch.Stats().Queues - 1
	arg, payload := batchForget(wire.ForgetOne{NodeID: node, Nlookup: 1})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		msg := wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_FORGET, Unique: 1 << 40, NodeID: node}, forgetArg(1))
		env.dev.HandleDev(msg, make([]byte, 64))
	}()
	u = env.nextUnique()
	env.ring(q).deliver(t, wire.InHeader{Opcode: wire.FUSE_BATCH_FORGET, Unique: u}, arg, payload)
	checkEmptyCommit(t, "BATCH_FORGET", env.ring(q).waitCommit(t, u), u)
	env.ring(q).waitAvail(t, DefaultQueueDepth)
	wg.Wait()
	if n := env.s.Lookups(node); n != 0 {
		t.Errorf("lookups %d at the end, want 0", n)
	}
	if n := env.s.NodesAlive(); n != 0 {
		t.Errorf("%d nodes alive, want 0", n)
	}
	cs, ss := env.ch.Stats(), env.s.Stats()
	if cs.ForgetMsgs != 2 || cs.Forgets != 2 || cs.ForgetErrors != 0 {
		t.Errorf("channel stats: %d forget messages, %d forgets, %d errors; want 2, 2, 0", cs.ForgetMsgs, cs.Forgets, cs.ForgetErrors)
	}
	if ss.Requests("uring", "FORGET") != 1 || ss.Requests("uring", "BATCH_FORGET") != 1 || ss.Channels["uring"].Forgets != 2 {
		t.Errorf("server uring stats: %+v", ss.Channels["uring"])
	}
	if ss.ForgetUnknown != 0 {
		t.Errorf("%d forgets for unknown nodes", ss.ForgetUnknown)
	}
}

func TestFakeNoReply(t *testing.T) {
	env := newFakeEnv(t, Options{}, nil)
	f := env.ring(0)
	for _, c := range []struct {
		op  wire.Opcode
		arg []byte
	}{
		{wire.FUSE_INTERRUPT, wire.AsBytes(&wire.InterruptIn{Unique: 12345})},
		{wire.FUSE_NOTIFY_REPLY, nil},
	} {
		u := env.nextUnique()
		f.deliver(t, wire.InHeader{Opcode: c.op, Unique: u}, c.arg, nil)
		checkEmptyCommit(t, c.op.String(), f.waitCommit(t, u), u)
	}
	// A message that does not decode is answered EIO and still committed.
	u := env.nextUnique()
	f.deliver(t, wire.InHeader{Opcode: wire.FUSE_GETATTR, Unique: u, NodeID: 1}, []byte{1, 2, 3}, nil)
	if rec := f.waitCommit(t, u); rec.out.Error != -int32(syscall.EIO) || rec.psz != 0 {
		t.Errorf("truncated GETATTR: out %+v, payload_sz %d", rec.out, rec.psz)
	}
	// So is an undecodable forget, which is dropped.
	u = env.nextUnique()
	arg, _ := batchForget(wire.ForgetOne{NodeID: 5, Nlookup: 1})
	f.deliver(t, wire.InHeader{Opcode: wire.FUSE_BATCH_FORGET, Unique: u}, arg, nil)
	checkEmptyCommit(t, "bad BATCH_FORGET", f.waitCommit(t, u), u)
	f.waitAvail(t, DefaultQueueDepth)
	if cs := env.ch.Stats(); cs.ForgetErrors != 1 {
		t.Errorf("ForgetErrors %d, want 1", cs.ForgetErrors)
	}
}

func TestFakeRegisterRefused(t *testing.T) {
	const depth = 4
	env := newFakeEnv(t, Options{QueueDepth: depth}, func(f *fakeRing) {
		if f.qid == 0 {
			f.registerRes = -int32(syscall.EINVAL)
		}
	})
	nq := env.ch.Stats().Queues
	if nq < 2 {
		t.Skip("needs 2 possible CPUs")
	}
	// The other queues keep serving with all their entries.
	env.ring(nq-1).waitAvail(t, depth)
	deadline := time.Now().Add(10 * time.Second)
	for env.ch.Stats().RegisterFailures < depth && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cs := env.ch.Stats()
	if cs.RegisterFailures != depth || cs.Registered != uint64((nq-1)*depth) {
		t.Errorf("stats %+v; want %d failures, %d registered", cs, depth, (nq-1)*depth)
	}
	if n := strings.Count(env.log.String(), "REGISTER refused"); n != 1 {
		t.Errorf("%d refusal log lines, want 1:\n%s", n, env.log.String())
	}
	if !strings.Contains(env.log.String(), "ring: queue 0: REGISTER refused: invalid argument; serving over /dev/fuse") {
		t.Errorf("log: %s", env.log.String())
	}
}

func TestFakeRegisterAgain(t *testing.T) {
	env := newFakeEnv(t, Options{QueueDepth: 2}, func(f *fakeRing) { f.registerAgain = 3 })
	for qid := range env.ch.Stats().Queues {
		env.ring(qid).waitAvail(t, 2)
		if rec := env.request(qid, wire.FUSE_GETATTR, 1, wire.AsBytes(&wire.GetattrIn{}), nil); rec.out.Error != 0 {
			t.Errorf("queue %d: GETATTR error %d", qid, rec.out.Error)
		}
	}
	if cs := env.ch.Stats(); cs.Retries != uint64(3*cs.Queues) || cs.RegisterFailures != 0 {
		t.Errorf("stats %+v; want %d retries", cs, 3*cs.Queues)
	}
}

// TestFakeTeardown ends every entry the way unmount does; the queues then
// exit by themselves and Done closes without Stop. A lost commit (-ENOENT)
// strands its entry.
func TestFakeTeardown(t *testing.T) {
	const depth = 3
	env := newFakeEnv(t, Options{QueueDepth: depth}, nil)
	nq := env.ch.Stats().Queues
	rec := env.request(0, wire.FUSE_GETATTR, 1, wire.AsBytes(&wire.GetattrIn{}), nil)
	env.ring(0).fail(t, rec.idx, -int32(syscall.ENOENT)) // the commit is lost
	for qid := range nq {
		f := env.ring(qid)
		for i := range depth {
			if qid == 0 && i == 0 {
				continue // stranded above
			}
			f.fail(t, -1, []int32{-int32(syscall.ENOTCONN), -int32(syscall.ECONNABORTED), -int32(syscall.ECANCELED)}[i%3])
		}
	}
	select {
	case <-env.ch.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after every entry ended")
	}
	cs := env.ch.Stats()
	if cs.Stranded != 1 || cs.Dead != uint64(nq*depth-1) {
		t.Errorf("stats %+v; want 1 stranded, %d dead", cs, nq*depth-1)
	}
	for qid := range nq {
		if f := env.ring(qid); !f.closed {
			t.Errorf("queue %d: ring not closed", qid)
		}
	}
}

func TestFakeStop(t *testing.T) {
	before := runtime.NumGoroutine()
	env := newFakeEnv(t, Options{}, nil)
	env.request(0, wire.FUSE_GETATTR, 1, wire.AsBytes(&wire.GetattrIn{}), nil)
	env.ch.Stop()
	env.ch.Stop() // idempotent
	for qid := range env.ch.Stats().Queues {
		if !env.ring(qid).closed {
			t.Errorf("queue %d: ring not closed", qid)
		}
	}
	waitGoroutines(t, before)
}

func TestStopBeforePrepare(t *testing.T) {
	c := New(-1, nil)
	c.Start() // no-op before Prepare
	c.Stop()
	<-c.Done()
	if _, err := c.Prepare(nil, &server.InitInfo{KernelFlags: wire.FUSE_OVER_IO_URING}); !errors.Is(err, ErrStopped) {
		t.Errorf("Prepare after Stop: %v", err)
	}
}

func TestPrepareNotOffered(t *testing.T) {
	c := New(-1, &Options{NewRing: func(RingConfig) (QueueRing, error) { panic("NewRing called") }})
	_, err := c.Prepare(nil, &server.InitInfo{KernelFlags: wire.FUSE_INIT_EXT, MaxWrite: 1 << 20, MaxPages: 256})
	if !errors.Is(err, ErrNotOffered) || !strings.Contains(err.Error(), "/sys/module/fuse/parameters/enable_uring") {
		t.Errorf("Prepare: %v; want ErrNotOffered naming enable_uring", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done not closed after a failed Prepare")
	}
	c.Stop()
}

// TestPrepareRingFails: one queue cannot make its ring; Prepare undoes the
// others and fails.
func TestPrepareRingFails(t *testing.T) {
	before := runtime.NumGoroutine()
	var mu sync.Mutex
	var made []*fakeRing
	c := New(-1, &Options{NewRing: func(cfg RingConfig) (QueueRing, error) {
		if cfg.Qid == 1 {
			return nil, syscall.ENOMEM
		}
		f := &fakeRing{qid: cfg.Qid, ents: make([]*Entry, cfg.Depth)}
		f.cond.L = &f.mu
		mu.Lock()
		made = append(made, f)
		mu.Unlock()
		return f, nil
	}})
	if n, _ := possibleCPUs(); n < 2 {
		t.Skip("needs 2 possible CPUs")
	}
	s := server.New(&hello.FS{}, nil)
	_, err := c.Prepare(s, &server.InitInfo{KernelFlags: wire.FUSE_OVER_IO_URING, MaxWrite: 1 << 20, MaxPages: 256})
	if !errors.Is(err, syscall.ENOMEM) || !strings.Contains(err.Error(), "queue 1") {
		t.Errorf("Prepare: %v", err)
	}
	<-c.Done()
	for _, f := range made {
		if !f.closed {
			t.Errorf("queue %d: ring not closed", f.qid)
		}
	}
	if st := c.Stats(); st.Queues != 0 {
		t.Errorf("stats after failed Prepare: %+v", st)
	}
	waitGoroutines(t, before)
}

// TestFakeZeroAllocs: serving a request and committing it allocates
// nothing, the fake kernel included.
func TestFakeZeroAllocs(t *testing.T) {
	env := newFakeEnv(t, Options{}, nil)
	f := env.ring(0)
	arg := wire.AsBytes(&wire.GetattrIn{})
	env.request(0, wire.FUSE_GETATTR, 1, arg, nil) // warm up
	avg := testing.AllocsPerRun(2000, func() {
		env.uniq += 2
		f.deliver(t, wire.InHeader{Opcode: wire.FUSE_GETATTR, Unique: env.uniq, NodeID: 1}, arg, nil)
		f.waitCommit(t, env.uniq)
		if len(f.commits) > 1000 {
			f.mu.Lock()
			f.commits = f.commits[:0]
			f.mu.Unlock()
		}
	})
	if avg != 0 {
		t.Errorf("%v allocations per request, want 0", avg)
	}
}

func TestParseCPUList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 1, true}, {"0-1\n", 2, true}, {"0-63", 64, true}, {"0,2-3", 3, true},
		{"0-3,8-11", 8, true}, {"", 0, false}, {"a", 0, false}, {"3-1", 0, false}, {"0-", 0, false},
	} {
		n, err := parseCPUList(c.in)
		if (err == nil) != c.ok || n != c.want {
			t.Errorf("parseCPUList(%q) = %d, %v; want %d, ok %v", c.in, n, err, c.want, c.ok)
		}
	}
}

// waitGoroutines waits until no more goroutines run than before.
func waitGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
