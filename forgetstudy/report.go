package forgetstudy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Metric keys of a [Summary].
const (
	MForgets        = "forgets"
	MDevMsgs        = "dev_msgs"
	MSingles        = "forget_singles"
	MBatchMsgs      = "batch_forget_msgs"
	MRingMsgs       = "ring_msgs"
	MMsgsPerForget  = "msgs_per_forget"
	MSysPerForget   = "syscalls_per_forget"
	MRingOpsPerFgt  = "ring_ops_per_forget"
	MHeldMean       = "entries_held_mean"
	MHeldMax        = "entries_held_max"
	MInstantiated   = "instantiated"
	MInstTime       = "instantiate_ns"
	MDropCaches     = "drop_caches_ns"
	MFirstForget    = "first_forget_ns"
	MLastForget     = "last_forget_ns"
	MFgtP50         = "forgetting_p50_ns"
	MFgtP99         = "forgetting_p99_ns"
	MFgtIOPS        = "forgetting_iops"
	MHeapLiveBefore = "heap_live_before"
	MHeapLiveAfter  = "heap_live_after"
	MHeapPerNode    = "heap_bytes_per_node"
	MDrain          = "drain_ns"
	MForgetsPerSec  = "forgets_per_s"
	MBaseP50        = "baseline_p50_ns"
	MBaseP99        = "baseline_p99_ns"
	MPreP50         = "prestorm_p50_ns"
	MPreP99         = "prestorm_p99_ns"
	M100P50         = "storm100ms_p50_ns"
	M100P99         = "storm100ms_p99_ns"
	M1sP50          = "storm1s_p50_ns"
	M1sP99          = "storm1s_p99_ns"
	MWholeP50       = "stormwhole_p50_ns"
	MWholeP99       = "stormwhole_p99_ns"
	MBaseIOPS       = "baseline_iops"
	M100IOPS        = "storm100ms_iops"
	M1sIOPS         = "storm1s_iops"
	MWholeIOPS      = "stormwhole_iops"
	MRSSBefore      = "rss_before"
	MRSSPeak        = "rss_peak"
	MRSSAfter       = "rss_after"
	MHeapBefore     = "heap_before"
	MHeapPeak       = "heap_peak"
	MHeapAfter      = "heap_after"
	MPreNodes       = "nodes_pre"
	MEndNodes       = "nodes_end"
	MSlabBefore     = "slab_before"
	MSlabAfter      = "slab_after"
	MDevPerMsg      = "forgets_per_dev_msg"
	MXCPU           = "excess_cpu_ns_per_forget"
	MXVol           = "excess_vol_csw_per_forget"
	MXInvol         = "excess_invol_csw_per_forget"
	MXEnters        = "excess_enters_per_forget"
	MXCQEs          = "excess_cqes_per_forget"
	MXCommits       = "excess_commits_per_forget"
	MXDevMsgs       = "excess_dev_msgs_per_forget"
	MSlabPerFgt     = "sunreclaim_peak_bytes_per_forget"
	MThreads        = "threads_peak"
	MDevReaders     = "dev_readers"
	MDevBuf         = "dev_buffer_bytes"
	// MRingEntersPerFgt is the io_uring_enter calls attributed to
	// forgets, per forget, where the channel or model can attribute them.
	MRingEntersPerFgt = "ring_enters_per_forget"
)

// lat returns the latency percentile as float ns, NaN without data.
func lat(l Latency, d time.Duration) float64 {
	if l.N == 0 {
		return math.NaN()
	}
	return float64(d)
}

func iops(l Latency) float64 {
	if l.N == 0 || l.Span == 0 {
		return math.NaN()
	}
	return l.IOPS
}

// nonZero treats 0 as "not measured".
func nonZero(n uint64) float64 {
	if n == 0 {
		return math.NaN()
	}
	return float64(n)
}

func slab(n int64) float64 {
	if n < 0 {
		return math.NaN()
	}
	return float64(n)
}

// held returns an entries-held figure, NaN for a real-kernel run whose
// forgets took the ring without the fuse_uring_forget_ents trace (patch
// v3's mode, or a kernel without the tracepoint): unknown, not zero.
func held(r *Result, v float64) float64 {
	if r.Kind == KindRealKernel && r.RingForgetMsgs > 0 && r.Ents.Events == 0 {
		return math.NaN()
	}
	return v
}

// excess returns the storm span's count beyond the pre-trigger rate, per
// forget (see [Excess]).
func excess(r *Result, f func(c Counters) float64) float64 {
	return Excess(f(r.StormCounts), f(r.PreCounts), r.StormCounts.Span, r.PreCounts.Span, r.Forgets)
}

// metricFns computes every metric of a result.
var metricFns = map[string]func(r *Result) float64{
	MDevPerMsg: func(r *Result) float64 {
		if r.DevForgetMsgs == 0 {
			return math.NaN()
		}
		return float64(r.Forgets-r.RingForgets) / float64(r.DevForgetMsgs)
	},
	MXCPU:     func(r *Result) float64 { return excess(r, func(c Counters) float64 { return float64(c.CPU) }) },
	MXVol:     func(r *Result) float64 { return excess(r, func(c Counters) float64 { return float64(c.VolCSw) }) },
	MXInvol:   func(r *Result) float64 { return excess(r, func(c Counters) float64 { return float64(c.InvolCSw) }) },
	MXEnters:  func(r *Result) float64 { return excess(r, func(c Counters) float64 { return float64(c.RingEnters) }) },
	MXCQEs:    func(r *Result) float64 { return excess(r, func(c Counters) float64 { return float64(c.RingCQEs) }) },
	MXCommits: func(r *Result) float64 { return excess(r, func(c Counters) float64 { return float64(c.RingCommits) }) },
	MXDevMsgs: func(r *Result) float64 { return excess(r, func(c Counters) float64 { return float64(c.DevMsgs) }) },
	MSlabPerFgt: func(r *Result) float64 {
		if r.SUnreclaimBefore <= 0 || r.SUnreclaimPeak <= 0 || r.Forgets == 0 {
			return math.NaN()
		}
		return float64(r.SUnreclaimPeak-r.SUnreclaimBefore) / float64(r.Forgets)
	},
	MRingEntersPerFgt: func(r *Result) float64 {
		if !r.RingEntersKnown {
			return math.NaN()
		}
		return ratio(r.RingEnters, r.Forgets)
	},
	MThreads:       func(r *Result) float64 { return nonZero(uint64(r.ThreadsPeak)) },
	MDevReaders:    func(r *Result) float64 { return nonZero(uint64(r.DevReaders)) },
	MDevBuf:        func(r *Result) float64 { return nonZero(uint64(r.DevBufBytes)) },
	MForgets:       func(r *Result) float64 { return float64(r.Forgets) },
	MDevMsgs:       func(r *Result) float64 { return float64(r.DevForgetMsgs) },
	MSingles:       func(r *Result) float64 { return float64(r.SingleForgets) },
	MBatchMsgs:     func(r *Result) float64 { return float64(r.BatchForgets) },
	MRingMsgs:      func(r *Result) float64 { return float64(r.RingForgetMsgs) },
	MMsgsPerForget: func(r *Result) float64 { return r.MessagesPerForget() },
	MSysPerForget:  func(r *Result) float64 { return r.SyscallsPerForget() },
	MRingOpsPerFgt: func(r *Result) float64 { return r.RingOpsPerForget() },
	MHeldMean:      func(r *Result) float64 { return held(r, r.EntriesHeldMean) },
	MHeldMax:       func(r *Result) float64 { return held(r, r.EntriesHeldMax) },
	MInstantiated:  func(r *Result) float64 { return float64(r.Instantiated) },
	MInstTime:      func(r *Result) float64 { return float64(r.InstantiateTime) },
	MDropCaches:    func(r *Result) float64 { return float64(r.DropCaches) },
	MLastForget:    func(r *Result) float64 { return float64(r.LastForget) },
	MFirstForget:   func(r *Result) float64 { return float64(r.FirstForget) },
	MFgtP50:        func(r *Result) float64 { return lat(r.Forgetting, r.Forgetting.P50) },
	MFgtP99:        func(r *Result) float64 { return lat(r.Forgetting, r.Forgetting.P99) },
	MFgtIOPS:       func(r *Result) float64 { return iops(r.Forgetting) },
	MHeapLiveBefore: func(r *Result) float64 {
		if r.HeapLiveBefore == 0 {
			return math.NaN()
		}
		return float64(r.HeapLiveBefore)
	},
	MHeapLiveAfter: func(r *Result) float64 {
		if r.HeapLiveAfter == 0 {
			return math.NaN()
		}
		return float64(r.HeapLiveAfter)
	},
	MHeapPerNode: func(r *Result) float64 {
		if r.HeapLiveBefore == 0 || r.HeapLiveAfter == 0 || r.Forgets == 0 {
			return math.NaN()
		}
		return (float64(r.HeapLiveBefore) - float64(r.HeapLiveAfter)) / float64(r.Forgets)
	},
	MDrain: func(r *Result) float64 {
		if !r.Drained || r.Forgets == 0 {
			return math.NaN()
		}
		return float64(r.Drain)
	},
	MForgetsPerSec: func(r *Result) float64 {
		if r.ForgetsPerSec == 0 {
			return math.NaN()
		}
		return r.ForgetsPerSec
	},
	MBaseP50:    func(r *Result) float64 { return lat(r.Baseline, r.Baseline.P50) },
	MBaseP99:    func(r *Result) float64 { return lat(r.Baseline, r.Baseline.P99) },
	MPreP50:     func(r *Result) float64 { return lat(r.PreStorm, r.PreStorm.P50) },
	MPreP99:     func(r *Result) float64 { return lat(r.PreStorm, r.PreStorm.P99) },
	M100P50:     func(r *Result) float64 { return lat(r.Storm100ms, r.Storm100ms.P50) },
	M100P99:     func(r *Result) float64 { return lat(r.Storm100ms, r.Storm100ms.P99) },
	M1sP50:      func(r *Result) float64 { return lat(r.Storm1s, r.Storm1s.P50) },
	M1sP99:      func(r *Result) float64 { return lat(r.Storm1s, r.Storm1s.P99) },
	MWholeP50:   func(r *Result) float64 { return lat(r.StormWhole, r.StormWhole.P50) },
	MWholeP99:   func(r *Result) float64 { return lat(r.StormWhole, r.StormWhole.P99) },
	MBaseIOPS:   func(r *Result) float64 { return iops(r.Baseline) },
	M100IOPS:    func(r *Result) float64 { return iops(r.Storm100ms) },
	M1sIOPS:     func(r *Result) float64 { return iops(r.Storm1s) },
	MWholeIOPS:  func(r *Result) float64 { return iops(r.StormWhole) },
	MRSSBefore:  func(r *Result) float64 { return nonZero(r.RSSBefore) },
	MRSSPeak:    func(r *Result) float64 { return nonZero(r.RSSPeak) },
	MRSSAfter:   func(r *Result) float64 { return nonZero(r.RSSAfter) },
	MHeapBefore: func(r *Result) float64 { return nonZero(r.HeapBefore) },
	MHeapPeak:   func(r *Result) float64 { return nonZero(r.HeapPeak) },
	MHeapAfter:  func(r *Result) float64 { return nonZero(r.HeapAfter) },
	MPreNodes:   func(r *Result) float64 { return float64(r.PreNodes) },
	MEndNodes:   func(r *Result) float64 { return float64(r.EndNodes) },
	MSlabBefore: func(r *Result) float64 { return slab(r.SlabBefore) },
	MSlabAfter:  func(r *Result) float64 { return slab(r.SlabAfter) },
}

// Summary aggregates one policy's runs: the median and range of every
// metric, and the batch histogram summed over runs.
type Summary struct {
	Policy, Kind string
	// Runs counts successful runs; DrainedRuns those that drained.
	Runs, DrainedRuns int
	Skipped           string   `json:",omitempty"`
	Errors            []string `json:",omitempty"`
	// Metrics maps the M* keys to their spread over runs. Durations
	// are in nanoseconds, memory in bytes.
	Metrics map[string]Spread
	// Batches is the batch-size histogram summed over runs.
	Batches Histogram
	// RingForgetMsgs is the total of forget messages seen on the ring
	// over all runs.
	RingForgetMsgs uint64
}

// Summaries aggregates the report per policy, in the order of
// r.Policies.
func (r *Report) Summaries() []Summary {
	var out []Summary
	for _, pi := range r.Policies {
		s := Summary{Policy: pi.Name, Kind: pi.Kind, Metrics: map[string]Spread{}}
		var res []*Result
		for _, rr := range r.Runs {
			if rr.Policy != pi.Name {
				continue
			}
			switch {
			case rr.Skipped != "":
				s.Skipped = rr.Skipped
			case rr.Err != "":
				s.Errors = append(s.Errors, fmt.Sprintf("run %d: %s", rr.Run, rr.Err))
			case rr.Result != nil:
				res = append(res, rr.Result)
			}
		}
		s.Runs = len(res)
		for _, x := range res {
			if x.Drained {
				s.DrainedRuns++
			}
			s.Batches.Merge(x.Batches)
			s.RingForgetMsgs += x.RingForgetMsgs
		}
		for k, f := range metricFns {
			xs := make([]float64, len(res))
			for i, x := range res {
				xs[i] = f(x)
			}
			s.Metrics[k] = SpreadOf(xs)
		}
		out = append(out, s)
	}
	return out
}

// MarshalJSON writes NaN and infinite fields as null.
func (s Spread) MarshalJSON() ([]byte, error) {
	f := func(x float64) string {
		if !finite(x) {
			return "null"
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Appendf(nil, `{"Median":%s,"Min":%s,"Max":%s,"N":%d}`, f(s.Median), f(s.Min), f(s.Max), s.N), nil
}

// Cell formatters.
func fDur(x float64) string { return fmtDur(time.Duration(math.Round(x))) }
func fMiB(x float64) string { return trimFloat(x/(1<<20)) + " MiB" }
func fCount(x float64) string {
	if math.Abs(x) < 1e3 {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return groupThousands(int64(math.Round(x)))
}

func groupThousands(n int64) string {
	s := strconv.FormatInt(max(n, -n), 10)
	var b strings.Builder
	if n < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// cell prints "median [min–max]", or just the median when there is one
// run or no spread, or "–" without data.
func cell(s Spread, f func(float64) string) string {
	if s.N == 0 {
		return "–"
	}
	m := f(s.Median)
	if s.N == 1 {
		return m
	}
	lo, hi := f(s.Min), f(s.Max)
	if lo == hi {
		return m
	}
	return m + " [" + lo + "–" + hi + "]"
}

func pair(s Summary, a, b string, f func(float64) string) string {
	return cell(s.Metrics[a], f) + " / " + cell(s.Metrics[b], f)
}

func triple(s Summary, a, b, c string, f func(float64) string) string {
	return cell(s.Metrics[a], f) + " → " + cell(s.Metrics[b], f) + " → " + cell(s.Metrics[c], f)
}

// table writes a Markdown table.
func table(w io.Writer, head []string, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	seps := make([]string, len(head))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
	for _, r := range rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	fmt.Fprintln(w)
}

// Plot file names written by [Report.WriteDir].
const (
	PlotLiveNodes = "live-nodes.svg"
	PlotRSS       = "rss.svg"
	PlotReadP99   = "read-p99.svg"
)

// WriteMarkdown writes the report: setup, one set of tables per kind of
// policy (real kernel first, never mixed with model rows), the batch
// histogram, per-run rows and notes, and links to the plots.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	sums := r.Summaries()
	r.writeHeader(&b)
	for _, kind := range []string{KindRealKernel, KindModel} {
		run := writeKindStatus(&b, sums, kind)
		if len(run) == 0 {
			continue
		}
		writeTransport(&b, run, kind)
		writeCosts(&b, run)
		writeLatency(&b, run, kind)
		writeAgainstNative(&b, run)
		writeDrain(&b, run, kind)
		writeBatches(&b, run)
		if len(run) > 1 {
			r.writeComparison(&b, run)
		}
	}
	fmt.Fprintf(&b, "## Plots\n\n")
	fmt.Fprintf(&b, "![live nodes](%s)\n\n![RSS](%s)\n\n![read p99](%s)\n\n", PlotLiveNodes, PlotRSS, PlotReadP99)
	r.writeRuns(&b)
	_, err := w.Write(b.Bytes())
	return err
}

// writeHeader prints where and how the study ran.
func (r *Report) writeHeader(b *bytes.Buffer) {
	p := r.Params
	fmt.Fprintf(b, "# Forget storms next to 4k reads: forgetstudy\n\n")
	fmt.Fprintf(b, "- Kernel %s, %d CPUs, fuse enable_uring=%s, %s, %s; started %s.\n",
		r.Env.Kernel, r.Env.CPUs, r.Env.EnableUring, r.Env.GoVersion, r.Env.Fio, r.Env.Started.Format(time.RFC3339))
	if r.Env.Command != "" {
		fmt.Fprintf(b, "- Command: `%s`\n", r.Env.Command)
	}
	fmt.Fprintf(b, "- %s inodes per storm (files in a passthrough of %s/src, ≤%s per directory), %d run(s) per policy, policies alternating, ring queue depth %d.\n",
		groupThousands(int64(p.Inodes)), p.WorkDir, groupThousands(FilesPerDir), p.Runs, p.QueueDepth)
	fmt.Fprintf(b, "- Reads: %d fio reader(s) at depth %d, warm-up %v, baseline run %v, storm run %v with eviction by %s %v after its first READ reached the server. Storm command: `%s`\n",
		p.Read.Jobs, p.Read.Depth, p.Warmup, p.Baseline, p.Read.Runtime, p.Evict, p.StormDelay, r.Env.FioCommand)
	fmt.Fprintf(b, "- Cells: median [min–max] over runs. Latencies are nearest-rank percentiles of fio's per-I/O completion latency (clat log, millisecond timestamps) for reads in flight during the window (issued before its end, by the logged completion time less the latency, and completed after its start), so a read stuck behind the storm counts from where it was issued to where it completed. Drain: from the eviction trigger until the server's live nodes are back at the pre-instantiation count (1 ms poll; for cgroup reclaim, until forgets stop). First/last forget: the first and last change of the live node count. Memory is this process (server and study harness), sampled every 10 ms. Daemon costs per forget are the storm span's counts less the pre-trigger span's rate (reads alone) times the storm's length, over forgets.\n\n")
}

// writeKindStatus prints the skipped and failed policies of a kind and
// returns the summaries of those that ran.
func writeKindStatus(b *bytes.Buffer, sums []Summary, kind string) []Summary {
	var ks []Summary
	for _, s := range sums {
		if s.Kind == kind {
			ks = append(ks, s)
		}
	}
	if len(ks) == 0 {
		return nil
	}
	title := map[string]string{KindRealKernel: "Real kernel", KindModel: "Model (kmodel, not measured on a kernel)"}[kind]
	fmt.Fprintf(b, "## %s\n\n", title)
	var run []Summary
	for _, s := range ks {
		if s.Skipped != "" {
			fmt.Fprintf(b, "- **%s skipped**: %s\n", s.Policy, s.Skipped)
		}
		for _, e := range s.Errors {
			fmt.Fprintf(b, "- **%s failed**: %s\n", s.Policy, e)
		}
		if s.Runs > 0 {
			run = append(run, s)
		}
	}
	if len(run) == 0 {
		fmt.Fprintf(b, "\nNo run of this kind completed.\n\n")
	}
	return run
}

// writeTransport prints the forget transport table.
func writeTransport(b *bytes.Buffer, run []Summary, kind string) {
	fmt.Fprintf(b, "\n### Forget transport\n\n")
	var rows [][]string
	for _, s := range run {
		held := pair(s, MHeldMean, MHeldMax, trimFloat)
		ringOps := cell(s.Metrics[MRingOpsPerFgt], trimFloat)
		if s.Kind == KindRealKernel && s.RingForgetMsgs == 0 {
			held, ringOps = "0 / 0 (no forget on the ring)", "0 (no forget on the ring)"
		}
		rows = append(rows, []string{kind, s.Policy, strconv.Itoa(s.Runs),
			cell(s.Metrics[MForgets], fCount),
			cell(s.Metrics[MDevMsgs], fCount) + " (" + cell(s.Metrics[MSingles], fCount) + " + " + cell(s.Metrics[MBatchMsgs], fCount) + ")",
			cell(s.Metrics[MDevPerMsg], trimFloat),
			cell(s.Metrics[MRingMsgs], fCount),
			cell(s.Metrics[MMsgsPerForget], trimFloat),
			cell(s.Metrics[MSysPerForget], trimFloat),
			ringOps, held})
	}
	table(b, []string{"kind", "policy", "runs", "forgets", "/dev/fuse forget msgs (FORGET + BATCH_FORGET)", "forgets per /dev/fuse msg", "ring forget msgs", "msgs/forget", "syscalls/forget", "ring CQEs+commits/forget", "ring entries holding forgets mean / max (trace)"}, rows)
}

// writeCosts prints what the storm cost the daemon per forget.
func writeCosts(b *bytes.Buffer, run []Summary) {
	fmt.Fprintf(b, "### Daemon cost per forget (storm less the reads' rate)\n\n")
	var rows [][]string
	for _, s := range run {
		rows = append(rows, []string{s.Policy,
			cell(s.Metrics[MXCPU], fDur),
			cell(s.Metrics[MXVol], trimFloat) + " / " + cell(s.Metrics[MXInvol], trimFloat),
			cell(s.Metrics[MXEnters], trimFloat),
			cell(s.Metrics[MXCQEs], trimFloat) + " / " + cell(s.Metrics[MXCommits], trimFloat),
			cell(s.Metrics[MXDevMsgs], trimFloat),
			cell(s.Metrics[MSlabPerFgt], trimFloat),
			cell(s.Metrics[MThreads], fCount),
			cell(s.Metrics[MDevReaders], fCount) + " / " + cell(s.Metrics[MDevBuf], fMiB)})
	}
	table(b, []string{"policy", "CPU", "context switches vol / invol", "io_uring_enter", "ring CQEs / commits (all)", "/dev/fuse reads (wake-ups)", "SUnreclaim peak B", "threads peak", "/dev/fuse readers / buffers"}, rows)
}

// writeLatency prints the read latency table.
func writeLatency(b *bytes.Buffer, run []Summary, kind string) {
	fmt.Fprintf(b, "### Concurrent 4k reads, p50 / p99\n\n")
	var rows [][]string
	for _, s := range run {
		rows = append(rows, []string{kind, s.Policy,
			pair(s, MBaseP50, MBaseP99, fDur), pair(s, MPreP50, MPreP99, fDur),
			pair(s, M100P50, M100P99, fDur), pair(s, M1sP50, M1sP99, fDur), pair(s, MWholeP50, MWholeP99, fDur),
			pair(s, MFgtP50, MFgtP99, fDur),
			cell(s.Metrics[MBaseIOPS], fCount) + " / " + cell(s.Metrics[M100IOPS], fCount) + " / " + cell(s.Metrics[M1sIOPS], fCount) + " / " + cell(s.Metrics[MFgtIOPS], fCount)})
	}
	table(b, []string{"kind", "policy", "baseline run", "storm run before trigger", "first 100 ms", "first 1 s", "whole storm", "while forgets arrive", "IOPS baseline / first 100 ms / first 1 s / while forgets arrive"}, rows)
}

// writeDrain prints the drain and memory table.
func writeDrain(b *bytes.Buffer, run []Summary, kind string) {
	fmt.Fprintf(b, "### Drain and memory\n\n")
	var rows [][]string
	for _, s := range run {
		drained := fmt.Sprintf("%d/%d", s.DrainedRuns, s.Runs)
		rows = append(rows, []string{kind, s.Policy,
			cell(s.Metrics[MDropCaches], fDur), cell(s.Metrics[MFirstForget], fDur) + " → " + cell(s.Metrics[MLastForget], fDur),
			cell(s.Metrics[MDrain], fDur) + " (" + drained + " drained)",
			cell(s.Metrics[MForgetsPerSec], fCount),
			triple(s, MRSSBefore, MRSSPeak, MRSSAfter, fMiB),
			triple(s, MHeapBefore, MHeapPeak, MHeapAfter, fMiB),
			cell(s.Metrics[MHeapLiveBefore], fMiB) + " → " + cell(s.Metrics[MHeapLiveAfter], fMiB) + " (" + cell(s.Metrics[MHeapPerNode], trimFloat) + " B/node)",
			cell(s.Metrics[MPreNodes], fCount) + " → " + cell(s.Metrics[MEndNodes], fCount),
			cell(s.Metrics[MSlabBefore], fCount) + " → " + cell(s.Metrics[MSlabAfter], fCount)})
	}
	table(b, []string{"kind", "policy", "eviction trigger", "first → last forget", "drain", "forgets/s", "RSS before → peak → after", "Go heap objects before → peak → after", "live heap after GC: all nodes → drained", "live nodes before → after", "fuse_inode slab before → after"}, rows)
}

// writeBatches prints the histogram of forgets per message.
func writeBatches(b *bytes.Buffer, run []Summary) {
	fmt.Fprintf(b, "### Forgets per message (messages, summed over runs)\n\n")
	head := []string{"forgets per message"}
	for _, s := range run {
		head = append(head, s.Policy)
	}
	var rows [][]string
	for i := range HistogramBuckets {
		row := []string{BucketLabel(i)}
		any := false
		for _, s := range run {
			row = append(row, fCount(float64(s.Batches[i])))
			any = any || s.Batches[i] > 0
		}
		if any {
			rows = append(rows, row)
		}
	}
	total := []string{"**messages**"}
	for _, s := range run {
		total = append(total, fCount(float64(s.Batches.Total())))
	}
	table(b, head, append(rows, total))
}

// writeRuns prints one row per run.
func (r *Report) writeRuns(b *bytes.Buffer) {
	fmt.Fprintf(b, "## Runs\n\n")
	var rows [][]string
	for _, rr := range r.Runs {
		if rr.Result == nil {
			why := rr.Err
			if rr.Skipped != "" {
				why = "skipped: " + rr.Skipped
			}
			rows = append(rows, []string{rr.Kind, rr.Policy, strconv.Itoa(rr.Run), "–", "–", "–", "–", "–", "–", "–", why})
			continue
		}
		x := rr.Result
		drain := fmtDur(x.Drain)
		if !x.Drained {
			drain = "not drained in " + drain
		}
		rows = append(rows, []string{rr.Kind, rr.Policy, strconv.Itoa(rr.Run),
			groupThousands(x.Instantiated) + " in " + fmtDur(x.InstantiateTime),
			groupThousands(int64(x.Forgets)),
			fmt.Sprintf("%d (%d + %d) + ring %d", x.DevForgetMsgs, x.SingleForgets, x.BatchForgets, x.RingForgetMsgs),
			fmtDur(x.DropCaches), drain,
			fmtDur(x.Storm100ms.P99), fMiB(float64(x.RSSPeak)),
			strings.Join(x.Notes, "; ")})
	}
	table(b, []string{"kind", "policy", "run", "instantiated", "forgets", "forget msgs /dev/fuse (FORGET + BATCH) + ring", "eviction trigger", "drain", "p99 first 100 ms", "peak RSS", "notes"}, rows)
}

// writeComparison prints each policy against the first of its kind.
func (r *Report) writeComparison(b *bytes.Buffer, run []Summary) {
	ref := run[0]
	fmt.Fprintf(b, "### Against %s (ratio of medians)\n\n", ref.Policy)
	var rows [][]string
	for _, s := range run[1:] {
		ratioCell := func(k string) string {
			a, c := s.Metrics[k].Median, ref.Metrics[k].Median
			if s.Metrics[k].N == 0 || ref.Metrics[k].N == 0 || c == 0 {
				return "–"
			}
			return trimFloat(a/c) + "×"
		}
		rows = append(rows, []string{s.Kind, s.Policy, ratioCell(MMsgsPerForget), ratioCell(MDrain),
			ratioCell(MBaseP99), ratioCell(M100P99), ratioCell(M1sP99), ratioCell(MWholeP99), ratioCell(MFgtP99), ratioCell(MRSSPeak)})
	}
	table(b, []string{"kind", "policy", "msgs/forget", "drain", "baseline p99", "p99 first 100 ms", "p99 first 1 s", "p99 whole storm", "p99 while forgets arrive", "peak RSS"}, rows)
}

// writeAgainstNative compares each policy's storm with its own baseline,
// next to native-control's: eviction alone costs native reads its ratio,
// and only what a FUSE policy shows beyond it is the FUSE path's
// (docs/storm-shield.md).
func writeAgainstNative(b *bytes.Buffer, run []Summary) {
	var native *Summary
	for i := range run {
		if run[i].Policy == NameNative {
			native = &run[i]
		}
	}
	if native == nil {
		return
	}
	div := func(s *Summary, a, c string) float64 {
		if s.Metrics[a].N == 0 || s.Metrics[c].N == 0 || s.Metrics[c].Median == 0 {
			return math.NaN()
		}
		return s.Metrics[a].Median / s.Metrics[c].Median
	}
	f := func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return trimFloat(v) + "×"
	}
	fmt.Fprintf(b, "### Storm against baseline, next to native-control\n\n")
	fmt.Fprintf(b, "native-control is the same storm without FUSE: its ratios are what kernel eviction alone costs the reads on this machine. What a FUSE policy shows beyond them is the FUSE path's, not eviction's.\n\n")
	var rows [][]string
	np99, niops := div(native, MWholeP99, MBaseP99), div(native, M100IOPS, MBaseIOPS)
	for i := range run {
		s := &run[i]
		p99, iops := div(s, MWholeP99, MBaseP99), div(s, M100IOPS, MBaseIOPS)
		rows = append(rows, []string{s.Kind, s.Policy, f(p99), f(p99 / np99), f(iops), f(iops / niops)})
	}
	table(b, []string{"kind", "policy", "p99 whole storm ÷ baseline", "÷ native's", "IOPS first 100 ms ÷ baseline", "÷ native's"}, rows)
}

// JSONDoc is what results.json holds.
type JSONDoc struct {
	*Report
	Summaries []Summary
}

// WriteJSON writes the report and its summaries, with every run's time
// series, as indented JSON. Durations are in nanoseconds.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(JSONDoc{Report: r, Summaries: r.Summaries()})
}

// WriteDir writes report.md, results.json and the three plots into dir,
// creating it.
func (r *Report) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name string, f func(io.Writer) error) error {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644)
	}
	plots := r.Plots()
	return joinErrs(
		write("report.md", r.WriteMarkdown),
		write("results.json", r.WriteJSON),
		write(PlotLiveNodes, plots[0].WriteSVG),
		write(PlotRSS, plots[1].WriteSVG),
		write(PlotReadP99, plots[2].WriteSVG),
	)
}

func joinErrs(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// Plots returns the live-node, RSS and read-p99 plots, in that order.
// Each run is one line, coloured by policy; model policies are dashed.
func (r *Report) Plots() [3]*Plot {
	color := map[string]string{}
	for i, p := range r.Policies {
		color[p.Name] = PaletteColor(i)
	}
	label := func(x *Result) string {
		if x.Kind == KindModel {
			return x.Policy + " (model)"
		}
		return x.Policy
	}
	live := &Plot{Title: "Server live nodes after drop_caches", XLabel: "ms since the drop_caches write", YLabel: "live nodes"}
	rss := &Plot{Title: "Process memory during the storm (solid: VmRSS, dashed: Go heap objects)", XLabel: "ms since the drop_caches write", YLabel: "MiB"}
	p99 := &Plot{Title: "Read p99 per 10 ms window (fio 4k randread QD1 O_DIRECT)", XLabel: "ms since the drop_caches write", YLabel: "p99 completion latency (µs)", LogY: true}
	var maxDrain time.Duration
	for _, rr := range r.Runs {
		x := rr.Result
		if x == nil {
			continue
		}
		maxDrain = max(maxDrain, x.Drain, x.LastForget)
		c := color[x.Policy]
		dash := x.Kind == KindModel
		var lx, ly, rx, ry, hy []float64
		for _, s := range x.Series {
			t := float64(s.T) / 1e6
			lx, ly = append(lx, t), append(ly, float64(s.Nodes))
			rx, ry, hy = append(rx, t), append(ry, float64(s.RSS)/(1<<20)), append(hy, float64(s.Heap)/(1<<20))
		}
		if len(x.NodeSeries) > 0 {
			// The 1 ms poll's points are finer than the 10 ms samples;
			// keep the samples before and after them.
			first, last := x.NodeSeries[0].T, x.NodeSeries[len(x.NodeSeries)-1].T
			lx, ly = lx[:0], ly[:0]
			for _, s := range x.Series {
				if s.T < first {
					lx, ly = append(lx, float64(s.T)/1e6), append(ly, float64(s.Nodes))
				}
			}
			for _, np := range x.NodeSeries {
				lx, ly = append(lx, float64(np.T)/1e6), append(ly, float64(np.Nodes))
			}
			for _, s := range x.Series {
				if s.T > last {
					lx, ly = append(lx, float64(s.T)/1e6), append(ly, float64(s.Nodes))
				}
			}
		}
		live.Lines = append(live.Lines, Line{Label: label(x), Color: c, Dash: dash, Opacity: 0.8, X: lx, Y: ly})
		rss.Lines = append(rss.Lines, Line{Label: label(x) + " RSS", Color: c, Dash: dash, Opacity: 0.8, X: rx, Y: ry})
		rss.Lines = append(rss.Lines, Line{Label: label(x) + " heap", Color: c, Dash: true, Opacity: 0.5, X: rx, Y: hy})
		var px, py []float64
		for _, pt := range x.LatSeries {
			if pt.N == 0 {
				continue
			}
			px, py = append(px, float64(pt.T)/1e6), append(py, float64(pt.P99)/1e3)
		}
		p99.Lines = append(p99.Lines, Line{Label: label(x), Color: c, Dash: dash, Opacity: 0.7, X: px, Y: py})
	}
	// Live nodes: from just before the trigger to a little past the
	// slowest drain.
	span := max(float64(maxDrain)/1e6*1.25, 50)
	live.XMin, live.XMax = -0.1*span, span
	start := Mark{X: 0, Label: "drop_caches", Color: "#444"}
	for _, pl := range []*Plot{live, rss, p99} {
		pl.Marks = append(pl.Marks, start)
	}
	for _, s := range r.Summaries() {
		if m := s.Metrics[MDrain]; m.N > 0 {
			live.Marks = append(live.Marks, Mark{X: m.Median / 1e6, Label: s.Policy + " drain (median)", Color: color[s.Policy]})
			p99.Marks = append(p99.Marks, Mark{X: m.Median / 1e6, Label: "", Color: color[s.Policy]})
		}
	}
	slices.SortStableFunc(live.Marks, func(a, b Mark) int { return int(a.X - b.X) })
	return [3]*Plot{live, rss, p99}
}
