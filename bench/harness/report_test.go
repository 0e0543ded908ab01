package harness

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func result(cfg string, rate float64, cpu float64) Result {
	r := Result{Config: cfg, Workload: "randread-4k-qd1", Unit: "IOPS", Rate: rate, Ops: 1000,
		P50us: ptr(rate / 100), P99us: ptr(rate / 10)}
	if cfg != "native" {
		r.CPUusPerOp, r.CtxswPerOp = ptr(cpu), ptr(2)
	}
	return r
}

func testReport() *Report {
	cfgs := []Config{{Name: "native"}, {Name: "devfuse", Argv: []string{"rf", "{src}", "{mnt}"}}, {Name: "gofuse", Argv: []string{"gf"}}}
	results := []Result{
		result("native", 10000, 0), result("devfuse", 5000, 40), result("gofuse", 4000, 60),
		result("native", 12000, 0), result("devfuse", 6000, 30), result("gofuse", 0, 0),
		result("native", 11000, 0), result("devfuse", 5500, 35), result("gofuse", 4400, 50),
	}
	results[5] = Result{Config: "gofuse", Workload: "randread-4k-qd1", Unit: "IOPS", Err: "mount gofuse: boom\nmore"}
	results[1].Warnings = []string{"stop daemon: daemon exit: exit status 1"}
	ws := []Workload{&FioJob{JobName: "randread-4k-qd1", RW: "randread", BS: "4k", IODepth: 1}}
	return NewReport(SystemInfo{Kernel: "6.18"}, DefaultParams(), 3, cfgs, ws, results)
}

func TestReportCell(t *testing.T) {
	r := testReport()
	c := r.Cell("devfuse", "randread-4k-qd1")
	if c.OK != 3 || c.Failed != 0 || c.Rate != 5500 || c.RateMin != 5000 || c.RateMax != 6000 || c.CPUusPerOp != 35 || c.CtxswPerOp != 2 || c.P99us != 550 {
		t.Errorf("devfuse cell = %+v", c)
	}
	if len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "exit status 1") {
		t.Errorf("devfuse notes = %q", c.Notes)
	}
	g := r.Cell("gofuse", "randread-4k-qd1")
	if g.OK != 2 || g.Failed != 1 || g.Rate != 4200 {
		t.Errorf("gofuse cell = %+v", g)
	}
	n := r.Cell("native", "randread-4k-qd1")
	if !math.IsNaN(n.CPUusPerOp) || n.Rate != 11000 {
		t.Errorf("native cell = %+v", n)
	}
	if e := r.Cell("uring-qd8", "randread-4k-qd1"); e.OK != 0 || !math.IsNaN(e.Rate) {
		t.Errorf("empty cell = %+v", e)
	}
}

func TestReportMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := testReport().Markdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"kernel: 6.18",
		"| devfuse | `rf {src} {mnt}` |",
		"--ioengine=psync",
		"| config | IOPS (median, min–max) | p50 µs | p99 µs | cpu µs/op | ctxsw/op | vs native | vs gofuse | vs devfuse |",
		// 5500/11000, 5500/4200, 5500/5500
		"| devfuse | 5500 (5000–6000) | 55.0 | 550.0 | 35.00 | 2.00 | 0.50 | 1.31 | 1.00 |",
		"| native | 11000 (10000–12000) | 110.0 | 1100.0 | – | – | 1.00 | 2.62 | 2.00 |",
		"| gofuse | 4200 (4000–4400) [1/3 failed]",
		"- gofuse: error: mount gofuse: boom\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := testReport().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != 9 || back.Results[5].Err == "" || back.Results[0].P50us == nil || back.Results[0].CPUusPerOp != nil {
		t.Errorf("round trip lost data: %+v", back.Results)
	}
}
