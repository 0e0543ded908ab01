package ring_test

import (
	"bytes"
	"errors"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/channel/devfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/fs/hello"
	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/kmodel"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// These tests drive the queue loop against the kernel model (kmodel), the
// project's one fake kernel, so that paths a real kernel rarely or never
// produces (forgets on the ring, refused REGISTERs, lost commits, teardown
// errors) run deterministically and without a mount. A tap between the
// queue and the model's ring sees each entry and commit and injects the
// faults the model does not make on its own.

// tap is a ring.QueueRing (and ring.FileIORing) over a model ring.
type tap struct {
	ring.QueueRing
	qid int

	mu      sync.Mutex
	cond    sync.Cond
	ents    map[int]*ring.Entry
	regs    int
	flags   uint64            // of the last REGISTER
	commits map[uint64]commit // by commit id, while record is set
	record  bool
	closed  bool

	// Faults and hooks, set before the queue starts (setup) or under mu.
	again     int                            // answer this many REGISTERs -EAGAIN first
	loseNext  int                            // lose this many next commits (-ENOENT)
	injected  []ring.Completion              // completions the tap makes up
	onCommit  func(e *ring.Entry, id uint64) // runs inside Commit, on the queue goroutine
	rewrite   func(e *ring.Entry)            // rewrites a delivered request before the queue sees it
	gate      chan struct{}                  // if set, SubmitAndWait waits on it once it has something
	atGate    chan struct{}                  // told when SubmitAndWait waits on gate
	replay    *wire.InHeader                 // see TestModelZeroAllocs
	replayID  uint64                         // the model's request the replay stands on
	replayed  func() bool                    // whether to replay once more
	ioStarted int
}

// commit is what the queue committed: the out header and payload_sz.
type commit struct {
	idx  int
	out  wire.OutHeader
	psz  uint32
	head uint64 // the first 8 bytes of the payload: a LOOKUP's node ID
	size int    // the payload buffer's size
}

func newTap(q ring.QueueRing, qid int) *tap {
	t := &tap{QueueRing: q, qid: qid, ents: map[int]*ring.Entry{}, commits: map[uint64]commit{}, record: true}
	t.cond.L = &t.mu
	return t
}

func (t *tap) Register(e *ring.Entry, flags uint64) error {
	t.mu.Lock()
	t.ents[e.Index], t.regs, t.flags = e, t.regs+1, flags
	again := t.again > 0
	if again {
		t.again--
		t.injected = append(t.injected, ring.Completion{Entry: e.Index, Res: -int32(syscall.EAGAIN)})
	}
	t.mu.Unlock()
	if again {
		return nil
	}
	return t.QueueRing.Register(e, flags)
}

func (t *tap) Commit(e *ring.Entry, id uint64) error {
	if t.onCommit != nil {
		t.onCommit(e, id)
	}
	t.mu.Lock()
	if t.record {
		t.commits[id] = commit{idx: e.Index, out: *wire.View[wire.OutHeader](e.Header.InOut[:]), psz: e.Header.RingEnt.PayloadSz,
			head: *wire.View[uint64](e.Payload), size: len(e.Payload)}
		t.cond.Broadcast()
	}
	lost := t.loseNext > 0
	if lost {
		t.loseNext--
		t.injected = append(t.injected, ring.Completion{Entry: e.Index, Res: -int32(syscall.ENOENT)})
	}
	r, more := t.replay, t.replayed
	t.mu.Unlock()
	if lost {
		return nil
	}
	if r != nil {
		if more() {
			// Deliver the same request again, with the next unique,
			// as the model would, but without the model's
			// allocations. The op_in area still holds its argument.
			r.Unique += 2
			*wire.View[wire.InHeader](e.Header.InOut[:]) = *r
			e.Header.RingEnt = wire.UringEntInOut{CommitID: r.Unique}
			t.mu.Lock()
			t.injected = append(t.injected, ring.Completion{Entry: e.Index})
			t.mu.Unlock()
			return nil
		}
		// The end: answer the model's request, the first one.
		t.mu.Lock()
		t.replay = nil
		t.mu.Unlock()
		id = t.replayID
		wire.View[wire.OutHeader](e.Header.InOut[:]).Unique = id
	}
	return t.QueueRing.Commit(e, id)
}

func (t *tap) SubmitAndWait() error {
	t.mu.Lock()
	made := len(t.injected) > 0
	t.mu.Unlock()
	if made {
		_ = t.QueueRing.Wake() // end the wait at once: the tap has completions
	}
	err := t.QueueRing.SubmitAndWait()
	t.mu.Lock()
	gate, at := t.gate, t.atGate
	t.gate = nil
	t.mu.Unlock()
	if gate != nil {
		at <- struct{}{}
		<-gate
	}
	return err
}

func (t *tap) Reap(dst []ring.Completion) int {
	t.mu.Lock()
	n := copy(dst, t.injected)
	t.injected = t.injected[:copy(t.injected, t.injected[n:])]
	t.mu.Unlock()
	m := t.QueueRing.Reap(dst[n:])
	t.mu.Lock()
	rw := t.rewrite
	t.mu.Unlock()
	if rw != nil {
		for _, c := range dst[n : n+m] {
			if c.Res == 0 && !c.IO {
				rw(t.ents[c.Entry])
			}
		}
	}
	return n + m
}

func (t *tap) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return t.QueueRing.Close()
}

func (t *tap) StartIO(e *ring.Entry, write bool, fd int, buf []byte, off int64) error {
	t.mu.Lock()
	t.ioStarted++
	t.mu.Unlock()
	return t.QueueRing.(ring.FileIORing).StartIO(e, write, fd, buf, off)
}

// waitCommit returns the commit with id once the queue has made it.
func (t *tap) waitCommit(tb testing.TB, id uint64) commit {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	deadline := time.AfterFunc(10*time.Second, func() { t.mu.Lock(); t.cond.Broadcast(); t.mu.Unlock() })
	defer deadline.Stop()
	start := time.Now()
	for {
		if c, ok := t.commits[id]; ok {
			return c
		}
		if time.Since(start) > 10*time.Second {
			t.mu.Unlock()
			tb.Fatalf("queue %d: no commit of %d", t.qid, id)
		}
		t.cond.Wait()
	}
}

// hold makes the queue's next SubmitAndWait, once it has a completion,
// wait until the returned function is called: requests started meanwhile
// are reaped in the same batch.
func (t *tap) hold() (release func()) {
	gate, at := make(chan struct{}), make(chan struct{})
	t.mu.Lock()
	t.gate, t.atGate = gate, at
	t.mu.Unlock()
	return func() { <-at; close(gate) }
}

// modelEnv is a server with a ring channel whose queues run on a kernel
// model, each through a tap.
type modelEnv struct {
	t     testing.TB
	m     *kmodel.Conn
	s     *server.Server
	ch    *ring.Channel
	log   *testmount.LogBuffer
	serve chan error

	mu   sync.Mutex
	taps map[int]*tap
	once sync.Once
}

type envOptions struct {
	model kmodel.Config
	ring  ring.Options
	fs    ringfuse.FileSystem // nil: hello with "greeting"
	setup func(*tap)          // adjusts each tap before its queue registers
	// noReady: do not wait for the ring to be ready.
	noReady bool
}

// newModelEnv starts the server on a new model connection and waits for
// INIT and, unless o.noReady, the ring.
func newModelEnv(t testing.TB, o envOptions) *modelEnv {
	t.Helper()
	env := &modelEnv{t: t, log: &testmount.LogBuffer{}, taps: map[int]*tap{}, serve: make(chan error, 1)}
	o.model.NrQueues = o.ring.Queues // 0: the model's default
	m, err := kmodel.New(o.model)
	if err != nil {
		t.Fatal(err)
	}
	env.m = m
	ro := o.ring
	ro.Host = m.Host()
	ro.NewRing = func(cfg ring.RingConfig) (ring.QueueRing, error) {
		q, err := m.NewRing(cfg)
		if err != nil {
			return nil, err
		}
		tp := newTap(q, cfg.Qid)
		if o.setup != nil {
			o.setup(tp)
		}
		env.mu.Lock()
		env.taps[cfg.Qid] = tp
		env.mu.Unlock()
		return tp, nil
	}
	env.ch = ring.New(-1, &ro)
	fsys := o.fs
	if fsys == nil {
		fsys = &hello.FS{Name: "greeting", Data: []byte("hello\n")}
	}
	env.s = server.New(fsys, &server.Options{Transport: env.ch, ErrorLog: log.New(env.log, "", 0), AttrTimeout: -1, EntryTimeout: -1})
	go func() { env.serve <- devfuse.Serve(env.s, m.Dev(), &devfuse.Options{Readers: 1}) }()
	t.Cleanup(env.stop)
	select {
	case <-env.s.Initialized():
	case <-time.After(10 * time.Second):
		t.Fatal("no INIT")
	}
	if !o.noReady {
		select {
		case <-m.Ready():
		case <-time.After(10 * time.Second):
			t.Fatalf("ring not ready: %+v, channel %+v, err %v", m.Stats(), env.ch.Stats(), env.ch.Err())
		}
	}
	return env
}

func (env *modelEnv) stop() { env.once.Do(env.doStop) }

func (env *modelEnv) doStop() {
	env.m.Unmount()
	select {
	case err := <-env.serve:
		if err != nil && !errors.Is(err, devfuse.ErrAborted) {
			env.t.Errorf("devfuse.Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		env.t.Error("devfuse.Serve did not return")
	}
	env.ch.Stop()
	if env.t.Failed() {
		env.t.Logf("server log:\n%s", env.log.String())
	}
}

func (env *modelEnv) tap(qid int) *tap {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.taps[qid]
}

// do makes req from cpu and returns the reply and the queue's commit.
func (env *modelEnv) do(cpu int, req kmodel.Request) (kmodel.Reply, commit) {
	env.t.Helper()
	rep, err := env.m.Do(cpu, req)
	if rep.Channel != kmodel.ChannelRing {
		env.t.Fatalf("%v from CPU %d: channel %q (error %v), want the ring", req.Op, cpu, rep.Channel, err)
	}
	return rep, env.tap(rep.Queue).waitCommit(env.t, rep.Unique)
}

// lookup looks "greeting" up from cpu and returns its node ID.
func (env *modelEnv) lookup(cpu int) uint64 {
	env.t.Helper()
	rep, _ := env.do(cpu, kmodel.Lookup(wire.FUSE_ROOT_ID, "greeting"))
	if rep.Error != 0 {
		env.t.Fatalf("LOOKUP: %v", rep.Error)
	}
	return rep.Entry().NodeID
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkEmptyCommit checks the commit of a request that takes no reply.
func checkEmptyCommit(t *testing.T, what string, c commit, unique uint64) {
	t.Helper()
	if c.out.Unique != unique || c.out.Error != 0 || c.psz != 0 || c.out.Len != wire.SizeofOutHeader {
		t.Errorf("%s: out header %+v, payload_sz %d; want an empty reply for %d", what, c.out, c.psz, unique)
	}
}

// inject makes a request from cpu and, before the queue sees it, replaces
// it in its entry with what build returns for the entry's commit id (the
// model's unique): a request the model never sends on the ring, or a
// malformed one, with payload_sz psz. It returns the commit and the
// commit id. The model's own request fails or gets a reply that is not
// its own, which does not matter.
func (env *modelEnv) inject(cpu int, build func(id uint64) (h wire.InHeader, opIn, payload []byte, psz uint32)) (commit, uint64) {
	env.t.Helper()
	tp := env.tap(cpu)
	ids := make(chan uint64, 1)
	tp.mu.Lock()
	tp.rewrite = func(e *ring.Entry) {
		id := e.Header.RingEnt.CommitID
		h, opIn, payload, psz := build(id)
		*wire.View[wire.InHeader](e.Header.InOut[:]) = h
		clear(e.Header.OpIn[:])
		copy(e.Header.OpIn[:], opIn)
		copy(e.Payload, payload)
		e.Header.RingEnt.PayloadSz = psz
		tp.mu.Lock()
		tp.rewrite = nil
		tp.mu.Unlock()
		ids <- id
	}
	tp.mu.Unlock()
	k := env.m.Start(cpu, kmodel.Getattr(wire.FUSE_ROOT_ID))
	var id uint64
	select {
	case id = <-ids:
	case <-time.After(10 * time.Second):
		env.t.Fatalf("queue %d: no request delivered", cpu)
	}
	c := tp.waitCommit(env.t, id)
	_, _ = k.Wait()
	return c, id
}

// injectOp injects a well-formed request of op with arg and no payload.
func (env *modelEnv) injectOp(cpu int, op wire.Opcode, node uint64, arg []byte) (commit, uint64) {
	return env.inject(cpu, func(id uint64) (wire.InHeader, []byte, []byte, uint32) {
		return wire.InHeader{Opcode: op, NodeID: node, Unique: id, Len: uint32(wire.SizeofInHeader + len(arg))}, arg, nil, 0
	})
}

func TestModelServe(t *testing.T) {
	env := newModelEnv(t, envOptions{})
	nq := env.ch.Stats().Queues
	for cpu := range nq {
		rep, c := env.do(cpu, kmodel.Getattr(wire.FUSE_ROOT_ID))
		if rep.Error != 0 || rep.Queue != cpu || c.out.Error != 0 || c.psz != wire.SizeofAttrOut || c.out.Len != wire.SizeofOutHeader+wire.SizeofAttrOut {
			t.Errorf("CPU %d: GETATTR: %v on queue %d, commit %+v", cpu, rep.Error, rep.Queue, c)
		}
		rep, c = env.do(cpu, kmodel.Lookup(wire.FUSE_ROOT_ID, "missing"))
		if rep.Error != syscall.ENOENT || c.out.Error != -int32(syscall.ENOENT) || c.psz != 0 {
			t.Errorf("CPU %d: LOOKUP missing: %v, commit %+v", cpu, rep.Error, c)
		}
	}
	if got := env.s.Stats().Requests("uring", "GETATTR"); got != uint64(nq) {
		t.Errorf("uring GETATTR count %d, want %d", got, nq)
	}
	if cs := env.ch.Stats(); cs.Registered != uint64(cs.Queues*cs.Depth) || cs.Depth != ring.DefaultQueueDepth {
		t.Errorf("stats %+v", cs)
	}
}

// TestModelPoolMemory checks when data requests go to the pool: single
// ones are served inline until the queue sees two at once; after that,
// single ones go to the pool too, until ring.ParallelMemory batches have
// passed without a second request.
func TestModelPoolMemory(t *testing.T) {
	env := newModelEnv(t, envOptions{})
	tp := env.tap(0)
	node := env.lookup(0)
	rep, _ := env.do(0, kmodel.Open(node, syscall.O_RDONLY))
	fh := rep.Open().Fh
	read := func() {
		t.Helper()
		if rep, c := env.do(0, kmodel.Read(node, fh, 0, 6)); rep.Error != 0 || c.psz != 6 {
			t.Fatalf("READ: %v, commit %+v", rep.Error, c)
		}
	}
	pooled := func() uint64 { return env.ch.Stats().Pooled }
	for range 10 {
		read()
	}
	if p := pooled(); p != 0 {
		t.Fatalf("%d single reads served on the pool; want inline", p)
	}
	release := tp.hold()
	k1 := env.m.Start(0, kmodel.Read(node, fh, 0, 6))
	k2 := env.m.Start(0, kmodel.Read(node, fh, 0, 6))
	release()
	for _, k := range []*kmodel.Call{k1, k2} {
		if _, err := k.Wait(); err != nil {
			t.Fatalf("READ in a batch: %v", err)
		}
	}
	if p := pooled(); p != 2 {
		t.Fatalf("%d reads on the pool after a batch of two; want 2", p)
	}
	read()
	if p := pooled(); p != 3 {
		t.Errorf("a single read right after a batch of two was served inline; want the pool")
	}
	for range 2 * ring.ParallelMemory {
		read()
	}
	before := pooled()
	for range 10 {
		read()
	}
	if p := pooled(); p != before {
		t.Errorf("%d of 10 single reads went to the pool %d batches after the last batch of two; want inline", p-before, 2*ring.ParallelMemory)
	}
}

// TestModelForgetCommitFirst: a forget on the ring is committed, empty,
// before its lookups are dropped.
func TestModelForgetCommitFirst(t *testing.T) {
	var env *modelEnv
	var mu sync.Mutex
	var atCommit []uint64
	var node uint64
	forgets := map[int]bool{}
	env = newModelEnv(t, envOptions{model: kmodel.Config{Patched: true}, ring: ring.Options{ForgetCommit: true}, setup: func(tp *tap) {
		tp.rewrite = func(e *ring.Entry) {
			op := wire.View[wire.InHeader](e.Header.InOut[:]).Opcode
			mu.Lock()
			forgets[e.Index] = op == wire.FUSE_FORGET || op == wire.FUSE_BATCH_FORGET
			mu.Unlock()
		}
		tp.onCommit = func(e *ring.Entry, id uint64) {
			mu.Lock()
			if tp.qid == 0 && forgets[e.Index] {
				atCommit = append(atCommit, env.s.Lookups(node))
			}
			mu.Unlock()
		}
	}})
	if f := env.tap(0).flags; f != wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT {
		t.Errorf("REGISTER flags %#x, want FORGET_COMMIT", f)
	}
	n := env.lookup(0)
	mu.Lock()
	node = n
	mu.Unlock()
	env.lookup(0)
	env.lookup(0)
	if n := env.s.Lookups(node); n != 3 {
		t.Fatalf("lookups %d after 3 LOOKUPs", n)
	}
	env.m.Forget(0, node, 1)
	waitFor(t, "the forget", func() bool { return env.s.Lookups(node) == 2 })
	mu.Lock()
	if len(atCommit) != 1 || atCommit[0] != 3 {
		t.Errorf("lookups seen at the FORGET's commit: %v, want [3] (commit first)", atCommit)
	}
	mu.Unlock()
	env.m.Forget(0, node, 2)
	waitFor(t, "no live node", func() bool { return env.s.NodesAlive() == 0 })
	cs, ss := env.ch.Stats(), env.s.Stats()
	if cs.ForgetMsgs != 2 || cs.Forgets != 2 || cs.ForgetErrors != 0 {
		t.Errorf("channel stats: %d forget messages, %d forgets, %d errors; want 2, 2, 0", cs.ForgetMsgs, cs.Forgets, cs.ForgetErrors)
	}
	if ss.Requests("uring", "FORGET") != 2 || ss.Channels["uring"].Forgets != 2 || ss.ForgetUnknown != 0 {
		t.Errorf("server stats: %+v, %d forgets of unknown nodes", ss.Channels["uring"], ss.ForgetUnknown)
	}
}

// TestModelNoReply: requests that take no reply, and malformed ones, are
// still committed, so that their entries come back.
func TestModelNoReply(t *testing.T) {
	env := newModelEnv(t, envOptions{})
	for _, c := range []struct {
		op  wire.Opcode
		arg []byte
	}{
		{wire.FUSE_INTERRUPT, wire.AsBytes(&wire.InterruptIn{Unique: 12345})},
		{wire.FUSE_NOTIFY_REPLY, nil},
	} {
		got, id := env.injectOp(0, c.op, 0, c.arg)
		checkEmptyCommit(t, c.op.String(), got, id)
	}
	// A message that does not decode is answered EIO.
	if c, _ := env.injectOp(0, wire.FUSE_GETATTR, 1, []byte{1, 2, 3}); c.out.Error != -int32(syscall.EIO) || c.psz != 0 {
		t.Errorf("truncated GETATTR: commit %+v", c)
	}
	// An undecodable forget is dropped and counted.
	arg := wire.AsBytes(&wire.BatchForgetIn{Count: 1})
	got, id := env.injectOp(0, wire.FUSE_BATCH_FORGET, 0, arg)
	checkEmptyCommit(t, "bad BATCH_FORGET", got, id)
	waitFor(t, "the forget error", func() bool { return env.ch.Stats().ForgetErrors == 1 })
}

func TestModelRegisterRefused(t *testing.T) {
	const depth = 4
	env := newModelEnv(t, envOptions{model: kmodel.Config{Faults: kmodel.Faults{RefuseRegister: syscall.EINVAL}},
		ring: ring.Options{QueueDepth: depth}, noReady: true})
	nq := env.ch.Stats().Queues
	waitFor(t, "every REGISTER refused", func() bool { return env.ch.Stats().RegisterFailures == uint64(nq*depth) })
	if n := bytes.Count([]byte(env.log.String()), []byte("REGISTER refused")); n != nq {
		t.Errorf("%d refusal log lines, want one per queue (%d):\n%s", n, nq, env.log.String())
	}
	if !bytes.Contains([]byte(env.log.String()), []byte("ring: queue 0: REGISTER refused: invalid argument; serving over /dev/fuse")) {
		t.Errorf("log: %s", env.log.String())
	}
	// Requests then go to /dev/fuse.
	if rep, err := env.m.Do(0, kmodel.Getattr(wire.FUSE_ROOT_ID)); err != nil || rep.Channel != kmodel.ChannelDev {
		t.Errorf("GETATTR after the refusal: %v on %q", err, rep.Channel)
	}
}

func TestModelRegisterAgain(t *testing.T) {
	env := newModelEnv(t, envOptions{ring: ring.Options{QueueDepth: 2}, setup: func(tp *tap) { tp.again = 3 }})
	for cpu := range env.ch.Stats().Queues {
		if rep, _ := env.do(cpu, kmodel.Getattr(wire.FUSE_ROOT_ID)); rep.Error != 0 {
			t.Errorf("CPU %d: GETATTR: %v", cpu, rep.Error)
		}
	}
	if cs := env.ch.Stats(); cs.Retries != uint64(3*cs.Queues) || cs.RegisterFailures != 0 {
		t.Errorf("stats %+v; want %d retries", cs, 3*cs.Queues)
	}
}

// TestModelTeardown: unmount ends every entry; the queues then exit by
// themselves and Done closes without Stop. A lost commit (-ENOENT)
// strands its entry first.
func TestModelTeardown(t *testing.T) {
	for _, abort := range []bool{false, true} {
		const depth = 3
		env := newModelEnv(t, envOptions{ring: ring.Options{QueueDepth: depth}})
		nq := env.ch.Stats().Queues
		tp := env.tap(0)
		tp.mu.Lock()
		tp.loseNext = 1
		tp.mu.Unlock()
		env.m.Start(0, kmodel.Getattr(wire.FUSE_ROOT_ID))
		waitFor(t, "the stranded entry", func() bool { return env.ch.Stats().Stranded == 1 })
		if abort {
			env.m.Abort()
		} else {
			env.m.Unmount()
		}
		select {
		case <-env.ch.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Done not closed after every entry ended")
		}
		if cs := env.ch.Stats(); cs.Stranded != 1 || cs.Dead != uint64(nq*depth-1) {
			t.Errorf("abort %v: stats %+v; want 1 stranded, %d dead", abort, cs, nq*depth-1)
		}
		for qid := range nq {
			if tp := env.tap(qid); !tp.closed {
				t.Errorf("abort %v: queue %d: ring not closed", abort, qid)
			}
		}
	}
}

func TestModelStop(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		env := newModelEnv(t, envOptions{})
		env.do(0, kmodel.Getattr(wire.FUSE_ROOT_ID))
		env.ch.Stop()
		env.ch.Stop() // idempotent
		for qid := range env.ch.Stats().Queues {
			if !env.tap(qid).closed {
				t.Errorf("queue %d: ring not closed", qid)
			}
		}
		env.stop()
	}()
	waitGoroutines(t, before)
}

// TestModelZeroAllocs: serving a request and committing it allocates
// nothing. The tap delivers the same GETATTR again at each commit, so that
// the model's own allocations per client call stay out of the count.
func TestModelZeroAllocs(t *testing.T) {
	env := newModelEnv(t, envOptions{})
	tp := env.tap(0)
	env.do(0, kmodel.Getattr(wire.FUSE_ROOT_ID)) // warm up
	done, stop := make(chan struct{}), make(chan struct{})
	tp.mu.Lock()
	tp.record = false
	tp.replay = &wire.InHeader{Len: wire.SizeofInHeader + wire.SizeofGetattrIn, Opcode: wire.FUSE_GETATTR, NodeID: wire.FUSE_ROOT_ID, Unique: 1 << 40}
	tp.replayed = func() bool {
		select {
		case done <- struct{}{}:
			return true
		case <-stop:
			return false
		}
	}
	tp.mu.Unlock()
	k := env.m.Start(0, kmodel.Getattr(wire.FUSE_ROOT_ID))
	tp.mu.Lock()
	tp.replayID = k.Unique()
	tp.mu.Unlock()
	<-done
	avg := testing.AllocsPerRun(2000, func() { <-done })
	close(stop)
	if rep, err := k.Wait(); err != nil || rep.Attr() == nil {
		t.Errorf("the model's GETATTR: %v", err)
	}
	if avg != 0 {
		t.Errorf("%v allocations per request, want 0", avg)
	}
	if n := env.s.Stats().Requests("uring", "GETATTR"); n < 2000 {
		t.Errorf("%d GETATTR served, want at least 2000", n)
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

func TestStopBeforePrepare(t *testing.T) {
	c := ring.New(-1, nil)
	c.Start() // no-op before Prepare
	c.Stop()
	<-c.Done()
	if _, err := c.Prepare(nil, &server.InitInfo{KernelFlags: wire.FUSE_OVER_IO_URING}); !errors.Is(err, ring.ErrStopped) {
		t.Errorf("Prepare after Stop: %v", err)
	}
}

func TestPrepareNotOffered(t *testing.T) {
	m, err := kmodel.New(kmodel.Config{DisableUring: true})
	if err != nil {
		t.Fatal(err)
	}
	c := ring.New(-1, &ring.Options{Host: m.Host(), NewRing: func(ring.RingConfig) (ring.QueueRing, error) { panic("NewRing called") }})
	_, err = c.Prepare(nil, &server.InitInfo{KernelFlags: wire.FUSE_INIT_EXT, MaxWrite: 1 << 20, MaxPages: 256})
	if !errors.Is(err, ring.ErrNotOffered) || !bytes.Contains([]byte(err.Error()), []byte("the model's enable_uring is N")) {
		t.Errorf("Prepare: %v; want ErrNotOffered with the host's hint", err)
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
	m, err := kmodel.New(kmodel.Config{NrQueues: 3})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var made []*tap
	c := ring.New(-1, &ring.Options{Host: m.Host(), NewRing: func(cfg ring.RingConfig) (ring.QueueRing, error) {
		if cfg.Qid == 1 {
			return nil, syscall.ENOMEM
		}
		q, err := m.NewRing(cfg)
		if err != nil {
			return nil, err
		}
		tp := newTap(q, cfg.Qid)
		mu.Lock()
		made = append(made, tp)
		mu.Unlock()
		return tp, nil
	}})
	s := server.New(&hello.FS{}, nil)
	_, err = c.Prepare(s, &server.InitInfo{KernelFlags: wire.FUSE_OVER_IO_URING, MaxWrite: 1 << 20, MaxPages: 256})
	if !errors.Is(err, syscall.ENOMEM) || !bytes.Contains([]byte(err.Error()), []byte("queue 1")) {
		t.Errorf("Prepare: %v", err)
	}
	<-c.Done()
	for _, tp := range made {
		if !tp.closed {
			t.Errorf("queue %d: ring not closed", tp.qid)
		}
	}
	if st := c.Stats(); st.Queues != 0 {
		t.Errorf("stats after failed Prepare: %+v", st)
	}
	waitGoroutines(t, before)
}

// TestModelFileIO: with Options.FileIO, reads and writes of a filesystem
// that lends its descriptors run on the model's ring, short reads at the
// end of the file included.
func TestModelFileIO(t *testing.T) {
	src := t.TempDir()
	data := bytes.Repeat([]byte("ringfuse"), 1000) // 8000 bytes: the last read is short
	if err := os.WriteFile(filepath.Join(src, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	pfs, err := passthrough.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := newModelEnv(t, envOptions{fs: pfs, ring: ring.Options{FileIO: true, FileIOAlways: true}})
	rep, _ := env.do(0, kmodel.Lookup(wire.FUSE_ROOT_ID, "f"))
	if rep.Error != 0 {
		t.Fatalf("LOOKUP: %v", rep.Error)
	}
	node := rep.Entry().NodeID
	rep, _ = env.do(0, kmodel.Open(node, syscall.O_RDWR))
	if rep.Error != 0 {
		t.Fatalf("OPEN: %v", rep.Error)
	}
	fh := rep.Open().Fh
	if rep, c := env.do(0, kmodel.Write(node, fh, 8, []byte("RINGFUSE"))); rep.Error != 0 || c.psz != wire.SizeofWriteOut {
		t.Fatalf("WRITE: %v, commit %+v", rep.Error, c)
	}
	copy(data[8:], "RINGFUSE")
	var got []byte
	for off := 0; ; off += 4096 {
		rep, _ := env.do(0, kmodel.Read(node, fh, uint64(off), 4096))
		if rep.Error != 0 {
			t.Fatalf("READ at %d: %v", off, rep.Error)
		}
		got = append(got, rep.Out...)
		if len(rep.Out) < 4096 {
			break
		}
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes, want the %d written", len(got), len(data))
	}
	if _, err := env.m.Do(0, kmodel.Release(node, fh)); err != nil {
		t.Fatal(err)
	}
	tp := env.tap(0)
	tp.mu.Lock()
	started := tp.ioStarted
	tp.mu.Unlock()
	if cs := env.ch.Stats(); cs.FileIO != 3 || started != 3 {
		t.Errorf("%d requests served with reads and writes on the ring, %d started; want 3 (a WRITE, two READs)", cs.FileIO, started)
	}
}
