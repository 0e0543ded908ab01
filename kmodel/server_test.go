package kmodel_test

// The real server, /dev/fuse channel and ring channel, unchanged, against
// the model. Tests whose name says Patched run a path only the model has
// (the 7.46 FORGET routing); TestFault* inject faults.

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/channel/devfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/kmodel"
	"github.com/ringfuse/ringfuse/wire"
)

// lookupEverywhere looks every file up once from every CPU and returns the
// node IDs.
func lookupEverywhere(r *rig, names []string) []uint64 {
	nq := r.m.Config().NrQueues
	ids := make([]uint64, len(names))
	for cpu := range nq {
		for i, n := range names {
			ids[i] = r.lookup(cpu, n)
		}
	}
	return ids
}

func TestServeBothChannels(t *testing.T) {
	r := startRig(t, rigOptions{ring: &ring.Options{QueueDepth: 2}})
	nq := r.m.Config().NrQueues
	for cpu := range nq {
		rep, err := r.m.Do(cpu, kmodel.Lookup(wire.FUSE_ROOT_ID, "f00001"))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Channel != kmodel.ChannelRing || rep.Queue != cpu {
			t.Errorf("CPU %d: request went to %s queue %d", cpu, rep.Channel, rep.Queue)
		}
		id := rep.Entry().NodeID
		if rep, err = r.m.Do(cpu, kmodel.Open(id, syscall.O_RDWR)); err != nil {
			t.Fatal(err)
		}
		fh := rep.Open().Fh
		data := []byte("hello, model")
		if rep, err = r.m.Do(cpu, kmodel.Write(id, fh, 0, data)); err != nil {
			t.Fatal(err)
		}
		if rep, err = r.m.Do(cpu, kmodel.Read(id, fh, 0, 4096)); err != nil {
			t.Fatal(err)
		}
		if string(rep.Out[:len(data)]) != string(data) || len(rep.Out) != 4096 {
			t.Errorf("read back %d bytes %q", len(rep.Out), rep.Out[:min(len(rep.Out), 16)])
		}
		if _, err := r.m.Do(cpu, kmodel.Lookup(wire.FUSE_ROOT_ID, "missing")); err != syscall.ENOENT {
			t.Errorf("lookup missing: %v", err)
		}
		if _, err := r.m.Do(cpu, kmodel.Release(id, fh)); err != nil {
			t.Fatal(err)
		}
	}
	// READDIRPLUS counts a lookup of every entry.
	rep, err := r.m.Do(0, kmodel.Opendir(wire.FUSE_ROOT_ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.m.Do(0, kmodel.Readdir(wire.FUSE_ROOT_ID, rep.Open().Fh, 0, 1<<16, true)); err != nil {
		t.Fatal(err)
	}
	checkAccounting(t, r.m, r.srv)
	st := r.srv.Stats()
	if st.Requests("uring", "LOOKUP") == 0 || st.Requests("devfuse", "INIT") != 1 {
		t.Errorf("server stats: uring %+v, devfuse %+v", st.Channels["uring"], st.Channels["devfuse"])
	}
	r.m.EvictAll(0)
	if !waitForgets(r.m) {
		t.Fatal("forgets did not drain")
	}
	eventually(t, "no live nodes", func() bool { return r.srv.NodesAlive() == 0 })
	checkAccounting(t, r.m, r.srv)
}

// (a) An opted-in server on a Patched model gets its forgets on the ring,
// commits each with an empty reply, and ends with no live node.
func TestPatchedForgetOnRing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy kmodel.Config
	}{
		{"patch", kmodel.Config{}},
		{"batch8", kmodel.Config{UringForgetBatch: true}},
		{"cap1", kmodel.Config{UringForgetCap: 1}},
		{"batch8cap1", kmodel.Config{UringForgetBatch: true, UringForgetCap: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.policy
			cfg.Patched = true
			r := startRig(t, rigOptions{model: cfg, ring: &ring.Options{QueueDepth: 4, ForgetCommit: true}})
			names := fileNames(64)
			ids := lookupEverywhere(r, names)
			nq := r.m.Config().NrQueues
			for _, id := range ids {
				if got := r.srv.Lookups(id); got != uint64(nq) {
					t.Fatalf("node %d: %d lookups, want %d", id, got, nq)
				}
			}
			n := r.m.EvictAll(0)
			if n != len(names) {
				t.Fatalf("evicted %d nodes, want %d", n, len(names))
			}
			if !waitForgets(r.m) {
				t.Fatalf("forgets did not drain: %+v", r.m.Stats())
			}
			eventually(t, "no live nodes", func() bool { return r.srv.NodesAlive() == 0 })
			for _, id := range ids {
				if got := r.srv.Lookups(id); got != 0 {
					t.Errorf("node %d: server still holds %d lookups", id, got)
				}
			}
			if got := r.fs.forgets.Load(); got != int64(len(names)) {
				t.Errorf("filesystem told of %d forgotten nodes, want %d", got, len(names))
			}
			ms := r.m.Stats()
			st := r.srv.Stats()
			uring, dev := st.Channels["uring"], st.Channels["devfuse"]
			if uring == nil || uring.Forgets != uint64(len(names)) || dev.Forgets != 0 {
				t.Errorf("forgets: uring %+v, devfuse %+v", uring, dev)
			}
			var msgs, commits uint64
			for _, q := range ms.Queues {
				msgs += q.ForgetMsgs
				commits += q.ForgetCommits
				if q.ForgetBadCommits != 0 {
					t.Errorf("queue %d: %d forget commits with a non-empty reply", q.Qid, q.ForgetBadCommits)
				}
				if q.ForgetHeld != 0 {
					t.Errorf("queue %d: %d entries still hold forgets", q.Qid, q.ForgetHeld)
				}
				if cp := tc.policy.UringForgetCap; cp > 0 && q.ForgetHeldMax > cp {
					t.Errorf("queue %d: %d entries held forgets at once, cap %d", q.Qid, q.ForgetHeldMax, cp)
				}
			}
			if msgs == 0 || msgs != commits {
				t.Errorf("%d forget messages on the ring, %d committed", msgs, commits)
			}
			if cs := r.ch.Stats(); cs.Forgets != uint64(len(names)) || cs.ForgetErrors != 0 {
				t.Errorf("ring channel: %+v", cs)
			}
			checkAccounting(t, r.m, r.srv)
		})
	}
}

// (b) A server that does not opt in gets its forgets on /dev/fuse while
// the ring is active, on a Patched model as on 6.18; and on 6.18 the
// opt-in flag changes nothing.
func TestForgetOnDevWithRing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		patched bool
		optIn   bool
	}{
		{"Patched/no-opt-in", true, false},
		{"6.18/opt-in", false, true},
		{"6.18/no-opt-in", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, rigOptions{model: kmodel.Config{Patched: tc.patched}, ring: &ring.Options{QueueDepth: 4, ForgetCommit: tc.optIn}})
			names := fileNames(64)
			lookupEverywhere(r, names)
			r.m.EvictAll(0)
			if !waitForgets(r.m) {
				t.Fatal("forgets did not drain")
			}
			eventually(t, "no live nodes", func() bool { return r.srv.NodesAlive() == 0 })
			st := r.srv.Stats()
			dev, uring := st.Channels["devfuse"], st.Channels["uring"]
			if dev.Forgets != uint64(len(names)) {
				t.Errorf("devfuse forgets %d, want %d", dev.Forgets, len(names))
			}
			if uring == nil || uring.Forgets != 0 || uring.ForgetMsgs != 0 || uring.Requests["LOOKUP"] == 0 {
				t.Errorf("uring: %+v", uring)
			}
			ms := r.m.Stats()
			if ms.ForgetsToRing != 0 || ms.Dev.Forgets != uint64(len(names)) {
				t.Errorf("model: %+v", ms)
			}
			checkAccounting(t, r.m, r.srv)
		})
	}
}

// dropForgetCommits is a test-only QueueRing: it swallows the commit of
// every entry that carried a FORGET, as a server that opted in but never
// commits forgets would.
type dropForgetCommits struct {
	ring.QueueRing
	mu      sync.Mutex
	ents    map[int]*ring.Entry
	swallow map[int]bool
	dropped atomic.Int64
}

func (d *dropForgetCommits) Register(e *ring.Entry, flags uint64) error {
	d.mu.Lock()
	d.ents[e.Index] = e
	d.mu.Unlock()
	return d.QueueRing.Register(e, flags)
}

func (d *dropForgetCommits) Reap(dst []ring.Completion) int {
	n := d.QueueRing.Reap(dst)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range dst[:n] {
		if e := d.ents[c.Entry]; c.Res == 0 && e != nil {
			op := wire.View[wire.InHeader](e.Header.InOut[:]).Opcode
			d.swallow[c.Entry] = op == wire.FUSE_FORGET || op == wire.FUSE_BATCH_FORGET
		}
	}
	return n
}

func (d *dropForgetCommits) Commit(e *ring.Entry, commitID uint64) error {
	d.mu.Lock()
	drop := d.swallow[e.Index]
	d.swallow[e.Index] = false
	d.mu.Unlock()
	if drop {
		d.dropped.Add(1)
		return nil
	}
	return d.QueueRing.Commit(e, commitID)
}

// (c) A server that opts in but never commits forgets wedges its queue:
// after depth forgets from CPU q, a request from CPU q never completes,
// while another CPU's queue still serves. This is the hazard the opt-in
// flag exists to prevent.
func TestPatchedForgetWithoutCommitWedgesQueue(t *testing.T) {
	const depth = 3
	r := startRig(t, rigOptions{
		model: kmodel.Config{Patched: true, NrQueues: 2},
		ring:  &ring.Options{QueueDepth: depth, ForgetCommit: true},
		wrap: func(q ring.QueueRing, cfg ring.RingConfig) ring.QueueRing {
			return &dropForgetCommits{QueueRing: q, ents: map[int]*ring.Entry{}, swallow: map[int]bool{}}
		},
	})
	const q, other = 1, 0
	ids := make([]uint64, depth)
	for i := range ids {
		ids[i] = r.lookup(q, fileNames(depth)[i])
	}
	for _, id := range ids {
		r.m.Forget(q, id, 1)
	}
	eventually(t, "every entry of the queue to hold a forget", func() bool {
		return r.m.Stats().Queues[q].ForgetHeld == depth
	})
	stuck := r.m.Start(q, kmodel.Getattr(wire.FUSE_ROOT_ID))
	select {
	case <-stuck.Done():
		rep, err := stuck.Wait()
		t.Fatalf("a request on the wedged CPU %d completed: %+v %v", q, rep, err)
	case <-time.After(200 * time.Millisecond):
	}
	if rep, err := r.m.Do(other, kmodel.Getattr(wire.FUSE_ROOT_ID)); err != nil || rep.Queue != other {
		t.Fatalf("CPU %d: %+v %v", other, rep, err)
	}
	if st := r.m.Stats().Queues[q]; st.Backlog != 1 || st.States[kmodel.FRRS_USERSPACE] != depth {
		t.Errorf("queue %d: %+v", q, st)
	}
	// Unmount ends the stuck request.
	r.stop()
	if _, err := stuck.Wait(); err != syscall.ECONNABORTED {
		t.Errorf("stuck request after unmount: %v", err)
	}
}

// (d) A message whose in.len disagrees with what was delivered: the server
// answers an error, counts a decode error, and goes on.
func TestFaultTruncatedMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		ring *ring.Options
		ch   string
	}{
		{"devfuse", nil, "devfuse"},
		{"uring", &ring.Options{QueueDepth: 2}, "uring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, rigOptions{ring: tc.ring})
			var armed atomic.Bool
			r.m.SetFaults(kmodel.Faults{Truncate: func(op wire.Opcode, unique uint64) int {
				if op == wire.FUSE_LOOKUP && armed.CompareAndSwap(true, false) {
					return 1
				}
				return 0
			}})
			armed.Store(true)
			rep, err := r.m.Do(0, kmodel.Lookup(wire.FUSE_ROOT_ID, "f00003"))
			if err != syscall.EIO {
				t.Fatalf("truncated lookup: %+v %v, want EIO", rep, err)
			}
			if rep.Channel != tc.ch {
				t.Errorf("went over %s", rep.Channel)
			}
			if got := r.srv.Stats().Channels[tc.ch].DecodeErrors; got != 1 {
				t.Errorf("%d decode errors counted on %s", got, tc.ch)
			}
			r.lookup(0, "f00003") // the connection goes on
			checkAccounting(t, r.m, r.srv)
		})
	}
}

// corruptCommit is a test-only QueueRing that commits with a wrong commit
// id once armed.
type corruptCommit struct {
	ring.QueueRing
	armed *atomic.Bool
}

func (c *corruptCommit) Commit(e *ring.Entry, commitID uint64) error {
	if c.armed.CompareAndSwap(true, false) {
		commitID ^= 1 << 40
	}
	return c.QueueRing.Commit(e, commitID)
}

// (d) A commit with a wrong commit id gets -ENOENT: the entry is stranded
// with its request, the channel counts it, the queue's other entries go on.
func TestFaultWrongCommitID(t *testing.T) {
	var armed atomic.Bool
	r := startRig(t, rigOptions{
		ring: &ring.Options{QueueDepth: 2},
		wrap: func(q ring.QueueRing, cfg ring.RingConfig) ring.QueueRing {
			if cfg.Qid == 0 {
				return &corruptCommit{QueueRing: q, armed: &armed}
			}
			return q
		},
	})
	armed.Store(true)
	stranded := r.m.Start(0, kmodel.Getattr(wire.FUSE_ROOT_ID))
	eventually(t, "the channel to count a stranded entry", func() bool { return r.ch.Stats().Stranded == 1 })
	st := r.m.Stats().Queues[0]
	if st.CommitErrors != 1 || st.States[kmodel.FRRS_USERSPACE] != 1 {
		t.Errorf("queue 0: %+v", st)
	}
	select {
	case <-stranded.Done():
		t.Fatal("the request of a stranded entry completed")
	case <-time.After(50 * time.Millisecond):
	}
	for range 4 { // the other entry still serves
		if _, err := r.m.Do(0, kmodel.Getattr(wire.FUSE_ROOT_ID)); err != nil {
			t.Fatal(err)
		}
	}
	r.stop()
	if _, err := stranded.Wait(); err != syscall.ECONNABORTED {
		t.Errorf("stranded request after unmount: %v", err)
	}
}

// (d) An abort in the middle of a forget storm: every goroutine ends, no
// handler panics, and the server holds exactly the lookups the kernel told
// it of (the forgets dropped by the abort never reached it).
func TestFaultAbortDuringForgetStorm(t *testing.T) {
	for _, tc := range []struct {
		name    string
		patched bool
		optIn   bool
		policy  kmodel.Config
	}{
		{"devfuse", false, false, kmodel.Config{}},
		{"Patched", true, true, kmodel.Config{}},
		{"Patched/batch16", true, true, kmodel.Config{UringForgetBatch: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.policy
			cfg.Patched = tc.patched
			const files = 2000
			r := startRig(t, rigOptions{
				model: cfg,
				fs:    newMemFS(0, fileNames(files)...),
				ring:  &ring.Options{QueueDepth: 4, ForgetCommit: tc.optIn},
			})
			ids := lookupEverywhere(r, fileNames(files))
			nq := r.m.Config().NrQueues
			storm := make(chan struct{})
			go func() {
				defer close(storm)
				for i, id := range ids {
					if i == files/2 {
						r.m.Abort() // the rest of the storm finds the connection gone
					}
					r.m.Evict(i%nq, id)
					if i%64 == 0 {
						time.Sleep(50 * time.Microsecond) // let the server drain some
					}
				}
			}()
			<-storm
			if err := r.wait(); !errors.Is(err, devfuse.ErrAborted) {
				t.Errorf("devfuse.Serve after abort: %v", err)
			}
			select {
			case <-r.ch.Done(): // every entry ended by itself
			case <-time.After(10 * time.Second):
				t.Fatalf("ring channel did not end after the abort: %+v", r.ch.Stats())
			}
			ms := r.m.Stats()
			t.Logf("forgets queued %d, delivered %d, dropped %d", ms.ForgetsQueued, ms.ForgetsDelivered, ms.ForgetsDropped)
			if ms.ForgetsQueued != files/2 || ms.ForgetsQueued != ms.ForgetsDelivered+ms.ForgetsDropped || ms.ForgetsOutstanding != 0 {
				t.Errorf("model: %+v", ms)
			}
			checkAccounting(t, r.m, r.srv)
			if _, err := r.m.Do(0, kmodel.Getattr(wire.FUSE_ROOT_ID)); err != syscall.ENOTCONN {
				t.Errorf("request after abort: %v", err)
			}
		})
	}
}

// endBeforeCommit ends the connection, the first time it is armed, just
// before the queue submits the commit of the reply it has served, so that
// the kernel refuses that commit.
type endBeforeCommit struct {
	ring.QueueRing
	armed *atomic.Bool
	end   func()
}

func (c *endBeforeCommit) Commit(e *ring.Entry, commitID uint64) error {
	if c.armed.CompareAndSwap(true, false) {
		c.end()
	}
	return c.QueueRing.Commit(e, commitID)
}

// (d) A reply whose commit the kernel refuses because the connection ended
// first. After an abort the kernel says so (-ECONNABORTED) and the server
// gives back the lookup and the open handle of a CREATE. After an unmount
// it answers -ENOTCONN, as it does to the cancelled fetch of a commit it
// took: the server keeps the lookup, which the model counts as unsettled.
func TestFaultCommitAfterEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		abort bool
	}{{"abort", true}, {"unmount", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var armed atomic.Bool
			var m *kmodel.Conn
			end := func() {
				if tc.abort {
					m.Abort()
				} else {
					m.Unmount()
				}
			}
			fsys := newMemFS(0)
			r := startRig(t, rigOptions{
				fs:   fsys,
				ring: &ring.Options{QueueDepth: 2},
				wrap: func(q ring.QueueRing, cfg ring.RingConfig) ring.QueueRing {
					return &endBeforeCommit{QueueRing: q, armed: &armed, end: end}
				},
			})
			m = r.m
			armed.Store(true)
			_, err := r.m.Do(0, kmodel.Create(wire.FUSE_ROOT_ID, "new", syscall.O_RDWR, 0o644))
			if err != syscall.ECONNABORTED {
				t.Fatalf("CREATE across the end: %v, want ECONNABORTED", err)
			}
			if err := r.wait(); err != nil && !errors.Is(err, devfuse.ErrAborted) {
				t.Fatalf("devfuse.Serve: %v", err)
			}
			select {
			case <-r.ch.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the ring channel did not stop")
			}
			st := r.ch.Stats()
			ids := r.m.Nodes()
			var unsettled uint64
			for _, id := range ids {
				unsettled += r.m.UnsettledLookups(id)
				if n := r.m.ServerLookups(id); n != 0 {
					t.Errorf("node %d: the kernel took %d lookups of a refused reply", id, n)
				}
			}
			if tc.abort {
				if st.Refused != 1 || st.Unsettled != 0 || unsettled != 0 || r.srv.NodesAlive() != 0 || fsys.releases.Load() != 1 {
					t.Errorf("abort: %d refused, %d unsettled (model %d), %d nodes alive, %d releases; want 1, 0, 0, 0, 1",
						st.Refused, st.Unsettled, unsettled, r.srv.NodesAlive(), fsys.releases.Load())
				}
			} else if st.Refused != 0 || st.Unsettled != 1 || unsettled != 1 || r.srv.NodesAlive() != 1 || fsys.releases.Load() != 0 {
				t.Errorf("unmount: %d refused, %d unsettled (model %d), %d nodes alive, %d releases; want 0, 1, 1, 1, 0",
					st.Refused, st.Unsettled, unsettled, r.srv.NodesAlive(), fsys.releases.Load())
			}
			checkEndedAccounting(t, r.m, r.srv)
		})
	}
}
