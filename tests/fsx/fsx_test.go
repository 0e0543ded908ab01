package fsx

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
	"github.com/ringfuse/ringfuse/wire"
)

// ciOps is the number of operations per transport when no flag says
// otherwise: enough to reach every operation many times over, few enough
// that the package stays well under 90 s with -race on 2 CPUs.
const ciOps = 3000

var (
	flagSeed = flag.Int64("fsx.seed", 0,
		"seed of the first round (0: derived from the time; the seed is always logged)")
	flagOps = flag.Int("fsx.ops", ciOps,
		"operations per round")
	flagDuration = flag.Duration("fsx.duration", 0,
		"keep running rounds (seed, seed+1, ...) on fresh mounts for this long, split evenly between the transports; 0 runs one round per transport")
	flagKeep = flag.String("fsx.keep", "",
		"run only these operations of the seed's stream: comma-separated indices and ranges (3,17,40-45), as printed by a failure")
	flagShrinkTime = flag.Duration("fsx.shrinktime", 30*time.Second,
		"time allowed for shrinking a failing sequence")
	flagTrace = flag.Bool("fsx.trace", false,
		"log every operation and both results")
	flagVariant = flag.String("fsx.variant", "",
		"mount variant to use (cached, uncached, kpassthrough, fileio, users); empty picks one per round from the seed and the transport")
)

// variant is a way to mount the passthrough filesystem.
type variant struct {
	name   string
	server server.Options
	fs     passthrough.Options
	mount  mount.Options
	// users runs each operation as its Op.User; otherwise all run as
	// root.
	users bool
	// fileIO serves reads and writes as reads and writes on the rings
	// (ring.Options.FileIO; no effect over /dev/fuse).
	fileIO bool
}

// variants are the mount configurations rounds rotate through: the
// daemon's defaults; no kernel caching of names and attributes and no fd
// cache, so that every path walk looks names up again and every operation
// reopens its node by handle; FUSE_PASSTHROUGH, where the kernel does
// reads, writes and mmap on the backing files itself; reads and writes
// done as reads and writes on the rings (FileIO, -o io_uring_file_io);
// and operations by
// several users under default_permissions, which exercises the daemon's
// handing of new files to their callers.
var variants = []variant{
	{name: "cached"},
	{name: "uncached", server: server.Options{EntryTimeout: -1, AttrTimeout: -1}, fs: passthrough.Options{FdCacheSize: -1}},
	// Operations as root and as two unprivileged users. Without
	// default_permissions the daemon, running as root, would decide
	// every access as root, which is by design, not a divergence.
	{name: "kpassthrough", server: server.Options{Passthrough: true}, fs: passthrough.Options{Passthrough: true}},
	{name: "fileio", fileIO: true},
	{name: "users", mount: mount.Options{DefaultPermissions: true, AllowOther: true}, users: true},
}

// variantOf picks the variant of a round: -fsx.variant, or one that
// depends on the seed and the transport, so that one CI run covers two
// variants and a seed always replays with the same one.
func variantOf(seed int64, transport int) (variant, error) {
	if *flagVariant != "" {
		for _, v := range variants {
			if v.name == *flagVariant {
				return v, nil
			}
		}
		return variant{}, fmt.Errorf("unknown -fsx.variant %q", *flagVariant)
	}
	i := (seed + int64(transport)) % int64(len(variants))
	return variants[(i+int64(len(variants)))%int64(len(variants))], nil
}

// setup says how a round mounts.
type setup struct {
	transport string
	variant   variant
}

// timeSeeds bounds the seeds taken from the clock, to keep them short to
// type.
const timeSeeds = 1e12

// Replays during shrinking compare snapshots only every
// replaySnapshotEvery operations once a candidate is longer than
// replayFullCheck, which keeps a replay of thousands of operations quick;
// results are compared after every operation regardless.
const (
	replayFullCheck     = 400
	replaySnapshotEvery = 8
	shrinkMaxReplays    = 2000
)

// TestFSX applies a seeded random sequence of operations to a passthrough
// mount and to a native directory, over each transport, and compares
// results and state after every operation.
func TestFSX(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % timeSeeds
	}
	keep, err := parseKeep(*flagKeep)
	if err != nil {
		t.Fatalf("-fsx.keep: %v", err)
	}
	t.Logf("fsx: seed %d, %d operations per round", seed, *flagOps)
	start := time.Now()
	for i, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			var deadline time.Time
			if *flagDuration > 0 && keep == nil {
				deadline = start.Add(*flagDuration * time.Duration(i+1) / time.Duration(len(testmount.Transports)))
			}
			for round := int64(0); ; round++ {
				s := seed + round
				v, err := variantOf(s, i)
				if err != nil {
					t.Fatal(err)
				}
				ok := t.Run(fmt.Sprintf("seed=%d,%s", s, v.name), func(t *testing.T) {
					runRound(t, setup{tr, v}, s, keep)
				})
				if !ok || deadline.IsZero() || time.Now().After(deadline) {
					t.Logf("%s: %d rounds of %d operations", tr, round+1, *flagOps)
					return
				}
			}
		})
	}
}

// runRound runs the first -fsx.ops operations of seed's stream (or the
// kept ones) and, on a divergence, shrinks them and reports.
func runRound(t *testing.T, su setup, seed int64, keep []int) {
	all := Ops(seed, *flagOps)
	idx := keep
	if idx == nil {
		idx = make([]int, len(all))
		for i := range idx {
			idx[i] = i
		}
	}
	for _, i := range idx {
		if i >= len(all) {
			t.Fatalf("-fsx.keep index %d beyond -fsx.ops=%d", i, len(all))
		}
	}
	opts := RunOptions{SnapshotEvery: 1}
	if *flagTrace {
		opts.Trace = func(step int, op Op, ra, rb Result) {
			t.Logf("#%d %v: %v | %v", idx[step], op, ra, rb)
		}
	}
	div := execute(t, su, pick(all, idx, su.variant.users), opts)
	if div == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "fsx: seed %d over %s, %s: ringfuse and native diverge at operation #%d %s",
		seed, su.transport, su.variant.name, indexOf(idx, div.Step), div)
	n := *flagOps
	if div.Step >= 0 {
		n = min(n, idx[div.Step]+1)
	}
	run := fmt.Sprintf("go test ./tests/fsx -run 'TestFSX/%s$' -fsx.variant=%s -fsx.seed=%d -fsx.ops=%d",
		su.transport, su.variant.name, seed, n)
	if keep == nil {
		fmt.Fprintf(&b, "whole sequence: %s -v\n", run)
	}
	shrunk := shrinkFailure(t, su, all, idx, div)
	b.WriteString(shrunk.report(run))
	t.Error(b.String())
}

// shrinkResult is the outcome of shrinking a failing sequence.
type shrinkResult struct {
	idx     []int // indices of the operations kept
	ops     []Op
	results [][2]Result // of the final replay
	div     *Divergence // of the final replay; nil if it did not fail
	// lastFail is the divergence of the last failing replay.
	lastFail *Divergence
	replays  int
	took     time.Duration
}

// shrinkFailure cuts the failing sequence at the divergence and shrinks
// it, replaying each candidate on a fresh native directory and a fresh
// mount.
func shrinkFailure(t *testing.T, su setup, all []Op, idx []int, div *Divergence) shrinkResult {
	start := time.Now()
	if div.Step >= 0 {
		idx = idx[:div.Step+1]
	}
	// A candidate counts as failing only with the same kind of
	// divergence, so that shrinking does not slide from one bug to
	// another, or to a flaky one.
	sig := div.Signature()
	res := shrinkResult{}
	fails := func(cand []int) int {
		opts := RunOptions{SnapshotEvery: 1}
		if len(cand) > replayFullCheck {
			opts.SnapshotEvery = replaySnapshotEvery
		}
		var d *Divergence
		t.Run("replay", func(t *testing.T) { d = execute(t, su, pick(all, cand, su.variant.users), opts) })
		if d == nil || d.Signature() != sig {
			return 0
		}
		res.lastFail = d
		return max(d.Step+1, 1) // a divergence before any operation needs none
	}
	budget := Budget{MaxTests: shrinkMaxReplays, Deadline: start.Add(*flagShrinkTime)}
	if k := fails(idx); k == 0 {
		// Not reproducible on a fresh mount: report the run as it was.
		res.idx = idx
		res.replays = 1
	} else {
		res.idx, res.replays = Shrink(idx[:min(k, len(idx))], fails, budget)
		res.replays++
	}
	// Replay the result once more, comparing everything after every
	// operation, to show each operation's results.
	res.ops = pick(all, res.idx, su.variant.users)
	opts := RunOptions{SnapshotEvery: 1, Trace: func(step int, op Op, ra, rb Result) {
		res.results = append(res.results, [2]Result{ra, rb})
	}}
	t.Run("final", func(t *testing.T) { res.div = execute(t, su, res.ops, opts) })
	res.took = time.Since(start)
	return res
}

// maxListed bounds the operations a report lists, for a shrink cut short
// by its budget.
const maxListed = 200

// report prints the shrunk sequence as a numbered list and the command
// that replays it; run is the command that replays the whole sequence.
func (r shrinkResult) report(run string) string {
	var b strings.Builder
	if r.div == nil {
		fmt.Fprintf(&b, "the divergence did not reproduce on a fresh mount (%d replays); the failure may depend on timing\n", r.replays)
		if r.lastFail != nil {
			fmt.Fprintf(&b, "the last failing replay, of %d operations (-fsx.keep=%s), diverged %s",
				len(r.idx), formatKeep(r.idx), r.lastFail)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "shrunk reproduction: %d operations (%d replays, %v):\n", len(r.idx), r.replays, r.took.Round(time.Millisecond))
	for i, op := range r.ops {
		if i == maxListed && len(r.ops) > maxListed+1 {
			fmt.Fprintf(&b, "  ... %d more operations: see the reproduce command\n", len(r.ops)-maxListed)
			break
		}
		res := "(not run)"
		if i < len(r.results) {
			res = fmt.Sprintf("ringfuse: %v | native: %v", r.results[i][0], r.results[i][1])
		}
		fmt.Fprintf(&b, "  %3d. [#%d] %v\n       -> %s\n", i+1, r.idx[i], op, res)
	}
	fmt.Fprintf(&b, "diverges %s", r.div)
	fmt.Fprintf(&b, "reproduce: %s -fsx.keep=%s -fsx.trace -v\n", run, formatKeep(r.idx))
	return b.String()
}

// execute mounts a fresh passthrough of a fresh backing directory as su
// says, makes a fresh native directory next to it, and runs ops on both.
// Everything is released at t's cleanup.
func execute(t *testing.T, su setup, ops []Op, opts RunOptions) *Divergence {
	t.Helper()
	m := mountSides(t, su)
	return Run(m.a, m.b, ops, opts)
}

// sides are the two trees of a round: a mount and a native directory.
type sides struct {
	a, b *Side // the mount, the native directory
	src  string
	s    *session.Session
}

// mountSides mounts a fresh passthrough of a fresh backing directory
// (src) as su says and makes a fresh native directory next to it, with a
// Side for each. Everything is released at t's cleanup.
func mountSides(t *testing.T, su setup) sides {
	t.Helper()
	if su.transport == "uring" {
		testmount.LockUringParam(t, false)
	}
	native := t.TempDir()
	src := t.TempDir()
	// The native root and the backing root get the same mode, since
	// the root's attributes are compared too.
	testmount.Traversable(t, native)
	testmount.Traversable(t, src)
	fo := su.variant.fs
	mo := su.variant.mount
	mo.AllowDev, mo.AllowSuid = true, true
	fsys, err := passthrough.New(src, &fo)
	if err != nil {
		t.Fatal(err)
	}
	s := testmount.Mount(t, fsys, testmount.Options{
		Transport: su.transport,
		Server:    su.variant.server,
		// Like the native directory's filesystem: device files (the 0/0
		// whiteouts RENAME_WHITEOUT leaves behind open with ENXIO, not
		// the EACCES of nodev) and set-ID bits are honoured.
		Mount:   mo,
		Cleanup: func() { fsys.Close() },
		Session: func(so *session.Options) {
			if so.Uring != nil {
				// Every read and write on the ring: fsx is a
				// serial client, whose lone requests would
				// otherwise be served inline.
				so.Uring.FileIO = su.variant.fileIO
				so.Uring.FileIOAlways = su.variant.fileIO
			}
		},
	})
	if su.variant.server.Passthrough && s.Server().Init().Flags&wire.FUSE_PASSTHROUGH == 0 {
		t.Fatal("FUSE_PASSTHROUGH not negotiated")
	}
	a, err := NewSide("ringfuse", s.Dir(), su.variant.users)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	b, err := NewSide("native", native, su.variant.users)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return sides{a: a, b: b, src: src, s: s}
}

// pick returns all[i] for each i in idx, as root unless users.
func pick(all []Op, idx []int, users bool) []Op {
	ops := make([]Op, len(idx))
	for j, i := range idx {
		ops[j] = all[i]
		if !users {
			ops[j].User = 0
		}
	}
	return ops
}

// indexOf maps a step of the run back to the stream index, -1 to -1.
func indexOf(idx []int, step int) int {
	if step < 0 {
		return -1
	}
	return idx[step]
}

// parseKeep parses "3,17,40-45"; "" means no selection (nil).
func parseKeep(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var idx []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, err
			}
		}
		if a < 0 || b < a {
			return nil, fmt.Errorf("bad range %q", part)
		}
		for i := a; i <= b; i++ {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	return slices.Compact(idx), nil
}

// formatKeep is the inverse of parseKeep, with runs of consecutive
// indices as ranges.
func formatKeep(idx []int) string {
	var parts []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", idx[i], idx[j]))
		} else {
			parts = append(parts, strconv.Itoa(idx[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
