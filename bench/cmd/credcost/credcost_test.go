package main

import (
	"maps"
	"testing"
)

// A SIGUSR1 dump of an io_uring mount: opcodes of both channels add up,
// and nothing after the memory line counts.
const dump = `nodes alive: 1  forgets for unknown nodes: 0
channel devfuse: 1 requests, 0 errors, 0 unknown opcodes, 0 undecodable, 0 late replies
  INIT             1
channel uring: 16 requests, 0 errors, 0 unknown opcodes, 0 undecodable, 0 late replies
  GETATTR          5
  LOOKUP           4
  INIT             2
io_uring: 2 queues of depth 8; 16 commits (per queue [16 0]), 0 served on the pool
memory: heap objects 8.7 MiB, heap free 0.0 MiB
  LOOKUP           100
`

func TestParseCounts(t *testing.T) {
	got := parseCounts([]byte(dump))
	want := map[string]uint64{"INIT": 3, "GETATTR": 5, "LOOKUP": 4}
	if !maps.Equal(got, want) {
		t.Errorf("parseCounts = %v, want %v", got, want)
	}
}

func TestPerOp(t *testing.T) {
	m := map[string]uint64{"LOOKUP": 10, "GETATTR": 10, "GETXATTR": 20, "FORGET": 0}
	if got, want := perOp(m, 10), "GETXATTR 2.00 GETATTR 1.00 LOOKUP 1.00"; got != want {
		t.Errorf("perOp = %q, want %q", got, want)
	}
}

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want stat
	}{
		{[]float64{3, 1, 2}, stat{2, 1, 3}},
		{[]float64{4, 1, 3, 2}, stat{2.5, 1, 4}},
		{nil, stat{}},
	} {
		if got := summarize(c.in); got != c.want {
			t.Errorf("summarize(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
