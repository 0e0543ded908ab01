// Package model registers the forget study's model policies: the real
// server, /dev/fuse channel and io_uring channel, unchanged, run against
// the in-process kernel model (package kmodel), so that the proposed 7.46
// patch "fuse: optional FORGET delivery over io_uring" and designs it does
// not have can be compared on a kernel without the patch.
//
// Each run:
//
//  1. starts a kmodel connection with one queue per modelled CPU
//     (Params.ModelCPUs, else the possible CPUs), the /dev/fuse channel
//     and, but for model-devfuse, the ring channel with Params.QueueDepth
//     entries per queue, and an in-memory filesystem of Params.Inodes
//     empty files and one data file (capped at [MaxInodes]);
//  2. opens the data file on every CPU (the readers' file, never evicted:
//     it is the live-node baseline) and looks every storm file up once,
//     spread over the CPUs;
//  3. starts Params.Read.Depth readers per CPU, each issuing 4k READs at
//     random offsets of the data file back to back through kmodel
//     (Conn.Do; the study time-stamps every read at issue to cut latency
//     windows) for [BaselineWindow], then [StormDelay];
//  4. evicts every storm node as drop_caches does: one task, on CPU 0, at
//     kmodel.DefaultEvictRate (kmodel Conn.EvictStorm), so that on a
//     patched kernel every forget goes to queue 0, while the readers keep
//     reading; polls the server's live nodes every millisecond until they
//     are back at the baseline, and keeps reading [Tail] longer.
//
// Latencies and times are model time: wall-clock time of goroutines
// standing in for the kernel, on the machine running the study. They
// compare model policies with each other, not with a real kernel; counts
// (messages, CQEs, commits, io_uring_enter calls per forget, entries
// held) are what the model is for.
package model

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringfuse/ringfuse/channel/devfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/forgetstudy"
	"github.com/ringfuse/ringfuse/kmodel"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// Names of the model policies.
const (
	NameDevFuse               = "model-devfuse"
	NameUringForgetsOnDevFuse = "model-uring-forgets-on-devfuse"
	NamePatchV3               = "model-patch-v3"
	NameBatched               = "model-batched"
	NameCapped                = "model-capped"
	NameBatchedCap            = "model-batched-capped"
	NameHeldBack              = "model-held-back"
	NameSmallEnts             = "model-small-ents"
)

// Names lists the model policies in the order of Policies.
var Names = []string{NameDevFuse, NameUringForgetsOnDevFuse, NamePatchV3, NameBatched, NameCapped, NameBatchedCap, NameHeldBack, NameSmallEnts}

// Settings of the model runs.
const (
	// EntryCap is the uring_forget_cap of model-capped and
	// model-batched-capped: entries of a queue that may hold forgets at
	// once.
	EntryCap = 1
	// HoldThreshold and HoldDelay are model-held-back's
	// uring_forget_threshold and uring_forget_delay_ms.
	HoldThreshold = 256
	HoldDelay     = 10 * time.Millisecond
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

// Policy is one model policy: a kmodel configuration (the series' module
// parameters, kernel/SERIES.md) and the server's opt-in.
type Policy struct {
	name, desc string
	noRing     bool          // serve over /dev/fuse alone
	patched    bool          // kmodel Config.Patched
	optIn      bool          // ring.Options.ForgetCommit
	batch      bool          // uring_forget_batch
	entryCap   int           // uring_forget_cap
	threshold  int           // uring_forget_threshold
	delay      time.Duration // uring_forget_delay_ms
	smallEnts  bool          // uring_small_ents, half of each queue's entries small
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
		{name: NameDevFuse, noRing: true, desc: "kmodel of 6.18, no ring: reads and forgets on /dev/fuse (BATCH_FORGET, 16:8 fairness)"},
		{name: NameUringForgetsOnDevFuse, desc: "kmodel of 6.18: reads on the ring, forgets batched on /dev/fuse"},
		{name: NamePatchV3, patched: true, optIn: true, desc: "kmodel of patch 0001 (v3 as posted) with FORGET_COMMIT: one FORGET per ring entry of the evicting CPU's queue, held until committed"},
		{name: NameBatched, patched: true, optIn: true, batch: true, desc: "kmodel, uring_forget_batch=Y (0002): one BATCH_FORGET of the queue's forget list per entry, as many as the payload holds"},
		{name: NameCapped, patched: true, optIn: true, entryCap: EntryCap, desc: "kmodel, uring_forget_cap=" + strconv.Itoa(EntryCap) + " (0003): one FORGET per entry, at most " + strconv.Itoa(EntryCap) + " entry per queue holds forgets, the rest wait on the list"},
		{name: NameBatchedCap, patched: true, optIn: true, batch: true, entryCap: EntryCap, desc: "kmodel, uring_forget_batch=Y, uring_forget_cap=" + strconv.Itoa(EntryCap) + ": BATCH_FORGETs in at most " + strconv.Itoa(EntryCap) + " entry per queue"},
		{name: NameHeldBack, patched: true, optIn: true, batch: true, threshold: HoldThreshold, delay: HoldDelay, desc: "kmodel, uring_forget_batch=Y, uring_forget_threshold=" + strconv.Itoa(HoldThreshold) + ", uring_forget_delay_ms=" + strconv.Itoa(int(HoldDelay/time.Millisecond)) + " (0004): forgets held back, then batched"},
		{name: NameSmallEnts, patched: true, optIn: true, batch: true, smallEnts: true, desc: "kmodel, uring_forget_batch=Y, uring_small_ents=Y (0006): half of each queue's entries have 8 KiB payloads and take the forgets and the small requests"},
	}
}

// All returns the model policies as forgetstudy policies, for
// forgetstudy.Pick.
func All() []forgetstudy.Policy {
	var ps []forgetstudy.Policy
	for _, p := range Policies() {
		ps = append(ps, p)
	}
	return ps
}

// possibleCPUs counts the possible CPUs as the ring channel does: the
// model needs as many queues as the channel makes.
func possibleCPUs() int {
	n, err := ring.Machine{}.PossibleCPUs()
	if err != nil {
		return runtime.NumCPU()
	}
	return max(n, 1)
}

// rig is the server and channels running against one model connection.
type rig struct {
	m     *kmodel.Conn
	srv   *server.Server
	ch    *ring.Channel // nil for model-devfuse
	serve chan error
	nq    int
}

func (p Policy) start(ctx context.Context, fsys *memFS, nq, depth int) (*rig, error) {
	m, err := kmodel.New(kmodel.Config{NrQueues: nq, Patched: p.patched, UringSmallEnts: p.smallEnts,
		UringForgetBatch: p.batch, UringForgetCap: p.entryCap, UringForgetThreshold: p.threshold, UringForgetDelay: p.delay})
	if err != nil {
		return nil, err
	}
	r := &rig{m: m, serve: make(chan error, 1), nq: nq}
	so := &server.Options{ErrorLog: log.New(io.Discard, "", 0)}
	wait := []<-chan struct{}{nil, m.Ready()}
	if p.noRing {
		wait = wait[:1]
	} else {
		ro := &ring.Options{NewRing: m.NewRing, Queues: nq, QueueDepth: depth, ForgetCommit: p.optIn, NoAffinity: true}
		if p.smallEnts && depth >= 2 {
			ro.SmallEntries = depth / 2
		}
		r.ch = ring.New(-1, ro)
		so.Transport = r.ch
	}
	r.srv = server.New(fsys, so)
	wait[0] = r.srv.Initialized()
	// Default /dev/fuse readers, as the real-kernel policies have.
	go func() { r.serve <- devfuse.Serve(r.srv, m.Dev(), nil) }()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for _, c := range wait {
		select {
		case <-c:
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case <-t.C:
			r.stop()
			return nil, fmt.Errorf("model: INIT or ring not ready in 10s (%v)", r.chErr())
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
	if r.ch != nil {
		r.ch.Stop()
	}
	return err
}

func (r *rig) chErr() error {
	if r.ch == nil {
		return nil
	}
	return r.ch.Err()
}

// ringStats returns the ring channel's counters, zero without a ring.
func (r *rig) ringStats() ring.Stats {
	if r.ch == nil {
		return ring.Stats{}
	}
	return r.ch.Stats()
}

// reader is one simulated task reading the data file on its CPU.
type reader struct {
	cpu  int
	seed uint64
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
	nq := prm.ModelCPUs
	if nq == 0 {
		nq = possibleCPUs()
	}
	size := min(prm.Read.FileSize, 16<<20) // the model keeps the file in memory
	r, err := p.start(ctx, newMemFS(n, size), nq, prm.QueueDepth)
	if err != nil {
		return res, err
	}
	defer func() {
		if e := r.stop(); e != nil && err == nil {
			err = e
		}
	}()
	readers, err := r.openReaders(max(prm.Read.Depth, 1))
	if err != nil {
		return res, err
	}
	res.BaseNodes = r.srv.NodesAlive()
	t0 := time.Now()
	if err := r.instantiate(ctx, n); err != nil {
		return res, err
	}
	res.InstantiateTime = time.Since(t0)
	res.PreNodes = r.srv.NodesAlive()
	res.Instantiated = res.PreNodes - res.BaseNodes
	prm.Logf("instantiated %d nodes in %v", res.Instantiated, res.InstantiateTime.Round(time.Millisecond))

	rd := r.startReaders(readers, prm.Read.BlockSize, size)
	defer rd.stop()
	res, err = r.storm(ctx, prm, rd, res)
	if err != nil {
		return res, err
	}
	for _, rr := range readers {
		r.m.Do(rr.cpu, kmodel.Flush(rr.node, rr.fh))
		r.m.Do(rr.cpu, kmodel.Release(rr.node, rr.fh))
	}
	return res, nil
}

// openReaders opens the readers' file, depth handles per CPU: it is never
// evicted.
func (r *rig) openReaders(depth int) ([]*reader, error) {
	var readers []*reader
	for cpu := range r.nq {
		rep, err := r.m.Do(cpu, kmodel.Lookup(wire.FUSE_ROOT_ID, "data"))
		if err != nil {
			return nil, fmt.Errorf("lookup data: %w", err)
		}
		node := rep.Entry().NodeID
		for k := range depth {
			rep, err := r.m.Do(cpu, kmodel.Open(node, syscall.O_RDONLY))
			if err != nil {
				return nil, fmt.Errorf("open data: %w", err)
			}
			readers = append(readers, &reader{cpu: cpu, seed: uint64(cpu)<<16 | uint64(k), node: node, fh: rep.Open().Fh})
		}
	}
	return readers, nil
}

// instantiate looks every storm file up once, from all CPUs.
func (r *rig) instantiate(ctx context.Context, n int) error {
	var wg sync.WaitGroup
	var lookupErr atomic.Value
	for cpu := range r.nq {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := cpu; i < n; i += r.nq {
				if _, err := r.m.Do(cpu, kmodel.Lookup(wire.FUSE_ROOT_ID, fileName(i))); err != nil {
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
		return e
	}
	return ctx.Err()
}

// readers are the running reader tasks.
type readers struct {
	all   []*reader
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup
	err   atomic.Value
}

// startReaders starts every reader: back-to-back 4k READs at random
// offsets, each time-stamped at issue.
func (r *rig) startReaders(all []*reader, bs int, size int64) *readers {
	rd := &readers{all: all, start: time.Now(), done: make(chan struct{})}
	for _, rr := range all {
		rd.wg.Add(1)
		go func() {
			defer rd.wg.Done()
			rng := rand.New(rand.NewPCG(rr.seed, 46))
			out := make([]byte, bs+4096)
			blocks := max(size/int64(bs), 1)
			rr.ios = make([]forgetstudy.IO, 0, 1<<14)
			for {
				select {
				case <-rd.done:
					return
				default:
				}
				req := kmodel.Read(rr.node, rr.fh, uint64(rng.Int64N(blocks))*uint64(bs), uint32(bs))
				req.Out = out
				a := time.Now()
				_, err := r.m.Do(rr.cpu, req)
				if err != nil {
					rd.err.CompareAndSwap(nil, fmt.Errorf("read on CPU %d: %w", rr.cpu, err))
					return
				}
				rr.ios = append(rr.ios, forgetstudy.IO{T: a.UnixNano(), Lat: time.Since(a)})
			}
		}()
	}
	return rd
}

// stop stops the readers and waits for them; it is idempotent.
func (rd *readers) stop() {
	select {
	case <-rd.done:
	default:
		close(rd.done)
	}
	rd.wg.Wait()
}

func (rd *readers) failed() error {
	e, _ := rd.err.Load().(error)
	return e
}

// ios returns every read, sorted by issue time.
func (rd *readers) ios() []forgetstudy.IO {
	var ios []forgetstudy.IO
	for _, rr := range rd.all {
		ios = append(ios, rr.ios...)
	}
	slices.SortFunc(ios, func(a, b forgetstudy.IO) int { return cmp.Compare(a.T, b.T) })
	return ios
}

// snapshot is every counter the storm is measured by.
type snapshot struct {
	srv server.Stats
	ch  ring.Stats
	m   kmodel.Stats
}

func (r *rig) snapshot() snapshot {
	return snapshot{srv: r.srv.Stats(), ch: r.ringStats(), m: r.m.Stats()}
}

// storm reads for the baseline, evicts every storm node as drop_caches
// does while the readers go on, waits for the drain, and measures.
func (r *rig) storm(ctx context.Context, prm forgetstudy.Params, rd *readers, res forgetstudy.Result) (forgetstudy.Result, error) {
	if !sleep(ctx, min(prm.Baseline, BaselineWindow)) {
		return res, ctx.Err()
	}
	preAt := time.Now()
	if !sleep(ctx, min(prm.StormDelay, StormDelay)) {
		return res, ctx.Err()
	}
	before := r.snapshot()
	trigger := time.Now()
	storm := evictStorm(prm, r.nq)
	var nEvicted int
	var took time.Duration
	evicted := make(chan struct{})
	go func() {
		defer close(evicted)
		nEvicted = r.m.EvictStorm(ctx, storm)
		took = time.Since(trigger)
	}()
	res, err := r.waitDrain(ctx, prm, rd, trigger, res)
	<-evicted
	res.DropCaches = took
	if err != nil {
		return res, err
	}
	drain := r.snapshot()
	drainAt := time.Now()
	sleep(ctx, Tail)
	// The server applies a batch's forgets before the next submit sends
	// their entries' commits, so the live nodes can reach the baseline
	// with the last commits still unsent: count commits after Tail.
	end := r.snapshot()
	rd.stop()
	if e := rd.failed(); e != nil {
		return res, e
	}
	res.EndNodes = r.srv.NodesAlive()
	prm.Logf("evicted %d nodes in %v", nEvicted, res.DropCaches.Round(time.Microsecond))
	r.count(&res, before, drain, end, trigger, drainAt, nEvicted, prm.QueueDepth)
	res.Notes = append(res.Notes, fmt.Sprintf("model eviction (%s): %d task(s), %.0f evictions/s each (0: kmodel's default %d), %d per lock hold (0: %d)", prm.Evict, len(storm.CPUs), storm.Rate, kmodel.DefaultEvictRate, storm.Burst, kmodel.DefaultEvictBurst))

	ios := rd.ios()
	st, pre, trig := rd.start.UnixNano(), preAt.UnixNano(), trigger.UnixNano()
	stop := drainAt.Add(Tail).UnixNano()
	res.Baseline = forgetstudy.Window(ios, st, pre)
	res.BaselineIOPS = res.Baseline.IOPS
	res.PreStorm = forgetstudy.Window(ios, pre, trig)
	res.Storm100ms = forgetstudy.Window(ios, trig, trig+int64(100*time.Millisecond))
	// The readers stop Tail after the drain: the first-1 s window ends
	// there if that is sooner.
	res.Storm1s = forgetstudy.Window(ios, trig, min(trig+int64(time.Second), stop))
	res.StormWhole = forgetstudy.Window(ios, trig, max(drainAt.UnixNano(), trig+int64(time.Millisecond)))
	res.StormIOPS = res.StormWhole.IOPS
	res.Forgetting = forgetstudy.Window(ios, trig+int64(res.FirstForget), trig+int64(res.LastForget)+int64(time.Millisecond))
	res.LatSeries = forgetstudy.WindowSeries(ios, trig, pre, stop, 10*time.Millisecond)
	return res, nil
}

// evictStorm is the model of prm.Evict: drop_caches and cgroup reclaim
// (memory.high written by one task) evict from one task on CPU 0, unlink
// from one task per CPU.
func evictStorm(prm forgetstudy.Params, nq int) kmodel.Storm {
	s := kmodel.Storm{CPUs: []int{0}, Rate: prm.ModelEvictRate, Burst: prm.ModelEvictBurst}
	if prm.Evict == forgetstudy.EvictUnlink {
		s.CPUs = make([]int, nq)
		for i := range s.CPUs {
			s.CPUs[i] = i
		}
	}
	return s
}

// waitDrain polls the live nodes every millisecond, and samples every
// 10 ms, until they are back at the baseline.
func (r *rig) waitDrain(ctx context.Context, prm forgetstudy.Params, rd *readers, trigger time.Time, res forgetstudy.Result) (forgetstudy.Result, error) {
	var (
		first, last time.Duration = -1, -1
		prevNodes                 = res.PreNodes
		nextSample  time.Time
		forgets0    = totalForgets(r.srv.Stats())
	)
	res.NodeSeries = append(res.NodeSeries, forgetstudy.NodePoint{T: 0, Nodes: prevNodes})
	deadline := trigger.Add(prm.DrainTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		now := time.Now()
		nodes := r.srv.NodesAlive()
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
			res.Series = append(res.Series, forgetstudy.Sample{T: t, Nodes: nodes, Forgets: totalForgets(r.srv.Stats()) - forgets0})
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
		if e := rd.failed(); e != nil {
			return res, e
		}
		<-tick.C
	}
	res.FirstForget, res.LastForget = max(first, 0), max(last, 0)
	return res, nil
}

// count fills in the forget transport counts of res: messages on both
// paths, and on the ring CQEs, commits, io_uring_enter calls and entries
// held, from the snapshots before the storm, at the drain and after Tail.
func (r *rig) count(res *forgetstudy.Result, before, drain, end snapshot, trigger, drainAt time.Time, evicted, depth int) {
	b, a := before.srv, end.srv
	res.Forgets = totalForgets(a) - totalForgets(b)
	res.ForgetUnknown = a.ForgetUnknown - b.ForgetUnknown
	if d := a.Channels["devfuse"]; d != nil {
		db := chanStats(b, "devfuse")
		res.SingleForgets = d.Requests[wire.FUSE_FORGET.String()] - db.Requests[wire.FUSE_FORGET.String()]
		res.BatchForgets = d.Requests[wire.FUSE_BATCH_FORGET.String()] - db.Requests[wire.FUSE_BATCH_FORGET.String()]
		res.DevForgetMsgs = res.SingleForgets + res.BatchForgets
		addBatches(&res.Batches, d.ForgetBatches[:], db.ForgetBatches[:])
	}
	if u := a.Channels["uring"]; u != nil {
		addBatches(&res.Batches, u.ForgetBatches[:], chanStats(b, "uring").ForgetBatches[:])
	}
	res.RingForgets = end.ch.Forgets - before.ch.Forgets
	res.RingForgetMsgs = end.ch.ForgetMsgs - before.ch.ForgetMsgs
	var heldArea float64
	var enters, sleeps uint64
	for i, q := range drain.m.Queues {
		heldArea += q.ForgetHeldSeconds - queueStats(before.m, i).ForgetHeldSeconds
		res.EntriesHeldMax = max(res.EntriesHeldMax, float64(q.ForgetHeldMax))
	}
	for i, q := range end.m.Queues {
		qb := queueStats(before.m, i)
		// The kernel posts one CQE per forget message it delivers into
		// an entry, and the server sends one COMMIT_AND_FETCH for it.
		res.RingCQEs += q.ForgetMsgs - qb.ForgetMsgs
		res.RingCommits += q.ForgetCommits - qb.ForgetCommits
		res.RingEnters += q.ForgetEnters - qb.ForgetEnters
		enters += q.Enters - qb.Enters
		sleeps += q.Sleeps - qb.Sleeps
		if q.Forgets != qb.Forgets {
			res.RingForgetQueues++
		}
		if q.ForgetBadCommits != qb.ForgetBadCommits {
			res.Notes = append(res.Notes, fmt.Sprintf("queue %d: %d forget commits with a non-empty reply", i, q.ForgetBadCommits-qb.ForgetBadCommits))
		}
	}
	res.RingEntersKnown = true
	if span := drainAt.Sub(trigger).Seconds(); span > 0 && len(drain.m.Queues) > 0 {
		res.EntriesHeldMean = heldArea / span / float64(len(drain.m.Queues))
	}
	dev := end.m.Dev
	res.Notes = append(res.Notes, fmt.Sprintf("model: %d queues of depth %d; forgets on the ring reached %d queue(s); entries held are per queue (mean over trigger→drain, max over queues); ring syscalls are the io_uring_enter calls that carried forget work (submitted a forget commit or returned a forget CQE); in all, reads included, the ring made %d enters (%d slept) and /dev/fuse %d reads (%d slept) from the trigger to Tail after the drain",
		r.nq, depth, res.RingForgetQueues, enters, sleeps, dev.Reads-before.m.Dev.Reads, dev.Sleeps-before.m.Dev.Sleeps))
	if q, dlv := drain.m.ForgetsQueued-before.m.ForgetsQueued, drain.m.ForgetsDelivered-before.m.ForgetsDelivered; q != dlv || q != uint64(evicted) {
		res.Notes = append(res.Notes, fmt.Sprintf("model queued %d forgets and delivered %d for %d evictions", q, dlv, evicted))
	}
	if res.LastForget > 0 {
		res.ForgetsPerSec = float64(res.Forgets) / res.LastForget.Seconds()
	}
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
