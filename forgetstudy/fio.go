package forgetstudy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// fioFileName is the file, in the backing directory, that fio reads.
const fioFileName = "fiofile"

// fioArgs returns the fio command line (without the binary) reading file
// for runtime and, if logPrefix is set, writing a per-I/O completion
// latency log with Unix-epoch millisecond timestamps to
// logPrefix_clat.1.log.
func fioArgs(j ReadJob, file string, runtime time.Duration, logPrefix string) []string {
	args := []string{
		"--name=forgetstudy",
		"--filename=" + file,
		"--size=" + strconv.FormatInt(j.FileSize, 10),
		"--rw=randread",
		"--bs=" + strconv.Itoa(j.BlockSize),
		"--ioengine=" + fioEngine(j.Depth),
		"--iodepth=" + strconv.Itoa(max(j.Depth, 1)),
		"--direct=1",
		"--numjobs=" + strconv.Itoa(max(j.Jobs, 1)),
		"--group_reporting=1",
		"--time_based=1",
		"--runtime=" + strconv.FormatInt(max(runtime.Milliseconds(), 1), 10) + "ms",
		"--randrepeat=0",
		"--allow_file_create=0",
		"--percentile_list=50:99",
		"--output-format=json",
	}
	if logPrefix != "" {
		args = append(args, "--write_lat_log="+logPrefix, "--log_avg_msec=0", "--log_unix_epoch=1")
	}
	return args
}

// fioEngine is psync for one read in flight per job, else libaio (an
// async engine: O_DIRECT reads on FUSE go asynchronously to the server).
func fioEngine(depth int) string {
	if depth > 1 {
		return "libaio"
	}
	return "psync"
}

// FioCommand returns the fio command line the study runs for the storm,
// with DIR for the mount point and LOG for the log prefix, for reports.
func FioCommand(j ReadJob) string {
	return j.Fio + " " + strings.Join(fioArgs(j, "DIR/"+fioFileName, j.Runtime, "LOG"), " ")
}

// fioRun is one fio process and what it reported.
type fioRun struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
}

// startFio starts fio; wait with fioRun.wait.
func startFio(ctx context.Context, j ReadJob, file string, runtime time.Duration, logPrefix string) (*fioRun, error) {
	r := &fioRun{}
	r.cmd = exec.CommandContext(ctx, j.Fio, fioArgs(j, file, runtime, logPrefix)...)
	r.cmd.Stdout = &r.stdout
	r.cmd.Stderr = &r.stderr
	r.cmd.WaitDelay = 5 * time.Second
	if logPrefix != "" {
		r.cmd.Dir = filepath.Dir(logPrefix)
	}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start fio: %w", err)
	}
	return r, nil
}

// wait waits for fio to exit and parses its JSON report.
func (r *fioRun) wait() (FioReport, error) {
	err := r.cmd.Wait()
	if err != nil {
		return FioReport{}, fmt.Errorf("fio: %w: %s", err, strings.TrimSpace(r.stderr.String()))
	}
	return ParseFioJSON(r.stdout.Bytes())
}

// runFio runs fio to completion.
func runFio(ctx context.Context, j ReadJob, file string, runtime time.Duration, logPrefix string) (FioReport, error) {
	r, err := startFio(ctx, j, file, runtime, logPrefix)
	if err != nil {
		return FioReport{}, err
	}
	return r.wait()
}

// FioReport is the part of fio's JSON output the study uses: the read side
// of the single job.
type FioReport struct {
	IOPS     float64
	TotalIOs uint64
	// P50 and P99 are fio's own completion-latency percentiles.
	P50, P99 time.Duration
}

// ParseFioJSON parses the output of fio --output-format=json. Text before
// the JSON object (fio sometimes prints warnings there) is skipped.
func ParseFioJSON(out []byte) (FioReport, error) {
	i := bytes.IndexByte(out, '{')
	if i < 0 {
		return FioReport{}, errors.New("fio: no JSON in output")
	}
	var doc struct {
		Jobs []struct {
			Error int `json:"error"`
			Read  struct {
				IOPS     float64 `json:"iops"`
				TotalIOs uint64  `json:"total_ios"`
				ClatNs   struct {
					Percentile map[string]float64 `json:"percentile"`
				} `json:"clat_ns"`
			} `json:"read"`
		} `json:"jobs"`
	}
	if err := json.NewDecoder(bytes.NewReader(out[i:])).Decode(&doc); err != nil {
		return FioReport{}, fmt.Errorf("fio: parse JSON: %w", err)
	}
	if len(doc.Jobs) != 1 {
		return FioReport{}, fmt.Errorf("fio: %d jobs in JSON, want 1", len(doc.Jobs))
	}
	j := doc.Jobs[0]
	if j.Error != 0 {
		return FioReport{}, fmt.Errorf("fio: job error %d", j.Error)
	}
	r := FioReport{IOPS: j.Read.IOPS, TotalIOs: j.Read.TotalIOs}
	for k, v := range j.Read.ClatNs.Percentile {
		f, err := strconv.ParseFloat(k, 64)
		if err != nil {
			continue
		}
		switch f {
		case 50:
			r.P50 = time.Duration(v)
		case 99:
			r.P99 = time.Duration(v)
		}
	}
	return r, nil
}

// ParseLatLog parses a fio latency log written with --log_avg_msec=0: one
// line per I/O, "time, value, ddir, bs, offset[, prio]", time in
// milliseconds (Unix epoch with --log_unix_epoch=1) and value in
// nanoseconds. Only reads (ddir 0) are returned, with their issue times
// (the logged time less the latency), sorted by issue time.
func ParseLatLog(r io.Reader) ([]IO, error) {
	var ios []IO
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		f := strings.Split(s, ",")
		if len(f) < 3 {
			return nil, fmt.Errorf("fio log line %d: %d fields, want at least 3", line, len(f))
		}
		ms, err1 := strconv.ParseInt(strings.TrimSpace(f[0]), 10, 64)
		ns, err2 := strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
		dd, err3 := strconv.Atoi(strings.TrimSpace(f[2]))
		if err1 != nil || err2 != nil || err3 != nil || ms < 0 || ns < 0 {
			return nil, fmt.Errorf("fio log line %d: bad line %q", line, s)
		}
		if dd != 0 {
			continue
		}
		// The log has the completion time; windows want the issue time.
		ios = append(ios, IO{T: ms*int64(time.Millisecond) - ns, Lat: time.Duration(ns)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("fio log: %w", err)
	}
	sortIOs(ios)
	return ios, nil
}

// readLatLogs parses the completion-latency logs of every job of the fio
// run with log prefix prefix (prefix_clat.N.log), merged by issue time.
func readLatLogs(prefix string) ([]IO, error) {
	paths, err := filepath.Glob(prefix + "_clat.*.log")
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no fio latency log %s_clat.*.log (%v)", prefix, err)
	}
	var all []IO
	for _, path := range paths {
		ios, err := readLatLog(path)
		if err != nil {
			return nil, err
		}
		all = append(all, ios...)
	}
	sortIOs(all)
	return all, nil
}

// readLatLog parses the log file at path.
func readLatLog(path string) ([]IO, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ios, err := ParseLatLog(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ios, nil
}

// fioVersion returns "fio-3.33" or the error text.
func fioVersion(fio string) string {
	out, err := exec.Command(fio, "--version").Output()
	if err != nil {
		return "fio unavailable: " + err.Error()
	}
	return strings.TrimSpace(string(out))
}
