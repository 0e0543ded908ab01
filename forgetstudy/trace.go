package forgetstudy

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// tracingDir is tracefs.
const tracingDir = "/sys/kernel/tracing"

// forgetEntsEvent is the series' tracepoint (0005): ring entries holding
// forgets, per queue, whenever an entry takes forgets or gives them back.
const forgetEntsEvent = "events/fuse/fuse_uring_forget_ents"

// forgetTrace records fuse_uring_forget_ents during a storm; a nil
// *forgetTrace (a kernel without the tracepoint) records nothing.
type forgetTrace struct{}

// startForgetTrace clears the trace buffer and enables the tracepoint,
// or returns nil if the kernel lacks it.
func startForgetTrace() *forgetTrace {
	enable := filepath.Join(tracingDir, forgetEntsEvent, "enable")
	if _, err := os.Stat(enable); err != nil {
		return nil
	}
	_ = os.WriteFile(filepath.Join(tracingDir, "buffer_size_kb"), []byte("16384\n"), 0)
	_ = os.WriteFile(filepath.Join(tracingDir, "trace"), nil, 0)
	if os.WriteFile(enable, []byte("1\n"), 0) != nil {
		return nil
	}
	return &forgetTrace{}
}

// stop disables the tracepoint and summarizes the entries holding
// forgets (summed over queues): their time-weighted mean from the first
// event to the last, the peak, and the number of events.
func (t *forgetTrace) stop() (ents EntsSummary) {
	if t == nil {
		return ents
	}
	_ = os.WriteFile(filepath.Join(tracingDir, forgetEntsEvent, "enable"), []byte("0\n"), 0)
	f, err := os.Open(filepath.Join(tracingDir, "trace"))
	if err != nil {
		return ents
	}
	defer f.Close()
	ents = parseForgetEnts(f)
	_ = os.WriteFile(filepath.Join(tracingDir, "trace"), nil, 0)
	return ents
}

// EntsSummary is what the fuse_uring_forget_ents trace showed.
type EntsSummary struct {
	Events    int
	Mean, Max float64
	// MaxWaiting is the most forgets waiting on one queue's list.
	MaxWaiting int
	// Queues is the number of ring queues whose entries took forgets.
	Queues int
}

// parseForgetEnts reads trace text ("... 123.456789: fuse_uring_forget_ents:
// connection C qid Q taken T ents E waiting W").
func parseForgetEnts(r io.Reader) EntsSummary {
	var s EntsSummary
	perQ := map[string]int{}
	total := 0
	var t0, tPrev, area float64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, ": fuse_uring_forget_ents: ")
		if i < 0 {
			continue
		}
		head := strings.Fields(line[:i])
		if len(head) == 0 {
			continue
		}
		ts, err := strconv.ParseFloat(head[len(head)-1], 64)
		if err != nil {
			continue
		}
		f := strings.Fields(line[i+len(": fuse_uring_forget_ents: "):])
		kv := map[string]string{}
		for j := 0; j+1 < len(f); j += 2 {
			kv[f[j]] = f[j+1]
		}
		ents, err1 := strconv.Atoi(kv["ents"])
		waiting, err2 := strconv.Atoi(kv["waiting"])
		if err1 != nil || err2 != nil {
			continue
		}
		if s.Events == 0 {
			t0 = ts
		} else {
			area += float64(total) * (ts - tPrev)
		}
		tPrev = ts
		s.Events++
		q := kv["connection"] + "/" + kv["qid"]
		if _, seen := perQ[q]; !seen {
			s.Queues++
		}
		total += ents - perQ[q]
		perQ[q] = ents
		s.Max = max(s.Max, float64(total))
		s.MaxWaiting = max(s.MaxWaiting, waiting)
	}
	if tPrev > t0 {
		s.Mean = area / (tPrev - t0)
	}
	return s
}
