package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"
)

// Result is one run of one workload on one configuration.
type Result struct {
	Config   string    `json:"config"`
	Workload string    `json:"workload"`
	Round    int       `json:"round"`
	Start    time.Time `json:"start"`
	Unit     string    `json:"unit"`
	Rate     float64   `json:"rate"`
	Ops      int64     `json:"ops"`
	Seconds  float64   `json:"seconds"` // the measured window
	P50us    *float64  `json:"p50_us,omitempty"`
	P99us    *float64  `json:"p99_us,omitempty"`
	// Daemon figures are totals over the measured window; nil for native.
	DaemonCPUus *float64 `json:"daemon_cpu_us,omitempty"`
	DaemonCtxsw *float64 `json:"daemon_ctxsw,omitempty"`
	CPUusPerOp  *float64 `json:"cpu_us_per_op,omitempty"`
	CtxswPerOp  *float64 `json:"ctxsw_per_op,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
	Err         string   `json:"error,omitempty"`
	Log         string   `json:"log,omitempty"`
}

// OK reports whether the run produced a measurement.
func (r Result) OK() bool { return r.Err == "" }

// Summary is the result as a short progress line.
func (r Result) Summary() string {
	if !r.OK() {
		return "error: " + firstLine(r.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", fmtRate(r.Rate), r.Unit)
	if r.P99us != nil {
		fmt.Fprintf(&b, ", p50 %.1f µs, p99 %.1f µs", *r.P50us, *r.P99us)
	}
	if r.CPUusPerOp != nil {
		fmt.Fprintf(&b, ", cpu %.2f µs/op, %.2f ctxsw/op", *r.CPUusPerOp, *r.CtxswPerOp)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, " [warning: %s]", firstLine(w))
	}
	return b.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// RunOne runs w once on c: it drops caches (if configured), starts the
// daemon and waits for its mount, runs the workload, stops the daemon and
// cleans up. A failure of the run is recorded in Result.Err; the returned
// error is non-nil only when the harness must stop (ctx cancelled, caches
// could not be dropped, a mount could not be removed).
func (e *Env) RunOne(ctx context.Context, c Config, w Workload, round int) (Result, error) {
	r := Result{Config: c.Name, Workload: w.Name(), Round: round, Unit: w.Unit(), Start: time.Now()}
	if err := ctx.Err(); err != nil {
		r.Err = err.Error()
		return r, err
	}
	if e.DropCaches {
		if err := DropCaches(3); err != nil {
			r.Err = err.Error()
			return r, err
		}
	}
	dir := e.Src
	win := &Window{}
	var d *Daemon
	if !c.Native() {
		e.seq++
		logPath := filepath.Join(e.Logs, fmt.Sprintf("%03d-%s-%s-r%d.log", e.seq, c.Name, w.Name(), round))
		var err error
		d, err = StartDaemon(ctx, c.Expand(e.Src, e.Mnt), e.Mnt, logPath, e.MountTimeout)
		if err != nil {
			r.Err = fmt.Sprintf("mount %s: %v", c.Name, err)
			r.Log = logPath
			if errors.Is(err, ErrMountStuck) || ctx.Err() != nil {
				return r, err
			}
			return r, nil
		}
		r.Log = logPath
		dir = e.Mnt
		win.pid = d.PID()
	}

	out, runErr := w.Run(ctx, e, dir, win)

	var fatal error
	if d != nil {
		if err := d.Stop(e.StopTimeout); err != nil {
			if errors.Is(err, ErrMountStuck) {
				fatal = err
			}
			r.Warnings = append(r.Warnings, "stop daemon: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	if err := w.Cleanup(e); err != nil {
		r.Warnings = append(r.Warnings, "cleanup: "+err.Error())
	}
	if fatal == nil && ctx.Err() != nil {
		fatal = ctx.Err()
	}
	if runErr == nil {
		runErr = win.err
	}
	if runErr != nil {
		r.Err = runErr.Error()
		return r, fatal
	}

	r.Rate, r.Ops = out.Rate, out.Ops
	r.Seconds = win.end.Sub(win.start).Seconds()
	r.P50us, r.P99us = ptr(out.P50us), ptr(out.P99us)
	if d != nil {
		cpu := float64(win.after.CPUTicks-win.before.CPUTicks) * 1e6 / float64(ClockTicks())
		cs := float64(win.after.Ctxsw - win.before.Ctxsw)
		r.DaemonCPUus, r.DaemonCtxsw = ptr(cpu), ptr(cs)
		r.CPUusPerOp, r.CtxswPerOp = ptr(cpu/float64(out.Ops)), ptr(cs/float64(out.Ops))
		if out.DataPath && cpu/float64(out.Ops) < 1 && cs/float64(out.Ops) < 0.05 {
			r.Warnings = append(r.Warnings, fmt.Sprintf(
				"O_DIRECT I/O barely reached the daemon (%.2f µs CPU, %.3f ctxsw per op): is kernel passthrough on?",
				cpu/float64(out.Ops), cs/float64(out.Ops)))
		}
	}
	return r, fatal
}

// RunAll prepares every workload, then runs each workload runs times on
// every configuration, alternating configurations within each round
// (A B C A B C ...). It writes one progress line per run to progress (may be
// nil) and returns the results so far with any error that stopped it.
func (e *Env) RunAll(ctx context.Context, configs []Config, workloads []Workload, runs int, progress io.Writer) ([]Result, error) {
	if progress == nil {
		progress = io.Discard
	}
	for _, w := range workloads {
		fmt.Fprintf(progress, "preparing %s\n", w.Name())
		if err := w.Prepare(ctx, e); err != nil {
			return nil, fmt.Errorf("prepare %s: %w", w.Name(), err)
		}
	}
	total := len(configs) * len(workloads) * runs
	var results []Result
	n := 0
	for _, w := range workloads {
		for round := 1; round <= runs; round++ {
			for _, c := range configs {
				n++
				r, err := e.RunOne(ctx, c, w, round)
				results = append(results, r)
				fmt.Fprintf(progress, "[%d/%d] %s %s run %d/%d: %s\n", n, total, c.Name, w.Name(), round, runs, r.Summary())
				if err != nil {
					return results, err
				}
			}
		}
	}
	return results, nil
}
