// Command ringbench runs ringfuse's end-to-end benchmarks and writes a
// Markdown report.
//
// Each configuration is a mount command, started per run as a child
// process and stopped with SIGTERM; each workload (fio, fs_mark, a stat
// job) runs against its mountpoint. Runs alternate between configurations
// within each round, and the report quotes the median and min–max of each
// cell, with the daemon's CPU time and context switches per operation.
//
// Example (as root, from the bench module):
//
//	go run ./cmd/ringbench -ringfuse /path/to/ringfuse -runs 5 -out report.md -json raw.json
//	go run ./cmd/ringbench -configs native,gofuse -workloads randread-4k-qd1,fsmark-1 -runs 1 -runtime 2s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/ringfuse/ringfuse/bench/harness"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	log.SetFlags(0)
	log.SetPrefix("ringbench: ")
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	p := harness.DefaultParams()
	var (
		configs      = flag.String("configs", strings.Join(harness.BuiltinConfigs, ","), "comma-separated configurations: "+strings.Join(harness.BuiltinConfigs, ", ")+" (any uring-qdN, and uring-qdN-idle for io_uring_sched_idle), or names given with -config")
		workloads    = flag.String("workloads", "all", "comma-separated workloads: "+strings.Join(harness.WorkloadNames(), ", ")+"; or the groups all, fio, fsmark, stat")
		runs         = flag.Int("runs", 3, "runs per (config, workload)")
		mountOpts    = flag.String("o", "entry_timeout=1,attr_timeout=1", "comma-separated -o words every FUSE configuration gets")
		ringfuse     = flag.String("ringfuse", "", "path of the ringfuse binary (needed by devfuse and uring-qd*)")
		ringfuseOpts = flag.String("ringfuse-opts", "", "extra comma-separated -o words for the ringfuse configurations only (e.g. the word that turns kernel passthrough off)")
		ringStats    = flag.Bool("ringfuse-stats", false, "pass --stats to ringfuse; its statistics end up in the daemon logs")
		gofuse       = flag.String("gofuse", "", "path of a gofuse-loopback binary (default: build ./cmd/gofuse-loopback of this module)")
		gofuseADIO   = flag.Bool("gofuse-async-dio", true, "let gofuse negotiate FUSE_ASYNC_DIO (libfuse's default; go-fuse's default is off)")
		size         = flag.String("size", "256M", "fio file size (suffix K, M or G: binary units)")
		dir          = flag.String("dir", "", "work directory, kept and reused (default: a temporary directory, removed except for the daemon logs)")
		keep         = flag.Bool("keep", false, "keep the temporary work directory")
		out          = flag.String("out", "", "write the Markdown report to this file instead of stdout")
		jsonOut      = flag.String("json", "", "also write the raw results as JSON to this file")
		extra        stringList
	)
	flag.DurationVar(&p.Runtime, "runtime", p.Runtime, "measured time per fio job")
	flag.DurationVar(&p.Ramp, "ramp", p.Ramp, "unmeasured fio warm-up before each fio job (0 = none)")
	flag.StringVar(&p.IOEngine, "ioengine", p.IOEngine, "fio engine for iodepth > 1 (io_uring or libaio)")
	flag.IntVar(&p.FsmarkFiles, "fsmark-files", p.FsmarkFiles, "fs_mark -n: files per thread")
	flag.IntVar(&p.StatFiles, "stat-files", p.StatFiles, "files for the stat jobs")
	flag.DurationVar(&p.MountTimeout, "mount-timeout", p.MountTimeout, "how long to wait for a mount to appear")
	flag.DurationVar(&p.StopTimeout, "stop-timeout", p.StopTimeout, "how long to wait for a daemon to exit after SIGTERM")
	flag.BoolVar(&p.DropCaches, "drop-caches", p.DropCaches, "sync and drop caches before every run")
	flag.Var(&extra, "config", "extra configuration NAME=COMMAND with {src} and {mnt} (repeatable), e.g. 'hp=/opt/passthrough_hp --nopassthrough {src} {mnt}'")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if strings.HasSuffix(*mountOpts, ".md") {
		return fmt.Errorf("-o %s: -o takes mount option words; write the report with -out", *mountOpts)
	}
	var err error
	if p.FileSize, err = parseSize(*size); err != nil {
		return fmt.Errorf("-size: %w", err)
	}
	if *runs < 1 {
		return errors.New("-runs must be at least 1")
	}

	var extraConfigs []harness.Config
	for _, spec := range extra {
		c, err := harness.ParseConfig(spec)
		if err != nil {
			return err
		}
		extraConfigs = append(extraConfigs, c)
	}
	configNames := splitList(*configs)
	for _, c := range extraConfigs {
		if !slices.Contains(configNames, c.Name) {
			configNames = append(configNames, c.Name)
		}
	}
	wls, err := harness.SelectWorkloads(splitList(*workloads))
	if err != nil {
		return err
	}
	if err := checkTools(wls); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("must run as root (mounts, drop_caches, fusectl)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	root, temp := *dir, false
	if root == "" {
		if root, err = os.MkdirTemp("", "ringbench-"); err != nil {
			return err
		}
		temp = true
	}
	env, err := harness.NewEnv(root, p)
	if err != nil {
		return err
	}
	if temp && !*keep {
		defer removeWorkDir(env)
	}

	params := harness.ConfigParams{
		Ringfuse:       *ringfuse,
		RingfuseOpts:   splitList(*ringfuseOpts),
		RingfuseStats:  *ringStats,
		Gofuse:         *gofuse,
		GofuseAsyncDIO: *gofuseADIO,
		Opts:           splitList(*mountOpts),
	}
	if params.Gofuse == "" && slices.Contains(configNames, "gofuse") {
		wd, _ := os.Getwd()
		mod, err := harness.FindModuleDir(wd)
		if err != nil {
			return fmt.Errorf("config gofuse: %w; run from the bench module or pass -gofuse", err)
		}
		bin := filepath.Join(env.Root, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "building gofuse-loopback")
		if params.Gofuse, err = harness.BuildGofuse(ctx, mod, bin); err != nil {
			return err
		}
	}
	cfgs, err := harness.BuildConfigs(configNames, params, extraConfigs)
	if err != nil {
		return err
	}

	sys := harness.CollectSystemInfo(env.Src, params.Gofuse)
	results, runErr := env.RunAll(ctx, cfgs, wls, *runs, os.Stderr)
	rep := harness.NewReport(sys, env.Params, *runs, cfgs, wls, results)
	rep.Notes = append(rep.Notes, fmt.Sprintf("-o words for every FUSE configuration: `%s`", *mountOpts))
	if *ringfuseOpts != "" {
		rep.Notes = append(rep.Notes, fmt.Sprintf("extra -o words for ringfuse: `%s`", *ringfuseOpts))
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("paths: {src} = `%s`, {mnt} = `%s`; DIR is {mnt}, or {src} for native; SCRATCH = `%s`", env.Src, env.Mnt, env.Scratch))
	rep.Notes = append(rep.Notes, "daemon logs: "+env.Logs)
	if runErr != nil {
		rep.Notes = append(rep.Notes, "**incomplete**: "+runErr.Error())
	}
	if err := writeReport(rep, *out, *jsonOut); err != nil {
		return errors.Join(runErr, err)
	}
	if temp && !*keep {
		fmt.Fprintf(os.Stderr, "daemon logs kept in %s\n", env.Logs)
	}
	if runErr != nil {
		return runErr
	}
	failed := 0
	for _, r := range results {
		if !r.OK() {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d runs failed (see the report)", failed, len(results))
	}
	return nil
}

func writeReport(rep *harness.Report, out, jsonOut string) error {
	var w io.Writer = os.Stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if err := rep.Markdown(w); err != nil {
		return err
	}
	if jsonOut != "" {
		f, err := os.Create(jsonOut)
		if err != nil {
			return err
		}
		if err := rep.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return nil
}

// removeWorkDir removes a temporary work directory but its logs, and only
// if nothing is mounted inside it.
func removeWorkDir(env *harness.Env) {
	if _, ok, err := harness.FindMount(env.Mnt); err != nil || ok {
		log.Printf("not removing %s: %s is still mounted", env.Root, env.Mnt)
		return
	}
	for _, d := range []string{env.Src, env.Mnt, env.Scratch, filepath.Join(env.Root, "bin")} {
		if err := os.RemoveAll(d); err != nil {
			log.Print(err)
		}
	}
}

func checkTools(wls []harness.Workload) error {
	need := map[string]bool{}
	for _, w := range wls {
		switch w.(type) {
		case *harness.FioJob:
			need["fio"] = true
		case *harness.Fsmark:
			need["fs_mark"] = true
		}
	}
	var errs []error
	for tool := range need {
		if _, err := exec.LookPath(tool); err != nil {
			errs = append(errs, fmt.Errorf("%s not found (apt-get install -y fio fsmark)", tool))
		}
	}
	return errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"), strings.HasSuffix(s, "g"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}
