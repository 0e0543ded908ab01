package forgetstudy

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseLatLog(t *testing.T) {
	// fio 3.33 with --log_avg_msec=0 --log_unix_epoch=1: time (ms),
	// value (ns), ddir, bs, offset; some versions add a priority column.
	log := `1795639047264, 294441, 0, 4096, 0
1795639047263, 77986, 0, 4096, 8192
1795639047265, 55823, 1, 4096, 0
1795639047266, 60000, 0, 4096, 4096, 0

`
	ios, err := ParseLatLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	// Issue times: the logged completion time less the latency.
	want := []IO{
		{T: 1795639047263*1e6 - 77986, Lat: 77986},
		{T: 1795639047264*1e6 - 294441, Lat: 294441},
		{T: 1795639047266*1e6 - 60000, Lat: 60000},
	}
	if len(ios) != len(want) {
		t.Fatalf("got %d reads, want %d (the write is dropped): %+v", len(ios), len(want), ios)
	}
	for i := range want {
		if ios[i] != want[i] {
			t.Errorf("read %d = %+v, want %+v (sorted by time)", i, ios[i], want[i])
		}
	}
	for _, bad := range []string{"1, 2\n", "x, 2, 0, 4096, 0\n", "1, -5, 0, 4096, 0\n", "1, 2, r, 4096, 0\n"} {
		if _, err := ParseLatLog(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseLatLog(%q) accepted", bad)
		}
	}
}

func TestParseFioJSON(t *testing.T) {
	out := `fio: some warning
{
  "fio version" : "fio-3.33",
  "jobs" : [
    {
      "jobname" : "forgetstudy",
      "error" : 0,
      "read" : {
        "iops" : 18406.593407,
        "total_ios" : 18425,
        "clat_ns" : {
          "percentile" : {"50.000000" : 53504, "99.000000" : 85504}
        }
      }
    }
  ]
}`
	r, err := ParseFioJSON([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.IOPS-18406.593407) > 1e-6 || r.TotalIOs != 18425 || r.P50 != 53504 || r.P99 != 85504 {
		t.Errorf("got %+v", r)
	}
	for _, bad := range []string{"", "no json", `{"jobs": []}`, `{"jobs": [{"error": 5}]}`, `{"jobs": [`} {
		if _, err := ParseFioJSON([]byte(bad)); err == nil {
			t.Errorf("ParseFioJSON(%q) accepted", bad)
		}
	}
}

func TestFioArgs(t *testing.T) {
	j := Params{}.WithDefaults().Read
	args := strings.Join(fioArgs(j, "/mnt/fiofile", 1500*time.Millisecond, "/logs/x"), " ")
	for _, want := range []string{"--rw=randread", "--bs=4096", "--ioengine=psync", "--iodepth=1", "--direct=1",
		"--size=67108864", "--runtime=1500ms", "--output-format=json", "--write_lat_log=/logs/x", "--log_avg_msec=0", "--log_unix_epoch=1"} {
		if !strings.Contains(args, want) {
			t.Errorf("fio args lack %s: %s", want, args)
		}
	}
	if strings.Contains(strings.Join(fioArgs(j, "f", time.Second, ""), " "), "lat_log") {
		t.Error("a run without a log prefix asks for a latency log")
	}
}

// svgDoc decodes an SVG with encoding/xml and counts its elements.
func svgDoc(t *testing.T, b []byte) map[string]int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	count := map[string]int{}
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, b)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if e.Name.Local != "svg" || e.Name.Space != "http://www.w3.org/2000/svg" {
					t.Fatalf("root element %v, want svg in the SVG namespace", e.Name)
				}
			}
			depth++
			count[e.Name.Local]++
		case xml.EndElement:
			depth--
		}
	}
	if roots != 1 || depth != 0 {
		t.Fatalf("%d root elements, depth %d at the end", roots, depth)
	}
	return count
}

func TestPlotSVG(t *testing.T) {
	p := &Plot{
		Title:  `p99 <"storm"> & drain`,
		XLabel: "ms", YLabel: "µs", LogY: true,
		Lines: []Line{
			{Label: "devfuse", X: []float64{-10, 0, 10, 20}, Y: []float64{100, 150, 3000, 120}},
			{Label: "devfuse", X: []float64{-10, 0, 10}, Y: []float64{90, 0, math.NaN()}}, // same legend entry; 0 and NaN dropped on a log axis
			{Label: "model <ring>", Dash: true, Opacity: 0.5, Color: `"red"`, X: []float64{0, 5}, Y: []float64{200, 400}},
		},
		Marks: []Mark{{X: 0, Label: "drop_caches & co"}, {X: 1e9, Label: "outside"}},
	}
	var b bytes.Buffer
	if err := p.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	n := svgDoc(t, b.Bytes())
	if n["polyline"] != 3 {
		t.Errorf("%d polylines, want 3", n["polyline"])
	}
	s := b.String()
	for _, want := range []string{"p99 &lt;&#34;storm&#34;&gt; &amp; drain", "model &lt;ring&gt;", "drop_caches &amp; co", `stroke-dasharray="6 4"`} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %s", want)
		}
	}
	if strings.Contains(s, "outside") {
		t.Error("a mark outside the x range was drawn")
	}
	if c := strings.Count(s, ">devfuse<"); c != 1 {
		t.Errorf("legend has %d devfuse entries, want 1", c)
	}

	// Degenerate plots are still well-formed.
	for _, p := range []*Plot{{}, {LogY: true, Lines: []Line{{X: []float64{1}, Y: []float64{0}}}}, {XMin: 5, XMax: 6, Lines: []Line{{X: []float64{1, 2}, Y: []float64{3, 3}}}}} {
		b.Reset()
		if err := p.WriteSVG(&b); err != nil {
			t.Fatal(err)
		}
		svgDoc(t, b.Bytes())
	}
}

func TestTicks(t *testing.T) {
	ts := linearTicks(-5, 50, 8)
	if len(ts) < 4 || ts[0] < -5 || ts[len(ts)-1] > 50 {
		t.Errorf("linearTicks(-5, 50) = %v", ts)
	}
	for _, v := range ts {
		if math.Abs(v/5-math.Round(v/5)) > 1e-9 {
			t.Errorf("tick %v is not a round number", v)
		}
	}
	if got := logTicks(10, 10000); len(got) != 4 || got[0] != 10 || got[3] != 10000 {
		t.Errorf("logTicks(10, 1e4) = %v", got)
	}
	if got := logTicks(100, 1000); len(got) != 4 { // 100, 200, 500, 1000
		t.Errorf("logTicks(100, 1000) = %v", got)
	}
	if linearTicks(1, 1, 5) != nil || logTicks(0, 10) != nil {
		t.Error("empty ranges give ticks")
	}
}

// fakePolicy is a model policy for testing the registry and the report.
type fakePolicy struct {
	name string
	err  error
	runs int
}

func (f *fakePolicy) Name() string { return f.name }
func (f *fakePolicy) Kind() string { return KindModel }
func (f *fakePolicy) Run(ctx context.Context, p Params) (Result, error) {
	f.runs++
	if f.err != nil {
		return Result{}, f.err
	}
	d := time.Duration(f.runs) * 10 * time.Millisecond
	r := Result{Inodes: p.Inodes, Forgets: uint64(p.Inodes), RingForgetMsgs: uint64(p.Inodes), RingCQEs: uint64(p.Inodes), RingCommits: uint64(p.Inodes),
		RingEnters: uint64(p.Inodes / 8), RingEntersKnown: true, EntriesHeldMean: 3, EntriesHeldMax: float64(p.QueueDepth),
		Drained: true, Drain: d, LastForget: d, SlabBefore: -1, SlabAfter: -1,
		Storm100ms: Latency{N: 10, Span: 100 * time.Millisecond, P50: 100 * time.Microsecond, P99: d, IOPS: 100},
		Series:     []Sample{{T: -10 * time.Millisecond, Nodes: int64(p.Inodes)}, {T: d, Nodes: 0}},
		LatSeries:  []LatPoint{{T: 0, N: 3, P99: d}},
	}
	r.Batches.Add(1)
	return r, nil
}

func TestPickAndReport(t *testing.T) {
	ok := &fakePolicy{name: "test-model-ok"}
	skip := &fakePolicy{name: "test-model-skip", err: errors.Join(ErrNotSupported, errors.New("no kernel model yet"))}
	fail := &fakePolicy{name: "test-model-fail", err: errors.New("boom")}
	all := append(RealKernelPolicies(), ok, skip, fail)
	if _, err := Pick(all, []string{"no-such-policy"}); !errors.Is(err, ErrUnknownPolicy) {
		t.Errorf("Pick of an unknown name: %v", err)
	}
	if _, err := Pick(append(all, &fakePolicy{name: "test-model-ok"}), nil); !errors.Is(err, ErrUnknownPolicy) {
		t.Errorf("Pick with two policies of one name: %v", err)
	}
	mixed := []Policy{ok, DevFuse(), skip}
	SortByKind(mixed)
	if mixed[0].Kind() != KindRealKernel || mixed[1] != ok || mixed[2] != skip {
		t.Errorf("SortByKind: %v", mixed)
	}
	pols, err := Pick(all, []string{"test-model-ok", "test-model-skip", "test-model-fail", "test-model-ok"})
	if err != nil || len(pols) != 3 {
		t.Fatalf("Pick: %v, %v", pols, err)
	}
	var progress []string
	p := Params{Inodes: 1000, Runs: 3, WorkDir: t.TempDir(), Logf: func(f string, a ...any) { progress = append(progress, f) }}
	rep, err := Run(context.Background(), p, pols)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Run error = %v, want the failing policy's", err)
	}
	if ok.runs != 3 || skip.runs != 1 || fail.runs != 3 {
		t.Errorf("runs: ok %d, skip %d (skipped after the first), fail %d", ok.runs, skip.runs, fail.runs)
	}
	// Alternating: ok, skip, fail, ok, fail, ok, fail.
	var order []string
	for _, r := range rep.Runs {
		order = append(order, r.Policy[len("test-model-"):])
	}
	if got := strings.Join(order, ","); got != "ok,skip,fail,ok,fail,ok,fail" {
		t.Errorf("run order %s", got)
	}
	if len(progress) == 0 || !strings.HasPrefix(progress[0], "[policy test-model-ok run 1/3] ") {
		t.Errorf("progress lines: %q", progress)
	}
	sums := rep.Summaries()
	if s := sums[0]; s.Runs != 3 || s.Metrics[MDrain].Median != float64(20*time.Millisecond) || s.Metrics[MDrain].Min != float64(10*time.Millisecond) {
		t.Errorf("summary of %s: runs %d, drain %+v", s.Policy, s.Runs, s.Metrics[MDrain])
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	m := md.String()
	for _, want := range []string{"## Model (kmodel", "| model | test-model-ok | 3 |", "test-model-skip skipped", "test-model-fail failed", "20.0ms [10.0ms–30.0ms]"} {
		if !strings.Contains(m, want) {
			t.Errorf("report lacks %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, "| real kernel | test-model") {
		t.Error("a model row is labelled real kernel")
	}
	dir := t.TempDir()
	if err := rep.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	for _, pl := range rep.Plots() {
		var b bytes.Buffer
		if err := pl.WriteSVG(&b); err != nil {
			t.Fatal(err)
		}
		if n := svgDoc(t, b.Bytes()); n["polyline"] == 0 {
			t.Errorf("plot %q has no line", pl.Title)
		}
	}
}

// A read stuck behind a storm counts in the window it was issued in (the
// log gives its completion time, long after that window) and in every
// window it is in flight during.
func TestLatLogWindowsByIssue(t *testing.T) {
	ms := int64(time.Millisecond)
	// Reads issued at 999.9, 1001 and 1001.9 ms; the second takes 500 ms
	// and completes at 1501 ms, after the third.
	log := "1000, 100000, 0, 4096, 0\n1501, 500000000, 0, 4096, 0\n1002, 100000, 0, 4096, 0\n"
	ios, err := ParseLatLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	w := Window(ios, 999*ms, 1010*ms)
	if w.N != 3 || w.P99 != 500*time.Millisecond {
		t.Errorf("reads in flight in [999, 1010) ms: %+v, want all 3 with p99 500ms", w)
	}
	// The slow read is in flight from 1001 to 1501 ms.
	if w := Window(ios, 1010*ms, 1600*ms); w.N != 1 || w.IOPS != 0 {
		t.Errorf("[1010, 1600) ms: %+v, want the slow read in flight, none issued", w)
	}
	if w := Window(ios, 1502*ms, 1600*ms); w.N != 0 {
		t.Errorf("[1502, 1600) ms: %+v, want none", w)
	}
	if ios[1].Lat != 500*time.Millisecond || ios[1].T != 1001*ms {
		t.Errorf("order by issue time: %+v", ios)
	}
	// The log ends with the slow read's completion, not its issue.
	if end := lastDone(ios); end != 1501*ms {
		t.Errorf("log ends at %d ms, want 1501", end/ms)
	}
}
