// Package model registers the forget study's model policies: the real
// server, /dev/fuse channel and io_uring channel, unchanged, run against
// the in-process kernel model (package kmodel), so that the proposed 7.46
// patch "fuse: optional FORGET delivery over io_uring" and designs it does
// not have can be compared on a kernel without the patch.
//
// Each run:
//
//  1. starts a kmodel connection with one queue per possible CPU, the ring
//     channel with Params.QueueDepth entries per queue and the /dev/fuse
//     channel, and an in-memory filesystem of Params.Inodes empty files and
//     one data file (capped at [MaxInodes]);
//  2. opens the data file on every CPU (the readers' file, never evicted:
//     it is the live-node baseline) and looks every storm file up once,
//     spread over the CPUs;
//  3. starts one reader per CPU issuing 4k READs at random offsets of the
//     data file back to back through kmodel (Conn.Do, as kmodel.Drive's
//     clients do; the study issues them itself to time-stamp every read
//     and cut latency windows) for [BaselineWindow], then [StormDelay];
//  4. evicts every storm node (kmodel Conn.EvictAll, the model's
//     drop_caches: one forget per node, spread over the CPUs' queues by
//     node ID) while the readers keep reading, polls the server's live
//     nodes every millisecond until they are back at the baseline, and
//     keeps reading [Tail] longer.
//
// Latencies and times are model time: wall-clock time of goroutines
// standing in for the kernel, on the machine running the study. They
// compare model policies with each other, not with a real kernel.
package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"ringfuse/channel/devfuse"
	"ringfuse/channel/ring"
	"ringfuse/forgetstudy"
	"ringfuse/kmodel"
	"ringfuse/server"
	"ringfuse/wire"
)

// Names of the model policies.
const (
	NameDevFuse      = "model-devfuse"
	NamePatchV3      = "model-patch-v3"
	NameBatchedEntry = "model-batched-entry"
	NameEntryCap     = "model-entry-cap"
	NameBatchedCap   = "model-batched-capped"
)

// Names lists the model policies in registration order.
var Names = []string{NameDevFuse, NamePatchV3, NameBatchedEntry, NameEntryCap, NameBatchedCap}

// Settings of the model runs.
const (
	// BatchK is model-batched-entry's ForgetBatchOnRing: forgets per
	// BATCH_FORGET in one ring entry.
	BatchK = 64
	// EntryCap is model-entry-cap's ForgetEntryCap: entries of a queue
	// that may hold forgets at once.
	EntryCap = 1
	// MaxInodes caps Params.Inodes for model runs.
	MaxInodes = 1_000_000
	// BaselineWindow is the reading before the storm run's pre-trigger
	// window (Params.Baseline, at most this).
	BaselineWindow = 500 * time.Millisecond
	// StormDelay is the reading between the baseline window and the
	// eviction (Params.StormDelay, at most this).
	StormDelay = 200 * time.Millisecond
	// Tail is how long the readers go on after the drain.
	Tail = 100 * time.Millisecond
)

// Policy is one model policy: a kmodel configuration and the server's
// opt-in.
type Policy struct {
	name, desc string
	patched    bool // kmodel Config.Patched
	optIn      bool // ring.Options.ForgetCommit
	batch      int  // kmodel Config.ForgetBatchOnRing
	entryCap   int  // kmodel Config.ForgetEntryCap
}

// Name implements forgetstudy.Policy.
func (p Policy) Name() string { return p.name }

// Kind implements forgetstudy.Policy.
func (p Policy) Kind() string { return forgetstudy.KindModel }

// Description implements forgetstudy.Describer.
func (p Policy) Description() string { return p.desc }

// Policies returns the model policies.
func Policies() []Policy {
	return []Policy{
		{name: NameDevFuse, desc: "kmodel of 6.18 (unpatched): reads on the ring, forgets batched on /dev/fuse (BATCH_FORGET, 16:8 fairness)"},
		{name: NamePatchV3, patched: true, optIn: true, desc: "kmodel with the 7.46 patch v3 and FORGET_COMMIT: one FORGET per ring entry, held until committed"},
		{name: NameBatchedEntry, patched: true, optIn: true, batch: BatchK, desc: "kmodel, patched, one BATCH_FORGET of up to " + strconv.Itoa(BatchK) + " forgets per ring entry (not in the patch)"},
		{name: NameEntryCap, patched: true, optIn: true, entryCap: EntryCap, desc: "kmodel, patched, at most " + strconv.Itoa(EntryCap) + " entry per queue holds forgets, the rest go to /dev/fuse (not in the patch)"},
		{name: NameBatchedCap, patched: true, optIn: true, batch: BatchK, entryCap: EntryCap, desc: "kmodel, patched, BATCH_FORGETs of up to " + strconv.Itoa(BatchK) + " in at most " + strconv.Itoa(EntryCap) + " entry per queue; the rest wait and batch up (not in the patch)"},
	}
}

func init() {
	for _, p := range Policies() {
		forgetstudy.Register(p)
	}
}

// possibleCPUs counts /sys/devices/system/cpu/possible, as the ring
// channel does: the model needs as many queues as the channel makes.
func possibleCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for part := range strings.SplitSeq(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		z, err2 := a, error(nil)
		if isRange {
			z, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil {
			return runtime.NumCPU()
		}
		n += z - a + 1
	}
	return max(n, 1)
}

// rig is the server and channels running against one model connection.
type rig struct {
	m     *kmodel.Conn
	srv   *server.Server
	ch    *ring.Channel
	serve chan error
	nq    int
}

func (p Policy) start(ctx context.Context, fsys *memFS, depth int) (*rig, error) {
	nq := possibleCPUs()
	m, err := kmodel.New(kmodel.Config{NrQueues: nq, Patched: p.patched, ForgetBatchOnRing: p.batch, ForgetEntryCap: p.entryCap})
	if err != nil {
		return nil, err
	}
	r := &rig{m: m, serve: make(chan error, 1), nq: nq}
	r.ch = ring.New(-1, &ring.Options{NewRing: m.NewRing, Queues: nq, QueueDepth: depth, ForgetCommit: p.optIn, NoAffinity: true})
	r.srv = server.New(fsys, &server.Options{Transport: r.ch, ErrorLog: log.New(io.Discard, "", 0)})
	go func() { r.serve <- devfuse.Serve(r.srv, m.Dev(), &devfuse.Options{Readers: 2}) }()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for _, c := range []<-chan struct{}{r.srv.Initialized(), m.Ready()} {
		select {
		case <-c:
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case <-t.C:
			r.stop()
			return nil, fmt.Errorf("model: INIT or ring not ready in 10s (channel err %v)", r.ch.Err())
		}
	}
	return r, nil
}

// stop unmounts the model connection and waits for the channels.
func (r *rig) stop() error {
	r.m.Unmount()
	var err error
	select {
	case err = <-r.serve:
		if errors.Is(err, devfuse.ErrAborted) {
			err = nil
		}
	case <-time.After(10 * time.Second):
		err = errors.New("model: devfuse.Serve did not return after unmount")
	}
	r.ch.Stop()
	return err
}

// reader is one simulated task reading the data file on its CPU.
type reader struct {
	cpu  int
	node uint64
	fh   uint64
	ios  []forgetstudy.IO
}

// Run implements forgetstudy.Policy.
func (p Policy) Run(ctx context.Context, prm forgetstudy.Params) (res forgetstudy.Result, err error) {
	n := prm.Inodes
	if n > MaxInodes {
		res.Notes = append(res.Notes, fmt.Sprintf("model capped at %d inodes (asked %d)", MaxInodes, n))
		n = MaxInodes
	}
	res.Inodes = n
	bs := prm.Read.BlockSize
	size := min(prm.Read.FileSize, 16<<20) // the model keeps the file in memory
	fsys := newMemFS(n, size)
	r, err := p.start(ctx, fsys, prm.QueueDepth)
	if err != nil {
		return res, err
	}
	defer func() {
		if e := r.stop(); e != nil && err == nil {
			err = e
		}
	}()
	m, srv := r.m, r.srv

	// The readers' file, open on every CPU: never evicted.
	readers := make([]*reader, r.nq)
	for cpu := range r.nq {
		rep, err := m.Do(cpu, kmodel.Lookup(wire.FUSE_ROOT_ID, "data"))
		if err != nil {
			return res, fmt.Errorf("lookup data: %w", err)
		}
		node := rep.Entry().NodeID
		if rep, err = m.Do(cpu, kmodel.Open(node, syscall.O_RDONLY)); err != nil {
			return res, fmt.Errorf("open data: %w", err)
		}
		readers[cpu] = &reader{cpu: cpu, node: node, fh: rep.Open().Fh}
	}
	res.BaseNodes = srv.NodesAlive()

	// Instantiate: every storm file looked up once, from all CPUs.
	t0 := time.Now()
	var wg sync.WaitGroup
	var lookupErr atomic.Value
	for cpu := range r.nq {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := cpu; i < n; i += r.nq {
				if _, err := m.Do(cpu, kmodel.Lookup(wire.FUSE_ROOT_ID, fileName(i))); err != nil {
					lookupErr.CompareAndSwap(nil, fmt.Errorf("lookup %s: %w", fileName(i), err))
					return
				}
				if i%8192 == 0 && ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if e, _ := lookupErr.Load().(error); e != nil {
		return res, e
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.InstantiateTime = time.Since(t0)
	res.PreNodes = srv.NodesAlive()
	res.Instantiated = res.PreNodes - res.BaseNodes
	prm.Logf("instantiated %d nodes in %v", res.Instantiated, res.InstantiateTime.Round(time.Millisecond))

	// Readers.
	stopRead := make(chan struct{})
	done := stopRead // the readers' copy: endReads clears stopRead
	var readErr atomic.Value
	start := time.Now()
	for _, rd := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(rd.cpu), 46))
			out := make([]byte, bs+4096)
			blocks := max(size/int64(bs), 1)
			rd.ios = make([]forgetstudy.IO, 0, 1<<16)
			for {
				select {
				case <-done:
					return
				default:
				}
				req := kmodel.Read(rd.node, rd.fh, uint64(rng.Int64N(blocks))*uint64(bs), uint32(bs))
				req.Out = out
				a := time.Now()
				_, err := m.Do(rd.cpu, req)
				b := time.Now()
				if err != nil {
					readErr.CompareAndSwap(nil, fmt.Errorf("read on CPU %d: %w", rd.cpu, err))
					return
				}
				rd.ios = append(rd.ios, forgetstudy.IO{T: b.UnixNano(), Lat: b.Sub(a)})
			}
		}()
	}
	endReads := func() {
		if stopRead != nil {
			close(stopRead)
			stopRead = nil
			wg.Wait()
		}
	}
	defer endReads()
	baseWin := min(prm.Baseline, BaselineWindow)
	delay := min(prm.StormDelay, StormDelay)
	if !sleep(ctx, baseWin) {
		return res, ctx.Err()
	}
	preAt := time.Now()
	if !sleep(ctx, delay) {
		return res, ctx.Err()
	}

	// The storm.
	before := srv.Stats()
	ringBefore := r.ch.Stats()
	mBefore := m.Stats()
	trigger := time.Now()
	evicted := m.EvictAll(nil)
	res.DropCaches = time.Since(trigger)
	prm.Logf("evicted %d nodes in %v", evicted, res.DropCaches.Round(time.Microsecond))

	// Poll the live nodes every millisecond, sample every 10 ms.
	var (
		first, last time.Duration = -1, -1
		prevNodes                 = res.PreNodes
		series      []forgetstudy.Sample
		nextSample  time.Time
		mDrain      kmodel.Stats
	)
	res.NodeSeries = append(res.NodeSeries, forgetstudy.NodePoint{T: 0, Nodes: prevNodes})
	deadline := trigger.Add(prm.DrainTimeout)
	tick := time.NewTicker(time.Millisecond)
	for {
		now := time.Now()
		nodes := srv.NodesAlive()
		t := now.Sub(trigger)
		if nodes != prevNodes {
			if first < 0 {
				first = t
			}
			last = t
			prevNodes = nodes
			res.NodeSeries = append(res.NodeSeries, forgetstudy.NodePoint{T: t, Nodes: nodes})
		}
		if !now.Before(nextSample) {
			series = append(series, forgetstudy.Sample{T: t, Nodes: nodes, Forgets: totalForgets(srv.Stats()) - totalForgets(before)})
			nextSample = now.Add(10 * time.Millisecond)
		}
		if nodes <= res.BaseNodes {
			res.Drained, res.Drain = true, t
			break
		}
		if now.After(deadline) || ctx.Err() != nil {
			res.Drain = prm.DrainTimeout
			res.Notes = append(res.Notes, fmt.Sprintf("live nodes did not return to %d within %v (%d left)", res.BaseNodes, prm.DrainTimeout, nodes))
			break
		}
		if e, _ := readErr.Load().(error); e != nil {
			tick.Stop()
			return res, e
		}
		<-tick.C
	}
	tick.Stop()
	mDrain = m.Stats()
	after := srv.Stats()
	ringAfter := r.ch.Stats()
	drainAt := time.Now()
	res.FirstForget, res.LastForget = max(first, 0), max(last, 0)
	res.Series = series
	sleep(ctx, Tail)
	// The server applies a batch's forgets before the next submit sends
	// their entries' commits, so the live nodes can reach the baseline
	// with the last commits still unsent: count commits after Tail.
	mEnd := m.Stats()
	endReads()
	if e, _ := readErr.Load().(error); e != nil {
		return res, e
	}
	res.EndNodes = srv.NodesAlive()

	// Forgets and their transport.
	res.Forgets = totalForgets(after) - totalForgets(before)
	res.ForgetUnknown = after.ForgetUnknown - before.ForgetUnknown
	if d := after.Channels["devfuse"]; d != nil {
		b := chanStats(before, "devfuse")
		res.SingleForgets = d.Requests[wire.FUSE_FORGET.String()] - b.Requests[wire.FUSE_FORGET.String()]
		res.BatchForgets = d.Requests[wire.FUSE_BATCH_FORGET.String()] - b.Requests[wire.FUSE_BATCH_FORGET.String()]
		res.DevForgetMsgs = res.SingleForgets + res.BatchForgets
		addBatches(&res.Batches, d.ForgetBatches[:], b.ForgetBatches[:])
	}
	if u := after.Channels["uring"]; u != nil {
		addBatches(&res.Batches, u.ForgetBatches[:], chanStats(before, "uring").ForgetBatches[:])
	}
	res.RingForgets = ringAfter.Forgets - ringBefore.Forgets
	res.RingForgetMsgs = ringAfter.ForgetMsgs - ringBefore.ForgetMsgs
	var heldArea float64
	for i, q := range mDrain.Queues {
		qb := queueStats(mBefore, i)
		heldArea += q.ForgetHeldSeconds - qb.ForgetHeldSeconds
		res.EntriesHeldMax = max(res.EntriesHeldMax, float64(q.ForgetHeldMax))
	}
	for i, q := range mEnd.Queues {
		qb := queueStats(mBefore, i)
		// The kernel posts one CQE per forget message it delivers into
		// an entry, and the server sends one COMMIT_AND_FETCH for it.
		res.RingCQEs += q.ForgetMsgs - qb.ForgetMsgs
		res.RingCommits += q.ForgetCommits - qb.ForgetCommits
		if q.ForgetBadCommits != qb.ForgetBadCommits {
			res.Notes = append(res.Notes, fmt.Sprintf("queue %d: %d forget commits with a non-empty reply", i, q.ForgetBadCommits-qb.ForgetBadCommits))
		}
	}
	if span := drainAt.Sub(trigger).Seconds(); span > 0 && len(mDrain.Queues) > 0 {
		res.EntriesHeldMean = heldArea / span / float64(len(mDrain.Queues))
	}
	// Syscalls: one read(2) per /dev/fuse forget message, and one
	// COMMIT_AND_FETCH per ring forget message, counted as one
	// submit-and-wait each (an upper bound: the channel may submit
	// several commits in one io_uring_enter).
	res.RingEnters, res.RingEntersKnown = res.RingCommits, true
	res.Notes = append(res.Notes, fmt.Sprintf("model: %d queues of depth %d; entries held are per queue (mean over trigger→drain, max over queues); ring syscalls counted as one per forget commit; the ring made %d submit-and-wait calls in all (reads included) during the storm",
		r.nq, prm.QueueDepth, ringAfter.Enters-ringBefore.Enters))
	if s := mDrain.ForgetsSpilled - mBefore.ForgetsSpilled; s > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d forgets spilled to /dev/fuse by the entry cap", s))
	}
	if q, dlv := mDrain.ForgetsQueued-mBefore.ForgetsQueued, mDrain.ForgetsDelivered-mBefore.ForgetsDelivered; q != dlv || q != uint64(evicted) {
		res.Notes = append(res.Notes, fmt.Sprintf("model queued %d forgets and delivered %d for %d evictions", q, dlv, evicted))
	}
	if res.LastForget > 0 {
		res.ForgetsPerSec = float64(res.Forgets) / res.LastForget.Seconds()
	}

	// Reads.
	var ios []forgetstudy.IO
	for _, rd := range readers {
		ios = append(ios, rd.ios...)
	}
	slices.SortFunc(ios, func(a, b forgetstudy.IO) int {
		switch {
		case a.T < b.T:
			return -1
		case a.T > b.T:
			return 1
		}
		return 0
	})
	st, pre, trig := start.UnixNano(), preAt.UnixNano(), trigger.UnixNano()
	end := drainAt.Add(Tail).UnixNano()
	res.Baseline = forgetstudy.Window(ios, st, pre)
	res.BaselineIOPS = res.Baseline.IOPS
	res.PreStorm = forgetstudy.Window(ios, pre, trig)
	res.Storm100ms = forgetstudy.Window(ios, trig, trig+int64(100*time.Millisecond))
	// The readers stop Tail after the drain: the first-1 s window ends
	// there if that is sooner.
	res.Storm1s = forgetstudy.Window(ios, trig, min(trig+int64(time.Second), end))
	res.StormWhole = forgetstudy.Window(ios, trig, max(drainAt.UnixNano(), trig+int64(time.Millisecond)))
	res.StormIOPS = res.StormWhole.IOPS
	res.Forgetting = forgetstudy.Window(ios, trig+int64(res.FirstForget), trig+int64(res.LastForget)+int64(time.Millisecond))
	res.LatSeries = forgetstudy.WindowSeries(ios, trig, pre, end, 10*time.Millisecond)

	// Release the readers' file.
	for _, rd := range readers {
		m.Do(rd.cpu, kmodel.Flush(rd.node, rd.fh))
		m.Do(rd.cpu, kmodel.Release(rd.node, rd.fh))
	}
	return res, nil
}

// queueStats returns queue i's counters in st, zero if st has no queue i.
func queueStats(st kmodel.Stats, i int) kmodel.QueueStats {
	if i < len(st.Queues) {
		return st.Queues[i]
	}
	return kmodel.QueueStats{}
}

func chanStats(st server.Stats, name string) *server.ChannelStats {
	if c := st.Channels[name]; c != nil {
		return c
	}
	return &server.ChannelStats{}
}

func addBatches(h *forgetstudy.Histogram, now, before []uint64) {
	for i := range now {
		d := now[i]
		if i < len(before) {
			d -= before[i]
		}
		h[min(i, forgetstudy.HistogramBuckets-1)] += d
	}
}

func totalForgets(st server.Stats) uint64 {
	var n uint64
	for _, c := range st.Channels {
		n += c.Forgets
	}
	return n
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
