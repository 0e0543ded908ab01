package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Params are the settings shared by all runs.
type Params struct {
	// Runtime is the measured time of each fio job.
	Runtime time.Duration `json:"runtime_ns"`
	// Ramp is an unmeasured fio warm-up run before each measured fio job;
	// zero skips it.
	Ramp time.Duration `json:"ramp_ns"`
	// FileSize is the size of the fio file, created natively once.
	FileSize int64 `json:"file_size"`
	// IOEngine is fio's engine for jobs with iodepth > 1 (io_uring or
	// libaio); QD1 jobs use psync.
	IOEngine string `json:"ioengine"`
	// FsmarkFiles is fs_mark's -n: files per thread.
	FsmarkFiles int `json:"fsmark_files"`
	// StatFiles is the number of files the stat jobs stat.
	StatFiles int `json:"stat_files"`
	// MountTimeout bounds the wait for a daemon's mount to appear.
	MountTimeout time.Duration `json:"mount_timeout_ns"`
	// StopTimeout bounds the wait for a daemon to exit after SIGTERM.
	StopTimeout time.Duration `json:"stop_timeout_ns"`
	// DropCaches syncs and drops the page, dentry and inode caches before
	// every run.
	DropCaches bool `json:"drop_caches"`
}

// DefaultParams returns the defaults: 5 s fio jobs after a 1 s warm-up on a
// 256 MiB file, io_uring for queue depths above 1, 10,000 fs_mark files per
// thread and stat files, and caches dropped before every run.
func DefaultParams() Params {
	return Params{
		Runtime:      5 * time.Second,
		Ramp:         time.Second,
		FileSize:     256 << 20,
		IOEngine:     "io_uring",
		FsmarkFiles:  10000,
		StatFiles:    10000,
		MountTimeout: 10 * time.Second,
		StopTimeout:  10 * time.Second,
		DropCaches:   true,
	}
}

func (p Params) validate() error {
	var errs []error
	if p.Runtime <= 0 {
		errs = append(errs, errors.New("runtime must be positive"))
	}
	if p.Ramp < 0 {
		errs = append(errs, errors.New("ramp must not be negative"))
	}
	if p.FileSize < 1<<20 {
		errs = append(errs, errors.New("file size must be at least 1 MiB"))
	}
	if p.FsmarkFiles <= 0 || p.StatFiles <= 0 {
		errs = append(errs, errors.New("file counts must be positive"))
	}
	if p.MountTimeout <= 0 || p.StopTimeout <= 0 {
		errs = append(errs, errors.New("timeouts must be positive"))
	}
	return errors.Join(errs...)
}

// Env is a benchmark work directory:
//
//	ROOT/src      the backing directory (fio file, stat files; reused)
//	ROOT/mnt      the mountpoint
//	ROOT/logs     one daemon log per run
//	ROOT/scratch  working directory of fio and fs_mark
type Env struct {
	Params
	Root, Src, Mnt, Logs, Scratch string

	seq int // runs started, for log names
}

// NewEnv creates (or reuses) the work directory root.
func NewEnv(root string, p Params) (*Env, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	// mountinfo shows resolved paths.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, err
	}
	e := &Env{
		Params:  p,
		Root:    abs,
		Src:     filepath.Join(abs, "src"),
		Mnt:     filepath.Join(abs, "mnt"),
		Logs:    filepath.Join(abs, "logs"),
		Scratch: filepath.Join(abs, "scratch"),
	}
	for _, d := range []string{e.Src, e.Mnt, e.Logs, e.Scratch} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if _, ok, err := FindMount(e.Mnt); err != nil {
		return nil, err
	} else if ok {
		return nil, fmt.Errorf("%s: %w (a previous run left it? umount -l it)", e.Mnt, ErrAlreadyMounted)
	}
	return e, nil
}

// Window brackets a workload's measured interval and samples the daemon
// (if any) at both ends.
type Window struct {
	pid           int
	start, end    time.Time
	before, after ProcSample
	err           error
}

// Begin starts the measured interval.
func (w *Window) Begin() {
	if w.pid > 0 {
		w.before, w.err = SampleProc(w.pid)
	}
	w.start = time.Now()
}

// End ends the measured interval.
func (w *Window) End() {
	w.end = time.Now()
	if w.pid > 0 && w.err == nil {
		w.after, w.err = SampleProc(w.pid)
	}
}

// DropCaches runs sync(2) and writes mode (1 page cache, 2 dentries and
// inodes, 3 both) to /proc/sys/vm/drop_caches.
func DropCaches(mode int) error {
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte(strconv.Itoa(mode)), 0); err != nil {
		return fmt.Errorf("drop caches: %w", err)
	}
	return nil
}
