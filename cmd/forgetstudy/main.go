// Command forgetstudy measures FORGET storms next to a 4k read workload,
// on the running kernel (real-kernel policies) and on the kernel model
// (model policies): the research tool behind docs/forget-over-io_uring.md.
// kernel/study runs it in a VM on the patched kernel.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ringfuse/ringfuse/forgetstudy"
	"github.com/ringfuse/ringfuse/forgetstudy/model"
)

const studyUsage = `Usage: forgetstudy [flags]

Measures FORGET storms next to a 4k read workload on the running kernel:
for each policy it serves a passthrough of a backing tree in-process,
instantiates -inodes files through the mount, runs fio (4k randread,
O_DIRECT, one reader per CPU at -read-depth, 64 MiB file) once for a
baseline and once while -evict evicts every inode (drop_caches: "sync;
echo 2 > /proc/sys/vm/drop_caches"; unlink: one unlinking thread per CPU;
cgroup: memory.high=0 on a cgroup v2 that looked the files up), and records
forgets, forget messages and syscalls per forget, drain time, read p50/p99
in the first 100 ms, first 1 s and whole storm, and memory over time.
Policies alternate run by run; cells are medians [min–max].

Needs root, fio in PATH, and for the ring policies the fuse module
parameter enable_uring=Y; the series' variants (v3-*) need the patched
kernel's module parameters (kernel/study runs the study there) and are
skipped elsewhere. Other processes dropping caches during a run
disturb it (the report notes it). Writes report.md, results.json and
live-nodes.svg, rss.svg, read-p99.svg into -out; progress goes to
standard error.

Policies (-policies, comma separated; "all" runs every policy below,
"model" the model policies alone, which need neither root nor fio):
%s
Flags:
`

func main() {
	if err := runForgetStudy(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "forgetstudy: %v\n", err)
		os.Exit(1)
	}
}

// cmdFlags are the flags that are not study parameters.
type cmdFlags struct {
	policies, out, compare, render string
	clean                          bool
}

// studyFlags defines the flags on fs: the study's parameters go to p.
func studyFlags(fs *flag.FlagSet, p *forgetstudy.Params) *cmdFlags {
	c := &cmdFlags{}
	fs.IntVar(&p.Inodes, "inodes", forgetstudy.DefaultInodes, "files instantiated and evicted per storm (a million works)")
	fs.IntVar(&p.Runs, "runs", forgetstudy.DefaultRuns, "runs per policy, alternating policies")
	fs.StringVar(&c.policies, "policies", strings.Join(forgetstudy.DefaultPolicies, ","), "comma-separated policies to run (all, model: groups)")
	fs.IntVar(&p.QueueDepth, "q-depth", forgetstudy.DefaultQueueDepth, "io_uring entries per CPU queue, for ring policies")
	fs.StringVar(&c.out, "out", "forget-study", "directory for report.md, results.json and the SVG plots")
	fs.DurationVar(&p.Read.Runtime, "read-runtime", forgetstudy.DefaultReadRuntime, "length of the fio run during which the storm happens")
	fs.DurationVar(&p.Baseline, "baseline", forgetstudy.DefaultBaseline, "length of the fio baseline run without a storm")
	fs.DurationVar(&p.Warmup, "warmup", forgetstudy.DefaultWarmup, "unmeasured fio warm-up before the baseline (negative: none)")
	fs.DurationVar(&p.StormDelay, "storm-delay", forgetstudy.DefaultStormDelay, "time from fio's first read to the eviction")
	fs.DurationVar(&p.DrainTimeout, "drain-timeout", forgetstudy.DefaultDrainTimeout, "longest wait for the live nodes to return to the baseline")
	fs.StringVar(&p.WorkDir, "workdir", "", "backing tree, mount point and fio logs; kept for reuse (default $TMPDIR/ringfuse-forgetstudy)")
	fs.BoolVar(&c.clean, "clean", false, "remove the work directory at the end")
	fs.StringVar(&p.Read.Fio, "fio", "fio", "fio binary")
	fs.IntVar(&p.Read.Depth, "read-depth", 1, "reads in flight per reader (fio: psync at 1, libaio above)")
	fs.IntVar(&p.Read.Jobs, "read-jobs", 0, "fio readers (0: one per CPU)")
	fs.StringVar(&p.Evict, "evict", forgetstudy.EvictDropCaches, "eviction: "+strings.Join(forgetstudy.EvictModes, ", "))
	fs.IntVar(&p.ModelCPUs, "model-cpus", 0, "CPUs, and ring queues, of the machine the model policies model (0: this machine's possible CPUs)")
	fs.Float64Var(&p.ModelEvictRate, "model-evict-rate", 0, "model policies: evictions per second per evicting task (0: kmodel's default)")
	fs.IntVar(&p.ModelEvictBurst, "model-evict-burst", 0, "model policies: forgets an evicting task queues per lock hold (0: kmodel's default, 1)")
	fs.StringVar(&c.compare, "compare", "", "REAL.json,MODEL.json: print the model's error against the real kernel's counts (two results.json files) and exit")
	fs.StringVar(&c.render, "render", "", "DIR: rewrite DIR's report.md and plots from its results.json with this version's tables, and exit")
	fs.Usage = func() {
		var b strings.Builder
		for _, p := range allPolicies() {
			fmt.Fprintf(&b, "  %-26s %s: %s\n", p.Name(), p.Kind(), forgetstudy.Describe(p))
		}
		fmt.Fprintf(fs.Output(), studyUsage, b.String())
		fs.PrintDefaults()
	}
	return c
}

// runForgetStudy runs the study the flags in args describe.
func runForgetStudy(args []string) error {
	fs := flag.NewFlagSet("forgetstudy", flag.ContinueOnError)
	var p forgetstudy.Params
	c := studyFlags(fs, &p)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case c.compare != "":
		return compareReports(c.compare)
	case c.render != "":
		rep, err := forgetstudy.ReadReport(filepath.Join(c.render, "results.json"))
		if err != nil {
			return err
		}
		return rep.WriteDir(c.render)
	}
	pols, err := pickPolicies(c.policies)
	if err != nil {
		return err
	}
	p.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	if err := p.WithDefaults().Validate(); err != nil {
		return err
	}
	return runStudy(p, pols, c, "forgetstudy "+strings.Join(args, " "))
}

// pickPolicies resolves -policies: names, "all" or "model".
func pickPolicies(list string) ([]forgetstudy.Policy, error) {
	names := strings.Split(list, ",")
	switch list {
	case "":
		names = forgetstudy.DefaultPolicies
	case "all":
		names = nil
		for _, p := range allPolicies() {
			names = append(names, p.Name())
		}
	case "model":
		names = model.Names
	}
	return forgetstudy.Pick(allPolicies(), names)
}

// runStudy runs the study until done or interrupted and writes its report.
func runStudy(p forgetstudy.Params, pols []forgetstudy.Policy, c *cmdFlags, command string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rep, runErr := forgetstudy.Run(ctx, p, pols)
	rep.Env.Command = command
	if err := rep.WriteDir(c.out); err != nil {
		return errors.Join(runErr, fmt.Errorf("write report: %w", err))
	}
	abs, _ := filepath.Abs(c.out)
	fmt.Fprintf(os.Stderr, "forgetstudy: %d runs in %.0fs; report in %s\n", len(rep.Runs), time.Since(start).Seconds(), filepath.Join(abs, "report.md"))
	if c.clean {
		if err := os.RemoveAll(rep.Params.WorkDir); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return runErr
}

// allPolicies lists the real-kernel policies, then the model ones.
func allPolicies() []forgetstudy.Policy {
	return append(forgetstudy.RealKernelPolicies(), model.All()...)
}

// compareReports prints the model's error table for "REAL.json,MODEL.json".
func compareReports(arg string) error {
	a, b, ok := strings.Cut(arg, ",")
	if !ok {
		return fmt.Errorf("-compare %q: want REAL.json,MODEL.json", arg)
	}
	real, err := forgetstudy.ReadSummaries(a)
	if err != nil {
		return err
	}
	model, err := forgetstudy.ReadSummaries(b)
	if err != nil {
		return err
	}
	forgetstudy.WriteModelError(os.Stdout, real, model)
	return nil
}
