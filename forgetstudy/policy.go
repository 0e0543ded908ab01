package forgetstudy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Kinds of policy. A report never puts the two in one table.
const (
	// KindRealKernel is a policy measured by mounting on the running
	// kernel.
	KindRealKernel = "real kernel"
	// KindModel is a policy whose results come from a model of the kernel
	// (package kmodel), such as forgets over the ring on a kernel that
	// lacks the patch.
	KindModel = "model"
)

// Errors returned by policies and by [Run].
var (
	// ErrNotSupported: the policy cannot run in this build or on this
	// kernel (the io_uring channel is missing or not offered). [Run]
	// reports the policy as skipped instead of failing.
	ErrNotSupported = errors.New("forgetstudy: not supported")
	// ErrUnknownPolicy: no registered policy has that name.
	ErrUnknownPolicy = errors.New("forgetstudy: unknown policy")
)

// Policy is one way of delivering forgets to the server, measured or
// modelled. Implementations must be safe to call Run on repeatedly, one
// run at a time.
//
// A model policy implements the same interface:
//
//	type ringForgets struct{ /* model configuration */ }
//
//	func (ringForgets) Name() string { return "model-uring-forgets" }
//	func (ringForgets) Kind() string { return forgetstudy.KindModel }
//	func (m ringForgets) Run(ctx context.Context, p forgetstudy.Params) (forgetstudy.Result, error) {
//		var r forgetstudy.Result
//		// drive the kernel model with p.Inodes forgets, p.QueueDepth
//		// entries per queue and the read job p.Read; fill r.Forgets,
//		// r.RingForgetMsgs, r.RingCQEs, r.EntriesHeldMax, latencies...
//		return r, nil
//	}
//
// The command (cmd/forgetstudy) lists the model package's policies next
// to [RealKernelPolicies] and picks from both with [Pick]. Latency windows a model
// does not produce are left with N = 0 and memory fields at 0; the report
// prints them as "–". Counts left at 0 print as 0.
type Policy interface {
	// Name is the policy's name on the command line and in reports, such
	// as "devfuse". It is unique among the policies a command offers.
	Name() string
	// Kind is [KindRealKernel] or [KindModel].
	Kind() string
	// Run performs one run. p has its defaults applied (see
	// [Params.WithDefaults]). Run returns an error wrapping
	// [ErrNotSupported] if it cannot run here at all; Result.Policy,
	// Result.Kind and Result.Run are filled in by the caller.
	Run(ctx context.Context, p Params) (Result, error)
}

// Describer is an optional interface of a [Policy]: a one-line
// description for help texts and reports.
type Describer interface {
	Description() string
}

// Describe returns p's description, or "" if it has none.
func Describe(p Policy) string {
	if d, ok := p.(Describer); ok {
		return d.Description()
	}
	return ""
}

// Pick resolves a list of policy names against the policies in all
// (real-kernel and model ones, as the caller links them). A name given
// twice runs once. It fails with [ErrUnknownPolicy] for a name not in all,
// and for a name given to two policies of all.
func Pick(all []Policy, names []string) ([]Policy, error) {
	byName := map[string]Policy{}
	var known []string
	for _, p := range all {
		if _, dup := byName[p.Name()]; dup {
			return nil, fmt.Errorf("%w: two policies called %q", ErrUnknownPolicy, p.Name())
		}
		byName[p.Name()] = p
		known = append(known, p.Name())
	}
	var ps []Policy
	seen := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		p, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownPolicy, n, known)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// SortByKind orders ps real-kernel policies first, keeping the order
// within each kind.
func SortByKind(ps []Policy) {
	slices.SortStableFunc(ps, func(a, b Policy) int { return kindRank(a.Kind()) - kindRank(b.Kind()) })
}

func kindRank(k string) int {
	if k == KindRealKernel {
		return 0
	}
	return 1
}

// DefaultPolicies are the policies a study runs when none are named.
var DefaultPolicies = []string{NameDevFuse, NameUringForgetsOnDevFuse}

// Defaults of [Params].
const (
	DefaultInodes       = 200_000
	DefaultQueueDepth   = 8
	DefaultRuns         = 3
	DefaultFileSize     = 64 << 20
	DefaultBlockSize    = 4096
	DefaultReadRuntime  = 6 * time.Second
	DefaultWarmup       = time.Second
	DefaultBaseline     = 3 * time.Second
	DefaultStormDelay   = time.Second
	DefaultDrainTimeout = 60 * time.Second
	// FilesPerDir is the most files the backing tree puts in one
	// directory.
	FilesPerDir = 10_000
)

// ReadJob is the concurrent read workload: fio, 4k random reads with
// O_DIRECT on one file, Jobs readers each keeping Depth reads in flight
// (psync at depth 1, libaio above).
type ReadJob struct {
	// FileSize is the size of the file read, in bytes. Zero means 64 MiB.
	FileSize int64
	// BlockSize is the read size in bytes. Zero means 4096.
	BlockSize int
	// Runtime is how long the fio run with the storm lasts; the storm
	// starts [Params.StormDelay] into it. Zero means 6 s.
	Runtime time.Duration
	// Fio is the fio binary. Empty means "fio" from PATH.
	Fio string
	// Depth is the reads each reader keeps in flight. Zero means 1.
	// Above the ring's queue depth, readers compete with forgets for ring
	// entries. Model policies run Depth readers per CPU, back to back.
	Depth int
	// Jobs is the number of fio readers (numjobs). Zero means one per
	// CPU, so that every CPU's ring queue carries reads.
	Jobs int
}

// Params configure a study and each of its runs. The zero value, after
// [Params.WithDefaults], is the default study.
type Params struct {
	// Inodes is the number of files instantiated and then evicted.
	// Zero means 200,000. Up to a million and more work: the passthrough
	// holds no descriptor per inode.
	Inodes int
	// QueueDepth is the number of ring entries per CPU queue for ring
	// policies. Zero means 8, as in libfuse.
	QueueDepth int
	// Read is the concurrent read workload.
	Read ReadJob
	// Warmup is the unmeasured fio run before the baseline. Zero means
	// 1 s; negative skips it.
	Warmup time.Duration
	// Baseline is the fio run without a storm. Zero means 3 s.
	Baseline time.Duration
	// StormDelay is how long after fio's first READ reaches the server the
	// drop_caches write happens. Zero means 1 s.
	StormDelay time.Duration
	// DrainTimeout bounds the wait for the live nodes to return to the
	// baseline after the trigger. Zero means 60 s.
	DrainTimeout time.Duration
	// ModelCPUs is the number of CPUs, and so of ring queues, of the
	// machine a model policy models. Zero means the possible CPUs of this
	// machine. Real-kernel policies ignore it.
	ModelCPUs int
	// ModelEvictRate is each evicting task's evictions per second in
	// model policies (kmodel Storm.Rate). Zero means kmodel's default.
	ModelEvictRate float64
	// ModelEvictBurst is the forgets an evicting task queues per hold of
	// the model connection's lock (kmodel Storm.Burst): the forgets the
	// kernel queues while a woken /dev/fuse reader is still being
	// scheduled. Zero means kmodel's default (1).
	ModelEvictBurst int
	// Runs is the number of runs of each policy. Zero means 3.
	Runs int
	// Evict is how the inodes are evicted: one of [EvictModes]. Empty
	// means [EvictDropCaches].
	Evict string
	// WorkDir holds the backing tree ("src", reused by later runs while
	// its stamp file matches), the mount point ("mnt") and fio's logs.
	// Empty means $TMPDIR/ringfuse-forgetstudy.
	WorkDir string
	// Logf receives progress lines; nil discards them. [Run] sets it for
	// each run to one that prefixes "[policy NAME run I/N]".
	Logf func(format string, args ...any) `json:"-"`
}

// WithDefaults returns p with every zero field set to its default.
func (p Params) WithDefaults() Params {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.Inodes, DefaultInodes)
	def(&p.QueueDepth, DefaultQueueDepth)
	def(&p.Runs, DefaultRuns)
	def(&p.Read.BlockSize, DefaultBlockSize)
	def(&p.Read.Depth, 1)
	def(&p.Read.Jobs, runtime.NumCPU())
	if p.Read.FileSize == 0 {
		p.Read.FileSize = DefaultFileSize
	}
	if p.Read.Fio == "" {
		p.Read.Fio = "fio"
	}
	defDur(&p.Read.Runtime, DefaultReadRuntime)
	defDur(&p.Warmup, DefaultWarmup)
	defDur(&p.Baseline, DefaultBaseline)
	defDur(&p.StormDelay, DefaultStormDelay)
	defDur(&p.DrainTimeout, DefaultDrainTimeout)
	if p.WorkDir == "" {
		p.WorkDir = defaultWorkDir()
	}
	if p.Evict == "" {
		p.Evict = EvictDropCaches
	}
	return p
}

// Validate reports a parameter that cannot work.
func (p Params) Validate() error {
	switch {
	case p.Inodes < 1:
		return fmt.Errorf("forgetstudy: Inodes = %d: want at least 1", p.Inodes)
	case p.QueueDepth < 1:
		return fmt.Errorf("forgetstudy: QueueDepth = %d: want at least 1", p.QueueDepth)
	case !slices.Contains(EvictModes, p.Evict):
		return fmt.Errorf("forgetstudy: eviction mode %q: want one of %v", p.Evict, EvictModes)
	case p.Read.Depth < 1:
		return fmt.Errorf("forgetstudy: read depth %d: want at least 1", p.Read.Depth)
	case p.ModelCPUs < 0:
		return fmt.Errorf("forgetstudy: ModelCPUs = %d: want 0 or more", p.ModelCPUs)
	case p.Runs < 1:
		return fmt.Errorf("forgetstudy: Runs = %d: want at least 1", p.Runs)
	case p.Read.BlockSize < 512 || p.Read.BlockSize%512 != 0:
		return fmt.Errorf("forgetstudy: block size %d: want a multiple of 512 (O_DIRECT)", p.Read.BlockSize)
	case p.Read.FileSize < int64(p.Read.BlockSize):
		return fmt.Errorf("forgetstudy: file size %d is below one block", p.Read.FileSize)
	case p.Baseline < 100*time.Millisecond:
		return fmt.Errorf("forgetstudy: baseline %v: want at least 100ms", p.Baseline)
	case p.StormDelay < 0:
		return fmt.Errorf("forgetstudy: storm delay %v is negative", p.StormDelay)
	case p.Read.Runtime < p.StormDelay+100*time.Millisecond:
		return fmt.Errorf("forgetstudy: read runtime %v leaves under 100ms of storm after the %v delay", p.Read.Runtime, p.StormDelay)
	}
	return nil
}

func (p Params) logf(format string, args ...any) {
	if p.Logf != nil {
		p.Logf(format, args...)
	}
}

// Latency summarizes the reads in flight during one window (see [IO]).
type Latency struct {
	// N is the number of reads in flight during the window (issued
	// before its end, completed at or after its start); zero means no
	// data (the percentiles are then meaningless).
	N int
	// Span is the window's length.
	Span time.Duration
	// P50 and P99 are nearest-rank percentiles of completion latency.
	P50, P99 time.Duration
	// IOPS is the reads issued in the window divided by Span.
	IOPS float64
}

// Sample is one point of the 10 ms time series taken during a storm.
type Sample struct {
	// T is the time since the drop_caches write; negative before it.
	T time.Duration
	// Nodes is the server's live node count.
	Nodes int64
	// Forgets is the number of forgets received since just before the
	// trigger.
	Forgets uint64
	// RSS is the process's VmRSS in bytes (the server runs in this
	// process, next to the study itself).
	RSS uint64
	// Heap is the Go heap held by objects (/memory/classes/heap/objects),
	// in bytes.
	Heap uint64
}

// NodePoint is the live node count at a moment of the storm, from the
// 1 ms poll: one point per change, for the live-nodes plot.
type NodePoint struct {
	T     time.Duration // since the drop_caches write
	Nodes int64
}

// LatPoint is the read latency of one 10 ms window of the storm fio run.
type LatPoint struct {
	// T is the window's start, relative to the drop_caches write.
	T time.Duration
	// N is the number of reads in flight during the window.
	N int
	// P99 is their nearest-rank 99th percentile (0 if N is 0).
	P99 time.Duration
}

// Result is what one run of a policy measured. Durations are in
// nanoseconds in JSON. Counts a policy cannot know are zero and explained
// in Notes.
type Result struct {
	// Policy, Kind and Run (1-based) identify the run; [Run] fills them.
	Policy string
	Kind   string
	Run    int

	// Inodes is the number of files the run tried to instantiate;
	// Instantiated is how many live nodes that added; InstantiateTime
	// is how long it took.
	Inodes          int
	Instantiated    int64
	InstantiateTime time.Duration
	// BaseNodes is the live node count before instantiation (the level a
	// drain returns to); PreNodes just before the trigger; EndNodes at the
	// end of the run.
	BaseNodes, PreNodes, EndNodes int64

	// Forgets is the number of forgotten nodes (forget_one entries)
	// received from the trigger to the end of the run. ForgetUnknown of
	// them named nodes the server does not track (such as the session's
	// poll-hack file), so they drop no live node.
	Forgets, ForgetUnknown uint64
	// DevForgetMsgs is the number of forget messages read from /dev/fuse:
	// SingleForgets FORGET plus BatchForgets BATCH_FORGET.
	DevForgetMsgs, SingleForgets, BatchForgets uint64
	// RingForgets and RingForgetMsgs are the forgets, and the messages
	// carrying them, that arrived in ring entries. Zero on a kernel
	// without the 7.46 patch.
	RingForgets, RingForgetMsgs uint64
	// RingCQEs and RingCommits are the completions reaped and
	// COMMIT_AND_FETCH commands sent for forget messages on the ring (one
	// each per message).
	RingCQEs, RingCommits uint64
	// RingEnters is the number of io_uring_enter calls attributable to
	// forgets, when the channel or model can tell; RingEntersKnown says
	// whether it could.
	RingEnters      uint64
	RingEntersKnown bool
	// RingForgetQueues is the number of ring queues forgets travelled on,
	// when the model can tell (0 otherwise): the kernel queues a forget
	// on the evicting task's CPU queue, so drop_caches loads one.
	RingForgetQueues int
	// EntriesHeldMean and EntriesHeldMax are the ring entries occupied by
	// forgets (time-averaged over the storm, and the peak); zero when no
	// forget travelled on the ring.
	EntriesHeldMean, EntriesHeldMax float64
	// Batches is the histogram of forgets per message, both paths.
	Batches Histogram

	// DropCaches is how long the drop_caches write took (the kernel evicts
	// synchronously and queues forgets as it goes).
	DropCaches time.Duration
	// FirstForget and LastForget are when forgets started and stopped
	// arriving, relative to the trigger: the first and last change of
	// the live node count (1 ms poll). The kernel prunes dentries before
	// it evicts inodes, so the first forget comes well after the write.
	FirstForget, LastForget time.Duration
	// Drain is when the live node count first returned to BaseNodes,
	// relative to the trigger; Drained is false if it did not within
	// [Params.DrainTimeout] (Drain is then the timeout).
	Drain   time.Duration
	Drained bool
	// ForgetsPerSec is Forgets divided by LastForget.
	ForgetsPerSec float64

	// BaselineIOPS and StormIOPS are fio's own figures for the two runs.
	BaselineIOPS, StormIOPS float64
	// Baseline is the whole baseline run; PreStorm the storm run before
	// the trigger; Storm100ms and Storm1s the first 100 ms and 1 s after
	// it; StormWhole from the trigger to the drain (or to fio's end, if
	// the drain took longer: see Notes).
	Baseline, PreStorm, Storm100ms, Storm1s, StormWhole Latency
	// Forgetting is the reads in flight while forgets arrived, from
	// FirstForget to LastForget: the window in which forget transport
	// can compete with reads.
	Forgetting Latency

	// PreCounts is what the daemon did during the storm run before the
	// trigger (reads alone), StormCounts from the trigger to the drain.
	PreCounts, StormCounts Counters
	// Ents is the fuse_uring_forget_ents trace of the storm: ring entries
	// holding forgets (the series' list modes only; zero elsewhere).
	Ents EntsSummary
	// SUnreclaimBefore and SUnreclaimPeak are the
	// kernel's unreclaimable slab (bytes) before the trigger and its peak
	// after it: forget requests and links live there.
	SUnreclaimBefore, SUnreclaimPeak int64
	// ThreadsPeak is this process's most threads during the storm run.
	ThreadsPeak int
	// DevReaders is the /dev/fuse reader threads the server runs, and
	// DevBufBytes their request and reply buffers: what a server that
	// took every message from the ring could drop.
	DevReaders  int
	DevBufBytes int64

	// Memory of this process: just before the trigger, the peak after it,
	// and at the end of the run.
	RSSBefore, RSSPeak, RSSAfter    uint64
	HeapBefore, HeapPeak, HeapAfter uint64
	// HeapLiveBefore and HeapLiveAfter are the live Go heap right after
	// a forced GC, taken outside the measured windows: with every inode
	// instantiated before the storm run starts, and after the drain. Their
	// difference divided by Forgets is the server's heap per node. (The
	// sampled heap is what the GC has not reclaimed yet; on a path that
	// allocates little, no GC runs after the storm.)
	HeapLiveBefore, HeapLiveAfter uint64
	// SlabBefore and SlabAfter are the kernel's fuse_inode slab objects
	// (/proc/slabinfo active_objs) before the trigger and after the
	// drain; -1 if unreadable.
	SlabBefore, SlabAfter int64

	// Series is the 10 ms time series; NodeSeries the live node count at
	// every change seen by the 1 ms poll after the trigger; LatSeries the
	// read p99 per 10 ms window of the storm fio run.
	Series     []Sample
	NodeSeries []NodePoint
	LatSeries  []LatPoint

	// Notes explain anything unusual about the run.
	Notes []string
}

// Messages returns the forget messages on both paths.
func (r *Result) Messages() uint64 { return r.DevForgetMsgs + r.RingForgetMsgs }

// MessagesPerForget returns transport messages per forget (NaN without
// forgets).
func (r *Result) MessagesPerForget() float64 { return ratio(r.Messages(), r.Forgets) }

// SyscallsPerForget returns the daemon's system calls per forget: one
// read(2) per /dev/fuse forget message, plus the io_uring_enter calls for
// ring forgets when they are known. NaN without forgets, or when ring
// forgets arrived but their io_uring_enter calls are unknown.
func (r *Result) SyscallsPerForget() float64 {
	if r.RingForgetMsgs > 0 && !r.RingEntersKnown {
		return math.NaN()
	}
	return ratio(r.DevForgetMsgs+r.RingEnters, r.Forgets)
}

// RingOpsPerForget returns CQEs plus commits per forget (NaN without
// forgets).
func (r *Result) RingOpsPerForget() float64 { return ratio(r.RingCQEs+r.RingCommits, r.Forgets) }

func ratio(a, b uint64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}
