package server

import (
	"context"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// allocFS is a filesystem whose methods allocate nothing, so that an
// allocation counted while serving it belongs to the server. Its nodes are
// pointers to package-level values, which an interface holds without
// allocating.
type allocFS struct{}

type (
	allocDir  struct{ attr wire.Attr }
	allocFile struct {
		attr wire.Attr
		data [64 << 10]byte
	}
)

var (
	allocRoot = allocDir{attr: wire.Attr{Ino: 1, Mode: syscall.S_IFDIR | 0o755, Nlink: 2}}
	allocData = allocFile{attr: wire.Attr{Ino: 2, Mode: syscall.S_IFREG | 0o644, Nlink: 1, Size: 64 << 10}}
)

func (allocFS) Root() ringfuse.Node { return &allocRoot }

// Lookup finds "file", and "file0" to "file9", ten more names of other
// inodes that share its data.
func (allocFS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	switch {
	case name == "file":
	case len(name) == 5 && name[:4] == "file" && name[4] >= '0' && name[4] <= '9':
		out.Key = ringfuse.InodeKey{Ino: 100 + uint64(name[4]-'0')}
	default:
		return syscall.ENOENT
	}
	out.Node = &allocData
	out.Attr = allocData.attr
	return 0
}

func (allocFS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	switch n := n.(type) {
	case *allocDir:
		out.Attr = n.attr
	case *allocFile:
		out.Attr = n.attr
	}
	return 0
}

func (allocFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	f, ok := n.(*allocFile)
	if !ok {
		return 0, syscall.EISDIR
	}
	if off >= int64(len(f.data)) {
		return 0, 0
	}
	return copy(buf, f.data[off:]), 0
}

func (allocFS) Write(ctx context.Context, n ringfuse.Node, fh uint64, off int64, data []byte, flags uint32) (int, syscall.Errno) {
	return len(data), 0
}

// hotMessages returns ready-made GETATTR, READ, WRITE and LOOKUP messages
// for the file of allocFS, whose node ID is id.
func hotMessages(id uint64) map[string][]byte {
	var gin wire.GetattrIn
	rin := wire.ReadIn{Fh: 1, Offset: 4096, Size: 4096}
	win := wire.WriteIn{Fh: 1, Offset: 4096, Size: 4096}
	return map[string][]byte{
		"GETATTR": reqMsg(nil, wire.FUSE_GETATTR, 100, id, wire.AsBytes(&gin)),
		"READ4k":  reqMsg(nil, wire.FUSE_READ, 101, id, wire.AsBytes(&rin)),
		"WRITE4k": reqMsg(nil, wire.FUSE_WRITE, 102, id, wire.AsBytes(&win), make([]byte, 4096)),
		"LOOKUP":  reqMsg(nil, wire.FUSE_LOOKUP, 103, wire.FUSE_ROOT_ID, wire.CString("file")),
	}
}

// wantLen is the reply length of each hot message.
var wantLen = map[string]int{
	"GETATTR": wire.SizeofAttrOut,
	"READ4k":  4096,
	"WRITE4k": wire.SizeofWriteOut,
	"LOOKUP":  wire.SizeofEntryOut,
}

func TestHotPathAllocs(t *testing.T) {
	h := newHarness(t, allocFS{}, nil)
	id := h.mustLookup(wire.FUSE_ROOT_ID, "file").NodeID
	msgs := hotMessages(id)
	for _, c := range []struct {
		name string
		max  float64
	}{
		{"GETATTR", 0},
		{"READ4k", 0},
		{"WRITE4k", 0},
		// LOOKUP allocates once: string(name) for Lookuper.Lookup, whose
		// name parameter escapes through the interface call. Counting a
		// lookup of a node the server already holds allocates nothing.
		{"LOOKUP", 1},
	} {
		msg := msgs[c.name]
		var bad Reply
		allocs := testing.AllocsPerRun(1000, func() {
			if rep := h.w.HandleDev(msg, h.out); rep.Error != 0 || rep.Len != wantLen[c.name] {
				bad = rep
			}
		})
		if bad != (Reply{}) {
			t.Errorf("%s: reply %+v", c.name, bad)
		}
		if allocs > c.max {
			t.Errorf("%s: %.1f allocations per request, want at most %.0f", c.name, allocs, c.max)
		}
		t.Logf("%s: %.1f allocations per request", c.name, allocs)
	}
	// GETATTR on the root, which is not in the node table.
	var gin wire.GetattrIn
	root := reqMsg(nil, wire.FUSE_GETATTR, 200, wire.FUSE_ROOT_ID, wire.AsBytes(&gin))
	if allocs := testing.AllocsPerRun(1000, func() { h.w.HandleDev(root, h.out) }); allocs != 0 {
		t.Errorf("GETATTR of the root: %.1f allocations per request", allocs)
	}
	// Forgetting what the LOOKUPs counted allocates nothing either.
	forget := reqMsg(nil, wire.FUSE_FORGET, 201, id, wire.AsBytes(&wire.ForgetIn{Nlookup: 1}))
	if allocs := testing.AllocsPerRun(1000, func() { h.w.HandleDev(forget, h.out) }); allocs != 0 {
		t.Errorf("FORGET: %.1f allocations per request", allocs)
	}
}
