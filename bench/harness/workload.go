package harness

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
)

var nan = math.NaN()

// Workload is a client job run against a directory: the mountpoint, or the
// backing directory for the native configuration.
type Workload interface {
	// Name identifies the workload in reports ("randread-4k-qd1").
	Name() string
	// Unit is the unit of Outcome.Rate ("IOPS", "MiB/s", "files/s", "ops/s").
	Unit() string
	// Command describes the client command, with DIR for the directory.
	Command(p Params) string
	// Prepare sets up the backing directory natively, once per harness run.
	Prepare(ctx context.Context, e *Env) error
	// Run runs the workload once in dir and brackets the measured part with
	// w.Begin and w.End.
	Run(ctx context.Context, e *Env, dir string, w *Window) (Outcome, error)
	// Cleanup removes what Run left in the backing directory. It runs
	// natively after the daemon stopped.
	Cleanup(e *Env) error
}

// Outcome is what one workload run measured.
type Outcome struct {
	// Rate is the throughput in the workload's Unit.
	Rate float64
	// Ops is the number of client operations in the measured window (fio
	// I/Os, fs_mark files, stat calls); per-op daemon costs divide by it.
	Ops int64
	// P50us and P99us are latency percentiles in µs, NaN when unknown.
	P50us, P99us float64
	// DataPath marks workloads whose every operation must reach the daemon
	// unless kernel passthrough is on (O_DIRECT fio jobs).
	DataPath bool
}

// BuiltinWorkloads returns every built-in workload in report order.
func BuiltinWorkloads() []Workload {
	return []Workload{
		&FioJob{JobName: "randread-4k-qd1", RW: "randread", BS: "4k", IODepth: 1},
		&FioJob{JobName: "randwrite-4k-qd1", RW: "randwrite", BS: "4k", IODepth: 1},
		&FioJob{JobName: "randread-4k-qd32", RW: "randread", BS: "4k", IODepth: 32},
		&FioJob{JobName: "randwrite-4k-qd32", RW: "randwrite", BS: "4k", IODepth: 32},
		&FioJob{JobName: "seqread-128k", RW: "read", BS: "128k", IODepth: 8, Seq: true},
		&FioJob{JobName: "seqwrite-128k", RW: "write", BS: "128k", IODepth: 8, Seq: true},
		&FioJob{JobName: "seqread-1m", RW: "read", BS: "1m", IODepth: 8, Seq: true},
		&FioJob{JobName: "seqwrite-1m", RW: "write", BS: "1m", IODepth: 8, Seq: true},
		&Fsmark{JobName: "fsmark-1", Threads: 1},
		&Fsmark{JobName: "fsmark-2", Threads: 2},
		&StatJob{JobName: "stat-warm"},
		&StatJob{JobName: "stat-cold", Cold: true},
	}
}

// workloadGroups are names that select several workloads.
var workloadGroups = map[string]func(Workload) bool{
	"all":    func(Workload) bool { return true },
	"fio":    func(w Workload) bool { _, ok := w.(*FioJob); return ok },
	"fsmark": func(w Workload) bool { _, ok := w.(*Fsmark); return ok },
	"stat":   func(w Workload) bool { _, ok := w.(*StatJob); return ok },
}

// SelectWorkloads returns the named workloads in the order given; the
// group names all, fio, fsmark and stat select several.
func SelectWorkloads(names []string) ([]Workload, error) {
	all := BuiltinWorkloads()
	var out []Workload
	add := func(w Workload) {
		if !slices.ContainsFunc(out, func(x Workload) bool { return x.Name() == w.Name() }) {
			out = append(out, w)
		}
	}
	for _, name := range names {
		if g, ok := workloadGroups[name]; ok {
			for _, w := range all {
				if g(w) {
					add(w)
				}
			}
			continue
		}
		i := slices.IndexFunc(all, func(w Workload) bool { return w.Name() == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown workload %q (known: %s, or all, fio, fsmark, stat)", name, strings.Join(WorkloadNames(), ", "))
		}
		add(all[i])
	}
	return out, nil
}

// WorkloadNames lists the built-in workload names.
func WorkloadNames() []string {
	var n []string
	for _, w := range BuiltinWorkloads() {
		n = append(n, w.Name())
	}
	return n
}
