package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// keptNode returns the filesystem node the server holds for id.
func keptNode(t *testing.T, srv *Server, id uint64) *unitNode {
	t.Helper()
	n, ok := srv.nodes.get(id)
	if !ok {
		t.Fatalf("node %d is not in the table", id)
	}
	return n.(*unitNode)
}

func TestLookupCounts(t *testing.T) {
	fsys := newUnitFS()
	fsys.add("a", 10, "")
	h := newHarness(t, fsys, nil)

	first := h.mustLookup(wire.FUSE_ROOT_ID, "a")
	if first.NodeID == wire.FUSE_ROOT_ID || first.NodeID == 0 {
		t.Fatalf("LOOKUP gave node ID %d", first.NodeID)
	}
	kept := keptNode(t, h.srv, first.NodeID)
	second := h.mustLookup(wire.FUSE_ROOT_ID, "a")
	if second.NodeID != first.NodeID {
		t.Fatalf("second LOOKUP of one key gave node %d, first %d", second.NodeID, first.NodeID)
	}
	if keptNode(t, h.srv, first.NodeID) != kept {
		t.Errorf("the second lookup replaced the node the server keeps")
	}
	id := first.NodeID
	if n := h.srv.Lookups(id); n != 2 {
		t.Fatalf("Lookups = %d after two LOOKUPs, want 2", n)
	}
	if n := h.srv.NodesAlive(); n != 1 {
		t.Errorf("NodesAlive = %d, want 1", n)
	}

	h.forget(id, 1)
	if n := h.srv.Lookups(id); n != 1 {
		t.Fatalf("Lookups = %d after FORGET(1), want 1", n)
	}
	if n := fsys.nforgets.Load(); n != 0 {
		t.Fatalf("Forget called %d times while the kernel holds a lookup", n)
	}

	h.batchForget(wire.ForgetOne{NodeID: id, Nlookup: 1})
	if n := h.srv.Lookups(id); n != 0 {
		t.Errorf("Lookups = %d after the last forget, want 0", n)
	}
	if n := fsys.forgetCalls(kept); n != 1 || fsys.nforgets.Load() != 1 {
		t.Errorf("Forget called %d times for the node, %d in all; want 1 and 1", n, fsys.nforgets.Load())
	}
	if n := h.srv.NodesAlive(); n != 0 {
		t.Errorf("NodesAlive = %d after the last forget, want 0", n)
	}
	if _, ok := h.srv.nodes.get(id); ok {
		t.Errorf("forgotten node %d still resolves", id)
	}
	if rep := h.getattr(id); rep.Error != -int32(syscall.ESTALE) {
		t.Errorf("GETATTR of a forgotten node: %+v, want ESTALE", rep)
	}

	// A forgotten node's ID is never handed out again.
	again := h.mustLookup(wire.FUSE_ROOT_ID, "a")
	if again.NodeID == id {
		t.Errorf("node ID %d reused after its node was forgotten", id)
	}
	cs := h.channel()
	if cs.Forgets != 2 || cs.ForgetMsgs != 2 || cs.ForgetBatches[0] != 2 {
		t.Errorf("forgets %d in %d messages, batches %v; want 2 in 2", cs.Forgets, cs.ForgetMsgs, cs.ForgetBatches[:2])
	}
}

// TestForgetMoreThanLooked: a forget larger than the count drops the node
// once; a later forget for it counts as unknown.
func TestForgetMoreThanLooked(t *testing.T) {
	fsys := newUnitFS()
	fsys.add("a", 10, "")
	h := newHarness(t, fsys, nil)
	id := h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID
	h.forget(id, 5)
	h.forget(id, 1)
	if fsys.nforgets.Load() != 1 || h.srv.NodesAlive() != 0 {
		t.Errorf("Forget called %d times, NodesAlive %d; want 1 and 0", fsys.nforgets.Load(), h.srv.NodesAlive())
	}
	if n := h.srv.Stats().ForgetUnknown; n != 1 {
		t.Errorf("ForgetUnknown = %d, want 1", n)
	}
}

func TestForgetUnknown(t *testing.T) {
	fsys := newUnitFS()
	fsys.add("a", 10, "")
	h := newHarness(t, fsys, nil)
	id := h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID
	h.forget(999, 1)
	h.batchForget(wire.ForgetOne{NodeID: 1000, Nlookup: 1}, wire.ForgetOne{NodeID: id, Nlookup: 1},
		wire.ForgetOne{NodeID: 0, Nlookup: 1})
	st := h.srv.Stats()
	if st.ForgetUnknown != 3 {
		t.Errorf("ForgetUnknown = %d, want 3", st.ForgetUnknown)
	}
	if st.NodesAlive != 0 || fsys.nforgets.Load() != 1 {
		t.Errorf("NodesAlive %d, Forget calls %d; want 0 and 1", st.NodesAlive, fsys.nforgets.Load())
	}
	if cs := st.Channels["test"]; cs.Forgets != 4 || cs.ForgetBatches[0] != 1 || cs.ForgetBatches[1] != 1 {
		t.Errorf("Forgets %d, batches %v; want 4 in a batch of 1 and one of 3", cs.Forgets, cs.ForgetBatches[:3])
	}
}

func TestDistinctKeys(t *testing.T) {
	fsys := newUnitFS()
	fsys.add("a", 10, "")
	fsys.add("b", 11, "")
	fsys.add("hardlink-to-a", 10, "")
	fsys.add("a-on-dev-2", 10, "").key = ringfuse.InodeKey{Dev: 2, Ino: 10}
	fsys.add("a-by-key", 99, "").key = ringfuse.InodeKey{Ino: 10} // the key wins over Attr.Ino
	h := newHarness(t, fsys, nil)
	ids := map[string]uint64{}
	for _, name := range []string{"a", "b", "hardlink-to-a", "a-on-dev-2", "a-by-key"} {
		ids[name] = h.mustLookup(wire.FUSE_ROOT_ID, name).NodeID
	}
	if ids["a"] == ids["b"] || ids["a"] == ids["a-on-dev-2"] || ids["b"] == ids["a-on-dev-2"] {
		t.Errorf("different keys share a node ID: %v", ids)
	}
	if ids["hardlink-to-a"] != ids["a"] || ids["a-by-key"] != ids["a"] {
		t.Errorf("one key got several node IDs: %v", ids)
	}
	if n := h.srv.Lookups(ids["a"]); n != 3 {
		t.Errorf("Lookups of a = %d, want 3 (three names)", n)
	}
	if n := h.srv.NodesAlive(); n != 3 {
		t.Errorf("NodesAlive = %d, want 3", n)
	}
	for name, id := range ids {
		if id == wire.FUSE_ROOT_ID || id == pollHackID {
			t.Errorf("%s got the reserved node ID %d", name, id)
		}
	}
}

func TestRootNeverForgotten(t *testing.T) {
	fsys := newUnitFS()
	h := newHarness(t, fsys, nil)
	h.forget(wire.FUSE_ROOT_ID, 1)
	h.batchForget(wire.ForgetOne{NodeID: wire.FUSE_ROOT_ID, Nlookup: 1 << 40})
	h.srv.nodes.compact()
	if fsys.nforgets.Load() != 0 {
		t.Errorf("Forget called for the root")
	}
	if n := h.srv.Stats().ForgetUnknown; n != 0 {
		t.Errorf("a forget of the root counted as unknown")
	}
	rep := h.getattr(wire.FUSE_ROOT_ID)
	if rep.Error != 0 || wire.View[wire.AttrOut](h.out).Attr.Ino != 1 {
		t.Errorf("GETATTR of the root after forgets: %+v", rep)
	}
	if n, ok := h.srv.nodes.get(wire.FUSE_ROOT_ID); !ok || n.(*unitNode).f != &fsys.root {
		t.Errorf("the root node changed")
	}
}

// TestConcurrentLookupForget runs 8 workers that look up and forget
// overlapping keys. At the end every count is zero, no node is left, and
// the filesystem heard exactly one Forget for each node the server kept.
func TestConcurrentLookupForget(t *testing.T) {
	const (
		workers = 8
		keys    = 12
		rounds  = 3000
	)
	fsys := newUnitFS()
	for i := range keys {
		fsys.add(fmt.Sprint("f", i), uint64(100+i), "")
	}
	h := newHarness(t, fsys, nil)

	var (
		mu   sync.Mutex
		seen = map[uint64]bool{} // every node ID a LOOKUP returned
	)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wh := h.fork("test")
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			held := map[uint64]uint64{} // lookups this worker holds
			mine := map[uint64]bool{}
			for range rounds {
				switch r := rng.IntN(10); {
				case r < 6:
					eo, errno := wh.lookup(wire.FUSE_ROOT_ID, fmt.Sprint("f", rng.IntN(keys)))
					if errno != 0 {
						t.Errorf("LOOKUP: %v", errno)
						return
					}
					held[eo.NodeID]++
					mine[eo.NodeID] = true
				case r < 8:
					for id, n := range held {
						k := 1 + rng.Uint64N(n)
						wh.forget(id, k)
						if held[id] -= k; held[id] == 0 {
							delete(held, id)
						}
						break
					}
				default:
					var ones []wire.ForgetOne
					for id, n := range held {
						ones = append(ones, wire.ForgetOne{NodeID: id, Nlookup: n})
						delete(held, id)
						if len(ones) == 3 {
							break
						}
					}
					wh.batchForget(ones...)
				}
			}
			var ones []wire.ForgetOne
			for id, n := range held {
				ones = append(ones, wire.ForgetOne{NodeID: id, Nlookup: n})
			}
			wh.batchForget(ones...)
			mu.Lock()
			for id := range mine {
				seen[id] = true
			}
			mu.Unlock()
		}()
	}
	wg.Wait()

	for id := range seen {
		if n := h.srv.Lookups(id); n != 0 {
			t.Errorf("node %d has %d lookups left", id, n)
		}
	}
	if n := h.srv.NodesAlive(); n != 0 {
		t.Errorf("NodesAlive = %d, want 0", n)
	}
	if n := h.srv.Stats().ForgetUnknown; n != 0 {
		t.Errorf("ForgetUnknown = %d, want 0", n)
	}
	if got, want := fsys.nforgets.Load(), int64(len(seen)); got != want {
		t.Errorf("Forget called %d times for %d nodes", got, want)
	}
	fsys.mu.Lock()
	for n, calls := range fsys.forgets {
		if calls != 1 {
			t.Errorf("Forget called %d times for node %p (%s)", calls, n, n.f.name)
		}
	}
	fsys.mu.Unlock()
	t.Logf("%d nodes created and dropped, %d Lookup calls", len(seen), fsys.lookups.Load())
}

// TestConcurrentOverForget has two workers forget the same single lookup
// at once, as a confused kernel could. The node must be dropped once:
// Forget is called once and the live count does not go below zero.
func TestConcurrentOverForget(t *testing.T) {
	fsys := newUnitFS()
	fsys.add("a", 10, "")
	h := newHarness(t, fsys, nil)
	a, b := h.fork("a"), h.fork("b")
	const rounds = 2000
	for range rounds {
		id := h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID
		var wg sync.WaitGroup
		for _, wh := range []*harness{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wh.forget(id, 1)
			}()
		}
		wg.Wait()
	}
	if n := fsys.nforgets.Load(); n != rounds {
		t.Errorf("Forget called %d times for %d nodes", n, rounds)
	}
	if n := h.srv.NodesAlive(); n != 0 {
		t.Errorf("NodesAlive = %d, want 0", n)
	}
	if n := h.srv.Stats().ForgetUnknown; n != rounds {
		t.Errorf("ForgetUnknown = %d, want %d (one per round)", n, rounds)
	}
}

func TestReplyFailedUndoesLookup(t *testing.T) {
	fsys := newUnitFS()
	fsys.add("a", 10, "")
	h := newHarness(t, fsys, nil)
	id := h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID
	kept := keptNode(t, h.srv, id)
	h.mustLookup(wire.FUSE_ROOT_ID, "a")
	h.w.ReplyFailed()
	if n := h.srv.Lookups(id); n != 1 {
		t.Errorf("Lookups = %d after a failed reply of the second LOOKUP, want 1", n)
	}
	h.w.ReplyFailed() // a second call has nothing left to undo
	if n := h.srv.Lookups(id); n != 1 {
		t.Errorf("Lookups = %d after a repeated ReplyFailed, want 1", n)
	}
	h.forget(id, 1)
	if fsys.forgetCalls(kept) != 1 || h.srv.NodesAlive() != 0 {
		t.Errorf("after the last forget: Forget calls %d, NodesAlive %d", fsys.forgetCalls(kept), h.srv.NodesAlive())
	}

	// The only lookup of a new node fails to reach the kernel: the node
	// goes, and the filesystem is told.
	id = h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID
	kept = keptNode(t, h.srv, id)
	h.w.ReplyFailed()
	if h.srv.Lookups(id) != 0 || h.srv.NodesAlive() != 0 || fsys.forgetCalls(kept) != 1 {
		t.Errorf("after ReplyFailed of the only LOOKUP: Lookups %d, NodesAlive %d, Forget calls %d",
			h.srv.Lookups(id), h.srv.NodesAlive(), fsys.forgetCalls(kept))
	}

	// A failed reply to a request that counted nothing undoes nothing.
	id = h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID
	h.getattr(id)
	h.w.ReplyFailed()
	if n := h.srv.Lookups(id); n != 1 {
		t.Errorf("Lookups = %d after ReplyFailed of a GETATTR, want 1", n)
	}
	if n := h.channel().ReplyFailed; n != 4 {
		t.Errorf("ReplyFailed counted %d, want 4", n)
	}
}

// direntplus is one decoded READDIRPLUS entry.
type direntplus struct {
	wire.Direntplus
	name string
}

func decodeDirentplus(t *testing.T, b []byte) []direntplus {
	t.Helper()
	var ds []direntplus
	for len(b) > 0 {
		dp := wire.View[wire.Direntplus](b)
		if dp == nil {
			t.Fatalf("%d stray bytes after the last entry", len(b))
		}
		size := wire.DirentplusSize(int(dp.Dirent.Namelen))
		if size > len(b) {
			t.Fatalf("entry of %d bytes, %d left", size, len(b))
		}
		name := b[wire.SizeofDirentplus : wire.SizeofDirentplus+int(dp.Dirent.Namelen)]
		for _, c := range b[wire.SizeofDirentplus+len(name) : size] {
			if c != 0 {
				t.Fatalf("entry %q: padding not zeroed", name)
			}
		}
		ds = append(ds, direntplus{*dp, string(name)})
		b = b[size:]
	}
	return ds
}

func TestReaddirplusCounts(t *testing.T) {
	fsys := newUnitFS()
	for i := range 6 {
		fsys.add(fmt.Sprint("file", i), uint64(20+i), "")
	}
	h := newHarness(t, fsys, nil)
	// Room for ".", ".." and three files: the fourth file does not fit.
	size := 2*wire.DirentplusSize(2) + 3*wire.DirentplusSize(5)
	in := wire.ReadIn{Size: uint32(size + wire.DirentplusSize(5) - 1)}
	rep := h.send(wire.FUSE_READDIRPLUS, wire.FUSE_ROOT_ID, wire.AsBytes(&in))
	if rep.Error != 0 || rep.Len != size {
		t.Fatalf("READDIRPLUS: %+v, want %d bytes", rep, size)
	}
	ds := decodeDirentplus(t, h.payload(rep))
	if len(ds) != 5 {
		t.Fatalf("%d entries, want 5", len(ds))
	}
	for i, d := range ds {
		switch {
		case i < 2:
			if d.name != []string{".", ".."}[i] || d.Entry.NodeID != 0 {
				t.Errorf("entry %d: %q with node %d, want a dot entry without a node", i, d.name, d.Entry.NodeID)
			}
		default:
			want := fsys.files[i-2]
			if d.name != want.name || d.Dirent.Ino != want.attr.Ino || d.Entry.Attr.Ino != want.attr.Ino {
				t.Errorf("entry %d: %q ino %d, want %q ino %d", i, d.name, d.Dirent.Ino, want.name, want.attr.Ino)
			}
			if d.Entry.NodeID == 0 || h.srv.Lookups(d.Entry.NodeID) != 1 {
				t.Errorf("entry %q: node %d with %d lookups, want 1", d.name, d.Entry.NodeID, h.srv.Lookups(d.Entry.NodeID))
			}
			if d.Dirent.Type != syscall.DT_REG || d.Dirent.Off != uint64(i+1) {
				t.Errorf("entry %q: type %d, off %d", d.name, d.Dirent.Type, d.Dirent.Off)
			}
			if d.Entry.EntryValid != 1 || d.Entry.AttrValid != 1 {
				t.Errorf("entry %q: timeouts %d/%d s, want the 1 s default", d.name, d.Entry.EntryValid, d.Entry.AttrValid)
			}
		}
	}
	if n := h.srv.NodesAlive(); n != 3 {
		t.Errorf("NodesAlive = %d, want 3: only entries that were added count", n)
	}

	// Resume after the third file: the rest is counted once each.
	in = wire.ReadIn{Offset: 5, Size: 4096}
	rep = h.send(wire.FUSE_READDIRPLUS, wire.FUSE_ROOT_ID, wire.AsBytes(&in))
	if ds := decodeDirentplus(t, h.payload(rep)); rep.Error != 0 || len(ds) != 3 || ds[0].name != "file3" {
		t.Fatalf("READDIRPLUS from 5: %+v, %d entries", rep, len(ds))
	}
	if n := h.srv.NodesAlive(); n != 6 {
		t.Errorf("NodesAlive = %d, want 6", n)
	}
	// READDIRPLUS whose reply the kernel refused undoes its counts.
	h.w.ReplyFailed()
	if n := h.srv.NodesAlive(); n != 3 {
		t.Errorf("NodesAlive = %d after ReplyFailed, want 3", n)
	}

	// Plain READDIR counts nothing.
	in = wire.ReadIn{Size: 4096}
	rep = h.send(wire.FUSE_READDIR, wire.FUSE_ROOT_ID, wire.AsBytes(&in))
	if rep.Error != 0 || rep.Len == 0 {
		t.Fatalf("READDIR: %+v", rep)
	}
	if n := h.srv.NodesAlive(); n != 3 {
		t.Errorf("NodesAlive = %d after READDIR, want 3", n)
	}
}

// panicDirFS panics in ReadDir after adding entries.
type panicDirFS struct{ *unitFS }

func (f panicDirFS) ReadDir(ctx context.Context, n ringfuse.Node, fh uint64, off uint64, w ringfuse.DirWriter) syscall.Errno {
	f.unitFS.ReadDir(ctx, n, fh, off, w)
	panic("panicDirFS: after the entries")
}

func TestPanicAnswersEIO(t *testing.T) {
	fsys := newUnitFS()
	fsys.add("a", 10, "")
	fsys.add("b", 11, "")
	pw := &panicWatch{tb: t}
	h := newHarness(t, panicDirFS{fsys}, &Options{ErrorLog: newLogger(pw)})
	for range 3 {
		if _, errno := h.lookup(wire.FUSE_ROOT_ID, "panic"); errno != syscall.EIO {
			t.Errorf("LOOKUP of a panicking name: %v, want EIO", errno)
		}
		if eo := h.mustLookup(wire.FUSE_ROOT_ID, "a"); h.srv.Lookups(eo.NodeID) == 0 {
			t.Errorf("LOOKUP after a panic did not count")
		}
	}
	alive := h.srv.NodesAlive()
	in := wire.ReadIn{Size: 4096}
	rep := h.send(wire.FUSE_READDIRPLUS, wire.FUSE_ROOT_ID, wire.AsBytes(&in))
	if rep.Error != -int32(syscall.EIO) || rep.Len != 0 {
		t.Errorf("READDIRPLUS that panicked: %+v, want EIO", rep)
	}
	if n := h.srv.NodesAlive(); n != alive {
		t.Errorf("NodesAlive = %d after a panicking READDIRPLUS, want %d: its lookups never reached the kernel", n, alive)
	}
	if n := pw.panics.Load(); n != 4 {
		t.Errorf("%d panics logged, want 4", n)
	}
	// The worker's context was released: the next request works.
	if rep := h.getattr(wire.FUSE_ROOT_ID); rep.Error != 0 || h.w.ctx.unique.Load() != 0 {
		t.Errorf("GETATTR after the panics: %+v", rep)
	}
}

// TestShardSizes: each shard fills whole cache lines, so that two CPUs
// working on neighbouring shards do not share one; a record is 40 bytes.
func TestShardSizes(t *testing.T) {
	const cacheLine = 64
	if s := unsafe.Sizeof(nodeShard{}); s%cacheLine != 0 {
		t.Errorf("nodeShard takes %d bytes, not a multiple of %d", s, cacheLine)
	}
	if s := unsafe.Sizeof(record{}); s != 40 {
		t.Errorf("record takes %d bytes, want 40", s)
	}
}

// tableNode is a filesystem node for the node-table tests.
type tableNode struct{ ino uint64 }

// newTable returns a table for the node-table tests, without a release
// goroutine unless minDrop says otherwise.
func newTable(t *testing.T, fsTable ringfuse.NodeTable) *nodeTable {
	tab := new(nodeTable)
	tab.init(&tableNode{1}, fsTable)
	tab.minDrop = 1 << 62
	tab.late = 0
	t.Cleanup(tab.memory().Close)
	return tab
}

// fillTable counts one lookup of n distinct inodes and returns their IDs.
func fillTable(t *testing.T, tab *nodeTable, n int) []uint64 {
	t.Helper()
	ids := make([]uint64, n)
	for i := range ids {
		ino := uint64(1000 + i)
		id, dup, err := tab.ref(&ringfuse.Entry{Key: ringfuse.InodeKey{Dev: 1, Ino: ino}, Node: &tableNode{ino}})
		if err != nil || dup {
			t.Fatalf("ref of inode %d: dup %v, %v", ino, dup, err)
		}
		ids[i] = id
	}
	return ids
}

// TestTableShrinks drains a large table down to a few survivors and checks
// that every shard's index shrank with it, that compact drops the side
// chunks no node uses, and that the survivors still resolve by ID and by
// key throughout.
func TestTableShrinks(t *testing.T) {
	const (
		n     = 64 * sideChunk // the side chunks of one shard and more
		every = 997            // keep one node in every
	)
	tab := newTable(t, nil)
	ids := fillTable(t, tab, n)
	chunks := 0
	for i := range tab.shards {
		chunks += len(tab.shards[i].side)
	}
	for i, id := range ids {
		if i%every == 0 {
			continue
		}
		if _, dropped, known := tab.forget(id, 1); !dropped || !known {
			t.Fatalf("forget of node %d: dropped %v, known %v", id, dropped, known)
		}
	}
	check := func(when string) {
		t.Helper()
		for i := range tab.shards {
			sh := &tab.shards[i]
			if sh.index.Len() != sh.recs.Len() {
				t.Fatalf("%s: shard %d indexes %d records of %d", when, i, sh.index.Len(), sh.recs.Len())
			}
		}
		for i, id := range ids {
			if i%every != 0 {
				if _, ok := tab.get(id); ok {
					t.Fatalf("%s: forgotten node %d resolves", when, id)
				}
				continue
			}
			fn, ok := tab.get(id)
			if !ok || fn.(*tableNode).ino != uint64(1000+i) {
				t.Fatalf("%s: node %d of inode %d resolves to %v, %v", when, id, 1000+i, fn, ok)
			}
			again, dup, _ := tab.ref(&ringfuse.Entry{Key: ringfuse.InodeKey{Dev: 1, Ino: uint64(1000 + i)}, Node: &tableNode{}})
			if again != id || !dup || tab.lookups(id) != 2 {
				t.Fatalf("%s: inode %d: lookup gave node %d (dup %v) with %d lookups, want node %d with 2", when, 1000+i, again, dup, tab.lookups(id), id)
			}
			tab.forget(id, 1)
		}
	}
	check("after the drain")
	if got, want := tab.live.Load(), int64((n+every-1)/every); got != want {
		t.Errorf("%d nodes live, want %d", got, want)
	}
	tab.compact()
	check("after compact")
	left := 0
	for i := range tab.shards {
		for _, c := range tab.shards[i].side {
			if c != nil {
				left++
			}
		}
	}
	// 66 survivors keep at most one chunk each.
	if left > (n+every-1)/every || left >= chunks {
		t.Errorf("%d side chunks kept of %d, for %d survivors", left, chunks, (n+every-1)/every)
	}
	for i, id := range ids {
		if i%every == 0 {
			tab.forget(id, 1)
		}
	}
	tab.compact()
	for i := range tab.shards {
		if sh := &tab.shards[i]; len(sh.side) != 0 || sh.index.Len() != 0 || sh.recs.Len() != 0 {
			t.Errorf("shard %d keeps %d side chunks, %d index entries, %d records with no node live",
				i, len(sh.side), sh.index.Len(), sh.recs.Len())
		}
	}
	if got := tab.live.Load(); got != 0 {
		t.Errorf("%d nodes live after forgetting all, want 0", got)
	}
}

// TestNodeIDs: IDs are never reused while a slot is, reserved IDs are never
// made, and IDs no record can have are refused without a fault.
func TestNodeIDs(t *testing.T) {
	tab := newTable(t, nil)
	seen := map[uint64]bool{}
	for range 50 {
		for _, id := range fillTable(t, tab, 200) {
			if seen[id] || id == wire.FUSE_ROOT_ID || id == pollHackID || id == 0 {
				t.Fatalf("node ID %d made twice or reserved", id)
			}
			seen[id] = true
			tab.forget(id, 1)
		}
	}
	for _, id := range []uint64{0, 2, 1 << 32, 1<<63 | 5, ^uint64(0), makeID(1, 1<<slotBits-1, 3), makeID(genMask, 0, 0)} {
		if _, ok := tab.get(id); ok || tab.lookups(id) != 0 {
			t.Errorf("ID %#x resolves", id)
		}
		if _, _, known := tab.forget(id, 1); known {
			t.Errorf("forget of ID %#x found a node", id)
		}
	}
}

// TestReleaseAfterStorm: a drop of at least minDrop nodes and half of the
// peak starts one release, which rebuilds the maps and resets the peak; a
// smaller drop starts none.
func TestReleaseAfterStorm(t *testing.T) {
	const (
		minDrop = 4000
		n       = 3 * minDrop
	)
	tab := newTable(t, nil)
	tab.minDrop = minDrop
	ids := fillTable(t, tab, n)
	if h := tab.high.Load(); h != n {
		t.Fatalf("high = %d after %d lookups", h, n)
	}
	// A third of the nodes: more than minDrop, less than half.
	for _, id := range ids[:n/3+1] {
		tab.forget(id, 1)
	}
	if tab.releasing.Load() || tab.releases.Load() != 0 {
		t.Fatalf("a release started after a drop from %d to %d nodes", n, tab.live.Load())
	}
	for _, id := range ids[n/3+1:] {
		tab.forget(id, 1)
	}
	deadline := time.Now().Add(releaseRounds * (releaseMaxWait + releaseInterval))
	for tab.releases.Load() == 0 || tab.releasing.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("no release within %v of a drop from %d nodes to %d", 2*(releaseMaxWait+releaseInterval), n, tab.live.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := tab.releases.Load(); r != 1 {
		t.Errorf("%d releases after one storm, want 1", r)
	}
	if h := tab.high.Load(); h != 0 {
		t.Errorf("high = %d after the release, want 0 (the live count)", h)
	}
	for i := range tab.shards {
		if sh := &tab.shards[i]; len(sh.side) != 0 {
			t.Errorf("shard %d keeps %d side chunks after the release", i, len(sh.side))
		}
	}
	// The table works as before.
	ids = fillTable(t, tab, 10)
	if tab.live.Load() != 10 || tab.lookups(ids[3]) != 1 {
		t.Errorf("after the release: %d live, %d lookups of a new node", tab.live.Load(), tab.lookups(ids[3]))
	}
}

// TestPollHackBatchForget: the kernel forgets the poll-hack node like any
// other, in a BATCH_FORGET (or over the ring) as well as in a FORGET; that
// is not a forget of an unknown node, and it drops nothing else.
func TestPollHackBatchForget(t *testing.T) {
	fsys := newUnitFS()
	fsys.add("a", 10, "")
	h := newHarness(t, fsys, nil)
	eo := h.mustLookup(wire.FUSE_ROOT_ID, PollHackName)
	if eo.NodeID != pollHackID {
		t.Fatalf("LOOKUP of %s gave node %d, want %d", PollHackName, eo.NodeID, uint64(pollHackID))
	}
	id := h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID
	h.batchForget(wire.ForgetOne{NodeID: pollHackID, Nlookup: 1}, wire.ForgetOne{NodeID: id, Nlookup: 1})
	h.forget(pollHackID, 1)
	h.srv.forgetNode(pollHackID, 1) // as the ring channel's ApplyForgets does
	st := h.srv.Stats()
	if st.ForgetUnknown != 0 {
		t.Errorf("ForgetUnknown = %d after forgets of the poll-hack node, want 0", st.ForgetUnknown)
	}
	if st.NodesAlive != 0 || fsys.nforgets.Load() != 1 {
		t.Errorf("NodesAlive %d, Forget calls %d; want 0 and 1", st.NodesAlive, fsys.nforgets.Load())
	}
}

// TestReleaseAfterChurn: nodes that come and go in small waves start a
// release too, once minDrop of them were dropped and the live count is at
// most half its peak.
func TestReleaseAfterChurn(t *testing.T) {
	const (
		minDrop = 4000
		wave    = 500
	)
	tab := newTable(t, nil)
	tab.minDrop = minDrop
	for range minDrop/wave - 1 {
		for _, id := range fillTable(t, tab, wave) {
			tab.forget(id, 1)
		}
	}
	if tab.releasing.Load() || tab.releases.Load() != 0 {
		t.Fatalf("a release started after %d nodes were dropped", minDrop-wave)
	}
	for _, id := range fillTable(t, tab, wave) {
		tab.forget(id, 1)
	}
	deadline := time.Now().Add(releaseRounds * (releaseMaxWait + releaseInterval))
	for tab.releases.Load() == 0 || tab.releasing.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("no release within %v of %d nodes dropped in waves of %d", 2*(releaseMaxWait+releaseInterval), minDrop, wave)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := tab.dropped(tab.live.Load()); d != 0 {
		t.Errorf("%d nodes dropped since the release, want 0", d)
	}
}
