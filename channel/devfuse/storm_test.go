package devfuse

import (
	"io"
	"log"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/fs/hello"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

func TestForgetCount(t *testing.T) {
	batch := wire.SizeofInHeader + wire.SizeofBatchForgetIn
	for _, c := range []struct {
		op   wire.Opcode
		n    int
		want int
		ok   bool
	}{
		{wire.FUSE_FORGET, wire.SizeofInHeader + 8, 1, true},
		{wire.FUSE_BATCH_FORGET, batch + 3*wire.SizeofForgetOne, 3, true},
		{wire.FUSE_BATCH_FORGET, batch - 1, 0, true}, // malformed: no forget counted
		{wire.FUSE_READ, 80, 0, false},
		{wire.FUSE_INTERRUPT, 48, 0, false},
	} {
		if n, ok := forgetCount(c.op, c.n); n != c.want || ok != c.ok {
			t.Errorf("forgetCount(%v, %d) = %d, %v; want %d, %v", c.op, c.n, n, ok, c.want, c.ok)
		}
	}
}

func forgetMsg(unique uint64, n int) []byte {
	if n == 1 {
		in := wire.ForgetIn{Nlookup: 1}
		return wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_FORGET, Unique: unique, NodeID: 1 << 50}, wire.AsBytes(&in))
	}
	in := wire.BatchForgetIn{Count: uint32(n)}
	ones := make([]byte, n*wire.SizeofForgetOne)
	for i := range ones {
		ones[i] = 0xff // unknown node IDs: counted and dropped
	}
	return wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_BATCH_FORGET, Unique: unique}, wire.AsBytes(&in), ones)
}

// TestStormState: a burst of small forget messages starts a storm and sets
// the next read a window later, a stray one or a large batch does not; a
// request ends the storm only after Quiet.
func TestStormState(t *testing.T) {
	var stats CoalesceStats
	s := newStorm(&Coalesce{Window: time.Hour, Quiet: 2 * time.Hour, Stats: &stats})
	getattr := wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_GETATTR, Unique: 9, NodeID: 1}, make([]byte, 16))
	s.saw(forgetMsg(2, 100))
	if s.on.Load() {
		t.Fatal("a large batch started a storm")
	}
	for i := range 3 {
		s.saw(forgetMsg(uint64(3+i), 1))
	}
	if s.on.Load() {
		t.Fatal("three FORGETs started a storm")
	}
	s.saw(forgetMsg(6, 1))
	if !s.on.Load() || stats.Storms.Load() != 1 {
		t.Fatal("a burst of four FORGETs did not start a storm")
	}
	if d := s.next.Load() - s.now(); d < int64(59*time.Minute) {
		t.Errorf("next read in %v, want a window", time.Duration(d))
	}
	s.saw(getattr)
	if !s.on.Load() {
		t.Error("a request ended the storm before Quiet")
	}
	s.last.Store(s.now() - int64(3*time.Hour))
	s.saw(getattr)
	if s.on.Load() {
		t.Error("a request Quiet after the last forget did not end the storm")
	}
	if newStorm(nil) != nil || newStorm(&Coalesce{}) != nil {
		t.Error("coalescing on without a window")
	}
}

// TestStormWaitCut: Pending cuts a wait short; without it the wait lasts
// until the window's end.
func TestStormWaitCut(t *testing.T) {
	var pending atomic.Bool
	var stats CoalesceStats
	s := newStorm(&Coalesce{Window: time.Hour, Poll: time.Millisecond, Stats: &stats,
		Pending: func(int) bool { return pending.Load() }})
	for i := range 4 {
		s.saw(forgetMsg(uint64(2+i), 1))
	}
	done := make(chan struct{})
	go func() {
		if !s.enter() {
			t.Error("no turn taken during a storm")
		}
		s.leave(true)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("the wait ended with nothing pending")
	case <-time.After(20 * time.Millisecond):
	}
	pending.Store(true)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Pending did not cut the wait short")
	}
	if stats.Waits.Load() != 1 || stats.Cut.Load() != 1 {
		t.Errorf("%d waits, %d cut; want 1, 1", stats.Waits.Load(), stats.Cut.Load())
	}

	s = newStorm(&Coalesce{Window: 5 * time.Millisecond, Burst: 1})
	s.saw(forgetMsg(2, 1))
	start := time.Now()
	s.leave(s.enter())
	if d := time.Since(start); d < 4*time.Millisecond {
		t.Errorf("waited %v, want the 5 ms window", d)
	}
}

// TestServeCoalesced: with coalescing, the forgets a reader takes reach
// the server through the applier and count once, like HandleDev's; a
// message larger than the applier's buffer is applied by the reader.
func TestServeCoalesced(t *testing.T) {
	for _, c := range []Coalesce{{Inline: true}, {}, {Nice: 10}} {
		srv := server.New(&hello.FS{Name: "f", Data: []byte("x")}, &server.Options{ErrorLog: log.New(io.Discard, "", 0)})
		initIn := wire.InitIn{Major: 7, Minor: 45, MaxReadahead: 1 << 17}
		init := wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_INIT, Unique: 1}, wire.AsBytes(&initIn))
		var stats CoalesceStats
		dev := &scriptDev{msgs: [][]byte{init, forgetMsg(2, 1), forgetMsg(3, 1), forgetMsg(4, 300), forgetMsg(5, 1), forgetMsg(6, applierCap+1)}}
		// Burst 2: the two FORGETs start the storm.
		if err := Serve(srv, dev, &Options{Readers: 1, Coalesce: &Coalesce{Window: time.Millisecond, Burst: 2, Inline: c.Inline, Nice: c.Nice, Stats: &stats}}); err != nil {
			t.Fatal(err)
		}
		cs := srv.Stats().Channels["devfuse"]
		if cs == nil || cs.Forgets != 303+applierCap+1 || cs.ForgetMsgs != 5 || cs.Requests["FORGET"] != 3 || cs.Requests["BATCH_FORGET"] != 2 {
			t.Fatalf("%+v: stats %+v", c, cs)
		}
		if n := srv.Stats().ForgetUnknown; n != 303+applierCap+1 {
			t.Errorf("%+v: %d forgets applied, want %d", c, n, 303+applierCap+1)
		}
		if stats.Storms.Load() != 1 || stats.Waits.Load() < 3 {
			t.Errorf("%+v: %d storms, %d waits; want 1, at least 3", c, stats.Storms.Load(), stats.Waits.Load())
		}
	}
}
