package forgetstudy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/mount"
)

// TestEndToEnd runs a small study on the real kernel: 5,000 inodes, one
// run per policy, short fio runs. It checks that every policy's row is in
// the report and that the server's live nodes returned to the baseline.
func TestEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the study mounts with mount(2) and writes drop_caches")
	}
	if _, err := exec.LookPath("fio"); err != nil {
		t.Skip("needs fio in PATH (apt-get install fio)")
	}
	names := []string{NameDevFuse, NameUringForgetsOnDevFuse, NameNative}
	uringOn := false
	if b, err := os.ReadFile(mount.EnableUringParam); err == nil && strings.TrimSpace(string(b)) == "Y" {
		uringOn = true
	}
	t.Logf("kernel enable_uring=%v", uringOn)
	pols, err := Pick(RealKernelPolicies(), names)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	p := Params{
		Inodes:       5000,
		Runs:         1,
		WorkDir:      work,
		Warmup:       200 * time.Millisecond,
		Baseline:     500 * time.Millisecond,
		StormDelay:   300 * time.Millisecond,
		DrainTimeout: 20 * time.Second,
		Read:         ReadJob{Runtime: 1500 * time.Millisecond},
		Logf:         t.Logf,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, p, pols)
	if ok, _ := mount.IsMounted(filepath.Join(work, "mnt")); ok {
		_ = mount.ForceUnmount(filepath.Join(work, "mnt"), 0)
		t.Error("the study left its mount behind")
	}
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, rr := range rep.Runs {
		if rr.Policy == NameUringForgetsOnDevFuse && !uringOn {
			if rr.Skipped == "" {
				t.Errorf("%s ran with enable_uring off", rr.Policy)
			}
			continue
		}
		r := rr.Result
		if r == nil {
			t.Errorf("%s: no result (skipped: %q, error: %q)", rr.Policy, rr.Skipped, rr.Err)
			continue
		}
		if !strings.Contains(md.String(), "| real kernel | "+rr.Policy+" | 1 |") {
			t.Errorf("report has no row for %s:\n%s", rr.Policy, md.String())
		}
		if rr.Policy == NameNative {
			if r.Forgets != 0 || r.Baseline.N == 0 || r.Storm1s.N == 0 {
				t.Errorf("native control: %d forgets, %d baseline reads, %d storm reads", r.Forgets, r.Baseline.N, r.Storm1s.N)
			}
			continue
		}
		if r.Instantiated < 5000 {
			t.Errorf("%s: instantiated %d inodes, want at least 5000", rr.Policy, r.Instantiated)
		}
		if !r.Drained || r.EndNodes > r.BaseNodes {
			t.Errorf("%s: live nodes did not return to the baseline %d: %d at the end (drained %v)", rr.Policy, r.BaseNodes, r.EndNodes, r.Drained)
		}
		if r.Forgets < uint64(r.Instantiated) {
			t.Errorf("%s: %d forgets for %d instantiated inodes", rr.Policy, r.Forgets, r.Instantiated)
		}
		if r.DevForgetMsgs == 0 || r.DevForgetMsgs != r.SingleForgets+r.BatchForgets || r.Batches.Total() != r.Messages() {
			t.Errorf("%s: forget messages %d = %d FORGET + %d BATCH_FORGET, histogram total %d", rr.Policy, r.DevForgetMsgs, r.SingleForgets, r.BatchForgets, r.Batches.Total())
		}
		if r.RingForgetMsgs != 0 {
			t.Logf("%s: %d forget messages on the ring: this kernel has the 7.46 patch", rr.Policy, r.RingForgetMsgs)
		}
		// Reads from the trigger on, not inside the storm alone: a
		// 5000-inode storm can drain in less time than a loaded
		// machine takes to complete one read.
		if r.Baseline.N == 0 || r.Storm1s.N == 0 || len(r.Series) == 0 || len(r.LatSeries) == 0 {
			t.Errorf("%s: missing measurements: baseline %d reads, %d reads in the second after the trigger, %d samples, %d windows",
				rr.Policy, r.Baseline.N, r.Storm1s.N, len(r.Series), len(r.LatSeries))
		}
	}
	out := t.TempDir()
	if err := rep.WriteDir(out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.md", "results.json", PlotLiveNodes, PlotRSS, PlotReadP99} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".svg") {
			svgDoc(t, b)
		}
	}
}

// TestEndToEndUnlinkDeep runs /dev/fuse once with the files unlinked by
// one thread per CPU and two readers per CPU at depth 4 (libaio): every
// unlinked file is forgotten, the tree comes back for the next run, and
// the daemon's counters cover the storm.
func TestEndToEndUnlinkDeep(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the study mounts with mount(2)")
	}
	if _, err := exec.LookPath("fio"); err != nil {
		t.Skip("needs fio in PATH (apt-get install fio)")
	}
	work := t.TempDir()
	p := Params{
		Inodes: 2000, Runs: 1, WorkDir: work, Evict: EvictUnlink,
		Warmup: -1, Baseline: 300 * time.Millisecond, StormDelay: 300 * time.Millisecond, DrainTimeout: 20 * time.Second,
		Read: ReadJob{Runtime: 1500 * time.Millisecond, Depth: 4, Jobs: 2 * runtime.NumCPU()},
		Logf: t.Logf,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for round := 1; round <= 2; round++ { // the second finds the tree recreated
		rep, err := Run(ctx, p, []Policy{DevFuse()})
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Runs[0].Result
		if r.Forgets < 2000 || !r.Drained || r.DevForgetMsgs == 0 {
			t.Fatalf("round %d: %d forgets in %d messages, drained %v", round, r.Forgets, r.DevForgetMsgs, r.Drained)
		}
		sc, pc := r.StormCounts, r.PreCounts
		if sc.Span <= 0 || pc.Span <= 0 || sc.DevMsgs < r.DevForgetMsgs || sc.VolCSw <= 0 || sc.CPU <= 0 {
			t.Errorf("round %d: counters storm %+v, before %+v", round, sc, pc)
		}
		if r.ThreadsPeak < r.DevReaders || r.DevBufBytes <= 0 || r.SUnreclaimBefore <= 0 {
			t.Errorf("round %d: %d threads, %d readers, %d buffer bytes, SUnreclaim %d", round, r.ThreadsPeak, r.DevReaders, r.DevBufBytes, r.SUnreclaimBefore)
		}
		if n := readStamp(filepath.Join(work, "src")); n != 0 {
			t.Errorf("round %d: the tree's stamp says %d files after they were unlinked", round, n)
		}
	}
}
