package server

import (
	"testing"
	"unsafe"

	"github.com/ringfuse/ringfuse/wire"
)

func TestBatchBucket(t *testing.T) {
	for _, c := range []struct{ n, b int }{{1, 0}, {2, 1}, {3, 1}, {4, 2}, {8191, 12}, {8192, 13}, {1 << 30, forgetBuckets - 1}} {
		if got := batchBucket(c.n); got != c.b {
			t.Errorf("batchBucket(%d) = %d, want %d", c.n, got, c.b)
		}
	}
}

// TestForgetsAddMove: Add copies FORGET and BATCH_FORGET, counts their
// messages and batch sizes, and refuses other requests; Move carries all of
// it over; Trim frees only empty, large storage.
func TestForgetsAddMove(t *testing.T) {
	var f Forgets
	in := wire.ForgetIn{Nlookup: 3}
	one := wire.Request{Header: wire.InHeader{Opcode: wire.FUSE_FORGET, NodeID: 7}, Arg: wire.AsBytes(&in)}
	ones := []wire.ForgetOne{{NodeID: 8, Nlookup: 1}, {NodeID: 9, Nlookup: 2}, {NodeID: 10, Nlookup: 1}}
	batch := wire.Request{Header: wire.InHeader{Opcode: wire.FUSE_BATCH_FORGET},
		Data: unsafe.Slice((*byte)(unsafe.Pointer(&ones[0])), len(ones)*wire.SizeofForgetOne)}
	other := wire.Request{Header: wire.InHeader{Opcode: wire.FUSE_GETATTR, NodeID: 7}}
	if !f.Add(&one) || !f.Add(&batch) || f.Add(&other) {
		t.Fatal("Add took the wrong messages")
	}
	ones[0].NodeID = 99 // Add copied
	if f.Len() != 4 || f.Messages() != 2 || f.ones[0] != (wire.ForgetOne{NodeID: 7, Nlookup: 3}) || f.ones[1].NodeID != 8 {
		t.Fatalf("after Add: %d forgets in %d messages: %v", f.Len(), f.Messages(), f.ones)
	}
	if f.sizes[0] != 1 || f.sizes[1] != 1 || f.msgs != [2]uint64{1, 1} {
		t.Errorf("sizes %v msgs %v", f.sizes[:3], f.msgs)
	}
	var g Forgets
	f.Move(&g)
	if f.Len() != 0 || f.Messages() != 0 || g.Len() != 4 || g.Messages() != 2 || g.sizes[1] != 1 {
		t.Errorf("after Move: f %d/%d, g %d/%d", f.Len(), f.Messages(), g.Len(), g.Messages())
	}
	buf := make([]wire.ForgetOne, 4)
	g.Use(buf)
	if g.Len() != 0 || g.Messages() != 0 || g.Room() != 4 {
		t.Fatalf("after Use: %d forgets in %d messages, room %d", g.Len(), g.Messages(), g.Room())
	}
	g.Add(&batch)
	if g.Room() != 1 || &g.Storage()[0] != &buf[0] {
		t.Errorf("room %d after 3 forgets in 4, or not in buf", g.Room())
	}
}

// TestApplyForgetsCounts: one FORGET and one BATCH_FORGET, through the
// handler and through TakeForgetsDev + ApplyForgets, count the same.
func TestApplyForgetsCounts(t *testing.T) {
	for _, viaTake := range []bool{false, true} {
		fsys := newUnitFS()
		fsys.add("a", 10, "")
		fsys.add("b", 11, "")
		h := newHarness(t, fsys, nil)
		a, b := h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID, h.mustLookup(wire.FUSE_ROOT_ID, "b").NodeID
		fin := wire.ForgetIn{Nlookup: 1}
		forget := reqMsg(nil, wire.FUSE_FORGET, h.next(), a, wire.AsBytes(&fin))
		bin := wire.BatchForgetIn{Count: 1}
		fone := wire.ForgetOne{NodeID: b, Nlookup: 1}
		batch := reqMsg(nil, wire.FUSE_BATCH_FORGET, h.next(), 0, wire.AsBytes(&bin), wire.AsBytes(&fone))
		if viaTake {
			var f Forgets
			if !h.w.TakeForgetsDev(forget, &f) || !h.w.TakeForgetsDev(batch, &f) {
				t.Fatal("TakeForgetsDev refused a forget")
			}
			var gin wire.GetattrIn
			if h.w.TakeForgetsDev(reqMsg(nil, wire.FUSE_GETATTR, h.next(), a, wire.AsBytes(&gin)), &f) {
				t.Fatal("TakeForgetsDev took a GETATTR")
			}
			h.fork("test").w.ApplyForgets(&f)
		} else {
			h.w.HandleDev(forget, h.out)
			h.w.HandleDev(batch, h.out)
		}
		cs := h.srv.Stats().Channels["test"]
		if cs.Forgets != 2 || cs.ForgetMsgs != 2 || cs.ForgetBatches[0] != 2 || cs.Requests["FORGET"] != 1 || cs.Requests["BATCH_FORGET"] != 1 {
			t.Errorf("via take %v: forgets %d in %d messages, batches %v, requests %v", viaTake, cs.Forgets, cs.ForgetMsgs, cs.ForgetBatches[:2], cs.Requests)
		}
		if n := h.srv.NodesAlive(); n != 0 {
			t.Errorf("via take %v: %d nodes alive after the forgets", viaTake, n)
		}
	}
}
