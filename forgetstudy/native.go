package forgetstudy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// NameNative is the control policy without FUSE.
const NameNative = "native-control"

// nativePolicy runs the same storm on the backing directory itself.
type nativePolicy struct{}

// NativeControl is a control, not a transport: the same files are looked
// up and the same fio job runs on the backing directory directly, with no
// FUSE mount, and the same drop_caches evicts the native inodes. Its read
// latencies show what eviction alone costs the reads on this machine, so
// that the FUSE policies' excess can be put on the forgets. It has no
// forgets and no drain. It is registered but not in the default list.
func NativeControl() Policy { return nativePolicy{} }

func (nativePolicy) Name() string { return NameNative }
func (nativePolicy) Kind() string { return KindRealKernel }
func (nativePolicy) Description() string {
	return "control: no FUSE; fio and drop_caches on the backing tree itself"
}

func (nativePolicy) Run(ctx context.Context, p Params) (Result, error) {
	res := Result{Inodes: p.Inodes, SlabBefore: -1, SlabAfter: -1}
	if err := p.Validate(); err != nil {
		return res, err
	}
	if os.Geteuid() != 0 {
		return res, fmt.Errorf("%w: needs root (drop_caches)", ErrNotSupported)
	}
	src := filepath.Join(p.WorkDir, "src")
	logs := filepath.Join(p.WorkDir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return res, err
	}
	if _, err := ensureTree(ctx, src, p.Inodes); err != nil {
		return res, fmt.Errorf("backing tree: %w", err)
	}
	file := filepath.Join(src, fioFileName)
	if err := ensureFioFile(file, p.Read.FileSize); err != nil {
		return res, fmt.Errorf("fio file: %w", err)
	}
	if p.Warmup > 0 {
		if _, err := runFio(ctx, p.Read, file, p.Warmup, ""); err != nil {
			return res, fmt.Errorf("fio warm-up: %w", err)
		}
	}
	t0 := time.Now()
	if err := instantiate(ctx, src, p.Inodes, 4); err != nil {
		return res, err
	}
	res.InstantiateTime = time.Since(t0)
	res.Instantiated = int64(p.Inodes)
	p.logf("looked up %d native inodes in %.1fs", p.Inodes, res.InstantiateTime.Seconds())
	unix.Sync()

	prefix := filepath.Join(logs, NameNative+"-baseline")
	rep, err := runFio(ctx, p.Read, file, p.Baseline, prefix)
	if err != nil {
		return res, fmt.Errorf("fio baseline: %w", err)
	}
	ios, err := readLatLogs(prefix)
	removeLogs(prefix)
	if err != nil {
		return res, err
	}
	if len(ios) == 0 {
		return res, errors.New("fio baseline: empty latency log")
	}
	res.BaselineIOPS = rep.IOPS
	res.Baseline = Window(ios, ios[0].T, lastDone(ios)+int64(time.Millisecond))

	for attempt := 1; ; attempt++ {
		r, err := nativeStorm(ctx, p, src, file, logs, res)
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

// nativeStorm looks the files up again and runs fio with drop_caches. It
// returns errDisturbed if the dentry slab shrank by less than half the
// files: someone else had dropped them already.
func nativeStorm(ctx context.Context, p Params, src, file, logs string, res Result) (Result, error) {
	if err := instantiate(ctx, src, p.Inodes, 4); err != nil {
		return res, err
	}
	unix.Sync()
	prefix := filepath.Join(logs, NameNative+"-storm")
	fr, err := startFio(ctx, p.Read, file, p.Read.Runtime, prefix)
	if err != nil {
		return res, err
	}
	// No server to watch for the first read: allow fio a fixed start-up.
	select {
	case <-time.After(300*time.Millisecond + p.StormDelay):
	case <-ctx.Done():
		_ = fr.cmd.Process.Kill()
		fr.wait()
		return res, ctx.Err()
	}
	unix.Sync()
	if others := otherFio(fr.cmd.Process.Pid); len(others) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("other fio processes ran during the storm (pids %v): they compete for the CPUs", others))
	}
	dentries := slabActive("dentry")
	trigger := time.Now()
	werr := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2\n"), 0)
	res.DropCaches = time.Since(trigger)
	frep, ferr := fr.wait()
	defer removeLogs(prefix)
	if werr != nil {
		return res, fmt.Errorf("drop_caches: %w", werr)
	}
	if ferr != nil {
		return res, fmt.Errorf("fio storm run: %w", ferr)
	}
	// Dentries are freed after an RCU grace period; fio's remaining
	// run time is long past that.
	if after := slabActive("dentry"); dentries >= 0 && after >= 0 && dentries-after < int64(p.Inodes)/2 {
		return res, fmt.Errorf("%w: the dentry slab shrank by %d, not by ~%d", errDisturbed, dentries-after, p.Inodes)
	}
	res.StormIOPS = frep.IOPS
	ios, err := readLatLogs(prefix)
	if err != nil {
		return res, err
	}
	if len(ios) == 0 {
		return res, errors.New("fio storm run: empty latency log")
	}
	trig, ms := trigger.UnixNano(), int64(time.Millisecond)
	end := lastDone(ios) + ms
	res.PreStorm = Window(ios, ios[0].T, trig)
	res.Storm100ms = Window(ios, trig, min(trig+100*ms, end))
	res.Storm1s = Window(ios, trig, min(trig+1000*ms, end))
	// Without forgets, the storm is the eviction: the drop_caches write.
	res.StormWhole = Window(ios, trig, min(trig+max(int64(res.DropCaches), ms), end))
	res.LatSeries = WindowSeries(ios, trig, ios[0].T, end, samplePeriod)
	res.Drained = true // nothing to drain
	res.Notes = append(res.Notes, "control without FUSE: whole storm = the drop_caches write; no forgets, no drain")
	p.logf("storm: drop_caches %s; p99 first 100 ms %s, whole %s (baseline %s)",
		fmtDur(res.DropCaches), fmtDur(res.Storm100ms.P99), fmtDur(res.StormWhole.P99), fmtDur(res.Baseline.P99))
	return res, nil
}

var _ Describer = nativePolicy{}
