package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FioFileName is the file, in the backing directory, that every fio job uses.
const FioFileName = "fiofile"

// FioJob is a single-job fio workload with direct=1.
type FioJob struct {
	JobName string
	RW      string // randread, randwrite, read, write
	BS      string // block size, for example "4k"
	IODepth int    // 1 runs psync; more runs Params.IOEngine
	Seq     bool   // report MiB/s instead of IOPS
}

var _ Workload = (*FioJob)(nil)

// Name returns the job name.
func (j *FioJob) Name() string { return j.JobName }

// Unit returns "MiB/s" for sequential jobs and "IOPS" otherwise.
func (j *FioJob) Unit() string {
	if j.Seq {
		return "MiB/s"
	}
	return "IOPS"
}

func (j *FioJob) engine(p Params) string {
	if j.IODepth <= 1 {
		return "psync"
	}
	return p.IOEngine
}

// Args returns the fio command line for file, running for runtime.
func (j *FioJob) Args(p Params, file string, runtime time.Duration) []string {
	return []string{
		"fio",
		"--name=" + j.JobName,
		"--filename=" + file,
		"--size=" + fioSize(p.FileSize),
		"--rw=" + j.RW,
		"--bs=" + j.BS,
		"--ioengine=" + j.engine(p),
		"--iodepth=" + strconv.Itoa(max(j.IODepth, 1)),
		"--direct=1",
		"--numjobs=1",
		"--time_based=1",
		"--runtime=" + fioDuration(runtime),
		"--group_reporting=1",
		"--randrepeat=0",
		"--allow_file_create=0",
		"--percentile_list=50:99",
		"--output-format=json",
	}
}

// Command returns the measured fio command line with DIR for the directory.
func (j *FioJob) Command(p Params) string {
	return shellJoin(j.Args(p, "DIR/"+FioFileName, p.Runtime))
}

// Prepare writes the fio file in the backing directory unless a file of the
// right size is already there, so that laying it out is never measured.
func (j *FioJob) Prepare(ctx context.Context, e *Env) error {
	return prepareFioFile(filepath.Join(e.Src, FioFileName), e.FileSize)
}

// Run runs an unmeasured warm-up of Params.Ramp, then the measured job.
// Running the warm-up as its own fio process (instead of fio's ramp_time)
// lets the daemon window cover exactly the I/Os that fio counts.
func (j *FioJob) Run(ctx context.Context, e *Env, dir string, w *Window) (Outcome, error) {
	file := filepath.Join(dir, FioFileName)
	if e.Ramp > 0 {
		if _, err := runCommand(ctx, e.Scratch, nil, j.Args(e.Params, file, e.Ramp)...); err != nil {
			return Outcome{}, fmt.Errorf("fio warm-up: %w", err)
		}
	}
	w.Begin()
	out, err := runCommand(ctx, e.Scratch, nil, j.Args(e.Params, file, e.Runtime)...)
	w.End()
	if err != nil {
		return Outcome{}, err
	}
	r, err := ParseFioJSON(out)
	if err != nil {
		return Outcome{}, err
	}
	d := r.Read
	if strings.Contains(j.RW, "write") {
		d = r.Write
	}
	o := Outcome{Rate: d.IOPS, Ops: r.Read.TotalIOs + r.Write.TotalIOs, P50us: d.P50us, P99us: d.P99us, DataPath: true}
	if j.Seq {
		o.Rate = d.BWBytes / (1 << 20)
	}
	if o.Ops == 0 {
		return Outcome{}, errors.New("fio completed no I/O")
	}
	return o, nil
}

// Cleanup does nothing: the fio file is reused.
func (j *FioJob) Cleanup(e *Env) error { return nil }

// FioDir is one direction (read or write) of a fio job's JSON result.
type FioDir struct {
	IOPS     float64
	BWBytes  float64 // bytes per second
	TotalIOs int64
	// P50us and P99us are completion-latency percentiles in µs, NaN when
	// fio reported none (no I/O in this direction).
	P50us, P99us float64
}

// FioResult is the part of fio's JSON output the harness uses.
type FioResult struct {
	Version     string
	Read, Write FioDir
}

type fioJSON struct {
	Version string `json:"fio version"`
	Jobs    []struct {
		JobName string     `json:"jobname"`
		Error   int        `json:"error"`
		Read    fioDirJSON `json:"read"`
		Write   fioDirJSON `json:"write"`
	} `json:"jobs"`
}

type fioDirJSON struct {
	IOPS     float64 `json:"iops"`
	BWBytes  float64 `json:"bw_bytes"`
	TotalIOs int64   `json:"total_ios"`
	Clat     struct {
		Percentile map[string]float64 `json:"percentile"`
	} `json:"clat_ns"`
}

// ParseFioJSON parses the output of fio --output-format=json with
// group_reporting (one job entry), skipping any text fio printed before the
// JSON object.
func ParseFioJSON(b []byte) (FioResult, error) {
	i := bytes.IndexByte(b, '{')
	if i < 0 {
		return FioResult{}, errors.New("fio output: no JSON object")
	}
	var v fioJSON
	if err := json.Unmarshal(b[i:], &v); err != nil {
		return FioResult{}, fmt.Errorf("fio output: %w", err)
	}
	if len(v.Jobs) != 1 {
		return FioResult{}, fmt.Errorf("fio output: %d jobs, want 1 (group_reporting)", len(v.Jobs))
	}
	job := v.Jobs[0]
	if job.Error != 0 {
		return FioResult{}, fmt.Errorf("fio job %s: error %d", job.JobName, job.Error)
	}
	r := FioResult{Version: v.Version}
	var err1, err2 error
	r.Read, err1 = job.Read.dir()
	r.Write, err2 = job.Write.dir()
	if err := errors.Join(err1, err2); err != nil {
		return FioResult{}, fmt.Errorf("fio job %s: %w", job.JobName, err)
	}
	return r, nil
}

func (d fioDirJSON) dir() (FioDir, error) {
	out := FioDir{IOPS: d.IOPS, BWBytes: d.BWBytes, TotalIOs: d.TotalIOs, P50us: math.NaN(), P99us: math.NaN()}
	if d.TotalIOs == 0 {
		return out, nil
	}
	for k, ns := range d.Clat.Percentile {
		p, err := strconv.ParseFloat(k, 64)
		if err != nil {
			return FioDir{}, fmt.Errorf("clat percentile key %q: %w", k, err)
		}
		switch {
		case math.Abs(p-50) < 1e-6:
			out.P50us = ns / 1e3
		case math.Abs(p-99) < 1e-6:
			out.P99us = ns / 1e3
		}
	}
	if math.IsNaN(out.P50us) || math.IsNaN(out.P99us) {
		return FioDir{}, errors.New("clat percentiles 50 and 99 missing (percentile_list=50:99)")
	}
	return out, nil
}

func fioSize(n int64) string {
	if n > 0 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + "M" // fio's default kb_base is 1024
	}
	return strconv.FormatInt(n, 10)
}

func fioDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms"
}

// prepareFioFile writes size bytes of pseudo-random data to path and syncs
// it, unless a regular file of that size already exists.
func prepareFioFile(path string, size int64) error {
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Size() == size {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("prepare fio file: %w", err)
	}
	buf := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{'r', 'i', 'n', 'g', 'f', 'u', 's', 'e'})
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		_, _ = rng.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return fmt.Errorf("prepare fio file: %w", err)
		}
		left -= n
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("prepare fio file: %w", err)
	}
	return f.Close()
}
