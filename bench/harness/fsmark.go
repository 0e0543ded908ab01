package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// fsmarkDir is the directory, below the run directory, that fs_mark fills.
const fsmarkDir = "fsmark.tmp"

// Fsmark is an fs_mark create workload: zero-byte files, no sync.
type Fsmark struct {
	JobName string
	Threads int
}

var _ Workload = (*Fsmark)(nil)

// Name returns the workload name.
func (f *Fsmark) Name() string { return f.JobName }

// Unit returns "files/s".
func (f *Fsmark) Unit() string { return "files/s" }

// Args returns the fs_mark command line creating Params.FsmarkFiles files
// per thread in dir, with its log written to logFile. fs_mark refuses a -d
// path of 40 bytes or more, so Run passes a path relative to the directory
// under test and runs fs_mark there.
func (f *Fsmark) Args(p Params, dir, logFile string) []string {
	return []string{"fs_mark", "-d", dir, "-l", logFile, "-n", strconv.Itoa(p.FsmarkFiles), "-s", "0", "-S", "0", "-L", "1", "-t", strconv.Itoa(f.Threads)}
}

// Command returns the command line; it runs in DIR.
func (f *Fsmark) Command(p Params) string {
	return "cd DIR && " + shellJoin(f.Args(p, fsmarkDir, "SCRATCH/fs_log.txt"))
}

// Prepare removes files a previous, interrupted run left.
func (f *Fsmark) Prepare(ctx context.Context, e *Env) error { return f.Cleanup(e) }

// Run runs fs_mark once in dir; its log goes to the scratch directory.
func (f *Fsmark) Run(ctx context.Context, e *Env, dir string, w *Window) (Outcome, error) {
	w.Begin()
	out, err := runCommand(ctx, dir, nil, f.Args(e.Params, fsmarkDir, filepath.Join(e.Scratch, "fs_log.txt"))...)
	w.End()
	if err != nil {
		return Outcome{}, err
	}
	r, err := ParseFsmark(out)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Rate: r.FilesPerSec, Ops: r.Files, P50us: nan, P99us: nan}, nil
}

// Cleanup removes the created files natively, after the daemon stopped.
func (f *Fsmark) Cleanup(e *Env) error {
	return os.RemoveAll(filepath.Join(e.Src, fsmarkDir))
}

// FsmarkResult is the summary of an fs_mark run.
type FsmarkResult struct {
	Files       int64   // files created, over all loops and threads
	FilesPerSec float64 // Files divided by the summed loop times
	Loops       int
}

// ParseFsmark parses fs_mark's table ("FSUse% Count Size Files/sec App
// Overhead", one row per loop). Count is cumulative over loops, so a loop
// created Count minus the previous row's Count files, and the overall rate
// is computed from the per-loop times files/(Files/sec).
func ParseFsmark(out []byte) (FsmarkResult, error) {
	var r FsmarkResult
	var secs float64
	header := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "FSUse%") {
			header = true
			continue
		}
		if !header || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			return FsmarkResult{}, fmt.Errorf("fs_mark: short row %q", line)
		}
		count, err1 := strconv.ParseInt(f[1], 10, 64)
		rate, err2 := strconv.ParseFloat(f[3], 64)
		if err := errors.Join(err1, err2); err != nil {
			return FsmarkResult{}, fmt.Errorf("fs_mark: row %q: %w", line, err)
		}
		if !(rate > 0) || math.IsInf(rate, 0) { // also NaN, which fs_mark never prints
			return FsmarkResult{}, fmt.Errorf("fs_mark: row %q: rate %v", line, rate)
		}
		if count <= r.Files {
			return FsmarkResult{}, fmt.Errorf("fs_mark: row %q: count does not grow", line)
		}
		secs += float64(count-r.Files) / rate
		r.Files = count
		r.Loops++
	}
	if r.Loops == 0 {
		return FsmarkResult{}, errors.New("fs_mark: no result rows in output")
	}
	r.FilesPerSec = float64(r.Files) / secs
	if !(r.FilesPerSec > 0) || math.IsInf(r.FilesPerSec, 0) {
		return FsmarkResult{}, fmt.Errorf("fs_mark: rates give %v files/s", r.FilesPerSec)
	}
	return r, nil
}
