package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Report is the outcome of a benchmark session.
type Report struct {
	System    SystemInfo     `json:"system"`
	Params    Params         `json:"params"`
	Runs      int            `json:"runs"`
	Configs   []ConfigInfo   `json:"configs"`
	Workloads []WorkloadInfo `json:"workloads"`
	Results   []Result       `json:"results"`
	// Notes are free-form lines for the report header (for example the
	// -o words every FUSE configuration got).
	Notes []string `json:"notes,omitempty"`
}

// ConfigInfo names a configuration and its exact command.
type ConfigInfo struct {
	Name    string `json:"name"`
	Command string `json:"command"`
}

// WorkloadInfo names a workload, its unit and its exact client command.
type WorkloadInfo struct {
	Name    string `json:"name"`
	Unit    string `json:"unit"`
	Command string `json:"command"`
}

// NewReport describes configs and workloads and holds results.
func NewReport(sys SystemInfo, p Params, runs int, configs []Config, workloads []Workload, results []Result) *Report {
	r := &Report{System: sys, Params: p, Runs: runs, Results: results}
	for _, c := range configs {
		r.Configs = append(r.Configs, ConfigInfo{Name: c.Name, Command: c.CommandLine()})
	}
	for _, w := range workloads {
		r.Workloads = append(r.Workloads, WorkloadInfo{Name: w.Name(), Unit: w.Unit(), Command: w.Command(p)})
	}
	return r
}

// Cell summarizes the runs of one workload on one configuration. Values
// are NaN when no successful run measured them.
type Cell struct {
	OK, Failed       int
	Rate             float64 // median
	RateMin, RateMax float64
	P50us, P99us     float64  // medians
	CPUusPerOp       float64  // median
	CtxswPerOp       float64  // median
	Notes            []string // errors and warnings, deduplicated
}

// Cell computes the summary for (config, workload).
func (r *Report) Cell(config, workload string) Cell {
	var rate, p50, p99, cpu, cs []float64
	c := Cell{}
	note := func(s string) {
		s = firstLine(s)
		if !slices.Contains(c.Notes, s) {
			c.Notes = append(c.Notes, s)
		}
	}
	for _, res := range r.Results {
		if res.Config != config || res.Workload != workload {
			continue
		}
		for _, w := range res.Warnings {
			note("warning: " + w)
		}
		if !res.OK() {
			c.Failed++
			note("error: " + res.Err)
			continue
		}
		c.OK++
		rate = append(rate, res.Rate)
		appendPtr(&p50, res.P50us)
		appendPtr(&p99, res.P99us)
		appendPtr(&cpu, res.CPUusPerOp)
		appendPtr(&cs, res.CtxswPerOp)
	}
	c.Rate = Median(rate)
	c.RateMin, c.RateMax = MinMax(rate)
	c.P50us, c.P99us = Median(p50), Median(p99)
	c.CPUusPerOp, c.CtxswPerOp = Median(cpu), Median(cs)
	return c
}

func appendPtr(xs *[]float64, p *float64) {
	if p != nil {
		*xs = append(*xs, *p)
	}
}

// ratioRefs are the configurations every table is compared against.
var ratioRefs = []string{"native", "gofuse", "devfuse"}

// Markdown writes the report as Markdown: a header describing the machine,
// the method and the exact commands, then one table per workload.
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	s := r.System
	fmt.Fprintf(&b, "# ringfuse benchmark\n\n")
	fmt.Fprintf(&b, "- date: %s\n", s.Date)
	fmt.Fprintf(&b, "- kernel: %s; fuse `enable_uring`: %s\n", s.Kernel, s.EnableUring)
	fmt.Fprintf(&b, "- CPUs: %d (no pinning); memory: %s; load average at start: %s\n", s.CPUs, s.MemTotal, s.LoadAvg)
	fmt.Fprintf(&b, "- backing directory: `%s` (%s)\n", s.BackingDir, s.BackingFS)
	fmt.Fprintf(&b, "- tools: %s; %s", s.FioVersion, s.FsmarkVersion)
	if s.GoFuse != "" {
		fmt.Fprintf(&b, "; gofuse peer: %s loopback, kernel passthrough off", s.GoFuse)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- runs: %d per cell; configurations alternate within each round; a cell is the median (min–max)\n", r.Runs)
	fmt.Fprintf(&b, "- every run mounts afresh")
	if r.Params.DropCaches {
		b.WriteString(" after `sync; echo 3 > /proc/sys/vm/drop_caches`")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- fio: file of %s created natively once; each measured job (%v) follows an unmeasured warm-up run of the same job (%v) in a separate fio process\n",
		fioSize(r.Params.FileSize), r.Params.Runtime, r.Params.Ramp)
	b.WriteString("- daemon cost per op: utime+stime from /proc/PID/stat and voluntary+nonvoluntary context switches summed over /proc/PID/task/*/status, sampled at the start and end of the measured window, divided by fio's total I/Os, fs_mark's files or the stat calls\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	b.WriteString("\n## Configurations\n\n| config | command |\n|---|---|\n")
	for _, c := range r.Configs {
		fmt.Fprintf(&b, "| %s | `%s` |\n", c.Name, c.Command)
	}
	b.WriteString("\n## Workloads\n\n| workload | unit | command (DIR = mountpoint or backing directory) |\n|---|---|---|\n")
	for _, wl := range r.Workloads {
		fmt.Fprintf(&b, "| %s | %s | `%s` |\n", wl.Name, wl.Unit, wl.Command)
	}

	for _, wl := range r.Workloads {
		fmt.Fprintf(&b, "\n## %s\n\n", wl.Name)
		fmt.Fprintf(&b, "| config | %s (median, min–max) | p50 µs | p99 µs | cpu µs/op | ctxsw/op |", wl.Unit)
		for _, ref := range ratioRefs {
			fmt.Fprintf(&b, " vs %s |", ref)
		}
		b.WriteString("\n|---|---|---|---|---|---|---|---|---|\n")
		refs := map[string]float64{}
		for _, ref := range ratioRefs {
			refs[ref] = r.Cell(ref, wl.Name).Rate
		}
		var notes []string
		for _, c := range r.Configs {
			cell := r.Cell(c.Name, wl.Name)
			rateCol := "–"
			if cell.OK > 0 {
				rateCol = fmt.Sprintf("%s (%s–%s)", fmtRate(cell.Rate), fmtRate(cell.RateMin), fmtRate(cell.RateMax))
			}
			if cell.Failed > 0 {
				rateCol += fmt.Sprintf(" [%d/%d failed]", cell.Failed, cell.OK+cell.Failed)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |", c.Name, rateCol,
				fmtNum(cell.P50us, 1), fmtNum(cell.P99us, 1), fmtNum(cell.CPUusPerOp, 2), fmtNum(cell.CtxswPerOp, 2))
			for _, ref := range ratioRefs {
				fmt.Fprintf(&b, " %s |", fmtNum(Ratio(cell.Rate, refs[ref]), 2))
			}
			b.WriteString("\n")
			for _, n := range cell.Notes {
				notes = append(notes, c.Name+": "+n)
			}
		}
		if len(notes) > 0 {
			b.WriteString("\n")
			for _, n := range notes {
				fmt.Fprintf(&b, "- %s\n", n)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report, with every raw result, as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func fmtRate(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func fmtNum(v float64, prec int) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, v)
}
