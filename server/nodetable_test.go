package server

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// numberedFS is unitFS with a NodeTable: it numbers its nodes, counts the
// server's references to each, and frees and reuses a number once the
// server has given every reference back, as fs/passthrough does.
type numberedFS struct {
	*unitFS
	mu    sync.Mutex
	nodes []*unitNode // by number-1; nil when free
	refs  []int
	byF   map[*unitFile]uint64
	bad   []string // contract violations seen
}

func newNumberedFS() *numberedFS {
	return &numberedFS{unitFS: newUnitFS(), byF: map[*unitFile]uint64{}}
}

func (f *numberedFS) NodeNumber(n ringfuse.Node) uint64 {
	un, _ := n.(*unitNode)
	f.mu.Lock()
	defer f.mu.Unlock()
	num := f.byF[un.f]
	if num == 0 || f.nodes[num-1] != un {
		f.bad = append(f.bad, fmt.Sprintf("NodeNumber of a node without references (%s)", un.f.name))
	}
	return num
}

func (f *numberedFS) NodeAt(i uint64) ringfuse.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i == 0 || i > uint64(len(f.nodes)) || f.nodes[i-1] == nil {
		f.bad = append(f.bad, fmt.Sprintf("NodeAt(%d) of a free number", i))
		return nil
	}
	return f.nodes[i-1]
}

func (f *numberedFS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	if errno := f.unitFS.Lookup(ctx, parent, name, out); errno != 0 {
		return errno
	}
	uf := out.Node.(*unitNode).f
	f.mu.Lock()
	defer f.mu.Unlock()
	num := f.byF[uf]
	if num == 0 {
		num = uint64(len(f.nodes) + 1)
		for i, n := range f.nodes {
			if n == nil { // reuse the lowest free number
				num = uint64(i + 1)
				break
			}
		}
		if num > uint64(len(f.nodes)) {
			f.nodes = append(f.nodes, nil)
			f.refs = append(f.refs, 0)
		}
		f.nodes[num-1] = out.Node.(*unitNode)
		f.byF[uf] = num
	}
	f.refs[num-1]++
	out.Node = f.nodes[num-1]
	return 0
}

func (f *numberedFS) Forget(n ringfuse.Node) {
	f.unitFS.Forget(n)
	un := n.(*unitNode)
	f.mu.Lock()
	defer f.mu.Unlock()
	num := f.byF[un.f]
	if num == 0 || f.refs[num-1] == 0 {
		f.bad = append(f.bad, fmt.Sprintf("Forget of %s without references", un.f.name))
		return
	}
	if f.refs[num-1]--; f.refs[num-1] == 0 {
		f.nodes[num-1] = nil
		delete(f.byF, un.f)
	}
}

// held returns the references the server holds, and any violations.
func (f *numberedFS) held() (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.refs {
		n += r
	}
	return n, f.bad
}

// TestNodeTableRefs: the server gives back every reference a NodeTable
// filesystem hands it: at once for a key it already has, and when the
// kernel forgets the node otherwise.
func TestNodeTableRefs(t *testing.T) {
	fsys := newNumberedFS()
	fsys.add("a", 10, "")
	fsys.add("link-to-a", 10, "")
	fsys.add("b", 11, "")
	h := newHarness(t, fsys, nil)
	if h.srv.ops.table == nil {
		t.Fatal("the server did not take the filesystem's NodeTable")
	}
	a := h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID
	if a2 := h.mustLookup(wire.FUSE_ROOT_ID, "link-to-a").NodeID; a2 != a {
		t.Fatalf("a hard link got node %d, the file %d", a2, a)
	}
	if refs, _ := fsys.held(); refs != 1 {
		t.Fatalf("%d references held after two lookups of one key, want 1", refs)
	}
	b := h.mustLookup(wire.FUSE_ROOT_ID, "b").NodeID
	if rep := h.getattr(b); rep.Error != 0 {
		t.Fatalf("GETATTR through the node number: %+v", rep)
	}
	h.forget(a, 1)
	if refs, _ := fsys.held(); refs != 2 {
		t.Fatalf("%d references held while the kernel holds a and b, want 2", refs)
	}
	h.batchForget(wire.ForgetOne{NodeID: a, Nlookup: 1}, wire.ForgetOne{NodeID: b, Nlookup: 1})
	if refs, bad := fsys.held(); refs != 0 || len(bad) != 0 {
		t.Fatalf("%d references held after the kernel forgot all; violations %v", refs, bad)
	}
	if rep := h.getattr(a); rep.Error != -int32(syscall.ESTALE) {
		t.Errorf("GETATTR of a forgotten node: %+v, want ESTALE", rep)
	}
	// Number 1 is reused for b now; a's old ID must not reach it.
	b2 := h.mustLookup(wire.FUSE_ROOT_ID, "b").NodeID
	if b2 == a || b2 == b {
		t.Errorf("a new node got an old ID %d", b2)
	}
	if rep := h.getattr(a); rep.Error != -int32(syscall.ESTALE) {
		t.Errorf("GETATTR of a forgotten node after its number was reused: %+v", rep)
	}
	h.forget(b2, 1)
}

// TestNodeTableConcurrent: workers look up and forget overlapping keys of
// a NodeTable filesystem; every reference comes back, and the server never
// asks for a number the filesystem has freed.
func TestNodeTableConcurrent(t *testing.T) {
	const (
		workers = 6
		keys    = 10
		rounds  = 2000
	)
	fsys := newNumberedFS()
	for i := range keys {
		fsys.add(fmt.Sprint("f", i), uint64(100+i), "")
	}
	h := newHarness(t, fsys, nil)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wh := h.fork(fmt.Sprint("w", g))
			for r := range rounds {
				name := fmt.Sprint("f", (g+r)%keys)
				eo, errno := wh.lookup(wire.FUSE_ROOT_ID, name)
				if errno != 0 {
					t.Errorf("lookup %s: %v", name, errno)
					return
				}
				if rep := wh.getattr(eo.NodeID); rep.Error != 0 {
					t.Errorf("GETATTR of %s (node %d) while the kernel holds it: %+v", name, eo.NodeID, rep)
					return
				}
				wh.forget(eo.NodeID, 1)
			}
		}()
	}
	wg.Wait()
	if refs, bad := fsys.held(); refs != 0 || len(bad) != 0 || h.srv.NodesAlive() != 0 {
		t.Fatalf("%d references held, %d nodes alive at the end; violations %v", refs, h.srv.NodesAlive(), bad)
	}
}

// TestNodeTableDirEntries: a READDIRPLUS entry gives its reference to the
// kernel node it makes or back at once, and an entry added without one
// ("." and "..", or plain READDIR) gives it back; a full reply keeps it
// with the filesystem.
func TestNodeTableDirEntries(t *testing.T) {
	fsys := newNumberedFS()
	fsys.add("a", 10, "")
	h := newHarness(t, fsys, nil)
	entry := func() *ringfuse.Entry {
		var e ringfuse.Entry
		if errno := fsys.Lookup(context.Background(), fsys.Root(), "a", &e); errno != 0 {
			t.Fatal(errno)
		}
		return &e
	}
	w := h.srv.NewWorker("dir")
	d := &w.dw
	d.reset(make([]byte, 4096), true)
	if !d.AddEntry("a", entry(), 1) || !d.AddEntry("a", entry(), 2) || !d.AddEntry(".", entry(), 3) {
		t.Fatal("entries did not fit")
	}
	if refs, bad := fsys.held(); refs != 1 || len(bad) != 0 {
		t.Fatalf("%d references held after two entries of one node and a \".\", want 1; %v", refs, bad)
	}
	d.reset(make([]byte, 4096), false)
	if !d.AddEntry("a", entry(), 1) {
		t.Fatal("entry did not fit")
	}
	if refs, _ := fsys.held(); refs != 1 {
		t.Fatalf("%d references held after a READDIR entry, want 1", refs)
	}
	d.reset(make([]byte, 8), true)
	e := entry()
	if d.AddEntry("a", e, 1) {
		t.Fatal("an entry fit in 8 bytes")
	}
	if refs, _ := fsys.held(); refs != 2 {
		t.Fatalf("%d references held after an entry that did not fit, want 2 (one is the caller's)", refs)
	}
	fsys.Forget(e.Node)
	id := w.handout.counted[0]
	h.forget(id, 2)
	if refs, bad := fsys.held(); refs != 0 || len(bad) != 0 {
		t.Fatalf("%d references held at the end; %v", refs, bad)
	}
}
