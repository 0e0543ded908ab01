package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// StatJob stats Params.StatFiles files, created natively in the backing
// directory, through the directory under test.
//
// Warm: one unmeasured pass, then the measured pass; with kernel timeouts
// longer than a pass the second pass is answered from the kernel's caches.
// Cold: sync and drop_caches (dentries and inodes) on the fresh mount, then
// the measured pass, so every stat needs a LOOKUP and the backing filesystem
// reads its inodes again. The cold pass does not instantiate the files
// through FUSE first, so no forget storm overlaps the measurement.
type StatJob struct {
	JobName string
	Cold    bool
}

var _ Workload = (*StatJob)(nil)

// Name returns the workload name.
func (s *StatJob) Name() string { return s.JobName }

// Unit returns "ops/s".
func (s *StatJob) Unit() string { return "ops/s" }

func statDir(n int) string { return fmt.Sprintf("statfiles-%d", n) }

// Command describes the job.
func (s *StatJob) Command(p Params) string {
	if s.Cold {
		return fmt.Sprintf("in Go: sync; echo 2 > /proc/sys/vm/drop_caches; lstat(2) DIR/%s/f* (%d files, one pass, 1 thread)", statDir(p.StatFiles), p.StatFiles)
	}
	return fmt.Sprintf("in Go: lstat(2) DIR/%s/f* (%d files; unmeasured pass, then measured pass, 1 thread)", statDir(p.StatFiles), p.StatFiles)
}

// Prepare creates the files natively unless they already exist.
func (s *StatJob) Prepare(ctx context.Context, e *Env) error {
	dir := filepath.Join(e.Src, statDir(e.StatFiles))
	if ents, err := os.ReadDir(dir); err == nil && len(ents) == e.StatFiles {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("prepare stat files: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("prepare stat files: %w", err)
	}
	for _, p := range statPaths(dir, e.StatFiles) {
		fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return fmt.Errorf("prepare stat files: %s: %w", p, err)
		}
		unix.Close(fd)
	}
	return nil
}

func statPaths(dir string, n int) []string {
	p := make([]string, n)
	for i := range p {
		p[i] = filepath.Join(dir, fmt.Sprintf("f%07d", i))
	}
	return p
}

// Run runs the passes and times every lstat.
func (s *StatJob) Run(ctx context.Context, e *Env, dir string, w *Window) (Outcome, error) {
	paths := statPaths(filepath.Join(dir, statDir(e.StatFiles)), e.StatFiles)
	lat := make([]float64, len(paths))
	var st unix.Stat_t
	if s.Cold {
		if err := DropCaches(2); err != nil {
			return Outcome{}, err
		}
	} else {
		for _, p := range paths {
			if err := unix.Lstat(p, &st); err != nil {
				return Outcome{}, fmt.Errorf("stat %s: %w", p, err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return Outcome{}, err
	}
	w.Begin()
	start := time.Now()
	var errs []error
	for i, p := range paths {
		t := time.Now()
		err := unix.Lstat(p, &st)
		lat[i] = float64(time.Since(t).Nanoseconds()) / 1e3
		if err != nil {
			errs = append(errs, fmt.Errorf("stat %s: %w", p, err))
			break
		}
	}
	elapsed := time.Since(start)
	w.End()
	if err := errors.Join(errs...); err != nil {
		return Outcome{}, err
	}
	slices.Sort(lat)
	return Outcome{
		Rate:  float64(len(paths)) / elapsed.Seconds(),
		Ops:   int64(len(paths)),
		P50us: Percentile(lat, 50),
		P99us: Percentile(lat, 99),
	}, nil
}

// Cleanup does nothing: the files are reused.
func (s *StatJob) Cleanup(e *Env) error { return nil }
