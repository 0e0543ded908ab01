package forgetstudy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
	"github.com/ringfuse/ringfuse/wire"
)

// Real-kernel policy names.
const (
	NameDevFuse               = "devfuse"
	NameUringForgetsOnDevFuse = "uring-forgets-on-devfuse"
	// NameUringForgetCommit is patch v3 as posted (0001 of the series).
	NameUringForgetCommit = "uring-forget-commit"
)

// kernelPolicy serves a passthrough in this process over the real kernel.
type kernelPolicy struct {
	name, desc string
	// uring serves requests over the io_uring channel; forgetCommit also
	// sets FUSE_IO_URING_REGISTER_FORGET_COMMIT on REGISTER.
	uring, forgetCommit bool
	// small is the small entries per queue (ring.Options.SmallEntries,
	// for the series' uring_small_ents).
	small int
	// params are the series' fuse module parameters the run sets; every
	// other one the kernel has is set off (kernel/SERIES.md).
	params map[string]string
}

// DevFuse is the classic transport: every request, and all forgets (in
// FORGET and BATCH_FORGET messages, batched by the kernel), are read from
// /dev/fuse.
func DevFuse() Policy {
	return &kernelPolicy{name: NameDevFuse, desc: "/dev/fuse only: kernel-batched FORGET/BATCH_FORGET"}
}

// UringForgetsOnDevFuse serves requests over the io_uring channel with
// [Params.QueueDepth] entries per CPU queue, without asking for forgets on
// the ring: forgets keep arriving on /dev/fuse, as they do on every kernel
// without the 7.46 patch.
func UringForgetsOnDevFuse() Policy {
	return &kernelPolicy{name: NameUringForgetsOnDevFuse, uring: true,
		desc: "io_uring requests (-q-depth entries per CPU), forgets on /dev/fuse"}
}

// UringForgetCommit is UringForgetsOnDevFuse with
// FUSE_IO_URING_REGISTER_FORGET_COMMIT set on every REGISTER. On a kernel
// with the 7.46 patch forgets then arrive on the ring, one FUSE_FORGET per
// entry (patch v3); a kernel without it ignores the bit, so the run shows
// whether the running kernel has the patch.
func UringForgetCommit() Policy {
	return &kernelPolicy{name: NameUringForgetCommit, uring: true, forgetCommit: true,
		desc: "patch v3 (0001): REGISTER with FORGET_COMMIT, one FORGET per ring entry (on the ring only on a 7.46 kernel)"}
}

// seriesVariant is patch v3 with the series' alternatives set through
// the module parameters kv (name, value, ...) and small entries per queue.
func seriesVariant(name, desc string, small int, kv ...string) Policy {
	p := &kernelPolicy{name: name, desc: desc, uring: true, forgetCommit: true, small: small, params: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		p.params[kv[i]] = kv[i+1]
	}
	return p
}

// RealKernelPolicies returns every real-kernel policy: the transports,
// patch v3 and each alternative of the kernel series (kernel/SERIES.md),
// which are skipped on a kernel without the series' module parameters,
// and [NativeControl].
func RealKernelPolicies() []Policy {
	return []Policy{
		DevFuse(),
		UringForgetsOnDevFuse(),
		UringForgetCommit(),
		seriesVariant("v3-batch", "0002 uring_forget_batch=Y: a BATCH_FORGET per entry", 0, "uring_forget_batch", "Y"),
		seriesVariant("v3-cap2", "0003 uring_forget_cap=2: one FORGET per entry, at most 2 entries per queue", 0, "uring_forget_cap", "2"),
		seriesVariant("v3-batch-cap1", "0002+0003: BATCH_FORGETs in at most 1 entry per queue", 0, "uring_forget_batch", "Y", "uring_forget_cap", "1"),
		seriesVariant("v3-threshold64-delay20ms", "0004 batched, held until 64 wait or the oldest waited 20 ms", 0,
			"uring_forget_batch", "Y", "uring_forget_threshold", "64", "uring_forget_delay_ms", "20"),
		seriesVariant("v3-delay10ms", "0004 batched, held until the oldest waited 10 ms", 0, "uring_forget_batch", "Y", "uring_forget_delay_ms", "10"),
		seriesVariant("v3-small4", "0006 uring_small_ents=Y, 4 small entries per queue take the forgets", 4, "uring_small_ents", "Y"),
		seriesVariant("v3-small4-batch", "0006+0002: BATCH_FORGETs in 4 small entries per queue", 4, "uring_small_ents", "Y", "uring_forget_batch", "Y"),
		NativeControl(),
	}
}

func (k *kernelPolicy) Name() string { return k.name }
func (k *kernelPolicy) Kind() string { return KindRealKernel }

// Description implements [Describer].
func (k *kernelPolicy) Description() string { return k.desc }

var _ Describer = (*kernelPolicy)(nil)

// prepare checks that the policy can run here and sets the module
// parameters; restore puts them back.
func (k *kernelPolicy) prepare() (restore func() error, err error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: needs root (mount(2), drop_caches)", ErrNotSupported)
	}
	if k.uring {
		if on, err := mount.UringEnabled(); err != nil || !on {
			return nil, fmt.Errorf("%w: FUSE-over-io_uring is off (%s is not Y)", ErrNotSupported, mount.EnableUringParam)
		}
	}
	plan, err := paramPlan(k.params, haveParam)
	if err != nil {
		return nil, err
	}
	return setParams(FuseParamDir, plan)
}

// Run performs one real-kernel run; see the package documentation.
func (k *kernelPolicy) Run(ctx context.Context, p Params) (res Result, err error) {
	if err := p.Validate(); err != nil {
		return res, err
	}
	restore, err := k.prepare()
	if err != nil {
		return res, err
	}
	defer func() {
		if rerr := restore(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("restore module parameters: %w", rerr))
		}
	}()
	res.Inodes = p.Inodes
	res.SlabBefore, res.SlabAfter = -1, -1
	src, mnt, logs, err := prepareWorkDir(ctx, p)
	if err != nil {
		return res, err
	}
	ev, err := newEvictor(p.Evict, src)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, ev.close()) }()

	fsys, err := passthrough.New(src, nil)
	if err != nil {
		return res, err
	}
	defer fsys.Close()
	// The ring channel raises GOMAXPROCS for its threads, and it stays
	// raised: put it back, so that a /dev/fuse run after a ring run gets
	// the same readers as the first.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	res.DevReaders = max(4, runtime.GOMAXPROCS(0)) // devfuse.Options' default
	so := &session.Options{Readers: res.DevReaders}
	if k.uring {
		so.Uring = &ring.Options{QueueDepth: p.QueueDepth, ForgetCommit: k.forgetCommit, SmallEntries: k.small}
	}
	sess, err := session.Mount(mnt, fsys, so)
	if err != nil {
		return res, fmt.Errorf("mount: %w", err)
	}
	defer func() { err = errors.Join(err, unmountChecked(sess, mnt)) }()
	if k.uring {
		if rerr := sess.Ring().Err(); rerr != nil {
			return res, fmt.Errorf("%w: io_uring channel: %v", ErrNotSupported, rerr)
		}
	}
	srv := sess.Server()
	res.DevBufBytes = int64(res.DevReaders) * int64(srv.ReadBufferSize()+srv.ReplyBufferSize())
	return k.measure(ctx, p, sess, ev, mnt, logs, res)
}

// prepareWorkDir makes the work directory's backing tree (reused while
// its stamp matches), mount point and log directory.
func prepareWorkDir(ctx context.Context, p Params) (src, mnt, logs string, err error) {
	src = filepath.Join(p.WorkDir, "src")
	mnt = filepath.Join(p.WorkDir, "mnt")
	logs = filepath.Join(p.WorkDir, "logs")
	for _, d := range []string{src, mnt, logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", "", "", err
		}
	}
	if ok, _ := mount.IsMounted(mnt); ok {
		return "", "", "", fmt.Errorf("%s is already mounted (another study on the same -workdir?)", mnt)
	}
	t0 := time.Now()
	created, err := ensureTree(ctx, src, p.Inodes)
	if err != nil {
		return "", "", "", fmt.Errorf("backing tree: %w", err)
	}
	if created > 0 {
		p.logf("created %d files in %s in %.1fs", created, src, time.Since(t0).Seconds())
	}
	if err := ensureFioFile(filepath.Join(src, fioFileName), p.Read.FileSize); err != nil {
		return "", "", "", fmt.Errorf("fio file: %w", err)
	}
	return src, mnt, logs, nil
}

// unmountChecked unmounts the session and forces the mount away if it
// stayed.
func unmountChecked(sess *session.Session, mnt string) error {
	var err error
	if uerr := sess.Unmount(); uerr != nil {
		err = fmt.Errorf("unmount: %w", uerr)
	}
	if ok, _ := mount.IsMounted(mnt); ok {
		_ = mount.ForceUnmount(mnt, sess.ConnID())
		err = errors.Join(err, fmt.Errorf("%s was still mounted after the run; forced", mnt))
	}
	return err
}

// measure runs the experiment on a mounted session.
func (k *kernelPolicy) measure(ctx context.Context, p Params, sess *session.Session, ev evictor, mnt, logs string, res Result) (Result, error) {
	srv := sess.Server()
	fioFile := filepath.Join(mnt, fioFileName)
	if p.Warmup > 0 {
		if _, err := runFio(ctx, p.Read, fioFile, p.Warmup, ""); err != nil {
			return res, fmt.Errorf("fio warm-up: %w", err)
		}
	}
	// The fio file stays instantiated through the storm (fio holds it
	// open): count it in the baseline, warm-up or not.
	if _, err := os.Stat(fioFile); err != nil {
		return res, err
	}
	res.BaseNodes = srv.NodesAlive()
	t0 := time.Now()
	if err := ev.lookup(ctx, mnt, p.Inodes); err != nil {
		return res, fmt.Errorf("instantiate: %w", err)
	}
	res.InstantiateTime = time.Since(t0)
	live := srv.NodesAlive()
	p.logf("instantiated %d inodes in %.1fs (%d live nodes)", live-res.BaseNodes, res.InstantiateTime.Seconds(), live)
	unix.Sync()
	res, err := k.baseline(ctx, p, sess, ev, mnt, fioFile, logs, res)
	if err != nil {
		return res, err
	}
	for attempt := 1; ; attempt++ {
		// Make sure every inode is instantiated when the storm run
		// starts, whatever happened since the first pass.
		missing, err := k.topUp(ctx, p, srv, ev, mnt, res.BaseNodes)
		if err != nil {
			return res, err
		}
		if missing > 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%d inodes had been evicted by someone else before storm attempt %d and were looked up again", missing, attempt))
		}
		res.Instantiated = srv.NodesAlive() - res.BaseNodes
		res.HeapLiveBefore = liveHeapAfterGC()
		r := res
		if res.Instantiated < int64(p.Inodes)*99/100 {
			// Evicted again while being looked up.
			err = fmt.Errorf("%w: %d of %d instantiated", errDisturbed, res.Instantiated, p.Inodes)
		} else {
			r, err = k.storm(ctx, p, sess, ev, mnt, fioFile, logs, res)
		}
		if !errors.Is(err, errDisturbed) {
			return r, err
		}
		res.Notes = append(res.Notes, fmt.Sprintf("storm attempt %d: %v", attempt, err))
		if attempt == maxAttempts {
			return res, fmt.Errorf("%w; gave up after %d attempts", err, attempt)
		}
		p.logf("%v; retrying", err)
	}
}

// baseline runs the reads without a storm. Another process dropping
// caches meanwhile would put a storm into it: then it tops up and redoes.
func (k *kernelPolicy) baseline(ctx context.Context, p Params, sess *session.Session, ev evictor, mnt, fioFile, logs string, res Result) (Result, error) {
	srv := sess.Server()
	for attempt := 1; ; attempt++ {
		st0 := srv.Stats()
		prefix := filepath.Join(logs, k.name+"-baseline")
		rep, err := runFio(ctx, p.Read, fioFile, p.Baseline, prefix)
		if err != nil {
			return res, fmt.Errorf("fio baseline: %w", err)
		}
		res.BaselineIOPS = rep.IOPS
		ios, err := readLatLogs(prefix)
		removeLogs(prefix)
		if err != nil {
			return res, err
		}
		if len(ios) == 0 {
			return res, errors.New("fio baseline: empty latency log")
		}
		res.Baseline = Window(ios, ios[0].T, lastDone(ios)+int64(time.Millisecond))
		f := totalForgets(srv.Stats()) - totalForgets(st0)
		if k.uring && srv.Stats().Requests("uring", wire.FUSE_READ.String()) == 0 {
			// fio's reads must have used the ring, or this is not a
			// ring run.
			return res, fmt.Errorf("io_uring channel: no READ arrived on the ring during the baseline (ring stats %+v)", sess.Ring().Stats())
		}
		if f <= uint64(p.Inodes/100) {
			p.logf("baseline: %.0f IOPS, p50 %s, p99 %s", rep.IOPS, fmtDur(res.Baseline.P50), fmtDur(res.Baseline.P99))
			return res, nil
		}
		msg := fmt.Sprintf("%d forgets arrived during baseline attempt %d: another process dropped caches", f, attempt)
		res.Notes = append(res.Notes, msg)
		if attempt == maxAttempts {
			return res, fmt.Errorf("%s; gave up after %d attempts", msg, attempt)
		}
		p.logf("%s; retrying", msg)
		if _, err := k.topUp(ctx, p, srv, ev, mnt, res.BaseNodes); err != nil {
			return res, err
		}
	}
}

// maxAttempts bounds the retries of a phase that another process disturbed
// by dropping caches.
const maxAttempts = 3

// errDisturbed: the instantiated inodes went away before the trigger.
var errDisturbed = errors.New("inodes were evicted before the trigger (another process dropped caches?)")

// topUp looks every file up again if some were evicted, and returns how
// many were missing.
func (k *kernelPolicy) topUp(ctx context.Context, p Params, srv *server.Server, ev evictor, mnt string, base int64) (int64, error) {
	before := srv.NodesAlive()
	missing := base + int64(p.Inodes) - before
	if missing <= 0 {
		return 0, nil
	}
	if err := ev.lookup(ctx, mnt, p.Inodes); err != nil {
		return 0, fmt.Errorf("instantiate: %w", err)
	}
	p.logf("%d inodes were missing; looked every file up again: %d live nodes", missing, srv.NodesAlive())
	return missing, nil
}

// fioWatch waits for a fio run in the background.
type fioWatch struct {
	fr   *fioRun
	done chan struct{}
	rep  FioReport
	err  error
}

func watchFio(fr *fioRun) *fioWatch {
	w := &fioWatch{fr: fr, done: make(chan struct{})}
	go func() {
		w.rep, w.err = fr.wait()
		close(w.done)
	}()
	return w
}

// kill ends fio if it still runs (an early return) and waits for it.
func (w *fioWatch) kill() {
	select {
	case <-w.done:
	default:
		_ = w.fr.cmd.Process.Kill()
		<-w.done
	}
}

// readsTimeout bounds fio's start-up: under TCG on a loaded host, fio
// with a job per CPU took over 30 s to send its first reads.
const readsTimeout = 3 * time.Minute

// waitReads waits until fio's reads reach the server.
func waitReads(ctx context.Context, srv *server.Server, w *fioWatch) error {
	reads0 := totalReads(srv.Stats())
	deadline := time.Now().Add(readsTimeout)
	for totalReads(srv.Stats())-reads0 < 10 {
		select {
		case <-w.done:
			return fmt.Errorf("fio ended before its reads reached the server: %v", w.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fio's reads did not reach the server within %v", readsTimeout)
		}
	}
	return nil
}

// settleQuiet is how long the live node count must stay still, after a
// partial eviction returned, for the storm to be over.
const settleQuiet = time.Second

// waitStorm waits until the live nodes are back at the baseline, or (for
// a partial eviction) have stopped changing, or the drain timeout passed.
func waitStorm(ctx context.Context, p Params, smp *sampler, partial bool, trigger time.Time) error {
	timeout := time.NewTimer(p.DrainTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-smp.drained:
			return nil
		case <-timeout.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		last := time.Unix(0, smp.changedAt.Load())
		if partial && last.Before(trigger) {
			last = trigger
		}
		if partial && time.Since(last) >= settleQuiet {
			return nil
		}
	}
}

// storm runs fio again and evicts the inodes while it runs.
func (k *kernelPolicy) storm(ctx context.Context, p Params, sess *session.Session, ev evictor, mnt, fioFile, logs string, res Result) (Result, error) {
	srv := sess.Server()
	unix.Sync()
	smp := newSampler(srv, res.BaseNodes+ev.kept(p.Inodes), int((p.Read.Runtime+p.DrainTimeout)/samplePeriod)+64)
	smp.start()
	sampling := true
	defer func() {
		if sampling {
			smp.finish()
		}
	}()
	prefix := filepath.Join(logs, k.name+"-storm")
	fr, err := startFio(ctx, p.Read, fioFile, p.Read.Runtime, prefix)
	if err != nil {
		return res, err
	}
	w := watchFio(fr)
	defer w.kill()
	if err := waitReads(ctx, srv, w); err != nil {
		return res, err
	}
	pre := takeSnapshot(srv, sess.Ring())
	select {
	case <-time.After(p.StormDelay):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	unix.Sync()
	res.PreNodes = srv.NodesAlive()
	if gone := res.BaseNodes + res.Instantiated - res.PreNodes; gone > int64(p.Inodes)/100 {
		return res, fmt.Errorf("%w: %d of %d", errDisturbed, gone, res.Instantiated)
	}
	if others := otherFio(fr.cmd.Process.Pid); len(others) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("other fio processes ran during the storm (pids %v): they compete for the CPUs", others))
	}
	res.SlabBefore = fuseInodeSlab()
	tr := startForgetTrace()
	before := takeSnapshot(srv, sess.Ring())
	trigger := time.Now()
	smp.setTrigger(trigger)
	if err := ev.evict(ctx, mnt, p.Inodes); err != nil {
		tr.stop()
		return res, fmt.Errorf("evict (%s): %w", p.Evict, err)
	}
	res.DropCaches = time.Since(trigger)
	if err := waitStorm(ctx, p, smp, ev.partial(), trigger); err != nil {
		tr.stop()
		return res, err
	}
	settle(sess)
	after := takeSnapshot(srv, sess.Ring())
	res.PreCounts, res.StormCounts = countersBetween(pre, before), countersBetween(before, after)
	res.Ents = tr.stop()
	res.EntriesHeldMean, res.EntriesHeldMax = res.Ents.Mean, res.Ents.Max
	select {
	case <-w.done:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	// A little more of the series, to show the memory after the drain.
	time.Sleep(5 * samplePeriod)
	raw := smp.finish()
	sampling = false
	if w.err != nil {
		return res, fmt.Errorf("fio storm run: %w", w.err)
	}
	res.SlabAfter = fuseInodeSlab()
	res.HeapLiveAfter = liveHeapAfterGC()
	res.EndNodes = srv.NodesAlive()
	res.StormIOPS = w.rep.IOPS
	k.countForgets(&res, before, takeSnapshot(srv, sess.Ring()))
	drainTimes(&res, p, smp, trigger.UnixNano())
	seriesAndMemory(&res, raw, trigger.UnixNano())
	if err := latencyWindows(&res, prefix, trigger.UnixNano()); err != nil {
		return res, err
	}
	p.logf("storm (%s): %d forgets in %d /dev/fuse + %d ring messages from %s to %s; evict %s, drain %s; p99 first 100 ms %s, while forgetting %s (baseline %s); %d entries holding forgets at most",
		p.Evict, res.Forgets, res.DevForgetMsgs, res.RingForgetMsgs, fmtDur(res.FirstForget), fmtDur(res.LastForget), fmtDur(res.DropCaches), fmtDur(res.Drain),
		fmtDur(res.Storm100ms.P99), fmtDur(res.Forgetting.P99), fmtDur(res.Baseline.P99), int(res.Ents.Max))
	return res, nil
}

// settle lets the ring's counters settle: the channel applies a batch's
// forgets before the next submit sends their commits.
func settle(sess *session.Session) {
	r := sess.Ring()
	if r == nil {
		return
	}
	prev := r.Stats()
	for range 10 {
		time.Sleep(20 * time.Millisecond)
		cur := r.Stats()
		if cur.ForgetMsgs == prev.ForgetMsgs && cur.Commits == prev.Commits {
			return
		}
		prev = cur
	}
}

// countForgets fills the forgets and their transport from the snapshots
// around the storm.
func (k *kernelPolicy) countForgets(res *Result, before, after snapshot) {
	res.Forgets = totalForgets(after.st) - totalForgets(before.st)
	res.ForgetUnknown = after.st.ForgetUnknown - before.st.ForgetUnknown
	if d := after.st.Channels["devfuse"]; d != nil {
		b := before.st.Channels["devfuse"]
		if b == nil {
			b = &server.ChannelStats{}
		}
		// Messages are counted as read: every FORGET and BATCH_FORGET
		// is one read(2). The server does not count a lone FORGET for
		// its poll-hack node as a forget (it has no node-table entry);
		// count it here, so that messages, forgets and the histogram
		// agree.
		res.SingleForgets = d.Requests[wire.FUSE_FORGET.String()] - b.Requests[wire.FUSE_FORGET.String()]
		res.BatchForgets = d.Requests[wire.FUSE_BATCH_FORGET.String()] - b.Requests[wire.FUSE_BATCH_FORGET.String()]
		res.DevForgetMsgs = res.SingleForgets + res.BatchForgets
		res.Batches.Merge(histogramFrom(d.ForgetBatches[:]).Sub(histogramFrom(b.ForgetBatches[:])))
		if counted := d.ForgetMsgs - b.ForgetMsgs; res.DevForgetMsgs > counted {
			hidden := res.DevForgetMsgs - counted
			res.Forgets += hidden
			res.ForgetUnknown += hidden
			res.Batches[0] += hidden
		}
	}
	if res.ForgetUnknown > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d forget(s) named nodes outside the server's node table (the session's poll-hack file)", res.ForgetUnknown))
	}
	if !k.uring {
		return
	}
	rs, rb := after.rs, before.rs
	res.RingForgets = rs.Forgets - rb.Forgets
	res.RingForgetMsgs = rs.ForgetMsgs - rb.ForgetMsgs
	// The channel commits every forget message it is handed, after one
	// CQE each.
	res.RingCQEs, res.RingCommits = res.RingForgetMsgs, res.RingForgetMsgs
	if u := after.st.Channels["uring"]; u != nil {
		b := before.st.Channels["uring"]
		if b == nil {
			b = &server.ChannelStats{}
		}
		res.Batches.Merge(histogramFrom(u.ForgetBatches[:]).Sub(histogramFrom(b.ForgetBatches[:])))
	}
	if res.RingForgetMsgs == 0 {
		// Nothing to attribute: no forget used the ring.
		res.RingEntersKnown = true
		res.Notes = append(res.Notes, fmt.Sprintf("no forget travelled on the ring (the kernel lacks the 7.46 patch or ignored FORGET_COMMIT, or the policy did not opt in); during the storm the ring carried %d other CQEs and %d commits in %d io_uring_enter calls",
			rs.CQEs-rb.CQEs, rs.Commits-rb.Commits, rs.Enters-rb.Enters))
	} else {
		res.Notes = append(res.Notes, fmt.Sprintf("%d forget messages arrived on the ring: io_uring_enter calls are shared with reads; StormCounts less PreCounts' rate attributes them", res.RingForgetMsgs))
	}
}

// drainTimes fills the drain and forget timing from the 1 ms poll.
func drainTimes(res *Result, p Params, smp *sampler, trig int64) {
	if at := smp.drainedAt.Load(); at != 0 {
		res.Drained = true
		res.Drain = time.Duration(at - trig)
	} else if p.Evict == EvictCgroup && smp.lastChange != 0 {
		// Reclaim stops at its target: the storm is over when forgets
		// stopped.
		res.Drained = true
		res.Drain = time.Duration(smp.lastChange - trig)
		res.Notes = append(res.Notes, fmt.Sprintf("reclaim forgot %d of %d nodes", res.PreNodes-res.EndNodes, res.Instantiated))
	} else {
		res.Drain = p.DrainTimeout
		res.Notes = append(res.Notes, fmt.Sprintf("live nodes did not return to the baseline of %d within %v (%d at the end)", res.BaseNodes, p.DrainTimeout, res.EndNodes))
	}
	if smp.lastChange != 0 {
		res.FirstForget = time.Duration(smp.firstChange - trig)
		res.LastForget = time.Duration(smp.lastChange - trig)
	}
	res.NodeSeries = smp.nodePts
	for i := range res.NodeSeries {
		res.NodeSeries[i].T -= time.Duration(trig)
	}
	if res.LastForget > 0 {
		res.ForgetsPerSec = float64(res.Forgets) / res.LastForget.Seconds()
	}
}

// seriesAndMemory fills the time series, relative to the trigger, and the
// memory figures it shows.
func seriesAndMemory(res *Result, raw []rawSample, trig int64) {
	res.Series = make([]Sample, len(raw))
	res.SUnreclaimBefore, res.SUnreclaimPeak = -1, -1
	for i, r := range raw {
		res.Series[i] = Sample{T: time.Duration(r.t - trig), Nodes: r.nodes, Forgets: r.forgets, RSS: r.rss, Heap: r.heap}
		res.ThreadsPeak = max(res.ThreadsPeak, r.threads)
		if r.t < trig {
			res.RSSBefore, res.HeapBefore, res.SUnreclaimBefore = r.rss, r.heap, r.slab
			continue
		}
		res.RSSPeak = max(res.RSSPeak, r.rss)
		res.HeapPeak = max(res.HeapPeak, r.heap)
		res.SUnreclaimPeak = max(res.SUnreclaimPeak, r.slab)
	}
	if n := len(res.Series); n > 0 {
		res.RSSAfter, res.HeapAfter = res.Series[n-1].RSS, res.Series[n-1].Heap
	}
}

// latencyWindows cuts the storm run's reads into windows after the
// trigger, by issue time.
func latencyWindows(res *Result, prefix string, trig int64) error {
	ios, err := readLatLogs(prefix)
	removeLogs(prefix)
	if err != nil {
		return err
	}
	if len(ios) == 0 {
		return errors.New("fio storm run: empty latency log")
	}
	ms := int64(time.Millisecond)
	end := lastDone(ios) + ms
	res.PreStorm = Window(ios, ios[0].T, trig)
	res.Storm100ms = Window(ios, trig, min(trig+100*ms, end))
	res.Storm1s = Window(ios, trig, min(trig+1000*ms, end))
	stormEnd := trig + int64(res.Drain)
	if !res.Drained || stormEnd > end {
		res.Notes = append(res.Notes, "the whole-storm read window ends with fio, before the drain")
		stormEnd = end
	}
	// At least one fio log tick, so that a drain shorter than fio's
	// millisecond resolution still has a window.
	res.StormWhole = Window(ios, trig, max(stormEnd, trig+ms))
	if trig+1000*ms > end {
		res.Notes = append(res.Notes, fmt.Sprintf("fio ended %v after the trigger: the 1 s window is short", time.Duration(end-trig).Round(time.Millisecond)))
	}
	if res.LastForget > 0 {
		res.Forgetting = Window(ios, trig+int64(res.FirstForget), max(trig+int64(res.LastForget), trig+int64(res.FirstForget)+ms))
	}
	res.LatSeries = WindowSeries(ios, trig, ios[0].T, end, samplePeriod)
	return nil
}

// liveHeapAfterGC forces a collection and returns the live heap.
func liveHeapAfterGC() uint64 {
	runtime.GC()
	m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return m[0].Value.Uint64()
}

// totalReads counts READ requests on every channel.
func totalReads(st server.Stats) uint64 {
	var n uint64
	for _, c := range st.Channels {
		n += c.Requests[wire.FUSE_READ.String()]
	}
	return n
}

// removeLogs deletes the log files fio wrote for prefix.
func removeLogs(prefix string) {
	for _, kind := range []string{"clat", "lat", "slat"} {
		paths, _ := filepath.Glob(prefix + "_" + kind + ".*.log")
		for _, p := range paths {
			_ = os.Remove(p)
		}
	}
}

// fmtDur prints a duration with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return trimFloat(float64(d)/1e3) + "µs"
	case d < time.Second:
		return trimFloat(float64(d)/1e6) + "ms"
	}
	return trimFloat(d.Seconds()) + "s"
}

// trimFloat prints x with three significant digits.
func trimFloat(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	ax := math.Abs(x)
	switch {
	case ax == 0:
		return "0"
	case ax >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case ax >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case ax >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}
