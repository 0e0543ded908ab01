package patched

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/forgetstudy"
)

// TestStudyVM runs kernel/study, the forget study's VM runner, with a
// small study: one run each of patch v3 and its batched variant over 500
// inodes at 2 CPUs. The counts must be the patched kernel's: one forget
// per ring message under v3, several under batching, none on /dev/fuse.
func TestStudyVM(t *testing.T) {
	if inVM {
		t.Skip("in the guest")
	}
	if testing.Short() {
		t.Skip("-short: boots a kernel under emulation")
	}
	if os.Getenv("RINGFUSE_VM_TESTS") == "0" {
		t.Skip("RINGFUSE_VM_TESTS=0")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: kernel/vm runs QEMU")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// The guest writes the report into a directory it sees as the host
	// does: one in the checkout.
	out, err := os.MkdirTemp(".", ".study-")
	if err != nil {
		t.Fatal(err)
	}
	out, _ = filepath.Abs(out)
	t.Cleanup(func() { os.RemoveAll(out) })
	timeout := 8 * time.Minute
	if d, ok := t.Deadline(); ok && time.Until(d)-30*time.Second < timeout {
		timeout = time.Until(d) - 30*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repo, "kernel/study"), "--cpus", "2",
		"--timeout", itoa(int(timeout.Seconds())), "--out", out, "--",
		"-policies", "uring-forget-commit,v3-batch", "-runs", "1", "-inodes", "500",
		"-warmup", "-1ns", "-baseline", "300ms", "-read-runtime", "1500ms", "-storm-delay", "300ms", "-drain-timeout", "60s")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("kernel/study: %v", err)
	}
	t.Logf("kernel/study ran for %.1fs", time.Since(t0).Seconds())
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Runs []forgetstudy.RunRecord }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]*forgetstudy.Result{}
	for _, rr := range doc.Runs {
		if rr.Result == nil {
			t.Errorf("%s: no result (skipped %q, error %q)", rr.Policy, rr.Skipped, rr.Err)
			continue
		}
		got[rr.Policy] = rr.Result
	}
	v3, batch := got[forgetstudy.NameUringForgetCommit], got["v3-batch"]
	if v3 == nil || batch == nil {
		t.Fatalf("results for %v, want uring-forget-commit and v3-batch", doc.Runs)
	}
	for name, r := range got {
		if r.Forgets < 500 || r.DevForgetMsgs != 0 || r.RingForgets != r.Forgets || !r.Drained {
			t.Errorf("%s: %d forgets, %d on the ring, %d /dev/fuse messages, drained %v: want every forget of 500+ on the ring",
				name, r.Forgets, r.RingForgets, r.DevForgetMsgs, r.Drained)
		}
	}
	if v3.RingForgetMsgs != v3.RingForgets {
		t.Errorf("patch v3: %d forgets in %d ring messages, want one each", v3.RingForgets, v3.RingForgetMsgs)
	}
	if batch.RingForgetMsgs >= batch.RingForgets || batch.Ents.Events == 0 || batch.Ents.Max < 1 {
		t.Errorf("v3-batch: %d forgets in %d ring messages, trace %+v: want batches and the fuse_uring_forget_ents trace",
			batch.RingForgets, batch.RingForgetMsgs, batch.Ents)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
