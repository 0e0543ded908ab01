package forgetstudy

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParamPlan(t *testing.T) {
	all := func(string) bool { return true }
	plan, err := paramPlan(map[string]string{"uring_forget_batch": "Y"}, all)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"uring_forget_batch": "Y", "uring_forget_cap": "0", "uring_forget_threshold": "0", "uring_forget_delay_ms": "0", "uring_small_ents": "N"}
	if len(plan) != len(want) {
		t.Fatalf("plan %v, want %v", plan, want)
	}
	for k, v := range want {
		if plan[k] != v {
			t.Errorf("plan[%s] = %q, want %q", k, plan[k], v)
		}
	}
	// A kernel without the series: the transports run with nothing set,
	// a variant is skipped.
	none := func(string) bool { return false }
	if plan, err := paramPlan(nil, none); err != nil || len(plan) != 0 {
		t.Errorf("no series, no variant: %v, %v", plan, err)
	}
	if _, err := paramPlan(map[string]string{"uring_forget_cap": "1"}, none); !errors.Is(err, ErrNotSupported) {
		t.Errorf("variant on a kernel without its parameter: %v, want ErrNotSupported", err)
	}
	if _, err := paramPlan(map[string]string{"max_user_bgreq": "1"}, all); err == nil || errors.Is(err, ErrNotSupported) {
		t.Errorf("a parameter outside the series: %v, want a plain error", err)
	}
}

func TestSetParamsRestores(t *testing.T) {
	dir := t.TempDir()
	write := func(k, v string) {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(k string) string {
		b, _ := os.ReadFile(filepath.Join(dir, k))
		return strings.TrimSpace(string(b))
	}
	write("uring_forget_batch", "N")
	write("uring_forget_cap", "7")
	restore, err := setParams(dir, map[string]string{"uring_forget_batch": "Y", "uring_forget_cap": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if read("uring_forget_batch") != "Y" || read("uring_forget_cap") != "0" {
		t.Errorf("set: batch %q cap %q", read("uring_forget_batch"), read("uring_forget_cap"))
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if read("uring_forget_batch") != "N" || read("uring_forget_cap") != "7" {
		t.Errorf("restored: batch %q cap %q, want N and 7", read("uring_forget_batch"), read("uring_forget_cap"))
	}
	if _, err := setParams(dir, map[string]string{"missing": "1"}); err == nil {
		t.Error("setting a missing parameter did not fail")
	}
}

func TestRealKernelPolicies(t *testing.T) {
	ps := RealKernelPolicies()
	names := map[string]bool{}
	for _, p := range ps {
		if names[p.Name()] {
			t.Errorf("two policies called %s", p.Name())
		}
		names[p.Name()] = true
		if p.Kind() != KindRealKernel || Describe(p) == "" {
			t.Errorf("%s: kind %q, description %q", p.Name(), p.Kind(), Describe(p))
		}
		k, ok := p.(*kernelPolicy)
		if !ok {
			continue
		}
		if _, err := paramPlan(k.params, func(string) bool { return true }); err != nil {
			t.Errorf("%s: %v", p.Name(), err)
		}
		if len(k.params) > 0 && (!k.uring || !k.forgetCommit) {
			t.Errorf("%s: a series variant without the opt-in", p.Name())
		}
	}
	for _, n := range []string{NameDevFuse, NameUringForgetsOnDevFuse, NameUringForgetCommit, NameNative, "v3-batch", "v3-small4-batch"} {
		if !names[n] {
			t.Errorf("no policy %s", n)
		}
	}
}

func TestParseForgetEnts(t *testing.T) {
	trace := `# tracer: nop
#
 kworker/0:1-12 [000] ..... 10.000000: fuse_uring_forget_ents: connection 44 qid 0 taken 32 ents 1 waiting 100
 kworker/1:1-13 [001] ..... 10.001000: fuse_uring_forget_ents: connection 44 qid 1 taken 32 ents 2 waiting 5
 forgetstudy-99 [001] ..... 10.002000: fuse_uring_forget_ents: connection 44 qid 0 taken 0 ents 0 waiting 0
 forgetstudy-99 [001] ..... 10.004000: fuse_uring_forget_ents: connection 44 qid 1 taken 0 ents 0 waiting 0
 other-1 [000] ..... 10.005000: sched_switch: prev=a next=b
`
	s := parseForgetEnts(strings.NewReader(trace))
	if s.Events != 4 || s.Max != 3 || s.MaxWaiting != 100 || s.Queues != 2 {
		t.Fatalf("got %+v, want 4 events, max 3, 100 waiting, 2 queues", s)
	}
	// 1 for 1 ms, 3 for 1 ms, 2 for 2 ms over 4 ms.
	if want := (1 + 3 + 4) / 4.0; math.Abs(s.Mean-want) > 1e-9 {
		t.Errorf("mean %v, want %v", s.Mean, want)
	}
	if z := parseForgetEnts(strings.NewReader("")); z.Events != 0 || z.Mean != 0 {
		t.Errorf("empty trace: %+v", z)
	}
}

func TestMeminfoAndThreads(t *testing.T) {
	mi := []byte("MemTotal:  1000 kB\nSlab:   300 kB\nSUnreclaim:     120 kB\n")
	got := meminfoKB(mi, "SUnreclaim", "Slab", "Nope")
	if !slices.Equal(got, []int64{120, 300, -1}) {
		t.Errorf("meminfoKB = %v", got)
	}
	if n := parseThreads([]byte("Name:\tx\nThreads:\t17\nVmRSS: 1 kB\n")); n != 17 {
		t.Errorf("parseThreads = %d", n)
	}
	if n := parseThreads([]byte("Name: x\n")); n != 0 {
		t.Errorf("no Threads line: %d", n)
	}
	if sunreclaim() <= 0 {
		t.Error("this kernel's SUnreclaim is unreadable")
	}
}

func TestExcess(t *testing.T) {
	// 1000 switches in a 2 s storm, 100 in a 1 s span before: 800 more
	// than the reads' rate, over 400 forgets.
	if got := Excess(1000, 100, 2*time.Second, time.Second, 400); got != 2 {
		t.Errorf("Excess = %v, want 2", got)
	}
	if !math.IsNaN(Excess(1, 1, time.Second, 0, 1)) || !math.IsNaN(Excess(1, 1, time.Second, time.Second, 0)) {
		t.Error("Excess without a span or forgets is not NaN")
	}
	a := snapshot{at: time.Unix(0, 0)}
	b := snapshot{at: time.Unix(2, 0)}
	b.ru.Nvcsw, b.ru.Nivcsw = 5, 3
	b.rs.Enters, b.rs.CQEs, b.rs.Commits = 7, 9, 11
	c := countersBetween(a, b)
	if c.Span != 2*time.Second || c.VolCSw != 5 || c.InvolCSw != 3 || c.RingEnters != 7 || c.RingCQEs != 9 || c.RingCommits != 11 {
		t.Errorf("countersBetween = %+v", c)
	}
}

func TestFioArgsDepthAndJobs(t *testing.T) {
	has := func(args []string, s string) bool { return slices.Contains(args, s) }
	qd1 := fioArgs(ReadJob{FileSize: 1 << 20, BlockSize: 4096, Depth: 1, Jobs: 2}, "f", time.Second, "")
	if !has(qd1, "--ioengine=psync") || !has(qd1, "--iodepth=1") || !has(qd1, "--numjobs=2") || !has(qd1, "--group_reporting=1") {
		t.Errorf("QD1 args %v", qd1)
	}
	qd32 := fioArgs(ReadJob{FileSize: 1 << 20, BlockSize: 4096, Depth: 32, Jobs: 8}, "f", time.Second, "")
	if !has(qd32, "--ioengine=libaio") || !has(qd32, "--iodepth=32") || !has(qd32, "--numjobs=8") {
		t.Errorf("QD32 args %v", qd32)
	}
}

func TestReadLatLogsMergesJobs(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "x")
	// Job 1 completed at 10 ms and 30 ms, job 2 at 20 ms (1 ms each).
	logs := map[string]string{"_clat.1.log": "10, 1000000, 0, 4096, 0\n30, 1000000, 0, 4096, 0\n", "_clat.2.log": "20, 1000000, 0, 4096, 0\n"}
	for suffix, text := range logs {
		if err := os.WriteFile(prefix+suffix, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ios, err := readLatLogs(prefix)
	if err != nil {
		t.Fatal(err)
	}
	ms := int64(time.Millisecond)
	if len(ios) != 3 || ios[0].T != 9*ms || ios[1].T != 19*ms || ios[2].T != 29*ms {
		t.Errorf("merged %v", ios)
	}
	removeLogs(prefix)
	if left, _ := filepath.Glob(prefix + "*"); len(left) != 0 {
		t.Errorf("removeLogs left %v", left)
	}
	if _, err := readLatLogs(prefix); err == nil {
		t.Error("no logs: no error")
	}
}

func TestEvictModes(t *testing.T) {
	if _, err := newEvictor("kswapd", t.TempDir()); err == nil {
		t.Error("unknown eviction mode accepted")
	}
	p := Params{Evict: "kswapd"}.WithDefaults()
	if err := p.Validate(); err == nil {
		t.Error("Validate accepted an unknown eviction mode")
	}
	if p := (Params{}).WithDefaults(); p.Evict != EvictDropCaches || p.Read.Jobs < 1 {
		t.Errorf("defaults: evict %q, jobs %d", p.Evict, p.Read.Jobs)
	}
}

func TestWriteModelError(t *testing.T) {
	sum := func(name string, kv map[string]float64) Summary {
		s := Summary{Policy: name, Runs: 3, Metrics: map[string]Spread{}}
		for k, v := range kv {
			s.Metrics[k] = SpreadOf([]float64{v})
		}
		return s
	}
	nan := math.NaN()
	real := map[string]Summary{
		NameDevFuse:           sum(NameDevFuse, map[string]float64{MDevPerMsg: 6, MMsgsPerForget: nan}),
		NameUringForgetCommit: sum(NameUringForgetCommit, map[string]float64{MMsgsPerForget: 1, MXEnters: 0.125, MHeldMax: 0}),
	}
	model := map[string]Summary{
		"model-devfuse":  sum("model-devfuse", map[string]float64{MDevPerMsg: 2, MMsgsPerForget: nan}),
		"model-patch-v3": sum("model-patch-v3", map[string]float64{MMsgsPerForget: 1, MRingEntersPerFgt: 0.25, MHeldMax: 0}),
	}
	var b strings.Builder
	WriteModelError(&b, real, model)
	out := b.String()
	for _, want := range []string{
		"| devfuse / model-devfuse | forgets per /dev/fuse msg | 6.00 | 2.00 | 0.333× |",
		"| uring-forget-commit / model-patch-v3 | forget msgs per forget (both paths) | 1.00 | 1.00 | 1.00× |",
		"| uring-forget-commit / model-patch-v3 | io_uring_enter per forget | 0.125 | 0.25 | 2.00× |",
		"| uring-forget-commit / model-patch-v3 | entries holding forgets, max | 0 | 0 | = |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing row %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "devfuse / model-devfuse | forget msgs") {
		t.Errorf("a count missing on both sides has a row:\n%s", out)
	}
}

func TestEvictorKept(t *testing.T) {
	u, _ := newEvictor(EvictUnlink, t.TempDir())
	d, _ := newEvictor(EvictDropCaches, "")
	if u.kept(1) != 1 || u.kept(FilesPerDir) != 1 || u.kept(FilesPerDir+1) != 2 || d.kept(FilesPerDir+1) != 0 {
		t.Errorf("kept: unlink %d %d %d, drop_caches %d", u.kept(1), u.kept(FilesPerDir), u.kept(FilesPerDir+1), d.kept(FilesPerDir+1))
	}
}
