package fsx

import (
	"fmt"
	"strings"
)

// Divergence is the first point where two sides disagree.
type Divergence struct {
	// Step is the index, in the sequence run, of the operation after
	// which the sides disagreed; -1 for the state before any operation.
	Step int
	Op   Op
	// Results are the operation's results on the first and second side.
	Results [2]Result
	// Diffs lists what differs: the results and/or the snapshots.
	Diffs []string
}

// Signature classifies d for shrinking: a wrong result of one kind of
// operation, or a difference in state only (which a replay comparing
// snapshots less often may find after a later operation).
func (d *Divergence) Signature() string {
	if d.Step >= 0 && strings.HasPrefix(d.Diffs[0], "result: ") {
		return "result of " + d.Op.Kind.String()
	}
	return "state"
}

func (d *Divergence) String() string {
	var b strings.Builder
	if d.Step < 0 {
		fmt.Fprintf(&b, "before the first operation:\n")
	} else {
		fmt.Fprintf(&b, "after step %d, %v:\n", d.Step, d.Op)
	}
	for _, l := range d.Diffs {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	return b.String()
}

// RunOptions tune Run.
type RunOptions struct {
	// SnapshotEvery compares snapshots after every SnapshotEvery-th
	// operation as well as after the last; 1 compares after every one,
	// and 0 only after the last. Results are compared after every
	// operation regardless.
	SnapshotEvery int
	// Trace, if not nil, is told each operation and its two results.
	Trace func(step int, op Op, ra, rb Result)
}

// Run applies ops to a and b in lockstep and returns the first
// divergence, or nil if the sides agreed throughout.
func Run(a, b *Side, ops []Op, opts RunOptions) *Divergence {
	if d := Diff(Take(a), Take(b), a.Name, b.Name); d != nil {
		return &Divergence{Step: -1, Diffs: d}
	}
	for i, op := range ops {
		ra, rb := a.Apply(op), b.Apply(op)
		if opts.Trace != nil {
			opts.Trace(i, op, ra, rb)
		}
		var diffs []string
		if !ra.Equal(rb) && !SeekEquivalent(a, b, op, ra, rb) {
			diffs = append(diffs, fmt.Sprintf("result: %s: %v, %s: %v", a.Name, ra, b.Name, rb))
		}
		last := i == len(ops)-1
		if diffs != nil || last || opts.SnapshotEvery > 0 && (i+1)%opts.SnapshotEvery == 0 {
			diffs = append(diffs, Diff(Take(a), Take(b), a.Name, b.Name)...)
		}
		if diffs != nil {
			return &Divergence{Step: i, Op: op, Results: [2]Result{ra, rb}, Diffs: diffs}
		}
	}
	return nil
}
