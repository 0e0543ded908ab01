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

	"ringfuse/channel/ring"
	"ringfuse/fs/passthrough"
	"ringfuse/mount"
	"ringfuse/server"
	"ringfuse/session"
	"ringfuse/wire"
)

// Real-kernel policy names.
const (
	NameDevFuse               = "devfuse"
	NameUringForgetsOnDevFuse = "uring-forgets-on-devfuse"
	NameUringForgetCommit     = "uring-forget-commit"
)

// kernelPolicy serves a passthrough in this process over the real kernel.
type kernelPolicy struct {
	name string
	// uring serves requests over the io_uring channel; forgetCommit also
	// sets FUSE_IO_URING_REGISTER_FORGET_COMMIT on REGISTER.
	uring, forgetCommit bool
}

// DevFuse is the classic transport: every request, and all forgets (in
// FORGET and BATCH_FORGET messages, batched by the kernel), are read from
// /dev/fuse.
func DevFuse() Policy { return &kernelPolicy{name: NameDevFuse} }

// UringForgetsOnDevFuse serves requests over the io_uring channel with
// [Params.QueueDepth] entries per CPU queue, without asking for forgets on
// the ring: forgets keep arriving on /dev/fuse, as they do on every kernel
// without the 7.46 patch.
func UringForgetsOnDevFuse() Policy {
	return &kernelPolicy{name: NameUringForgetsOnDevFuse, uring: true}
}

// UringForgetCommit is UringForgetsOnDevFuse with
// FUSE_IO_URING_REGISTER_FORGET_COMMIT set on every REGISTER. On a kernel
// with the 7.46 patch forgets then arrive on the ring, one FUSE_FORGET per
// entry; a kernel without it ignores the bit, so the run shows whether the
// running kernel has the patch. It is registered but not in the default
// policy list.
func UringForgetCommit() Policy {
	return &kernelPolicy{name: NameUringForgetCommit, uring: true, forgetCommit: true}
}

func (k *kernelPolicy) Name() string { return k.name }
func (k *kernelPolicy) Kind() string { return KindRealKernel }

// Description implements [Describer].
func (k *kernelPolicy) Description() string {
	switch {
	case k.forgetCommit:
		return "io_uring requests, REGISTER with FORGET_COMMIT (forgets on the ring only on a 7.46 kernel)"
	case k.uring:
		return "io_uring requests (-q-depth entries per CPU), forgets on /dev/fuse"
	}
	return "/dev/fuse only: kernel-batched FORGET/BATCH_FORGET"
}

var _ Describer = (*kernelPolicy)(nil)

// Run performs one real-kernel run; see the package documentation.
func (k *kernelPolicy) Run(ctx context.Context, p Params) (res Result, err error) {
	if err := p.Validate(); err != nil {
		return res, err
	}
	if os.Geteuid() != 0 {
		return res, fmt.Errorf("%w: needs root (mount(2), drop_caches)", ErrNotSupported)
	}
	if k.uring {
		if b, err := os.ReadFile(mount.EnableUringParam); err != nil || len(b) == 0 || b[0] != 'Y' {
			return res, fmt.Errorf("%w: FUSE-over-io_uring is off (%s is not Y)", ErrNotSupported, mount.EnableUringParam)
		}
	}
	res.Inodes = p.Inodes
	res.SlabBefore, res.SlabAfter = -1, -1

	src := filepath.Join(p.WorkDir, "src")
	mnt := filepath.Join(p.WorkDir, "mnt")
	logs := filepath.Join(p.WorkDir, "logs")
	for _, d := range []string{src, mnt, logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return res, err
		}
	}
	if ok, _ := mount.IsMounted(mnt); ok {
		return res, fmt.Errorf("%s is already mounted (another study on the same -workdir?)", mnt)
	}
	t0 := time.Now()
	created, err := ensureTree(ctx, src, p.Inodes)
	if err != nil {
		return res, fmt.Errorf("backing tree: %w", err)
	}
	if created > 0 {
		p.logf("created %d files in %s in %.1fs", created, src, time.Since(t0).Seconds())
	}
	if err := ensureFioFile(filepath.Join(src, fioFileName), p.Read.FileSize); err != nil {
		return res, fmt.Errorf("fio file: %w", err)
	}

	fsys, err := passthrough.New(src, nil)
	if err != nil {
		return res, err
	}
	defer fsys.Close()
	so := &session.Options{}
	if k.uring {
		so.Uring = &ring.Options{QueueDepth: p.QueueDepth, ForgetCommit: k.forgetCommit}
	}
	sess, err := session.Mount(mnt, fsys, so)
	if err != nil {
		return res, fmt.Errorf("mount: %w", err)
	}
	defer func() {
		if uerr := sess.Unmount(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("unmount: %w", uerr))
		}
		if ok, _ := mount.IsMounted(mnt); ok {
			_ = mount.ForceUnmount(mnt, sess.ConnID())
			err = errors.Join(err, fmt.Errorf("%s was still mounted after the run; forced", mnt))
		}
	}()
	if k.uring {
		if rerr := sess.Ring().Err(); rerr != nil {
			return res, fmt.Errorf("%w: io_uring channel: %v", ErrNotSupported, rerr)
		}
	}
	return k.measure(ctx, p, sess, mnt, logs, res)
}

// measure runs the experiment on a mounted session.
func (k *kernelPolicy) measure(ctx context.Context, p Params, sess *session.Session, mnt, logs string, res Result) (Result, error) {
	if p.Read.Depth > 1 {
		res.Notes = append(res.Notes, fmt.Sprintf("read depth %d not applied: fio runs psync at depth 1", p.Read.Depth))
	}
	srv := sess.Server()
	fioFile := filepath.Join(mnt, fioFileName)

	if p.Warmup > 0 {
		if _, err := runFio(ctx, p.Read, fioFile, p.Warmup, ""); err != nil {
			return res, fmt.Errorf("fio warm-up: %w", err)
		}
	}
	res.BaseNodes = srv.NodesAlive()

	t0 := time.Now()
	if err := instantiate(ctx, mnt, p.Inodes, 4); err != nil {
		return res, fmt.Errorf("instantiate: %w", err)
	}
	res.InstantiateTime = time.Since(t0)
	live := srv.NodesAlive()
	p.logf("instantiated %d inodes in %.1fs (%d live nodes)", live-res.BaseNodes, res.InstantiateTime.Seconds(), live)
	unix.Sync()

	// Baseline: the same reads, no storm. Another process dropping
	// caches meanwhile would put a storm into it: then top up and redo.
	for attempt := 1; ; attempt++ {
		st0 := srv.Stats()
		basePrefix := filepath.Join(logs, k.name+"-baseline")
		rep, err := runFio(ctx, p.Read, fioFile, p.Baseline, basePrefix)
		if err != nil {
			return res, fmt.Errorf("fio baseline: %w", err)
		}
		res.BaselineIOPS = rep.IOPS
		ios, err := readLatLog(basePrefix + "_clat.1.log")
		if err != nil {
			return res, err
		}
		removeLogs(basePrefix)
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
			break
		}
		msg := fmt.Sprintf("%d forgets arrived during baseline attempt %d: another process dropped caches", f, attempt)
		res.Notes = append(res.Notes, msg)
		if attempt == maxAttempts {
			return res, fmt.Errorf("%s; gave up after %d attempts", msg, attempt)
		}
		p.logf("%s; retrying", msg)
		if _, err := k.topUp(ctx, p, srv, mnt, res.BaseNodes); err != nil {
			return res, err
		}
	}

	for attempt := 1; ; attempt++ {
		// Make sure every inode is instantiated when the storm run
		// starts, whatever happened since the first pass.
		missing, err := k.topUp(ctx, p, srv, mnt, res.BaseNodes)
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
			r, err = k.storm(ctx, p, sess, fioFile, logs, res)
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

// maxAttempts bounds the retries of a phase that another process disturbed
// by dropping caches.
const maxAttempts = 3

// errDisturbed: the instantiated inodes went away before the trigger.
var errDisturbed = errors.New("inodes were evicted before the trigger (another process dropped caches?)")

// topUp looks every file up again if some were evicted, and returns how
// many were missing.
func (k *kernelPolicy) topUp(ctx context.Context, p Params, srv *server.Server, mnt string, base int64) (int64, error) {
	before := srv.NodesAlive()
	missing := base + int64(p.Inodes) - before
	if missing <= 0 {
		return 0, nil
	}
	if err := instantiate(ctx, mnt, p.Inodes, 4); err != nil {
		return 0, fmt.Errorf("instantiate: %w", err)
	}
	p.logf("%d inodes were missing; looked every file up again: %d live nodes", missing, srv.NodesAlive())
	return missing, nil
}

// storm runs fio again and drops the caches while it runs.
func (k *kernelPolicy) storm(ctx context.Context, p Params, sess *session.Session, fioFile, logs string, res Result) (Result, error) {
	srv := sess.Server()
	unix.Sync()
	reads0 := totalReads(srv.Stats())
	capacity := int((p.Read.Runtime+p.DrainTimeout)/samplePeriod) + 64
	smp := newSampler(srv, res.BaseNodes, capacity)
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
	fioDone := make(chan struct{})
	var fioRep FioReport
	var fioErr error
	go func() {
		fioRep, fioErr = fr.wait()
		close(fioDone)
	}()
	defer func() {
		// On an early return fio may still be running: end it.
		select {
		case <-fioDone:
		default:
			_ = fr.cmd.Process.Kill()
			<-fioDone
		}
	}()

	// Wait for fio's reads to reach the server, then let them settle.
	deadline := time.Now().Add(30 * time.Second)
	for totalReads(srv.Stats())-reads0 < 50 {
		select {
		case <-fioDone:
			return res, fmt.Errorf("fio ended before its reads reached the server: %v", fioErr)
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return res, errors.New("fio's reads did not reach the server within 30s")
		}
	}
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
	before := srv.Stats()
	var ringBefore ring.Stats
	if k.uring {
		ringBefore = sess.Ring().Stats()
	}

	trigger := time.Now()
	smp.setTrigger(trigger)
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2\n"), 0); err != nil {
		return res, fmt.Errorf("drop_caches: %w", err)
	}
	res.DropCaches = time.Since(trigger)

	// Wait until the live nodes are back at the baseline (or the drain
	// timeout passed) and fio has ended.
	drainCh, fioCh := smp.drained, fioDone
	timeout := time.NewTimer(p.DrainTimeout)
	defer timeout.Stop()
	for drainCh != nil || fioCh != nil {
		select {
		case <-drainCh:
			drainCh = nil
		case <-fioCh:
			fioCh = nil
		case <-timeout.C:
			drainCh = nil // give up; fio ends by itself
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	// A little more of the series, to show the memory after the drain.
	time.Sleep(5 * samplePeriod)
	raw := smp.finish()
	sampling = false
	if fioErr != nil {
		return res, fmt.Errorf("fio storm run: %w", fioErr)
	}
	after := srv.Stats()
	res.SlabAfter = fuseInodeSlab()
	res.HeapLiveAfter = liveHeapAfterGC()
	res.EndNodes = srv.NodesAlive()
	res.StormIOPS = fioRep.IOPS

	// Forgets and their transport.
	res.Forgets = totalForgets(after) - totalForgets(before)
	res.ForgetUnknown = after.ForgetUnknown - before.ForgetUnknown
	if d := after.Channels["devfuse"]; d != nil {
		b := before.Channels["devfuse"]
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
	if k.uring {
		rs := sess.Ring().Stats()
		res.RingForgets = rs.Forgets - ringBefore.Forgets
		res.RingForgetMsgs = rs.ForgetMsgs - ringBefore.ForgetMsgs
		// The channel commits every forget message it is handed,
		// after one CQE each.
		res.RingCQEs, res.RingCommits = res.RingForgetMsgs, res.RingForgetMsgs
		if u := after.Channels["uring"]; u != nil {
			b := before.Channels["uring"]
			if b == nil {
				b = &server.ChannelStats{}
			}
			res.Batches.Merge(histogramFrom(u.ForgetBatches[:]).Sub(histogramFrom(b.ForgetBatches[:])))
		}
		if res.RingForgetMsgs == 0 {
			// Nothing to attribute: no forget used the ring.
			res.RingEntersKnown = true
			res.Notes = append(res.Notes, fmt.Sprintf("no forget travelled on the ring (the kernel lacks the 7.46 patch%s); during the storm the ring carried %d other CQEs and %d commits in %d io_uring_enter calls",
				map[bool]string{true: " or ignored FORGET_COMMIT", false: ""}[k.forgetCommit],
				rs.CQEs-ringBefore.CQEs, rs.Commits-ringBefore.Commits, rs.Enters-ringBefore.Enters))
		} else {
			res.Notes = append(res.Notes, fmt.Sprintf("%d forget messages arrived on the ring: io_uring_enter calls and entries held are shared with reads and not attributed", res.RingForgetMsgs))
		}
	}

	// Drain, from the 1 ms poll.
	trig := trigger.UnixNano()
	if at := smp.drainedAt.Load(); at != 0 {
		res.Drained = true
		res.Drain = time.Duration(at - trig)
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

	// The time series, relative to the trigger, and memory.
	res.Series = make([]Sample, len(raw))
	for i, r := range raw {
		res.Series[i] = Sample{T: time.Duration(r.t - trig), Nodes: r.nodes, Forgets: r.forgets, RSS: r.rss, Heap: r.heap}
	}
	for _, s := range res.Series {
		if s.T < 0 {
			res.RSSBefore, res.HeapBefore = s.RSS, s.Heap
			continue
		}
		res.RSSPeak = max(res.RSSPeak, s.RSS)
		res.HeapPeak = max(res.HeapPeak, s.Heap)
	}
	if n := len(res.Series); n > 0 {
		res.RSSAfter, res.HeapAfter = res.Series[n-1].RSS, res.Series[n-1].Heap
	}

	// Read latency in windows after the trigger.
	ios, err := readLatLog(prefix + "_clat.1.log")
	if err != nil {
		return res, err
	}
	removeLogs(prefix)
	if len(ios) == 0 {
		return res, errors.New("fio storm run: empty latency log")
	}
	end := lastDone(ios) + int64(time.Millisecond)
	ms := int64(time.Millisecond)
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

	p.logf("storm: %d forgets in %d /dev/fuse + %d ring messages from %s to %s; drop_caches %s, drain %s; p99 first 100 ms %s, while forgetting %s (baseline %s)",
		res.Forgets, res.DevForgetMsgs, res.RingForgetMsgs, fmtDur(res.FirstForget), fmtDur(res.LastForget), fmtDur(res.DropCaches), fmtDur(res.Drain),
		fmtDur(res.Storm100ms.P99), fmtDur(res.Forgetting.P99), fmtDur(res.Baseline.P99))
	return res, nil
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
		_ = os.Remove(prefix + "_" + kind + ".1.log")
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
