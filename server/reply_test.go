package server

import (
	"bytes"
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// replyFS adds to unitFS what the encoding tests need: timeouts and a
// generation chosen by the filesystem, Open, Create, xattrs, and an
// out-of-range errno.
type replyFS struct {
	*unitFS
	xattrs map[string]string
}

func newReplyFS() *replyFS {
	f := &replyFS{unitFS: newUnitFS(), xattrs: map[string]string{"user.a": "value-a", "user.bb": "value-bb"}}
	f.add("file", 10, "0123456789")
	return f
}

func (f *replyFS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	switch name {
	case "timed":
		f.entry(f.files[0], out)
		out.Generation = 7
		out.EntryTimeout = 1500 * time.Millisecond
		out.AttrTimeout = 2*time.Second + 250*time.Nanosecond
		return 0
	case "huge-errno":
		return 600 // beyond what the kernel accepts
	}
	return f.unitFS.Lookup(ctx, parent, name, out)
}

func (f *replyFS) Open(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	out.Fh = 42
	out.Flags = wire.FOPEN_KEEP_CACHE
	out.PassthroughFd = 0 // ignored: the server was not started with Passthrough
	return 0
}

func (f *replyFS) Create(ctx context.Context, parent ringfuse.Node, name string, flags, mode, umask uint32, out *ringfuse.Entry, open *ringfuse.OpenOut) syscall.Errno {
	uf := &unitFile{name: name, attr: wire.Attr{Ino: 30, Mode: mode, Nlink: 1}}
	f.entry(uf, out)
	open.Fh = 43
	open.Flags = wire.FOPEN_DIRECT_IO
	return 0
}

func (f *replyFS) Write(ctx context.Context, n ringfuse.Node, fh uint64, off int64, data []byte, flags uint32) (int, syscall.Errno) {
	return min(len(data), 3000), 0 // a short write
}

func (f *replyFS) SetXattr(ctx context.Context, n ringfuse.Node, name string, value []byte, flags uint32) syscall.Errno {
	f.xattrs[name] = string(value)
	return 0
}

// sized copies value into buf as Xattrer documents.
func sized(buf []byte, value string) (int, syscall.Errno) {
	if len(buf) == 0 {
		return len(value), 0
	}
	if len(buf) < len(value) {
		return 0, syscall.ERANGE
	}
	return copy(buf, value), 0
}

func (f *replyFS) GetXattr(ctx context.Context, n ringfuse.Node, name string, buf []byte) (int, syscall.Errno) {
	v, ok := f.xattrs[name]
	if !ok {
		return 0, syscall.ENODATA
	}
	return sized(buf, v)
}

func (f *replyFS) ListXattr(ctx context.Context, n ringfuse.Node, buf []byte) (int, syscall.Errno) {
	return sized(buf, "user.a\x00user.bb\x00")
}

func (f *replyFS) RemoveXattr(ctx context.Context, n ringfuse.Node, name string) syscall.Errno {
	delete(f.xattrs, name)
	return 0
}

var (
	_ ringfuse.Opener  = (*replyFS)(nil)
	_ ringfuse.Creater = (*replyFS)(nil)
	_ ringfuse.Xattrer = (*replyFS)(nil)
)

func TestEntryOut(t *testing.T) {
	fsys := newReplyFS()
	file := fsys.files[0]
	h := newHarness(t, fsys, &Options{EntryTimeout: 3*time.Second + 7*time.Millisecond, AttrTimeout: -1})

	// The server's defaults.
	eo := h.mustLookup(wire.FUSE_ROOT_ID, "file")
	if eo.NodeID < 2 || eo.Generation != 0 || eo.Attr != file.attr {
		t.Errorf("entry %+v, want node >= 2, generation 0, attr %+v", eo, file.attr)
	}
	if eo.EntryValid != 3 || eo.EntryValidNsec != 7_000_000 {
		t.Errorf("entry valid %d s %d ns, want 3 s 7000000 ns", eo.EntryValid, eo.EntryValidNsec)
	}
	if eo.AttrValid != 0 || eo.AttrValidNsec != 0 {
		t.Errorf("attr valid %d s %d ns, want 0 (negative AttrTimeout: no caching)", eo.AttrValid, eo.AttrValidNsec)
	}

	// The filesystem's own.
	timed := h.mustLookup(wire.FUSE_ROOT_ID, "timed")
	if timed.NodeID != eo.NodeID || timed.Generation != 7 || timed.Attr != file.attr {
		t.Errorf("entry %+v, want node %d, generation 7", timed, eo.NodeID)
	}
	if timed.EntryValid != 1 || timed.EntryValidNsec != 500_000_000 {
		t.Errorf("entry valid %d s %d ns, want 1 s 500000000 ns", timed.EntryValid, timed.EntryValidNsec)
	}
	if timed.AttrValid != 2 || timed.AttrValidNsec != 250 {
		t.Errorf("attr valid %d s %d ns, want 2 s 250 ns", timed.AttrValid, timed.AttrValidNsec)
	}

	if _, errno := h.lookup(wire.FUSE_ROOT_ID, "missing"); errno != syscall.ENOENT {
		t.Errorf("LOOKUP of a missing name: %v, want ENOENT", errno)
	}
	if _, errno := h.lookup(wire.FUSE_ROOT_ID, "huge-errno"); errno != syscall.EIO {
		t.Errorf("errno 600 from the filesystem became %v, want EIO", errno)
	}
	if cs := h.channel(); cs.Errors != 2 {
		t.Errorf("Errors = %d, want 2", cs.Errors)
	}
}

func TestSplitDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		sec  uint64
		nsec uint32
	}{
		{0, 0, 0},
		{-time.Second, 0, 0},
		{time.Nanosecond, 0, 1},
		{999_999_999, 0, 999_999_999},
		{time.Second, 1, 0},
		{90*time.Minute + 1, 5400, 1},
		{1<<63 - 1, 9223372036, 854775807},
	} {
		if sec, nsec := splitDuration(c.d); sec != c.sec || nsec != c.nsec {
			t.Errorf("splitDuration(%v) = %d s %d ns, want %d s %d ns", c.d, sec, nsec, c.sec, c.nsec)
		}
	}
}

func TestAttrOut(t *testing.T) {
	fsys := newReplyFS()
	h := newHarness(t, fsys, &Options{AttrTimeout: 2500 * time.Millisecond})
	id := h.mustLookup(wire.FUSE_ROOT_ID, "file").NodeID
	rep := h.getattr(id)
	if rep.Error != 0 || rep.Len != wire.SizeofAttrOut {
		t.Fatalf("GETATTR: %+v, want %d bytes", rep, wire.SizeofAttrOut)
	}
	ao := wire.View[wire.AttrOut](h.out)
	if ao.AttrValid != 2 || ao.AttrValidNsec != 500_000_000 || ao.Attr != fsys.files[0].attr {
		t.Errorf("attr_out %+v", ao)
	}
	if rep := h.getattr(12345); rep.Error != -int32(syscall.ESTALE) {
		t.Errorf("GETATTR of an unknown node: %+v, want ESTALE", rep)
	}
}

func TestOpenOut(t *testing.T) {
	h := newHarness(t, newReplyFS(), nil)
	id := h.mustLookup(wire.FUSE_ROOT_ID, "file").NodeID
	in := wire.OpenIn{Flags: syscall.O_RDONLY}
	rep := h.send(wire.FUSE_OPEN, id, wire.AsBytes(&in))
	if rep.Error != 0 || rep.Len != wire.SizeofOpenOut {
		t.Fatalf("OPEN: %+v, want %d bytes", rep, wire.SizeofOpenOut)
	}
	if oo := *wire.View[wire.OpenOut](h.out); oo.Fh != 42 || oo.OpenFlags != wire.FOPEN_KEEP_CACHE || oo.BackingID != 0 {
		t.Errorf("open_out %+v, want fh 42, FOPEN_KEEP_CACHE and no backing file", oo)
	}

	// Without an Opener, OPEN succeeds with handle 0 (OPENDIR here).
	rep = h.send(wire.FUSE_OPENDIR, wire.FUSE_ROOT_ID, wire.AsBytes(&in))
	if oo := *wire.View[wire.OpenOut](h.out); rep.Error != 0 || rep.Len != wire.SizeofOpenOut || oo != (wire.OpenOut{}) {
		t.Errorf("OPENDIR: %+v, open_out %+v", rep, oo)
	}

	// CREATE answers fuse_entry_out followed by fuse_open_out.
	cin := wire.CreateIn{Flags: syscall.O_CREAT | syscall.O_WRONLY, Mode: syscall.S_IFREG | 0o600}
	rep = h.send(wire.FUSE_CREATE, wire.FUSE_ROOT_ID, wire.AsBytes(&cin), wire.CString("new"))
	if rep.Error != 0 || rep.Len != wire.SizeofEntryOut+wire.SizeofOpenOut {
		t.Fatalf("CREATE: %+v, want %d bytes", rep, wire.SizeofEntryOut+wire.SizeofOpenOut)
	}
	eo := wire.View[wire.EntryOut](h.out)
	oo := wire.View[wire.OpenOut](h.out[wire.SizeofEntryOut:])
	if eo.Attr.Ino != 30 || eo.Attr.Mode != syscall.S_IFREG|0o600 || h.srv.Lookups(eo.NodeID) != 1 {
		t.Errorf("CREATE entry %+v", eo)
	}
	if oo.Fh != 43 || oo.OpenFlags != wire.FOPEN_DIRECT_IO {
		t.Errorf("CREATE open_out %+v", oo)
	}
}

func TestStatfsOut(t *testing.T) {
	h := newHarness(t, newUnitFS(), nil)
	for i := range h.out[:wire.SizeofStatfsOut] {
		h.out[i] = 0xff // the reply must not leave stale bytes
	}
	rep := h.send(wire.FUSE_STATFS, wire.FUSE_ROOT_ID)
	if rep.Error != 0 || rep.Len != wire.SizeofStatfsOut {
		t.Fatalf("STATFS: %+v, want %d bytes", rep, wire.SizeofStatfsOut)
	}
	want := wire.StatfsOut{St: wire.Kstatfs{Namelen: 255, Bsize: 512}}
	if got := *wire.View[wire.StatfsOut](h.out); got != want {
		t.Errorf("default statfs_out %+v, want %+v", got, want)
	}
}

type statfsFS struct{ *unitFS }

func (statfsFS) StatFS(ctx context.Context, n ringfuse.Node, out *ringfuse.StatFS) syscall.Errno {
	*out = ringfuse.StatFS{Blocks: 100, Bfree: 50, Bavail: 40, Files: 10, Ffree: 5, Bsize: 4096, Namelen: 1024, Frsize: 4096}
	return 0
}

func TestStatfsOutFromFS(t *testing.T) {
	h := newHarness(t, statfsFS{newUnitFS()}, nil)
	rep := h.send(wire.FUSE_STATFS, wire.FUSE_ROOT_ID)
	want := wire.Kstatfs{Blocks: 100, Bfree: 50, Bavail: 40, Files: 10, Ffree: 5, Bsize: 4096, Namelen: 1024, Frsize: 4096}
	if got := wire.View[wire.StatfsOut](h.out).St; rep.Error != 0 || rep.Len != wire.SizeofStatfsOut || got != want {
		t.Errorf("STATFS: %+v, %+v", rep, got)
	}
}

func TestXattrReplies(t *testing.T) {
	h := newHarness(t, newReplyFS(), nil)
	id := h.mustLookup(wire.FUSE_ROOT_ID, "file").NodeID
	getxattr := func(name string, size uint32) Reply {
		in := wire.GetxattrIn{Size: size}
		return h.send(wire.FUSE_GETXATTR, id, wire.AsBytes(&in), wire.CString(name))
	}
	listxattr := func(size uint32) Reply {
		in := wire.GetxattrIn{Size: size}
		return h.send(wire.FUSE_LISTXATTR, id, wire.AsBytes(&in))
	}

	// Size query: fuse_getxattr_out carries the size.
	rep := getxattr("user.bb", 0)
	if rep.Error != 0 || rep.Len != wire.SizeofGetxattrOut || wire.View[wire.GetxattrOut](h.out).Size != 8 {
		t.Errorf("GETXATTR size query: %+v, size %d; want 8", rep, wire.View[wire.GetxattrOut](h.out).Size)
	}
	rep = getxattr("user.bb", 64)
	if rep.Error != 0 || string(h.payload(rep)) != "value-bb" {
		t.Errorf("GETXATTR: %+v %q", rep, h.payload(rep))
	}
	if rep := getxattr("user.bb", 7); rep.Error != -int32(syscall.ERANGE) || rep.Len != 0 {
		t.Errorf("GETXATTR into 7 bytes: %+v, want ERANGE", rep)
	}
	if rep := getxattr("user.none", 0); rep.Error != -int32(syscall.ENODATA) {
		t.Errorf("GETXATTR of a missing name: %+v, want ENODATA", rep)
	}

	const list = "user.a\x00user.bb\x00"
	if rep := listxattr(0); rep.Error != 0 || rep.Len != wire.SizeofGetxattrOut || wire.View[wire.GetxattrOut](h.out).Size != uint32(len(list)) {
		t.Errorf("LISTXATTR size query: %+v", rep)
	}
	if rep := listxattr(100); rep.Error != 0 || string(h.payload(rep)) != list {
		t.Errorf("LISTXATTR: %+v %q", rep, h.payload(rep))
	}
	if rep := listxattr(3); rep.Error != -int32(syscall.ERANGE) {
		t.Errorf("LISTXATTR into 3 bytes: %+v, want ERANGE", rep)
	}

	// SETXATTR (compat 8-byte fuse_setxattr_in: FUSE_SETXATTR_EXT is not
	// negotiated) and REMOVEXATTR.
	sin := wire.SetxattrIn{Size: 3}
	arg := wire.AsBytes(&sin)[:wire.FUSE_COMPAT_SETXATTR_IN_SIZE]
	if rep := h.send(wire.FUSE_SETXATTR, id, arg, wire.CString("user.c"), []byte("xyz")); rep.Error != 0 {
		t.Errorf("SETXATTR: %+v", rep)
	}
	if rep := getxattr("user.c", 16); string(h.payload(rep)) != "xyz" {
		t.Errorf("GETXATTR after SETXATTR: %q", h.payload(rep))
	}
	if rep := h.send(wire.FUSE_REMOVEXATTR, id, wire.CString("user.c")); rep.Error != 0 {
		t.Errorf("REMOVEXATTR: %+v", rep)
	}
	if rep := getxattr("user.c", 16); rep.Error != -int32(syscall.ENODATA) {
		t.Errorf("GETXATTR after REMOVEXATTR: %+v", rep)
	}

	// Without an Xattrer: ENOSYS, which the kernel remembers.
	h2 := newHarness(t, newUnitFS(), nil)
	in := wire.GetxattrIn{Size: 0}
	if rep := h2.send(wire.FUSE_GETXATTR, wire.FUSE_ROOT_ID, wire.AsBytes(&in), wire.CString("user.a")); rep.Error != -int32(syscall.ENOSYS) {
		t.Errorf("GETXATTR without Xattrer: %+v, want ENOSYS", rep)
	}
}

// dirent is one decoded READDIR entry.
type dirent struct {
	wire.Dirent
	name string
}

func decodeDirents(t *testing.T, b []byte) []dirent {
	t.Helper()
	var ds []dirent
	for len(b) > 0 {
		d := wire.View[wire.Dirent](b)
		if d == nil {
			t.Fatalf("%d stray bytes after the last entry", len(b))
		}
		size := wire.DirentSize(int(d.Namelen))
		if size%8 != 0 || size > len(b) {
			t.Fatalf("entry of %d bytes, %d left", size, len(b))
		}
		name := string(b[wire.SizeofDirent : wire.SizeofDirent+int(d.Namelen)])
		if pad := b[wire.SizeofDirent+len(name) : size]; !bytes.Equal(pad, make([]byte, len(pad))) {
			t.Fatalf("entry %q: padding %x not zeroed", name, pad)
		}
		ds = append(ds, dirent{*d, name})
		b = b[size:]
	}
	return ds
}

func TestReaddirEntries(t *testing.T) {
	fsys := newUnitFS()
	names := []string{"a", "1234567", "12345678", "a-rather-longer-name", strings.Repeat("n", 255)}
	for i, name := range names {
		fsys.add(name, uint64(50+i), "")
	}
	fsys.files[1].attr.Mode = syscall.S_IFLNK | 0o777
	fsys.files[2].attr.Mode = syscall.S_IFDIR | 0o755
	h := newHarness(t, fsys, nil)
	for i := range h.out[:4096] {
		h.out[i] = 0xee // stale bytes the padding must not leak
	}
	in := wire.ReadIn{Size: 4096}
	rep := h.send(wire.FUSE_READDIR, wire.FUSE_ROOT_ID, wire.AsBytes(&in))
	if rep.Error != 0 {
		t.Fatalf("READDIR: %+v", rep)
	}
	ds := decodeDirents(t, h.payload(rep))
	want := []dirent{
		{wire.Dirent{Ino: 1, Off: 1, Type: syscall.DT_DIR}, "."},
		{wire.Dirent{Ino: 1, Off: 2, Type: syscall.DT_DIR}, ".."},
		{wire.Dirent{Ino: 50, Off: 3, Type: syscall.DT_REG}, names[0]},
		{wire.Dirent{Ino: 51, Off: 4, Type: syscall.DT_LNK}, names[1]},
		{wire.Dirent{Ino: 52, Off: 5, Type: syscall.DT_DIR}, names[2]},
		{wire.Dirent{Ino: 53, Off: 6, Type: syscall.DT_REG}, names[3]},
		{wire.Dirent{Ino: 54, Off: 7, Type: syscall.DT_REG}, names[4]},
	}
	if len(ds) != len(want) {
		t.Fatalf("%d entries, want %d", len(ds), len(want))
	}
	for i := range want {
		want[i].Namelen = uint32(len(want[i].name))
		if ds[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, ds[i], want[i])
		}
	}

	// A reply too small for the next entry ends the listing there; the
	// kernel resumes from the last cookie.
	in = wire.ReadIn{Offset: 2, Size: uint32(wire.DirentSize(1) + wire.DirentSize(7) + 7)}
	rep = h.send(wire.FUSE_READDIR, wire.FUSE_ROOT_ID, wire.AsBytes(&in))
	ds = decodeDirents(t, h.payload(rep))
	if rep.Error != 0 || len(ds) != 2 || ds[0].name != "a" || ds[1].Off != 4 {
		t.Errorf("READDIR of %d bytes from 2: %+v, %+v", in.Size, rep, ds)
	}
	// Past the end: an empty reply.
	in = wire.ReadIn{Offset: 7, Size: 4096}
	if rep := h.send(wire.FUSE_READDIR, wire.FUSE_ROOT_ID, wire.AsBytes(&in)); rep.Error != 0 || rep.Len != 0 {
		t.Errorf("READDIR at the end: %+v", rep)
	}
}

func TestReadReply(t *testing.T) {
	fsys := newReplyFS()
	h := newHarness(t, fsys, nil)
	id := h.mustLookup(wire.FUSE_ROOT_ID, "file").NodeID
	for _, c := range []struct {
		off  uint64
		size uint32
		want string
	}{
		{0, 4096, "0123456789"}, // fewer bytes than asked for
		{3, 4, "3456"},
		{9, 100, "9"},
		{10, 100, ""}, // end of file
		{1000, 100, ""},
	} {
		rep := h.read(id, 0, c.off, c.size)
		if rep.Error != 0 || string(h.payload(rep)) != c.want {
			t.Errorf("READ %d at %d: %+v %q, want %q", c.size, c.off, rep, h.payload(rep), c.want)
		}
	}
	// A READ larger than the reply buffer is cut to the buffer.
	small := h.out[:5]
	h.msg = reqMsg(h.msg, wire.FUSE_READ, h.next(), id, wire.AsBytes(&wire.ReadIn{Size: 4096}))
	if rep := h.w.HandleDev(h.msg, small); rep.Error != 0 || rep.Len != 5 {
		t.Errorf("READ into a 5-byte buffer: %+v", rep)
	}
}

func TestWriteReply(t *testing.T) {
	h := newHarness(t, newReplyFS(), nil)
	id := h.mustLookup(wire.FUSE_ROOT_ID, "file").NodeID
	for _, n := range []int{0, 1, 2999, 3000, 5000} {
		data := bytes.Repeat([]byte{'w'}, n)
		in := wire.WriteIn{Fh: 42, Offset: 100, Size: uint32(n)}
		rep := h.send(wire.FUSE_WRITE, id, wire.AsBytes(&in), data)
		if rep.Error != 0 || rep.Len != wire.SizeofWriteOut {
			t.Errorf("WRITE %d: %+v, want %d bytes", n, rep, wire.SizeofWriteOut)
			continue
		}
		if got := *wire.View[wire.WriteOut](h.out); got != (wire.WriteOut{Size: uint32(min(n, 3000))}) {
			t.Errorf("WRITE %d: write_out %+v, want size %d", n, got, min(n, 3000))
		}
	}
}
