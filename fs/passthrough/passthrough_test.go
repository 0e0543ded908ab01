//go:build linux

package passthrough

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/creds"
	"github.com/ringfuse/ringfuse/wire"
)

// callerCtx is a request context carrying credentials, as the server's
// contexts do.
type callerCtx struct {
	context.Context
	c ringfuse.Caller
}

func (c callerCtx) Caller() ringfuse.Caller { return c.c }

func asCaller(uid, gid uint32) context.Context {
	return callerCtx{context.Background(), ringfuse.Caller{UID: uid, GID: gid, PID: 1}}
}

var bg = context.Background()

func newFS(t testing.TB, opts *Options) (*FS, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: open_by_handle_at needs CAP_DAC_READ_SEARCH")
	}
	src := t.TempDir()
	fs, err := New(src, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs, src
}

func lookup(t testing.TB, fs *FS, parent ringfuse.Node, name string) *ringfuse.Entry {
	t.Helper()
	var e ringfuse.Entry
	if errno := fs.Lookup(bg, parent, name, &e); errno != 0 {
		t.Fatalf("Lookup %q: %v", name, errno)
	}
	return &e
}

func writeFile(t testing.TB, path string, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func countFds(t *testing.T) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(des)
}

// dirEnt is one entry a fakeDir collected.
type dirEnt struct {
	name  string
	ino   uint64
	typ   uint32
	off   uint64
	entry *ringfuse.Entry // nil for Add
}

// fakeDir is a DirWriter holding at most max entries (0: unlimited).
type fakeDir struct {
	plus bool
	max  int
	ents []dirEnt
}

func (d *fakeDir) Plus() bool { return d.plus }

func (d *fakeDir) full() bool { return d.max > 0 && len(d.ents) >= d.max }

func (d *fakeDir) Add(name string, ino uint64, typ uint32, off uint64) bool {
	if d.full() {
		return false
	}
	d.ents = append(d.ents, dirEnt{name: name, ino: ino, typ: typ, off: off})
	return true
}

func (d *fakeDir) AddEntry(name string, e *ringfuse.Entry, off uint64) bool {
	if d.full() {
		return false
	}
	c := *e
	d.ents = append(d.ents, dirEnt{name: name, ino: e.Attr.Ino, typ: e.Attr.Mode & unix.S_IFMT, off: off, entry: &c})
	return true
}

func TestLookupGetAttr(t *testing.T) {
	fs, src := newFS(t, nil)
	writeFile(t, filepath.Join(src, "f"), "hello")
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(src, "f"), &st); err != nil {
		t.Fatal(err)
	}
	e := lookup(t, fs, fs.Root(), "f")
	if e.Attr.Ino != st.Ino || e.Attr.Size != 5 || e.Attr.Mode != st.Mode || e.Attr.Nlink != 1 {
		t.Errorf("entry attr %+v, want ino %d size 5 mode %o", e.Attr, st.Ino, st.Mode)
	}
	if e.Key != (ringfuse.InodeKey{Dev: st.Dev, Ino: st.Ino}) || e.Generation != 0 {
		t.Errorf("key %+v gen %d", e.Key, e.Generation)
	}
	if e.Attr.Mtime != uint64(st.Mtim.Sec) || e.Attr.Mtimensec != uint32(st.Mtim.Nsec) {
		t.Errorf("mtime %d.%d, want %d.%d", e.Attr.Mtime, e.Attr.Mtimensec, st.Mtim.Sec, st.Mtim.Nsec)
	}
	var a ringfuse.AttrOut
	if errno := fs.GetAttr(bg, e.Node, 0, false, &a); errno != 0 || a.Attr != e.Attr {
		t.Errorf("GetAttr = %v %+v, want %+v", errno, a.Attr, e.Attr)
	}
	if e2 := lookup(t, fs, fs.Root(), "f"); e2.Node != e.Node {
		t.Errorf("second lookup returned another node")
	}
	if fs.Stats().Nodes != 1 {
		t.Errorf("Nodes = %d, want 1", fs.Stats().Nodes)
	}
	var x ringfuse.Entry
	if errno := fs.Lookup(bg, fs.Root(), "missing", &x); errno != syscall.ENOENT {
		t.Errorf("Lookup missing: %v, want ENOENT", errno)
	}
	if errno := fs.Lookup(bg, fs.Root(), "a/b", &x); errno != syscall.EINVAL {
		t.Errorf("Lookup a/b: %v, want EINVAL", errno)
	}
	// Root attributes.
	if errno := fs.GetAttr(bg, fs.Root(), 0, false, &a); errno != 0 || a.Attr.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("GetAttr root: %v mode %o", errno, a.Attr.Mode)
	}
}

func TestDotDotDoesNotEscape(t *testing.T) {
	fs, src := newFS(t, nil)
	if err := os.Mkdir(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := lookup(t, fs, fs.Root(), "d")
	for _, p := range []ringfuse.Node{fs.Root(), d.Node} {
		for _, name := range []string{"..", ".", "", "../..", "/etc"} {
			var e ringfuse.Entry
			if errno := fs.Lookup(bg, p, name, &e); errno == 0 {
				t.Errorf("Lookup %q succeeded (ino %d), want an error", name, e.Attr.Ino)
			}
		}
	}
	for _, name := range []string{"..", "."} {
		var e ringfuse.Entry
		if errno := fs.Mkdir(bg, fs.Root(), name, 0o755, 0, &e); errno == 0 {
			t.Errorf("Mkdir %q succeeded", name)
		}
		if errno := fs.Unlink(bg, fs.Root(), name); errno == 0 {
			t.Errorf("Unlink %q succeeded", name)
		}
		if errno := fs.Rename(bg, d.Node, "x", fs.Root(), name, 0); errno == 0 {
			t.Errorf("Rename to %q succeeded", name)
		}
	}
}

func TestSymlinkNeverFollowed(t *testing.T) {
	fs, src := newFS(t, nil)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), "secret")
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(src, "lf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(src, "ld")); err != nil {
		t.Fatal(err)
	}
	lf := lookup(t, fs, fs.Root(), "lf")
	if lf.Attr.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Fatalf("lookup of symlink: mode %o, want a symlink", lf.Attr.Mode)
	}
	var out ringfuse.OpenOut
	for _, flags := range []uint32{unix.O_RDONLY, unix.O_RDWR, unix.O_WRONLY | unix.O_TRUNC} {
		out = ringfuse.OpenOut{PassthroughFd: -1}
		if errno := fs.Open(bg, lf.Node, flags, &out); errno != syscall.ELOOP {
			t.Errorf("Open symlink flags %#x: %v, want ELOOP", flags, errno)
			if errno == 0 {
				fs.Release(bg, lf.Node, out.Fh, 0)
			}
		}
	}
	target, errno := fs.Readlink(bg, lf.Node)
	if errno != 0 || string(target) != filepath.Join(outside, "secret") {
		t.Errorf("Readlink = %q, %v", target, errno)
	}
	var a ringfuse.AttrOut
	if errno := fs.GetAttr(bg, lf.Node, 0, false, &a); errno != 0 || a.Attr.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("GetAttr symlink: %v mode %o", errno, a.Attr.Mode)
	}
	// Through a symlink to a directory, names are not reachable.
	ld := lookup(t, fs, fs.Root(), "ld")
	var e ringfuse.Entry
	if errno := fs.Lookup(bg, ld.Node, "secret", &e); errno == 0 {
		t.Errorf("Lookup through a directory symlink succeeded")
	}
	if errno := fs.OpenDir(bg, ld.Node, 0, &out); errno == 0 {
		t.Errorf("OpenDir of a directory symlink succeeded")
		fs.ReleaseDir(bg, ld.Node, out.Fh)
	}
	var ce ringfuse.Entry
	if errno := fs.Create(bg, ld.Node, "x", unix.O_WRONLY, 0o644, 0, &ce, &out); errno == 0 {
		t.Errorf("Create through a directory symlink succeeded")
	}
	// Changing the symlink's attributes does not touch the target.
	in := ringfuse.SetAttrIn{Valid: wire.FATTR_MTIME, Mtime: 1000}
	if errno := fs.SetAttr(bg, lf.Node, &in, &a); errno != 0 || a.Attr.Mtime != 1000 {
		t.Errorf("SetAttr mtime on symlink: %v, mtime %d", errno, a.Attr.Mtime)
	}
	var st unix.Stat_t
	unix.Stat(filepath.Join(outside, "secret"), &st)
	if st.Mtim.Sec == 1000 {
		t.Errorf("SetAttr on a symlink changed its target")
	}
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_SIZE, Size: 0}
	if errno := fs.SetAttr(bg, lf.Node, &in, &a); errno == 0 {
		t.Errorf("truncate of a symlink succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "secret" {
		t.Errorf("target changed to %q", b)
	}
	// Xattrs of the symlink are its own, not the target's.
	if err := unix.Setxattr(filepath.Join(outside, "secret"), "user.t", []byte("v"), 0); err == nil {
		if _, errno := fs.GetXattr(bg, lf.Node, "user.t", make([]byte, 64)); errno == 0 {
			t.Errorf("GetXattr on a symlink read its target's attribute")
		}
	}
}

func TestCreateWriteRead(t *testing.T) {
	fs, src := newFS(t, nil)
	var e ringfuse.Entry
	out := ringfuse.OpenOut{PassthroughFd: -1}
	if errno := fs.Create(bg, fs.Root(), "f", unix.O_RDWR, 0o640, 0o022, &e, &out); errno != 0 {
		t.Fatalf("Create: %v", errno)
	}
	if out.PassthroughFd != -1 {
		t.Errorf("PassthroughFd = %d without Options.Passthrough", out.PassthroughFd)
	}
	if e.Attr.Mode != unix.S_IFREG|0o640 {
		t.Errorf("mode %o, want %o", e.Attr.Mode, unix.S_IFREG|0o640)
	}
	if n, errno := fs.Write(bg, e.Node, out.Fh, 3, []byte("abcdef"), 0); n != 6 || errno != 0 {
		t.Fatalf("Write = %d, %v", n, errno)
	}
	buf := make([]byte, 100)
	n, errno := fs.Read(bg, e.Node, out.Fh, 0, buf)
	if errno != 0 || !bytes.Equal(buf[:n], []byte("\x00\x00\x00abcdef")) {
		t.Errorf("Read = %q, %v", buf[:n], errno)
	}
	if n, errno := fs.Read(bg, e.Node, out.Fh, 100, buf); n != 0 || errno != 0 {
		t.Errorf("Read past EOF = %d, %v", n, errno)
	}
	var a ringfuse.AttrOut
	if errno := fs.GetAttr(bg, e.Node, out.Fh, true, &a); errno != 0 || a.Attr.Size != 9 {
		t.Errorf("GetAttr by fh: %v size %d", errno, a.Attr.Size)
	}
	if errno := fs.Fsync(bg, e.Node, out.Fh, false); errno != 0 {
		t.Errorf("Fsync: %v", errno)
	}
	if errno := fs.Fsync(bg, e.Node, out.Fh, true); errno != 0 {
		t.Errorf("Fdatasync: %v", errno)
	}
	if errno := fs.Flush(bg, e.Node, out.Fh, 0); errno != 0 {
		t.Errorf("Flush: %v", errno)
	}
	if s := fs.Stats(); s.OpenFiles != 1 {
		t.Errorf("OpenFiles = %d, want 1", s.OpenFiles)
	}
	fs.Release(bg, e.Node, out.Fh, 0)
	if s := fs.Stats(); s.OpenFiles != 0 {
		t.Errorf("OpenFiles after Release = %d", s.OpenFiles)
	}
	if _, errno := fs.Read(bg, e.Node, out.Fh, 0, buf); errno != syscall.EBADF {
		t.Errorf("Read after Release: %v, want EBADF", errno)
	}
	got, _ := os.ReadFile(filepath.Join(src, "f"))
	if string(got) != "\x00\x00\x00abcdef" {
		t.Errorf("backing file %q", got)
	}

	// O_EXCL on an existing file; without O_EXCL it is opened unchanged.
	var e2 ringfuse.Entry
	if errno := fs.Create(bg, fs.Root(), "f", unix.O_RDWR|unix.O_EXCL, 0o600, 0, &e2, &out); errno != syscall.EEXIST {
		t.Errorf("Create O_EXCL existing: %v, want EEXIST", errno)
	}
	// The file exists, so the open is the caller's: user 1000 may not
	// open root's 0640 file (the kernel skipped its own check, believing
	// the file new).
	if errno := fs.Create(asCaller(1000, 1000), fs.Root(), "f", unix.O_RDWR, 0o600, 0, &e2, &out); errno != syscall.EACCES {
		t.Errorf("Create existing as another user: %v, want EACCES", errno)
	}
	if errno := fs.Create(bg, fs.Root(), "f", unix.O_RDWR, 0o600, 0, &e2, &out); errno != 0 {
		t.Fatalf("Create existing: %v", errno)
	}
	if e2.Node != e.Node || e2.Attr.Mode != unix.S_IFREG|0o640 || e2.Attr.UID != 0 {
		t.Errorf("Create of an existing file changed it: %+v", e2.Attr)
	}
	fs.Release(bg, e2.Node, out.Fh, 0)

	// Open, append and truncate.
	if errno := fs.Open(bg, e.Node, unix.O_WRONLY|unix.O_APPEND, &out); errno != 0 {
		t.Fatalf("Open: %v", errno)
	}
	// The kernel sends an appending write at the end of the file; the
	// daemon writes where it is told (its descriptor has no O_APPEND,
	// which would also move mmap write-back to the end).
	if n, errno := fs.Write(bg, e.Node, out.Fh, 9, []byte("Z"), 0); n != 1 || errno != 0 {
		t.Errorf("append Write = %d, %v", n, errno)
	}
	fs.Release(bg, e.Node, out.Fh, 0)
	if got, _ := os.ReadFile(filepath.Join(src, "f")); string(got) != "\x00\x00\x00abcdefZ" {
		t.Errorf("after append %q", got)
	}
	if errno := fs.Open(bg, e.Node, unix.O_RDWR|unix.O_TRUNC, &out); errno != 0 {
		t.Fatalf("Open O_TRUNC: %v", errno)
	}
	fs.Release(bg, e.Node, out.Fh, 0)
	if got, _ := os.ReadFile(filepath.Join(src, "f")); len(got) != 0 {
		t.Errorf("after O_TRUNC %q", got)
	}
}

func TestPassthroughFd(t *testing.T) {
	fs, _ := newFS(t, &Options{Passthrough: true})
	var e ringfuse.Entry
	out := ringfuse.OpenOut{PassthroughFd: -1}
	if errno := fs.Create(bg, fs.Root(), "f", unix.O_RDWR, 0o644, 0, &e, &out); errno != 0 {
		t.Fatal(errno)
	}
	if out.PassthroughFd < 0 {
		t.Fatalf("PassthroughFd = %d", out.PassthroughFd)
	}
	if _, err := unix.Pwrite(out.PassthroughFd, []byte("x"), 0); err != nil {
		t.Errorf("pwrite on PassthroughFd: %v", err)
	}
	fs.Release(bg, e.Node, out.Fh, 0)
}

func TestBadHandles(t *testing.T) {
	fs, _ := newFS(t, nil)
	buf := make([]byte, 10)
	for _, fh := range []uint64{0, 1, 1 << 32, 0xffffffff, ^uint64(0), 3} {
		if _, errno := fs.Read(bg, fs.Root(), fh, 0, buf); errno != syscall.EBADF {
			t.Errorf("Read fh %#x: %v, want EBADF", fh, errno)
		}
		if _, errno := fs.Write(bg, fs.Root(), fh, 0, buf, 0); errno != syscall.EBADF {
			t.Errorf("Write fh %#x: %v, want EBADF", fh, errno)
		}
		if errno := fs.ReadDir(bg, fs.Root(), fh, 0, &fakeDir{}); errno != syscall.EBADF {
			t.Errorf("ReadDir fh %#x: %v, want EBADF", fh, errno)
		}
		fs.Release(bg, fs.Root(), fh, 0)
	}
	// A reused table slot does not honour the old fh.
	var e ringfuse.Entry
	var o1, o2 ringfuse.OpenOut
	if errno := fs.Create(bg, fs.Root(), "f", unix.O_RDWR, 0o644, 0, &e, &o1); errno != 0 {
		t.Fatal(errno)
	}
	fs.Release(bg, e.Node, o1.Fh, 0)
	if errno := fs.Open(bg, e.Node, unix.O_RDWR, &o2); errno != 0 {
		t.Fatal(errno)
	}
	if uint32(o1.Fh) != uint32(o2.Fh) || o1.Fh == o2.Fh {
		t.Errorf("expected the slot to be reused with a new generation: %#x %#x", o1.Fh, o2.Fh)
	}
	if _, errno := fs.Write(bg, e.Node, o1.Fh, 0, buf, 0); errno != syscall.EBADF {
		t.Errorf("Write on a released fh whose slot was reused: %v", errno)
	}
	fs.Release(bg, e.Node, o1.Fh, 0) // must not close o2
	if _, errno := fs.Write(bg, e.Node, o2.Fh, 0, buf, 0); errno != 0 {
		t.Errorf("Write on the live fh: %v", errno)
	}
	fs.Release(bg, e.Node, o2.Fh, 0)
	// A file handle passed to ReadDir.
	if errno := fs.Open(bg, e.Node, unix.O_RDONLY, &o1); errno != 0 {
		t.Fatal(errno)
	}
	if errno := fs.ReadDir(bg, e.Node, o1.Fh, 0, &fakeDir{}); errno != syscall.ENOTDIR {
		t.Errorf("ReadDir on a file handle: %v", errno)
	}
	fs.Release(bg, e.Node, o1.Fh, 0)
}

func TestOwnership(t *testing.T) {
	old := unix.Umask(0o077) // the daemon's umask must not matter
	defer unix.Umask(old)
	fs, src := newFS(t, nil)
	if err := os.Chmod(src, 0o777); err != nil {
		t.Fatal(err)
	}
	ctx := asCaller(1234, 5678)
	check := func(what string, e *ringfuse.Entry, mode uint32, uid, gid uint32) {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(src, what), &st); err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if st.Uid != uid || st.Gid != gid || st.Mode != mode {
			t.Errorf("%s: uid %d gid %d mode %o, want %d %d %o", what, st.Uid, st.Gid, st.Mode, uid, gid, mode)
		}
		if e.Attr.UID != st.Uid || e.Attr.GID != st.Gid || e.Attr.Mode != st.Mode {
			t.Errorf("%s: entry says uid %d gid %d mode %o", what, e.Attr.UID, e.Attr.GID, e.Attr.Mode)
		}
	}
	var e ringfuse.Entry
	var out ringfuse.OpenOut
	if errno := fs.Create(ctx, fs.Root(), "file", unix.O_WRONLY, 0o664, 0, &e, &out); errno != 0 {
		t.Fatal(errno)
	}
	fs.Release(ctx, e.Node, out.Fh, 0)
	check("file", &e, unix.S_IFREG|0o664, 1234, 5678)
	if errno := fs.Create(ctx, fs.Root(), "suid", unix.O_WRONLY, 0o6755, 0, &e, &out); errno != 0 {
		t.Fatal(errno)
	}
	fs.Release(ctx, e.Node, out.Fh, 0)
	check("suid", &e, unix.S_IFREG|0o6755, 1234, 5678)
	if errno := fs.Mkdir(ctx, fs.Root(), "dir", 0o775, 0, &e); errno != 0 {
		t.Fatal(errno)
	}
	check("dir", &e, unix.S_IFDIR|0o775, 1234, 5678)
	if errno := fs.Symlink(ctx, fs.Root(), "sym", "nowhere", &e); errno != 0 {
		t.Fatal(errno)
	}
	check("sym", &e, unix.S_IFLNK|0o777, 1234, 5678)
	if errno := fs.Mknod(ctx, fs.Root(), "fifo", unix.S_IFIFO|0o620, 0, 0, &e); errno != 0 {
		t.Fatal(errno)
	}
	check("fifo", &e, unix.S_IFIFO|0o620, 1234, 5678)
	if errno := fs.Mknod(ctx, fs.Root(), "reg", unix.S_IFREG|0o600, 0, 0, &e); errno != 0 {
		t.Fatal(errno)
	}
	check("reg", &e, unix.S_IFREG|0o600, 1234, 5678)

	// A set-group-ID directory gives its group, and S_ISGID to
	// subdirectories.
	sg := filepath.Join(src, "sg")
	if err := os.Mkdir(sg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sg, 0, 4242); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(sg, 0o2777); err != nil {
		t.Fatal(err)
	}
	sgn := lookup(t, fs, fs.Root(), "sg")
	if errno := fs.Create(ctx, sgn.Node, "f", unix.O_WRONLY, 0o644, 0, &e, &out); errno != 0 {
		t.Fatal(errno)
	}
	fs.Release(ctx, e.Node, out.Fh, 0)
	check("sg/f", &e, unix.S_IFREG|0o644, 1234, 4242)
	if errno := fs.Mkdir(ctx, sgn.Node, "d", 0o755, 0, &e); errno != 0 {
		t.Fatal(errno)
	}
	check("sg/d", &e, unix.S_IFDIR|unix.S_ISGID|0o755, 1234, 4242)
	// The caller is outside the directory's group, so S_ISGID of a new
	// file goes, as natively (mode_strip_sgid).
	if errno := fs.Create(ctx, sgn.Node, "g", unix.O_WRONLY, 0o2755, 0, &e, &out); errno != 0 {
		t.Fatal(errno)
	}
	fs.Release(ctx, e.Node, out.Fh, 0)
	check("sg/g", &e, unix.S_IFREG|0o755, 1234, 4242)
	// A root caller without a set-group-ID parent gets root's ownership.
	if errno := fs.Mkdir(asCaller(0, 0), fs.Root(), "rootdir", 0o700, 0, &e); errno != 0 {
		t.Fatal(errno)
	}
	check("rootdir", &e, unix.S_IFDIR|0o700, 0, 0)
}

func TestMknodDevice(t *testing.T) {
	fs, src := newFS(t, nil)
	for _, d := range [][2]uint32{{1, 3}, {8, 17}, {259, 70000}, {4095, 1<<20 - 1}} {
		dev := unix.Mkdev(d[0], d[1])
		if got := decodeDev(encodeDev(dev)); got != dev {
			t.Errorf("decodeDev(encodeDev(%d:%d)) = %d:%d", d[0], d[1], unix.Major(got), unix.Minor(got))
		}
	}
	// new_encode_dev(MKDEV(8, 17)) = 0x811.
	if got := encodeDev(unix.Mkdev(8, 17)); got != 0x811 {
		t.Errorf("encodeDev(8:17) = %#x, want 0x811", got)
	}
	var e ringfuse.Entry
	rdev := encodeDev(unix.Mkdev(1, 3))
	if errno := fs.Mknod(bg, fs.Root(), "null", unix.S_IFCHR|0o666, rdev, 0, &e); errno != 0 {
		t.Fatalf("Mknod: %v", errno)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(src, "null"), &st); err != nil || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("mknod made rdev %d:%d, %v", unix.Major(st.Rdev), unix.Minor(st.Rdev), err)
	}
	if e.Attr.Rdev != rdev || e.Attr.Mode != unix.S_IFCHR|0o666 {
		t.Errorf("entry rdev %#x mode %o", e.Attr.Rdev, e.Attr.Mode)
	}
}

func TestRename(t *testing.T) {
	fs, src := newFS(t, nil)
	writeFile(t, filepath.Join(src, "a"), "A")
	writeFile(t, filepath.Join(src, "b"), "B")
	if err := os.Mkdir(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := lookup(t, fs, fs.Root(), "d")
	if errno := fs.Rename(bg, fs.Root(), "a", fs.Root(), "b", unix.RENAME_NOREPLACE); errno != syscall.EEXIST {
		t.Errorf("RENAME_NOREPLACE onto existing: %v, want EEXIST", errno)
	}
	if errno := fs.Rename(bg, fs.Root(), "a", fs.Root(), "b", unix.RENAME_EXCHANGE); errno != 0 {
		t.Errorf("RENAME_EXCHANGE: %v", errno)
	}
	if a, _ := os.ReadFile(filepath.Join(src, "a")); string(a) != "B" {
		t.Errorf("after exchange a = %q", a)
	}
	if errno := fs.Rename(bg, fs.Root(), "a", d.Node, "c", unix.RENAME_NOREPLACE); errno != 0 {
		t.Errorf("RENAME_NOREPLACE to new name: %v", errno)
	}
	if errno := fs.Rename(bg, d.Node, "c", fs.Root(), "b", 0); errno != 0 {
		t.Errorf("rename over: %v", errno)
	}
	if b, _ := os.ReadFile(filepath.Join(src, "b")); string(b) != "B" {
		t.Errorf("after rename b = %q", b)
	}
	if errno := fs.Rename(bg, fs.Root(), "nope", fs.Root(), "x", 0); errno != syscall.ENOENT {
		t.Errorf("rename missing: %v", errno)
	}
	if errno := fs.Rename(bg, fs.Root(), "b", fs.Root(), "zz", unix.RENAME_EXCHANGE); errno != syscall.ENOENT {
		t.Errorf("exchange with missing: %v", errno)
	}
}

func TestLinkUnlinkRmdir(t *testing.T) {
	fs, src := newFS(t, nil)
	writeFile(t, filepath.Join(src, "a"), "A")
	a := lookup(t, fs, fs.Root(), "a")
	var e ringfuse.Entry
	if errno := fs.Link(bg, a.Node, fs.Root(), "b", &e); errno != 0 {
		t.Fatalf("Link: %v", errno)
	}
	if e.Node != a.Node || e.Attr.Nlink != 2 {
		t.Errorf("Link entry: same node %v nlink %d", e.Node == a.Node, e.Attr.Nlink)
	}
	if b := lookup(t, fs, fs.Root(), "b"); b.Node != a.Node {
		t.Errorf("lookup of the link returned another node")
	}
	if errno := fs.Link(bg, a.Node, fs.Root(), "b", &e); errno != syscall.EEXIST {
		t.Errorf("Link onto existing: %v", errno)
	}
	if errno := fs.Unlink(bg, fs.Root(), "a"); errno != 0 {
		t.Errorf("Unlink: %v", errno)
	}
	if errno := fs.Unlink(bg, fs.Root(), "a"); errno != syscall.ENOENT {
		t.Errorf("Unlink again: %v", errno)
	}
	if errno := fs.Mkdir(bg, fs.Root(), "d", 0o755, 0, &e); errno != 0 {
		t.Fatal(errno)
	}
	if errno := fs.Unlink(bg, fs.Root(), "d"); errno != syscall.EISDIR {
		t.Errorf("Unlink dir: %v", errno)
	}
	writeFile(t, filepath.Join(src, "d", "x"), "")
	if errno := fs.Rmdir(bg, fs.Root(), "d"); errno != syscall.ENOTEMPTY {
		t.Errorf("Rmdir non-empty: %v", errno)
	}
	os.Remove(filepath.Join(src, "d", "x"))
	if errno := fs.Rmdir(bg, fs.Root(), "d"); errno != 0 {
		t.Errorf("Rmdir: %v", errno)
	}
}

func TestSymlinkReadlink(t *testing.T) {
	fs, src := newFS(t, nil)
	var e ringfuse.Entry
	target := "../../some/where/" + string(bytes.Repeat([]byte("x"), 300))
	if errno := fs.Symlink(bg, fs.Root(), "l", target, &e); errno != 0 {
		t.Fatal(errno)
	}
	got, errno := fs.Readlink(bg, e.Node)
	if errno != 0 || string(got) != target {
		t.Errorf("Readlink = %q, %v", got, errno)
	}
	if on, _ := os.Readlink(filepath.Join(src, "l")); on != target {
		t.Errorf("backing symlink %q", on)
	}
	if e.Attr.Size != uint64(len(target)) {
		t.Errorf("symlink size %d", e.Attr.Size)
	}
	writeFile(t, filepath.Join(src, "f"), "")
	f := lookup(t, fs, fs.Root(), "f")
	if _, errno := fs.Readlink(bg, f.Node); errno != syscall.EINVAL {
		t.Errorf("Readlink of a file: %v", errno)
	}
}

func TestSetAttr(t *testing.T) {
	fs, src := newFS(t, nil)
	p := filepath.Join(src, "f")
	writeFile(t, p, "0123456789")
	f := lookup(t, fs, fs.Root(), "f")
	var a ringfuse.AttrOut
	in := ringfuse.SetAttrIn{Valid: wire.FATTR_MODE, Mode: unix.S_IFREG | 0o4711}
	if errno := fs.SetAttr(bg, f.Node, &in, &a); errno != 0 || a.Attr.Mode != unix.S_IFREG|0o4711 {
		t.Errorf("chmod: %v mode %o", errno, a.Attr.Mode)
	}
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_UID | wire.FATTR_GID, UID: 77, GID: 88}
	if errno := fs.SetAttr(bg, f.Node, &in, &a); errno != 0 || a.Attr.UID != 77 || a.Attr.GID != 88 {
		t.Errorf("chown: %v %d:%d", errno, a.Attr.UID, a.Attr.GID)
	}
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_GID, GID: 99}
	if errno := fs.SetAttr(bg, f.Node, &in, &a); errno != 0 || a.Attr.UID != 77 || a.Attr.GID != 99 {
		t.Errorf("chgrp: %v %d:%d", errno, a.Attr.UID, a.Attr.GID)
	}
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_SIZE, Size: 4}
	if errno := fs.SetAttr(bg, f.Node, &in, &a); errno != 0 || a.Attr.Size != 4 {
		t.Errorf("truncate without fh: %v size %d", errno, a.Attr.Size)
	}
	var out ringfuse.OpenOut
	if errno := fs.Open(bg, f.Node, unix.O_RDWR, &out); errno != 0 {
		t.Fatal(errno)
	}
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_SIZE | wire.FATTR_FH, Size: 2, Fh: out.Fh}
	if errno := fs.SetAttr(bg, f.Node, &in, &a); errno != 0 || a.Attr.Size != 2 {
		t.Errorf("truncate with fh: %v size %d", errno, a.Attr.Size)
	}
	fs.Release(bg, f.Node, out.Fh, 0)
	if b, _ := os.ReadFile(p); string(b) != "01" {
		t.Errorf("contents %q", b)
	}
	// Times: both, one omitted, now.
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_ATIME | wire.FATTR_MTIME, Atime: 1000, Atimensec: 5, Mtime: 2000, Mtimensec: 7}
	if errno := fs.SetAttr(bg, f.Node, &in, &a); errno != 0 || a.Attr.Atime != 1000 || a.Attr.Atimensec != 5 || a.Attr.Mtime != 2000 || a.Attr.Mtimensec != 7 {
		t.Errorf("utimens: %v %+v", errno, a.Attr)
	}
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_MTIME, Mtime: 3000}
	if errno := fs.SetAttr(bg, f.Node, &in, &a); errno != 0 || a.Attr.Atime != 1000 || a.Attr.Mtime != 3000 {
		t.Errorf("utimens with atime omitted: %v atime %d mtime %d", errno, a.Attr.Atime, a.Attr.Mtime)
	}
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_ATIME | wire.FATTR_ATIME_NOW}
	if errno := fs.SetAttr(bg, f.Node, &in, &a); errno != 0 || a.Attr.Atime < 1_600_000_000 || a.Attr.Mtime != 3000 {
		t.Errorf("utimens atime now: %v atime %d mtime %d", errno, a.Attr.Atime, a.Attr.Mtime)
	}
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_MTIME | wire.FATTR_MTIME_NOW | wire.FATTR_CTIME}
	if errno := fs.SetAttr(bg, f.Node, &in, &a); errno != 0 || a.Attr.Mtime < 1_600_000_000 {
		t.Errorf("utimens mtime now: %v mtime %d", errno, a.Attr.Mtime)
	}
	// Killing set-ID bits, as with handle_killpriv_v2.
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_MODE, Mode: 0o6755}
	fs.SetAttr(bg, f.Node, &in, &a)
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_KILL_SUIDGID | wire.FATTR_UID, UID: 5}
	if errno := fs.SetAttr(bg, f.Node, &in, &a); errno != 0 || a.Attr.Mode&0o7777 != 0o755 {
		t.Errorf("kill suidgid: %v mode %o", errno, a.Attr.Mode)
	}
	var st unix.Stat_t
	unix.Stat(p, &st)
	if st.Uid != 5 || st.Size != 2 {
		t.Errorf("backing file uid %d size %d", st.Uid, st.Size)
	}
}

func TestUnlinkedOpenFile(t *testing.T) {
	fs, src := newFS(t, nil)
	var e ringfuse.Entry
	var out ringfuse.OpenOut
	if errno := fs.Create(bg, fs.Root(), "f", unix.O_RDWR, 0o644, 0, &e, &out); errno != 0 {
		t.Fatal(errno)
	}
	fs.Write(bg, e.Node, out.Fh, 0, []byte("data"), 0)
	// Drop any cached descriptor so the node must be reopened by handle.
	if err := os.Remove(filepath.Join(src, "f")); err != nil {
		t.Fatal(err)
	}
	sh := fs.shardOf(e.Key)
	sh.mu.Lock()
	closeFd(sh.detach(e.Node.(*node)))
	sh.mu.Unlock()
	var a ringfuse.AttrOut
	if errno := fs.GetAttr(bg, e.Node, 0, false, &a); errno != 0 || a.Attr.Nlink != 0 || a.Attr.Size != 4 {
		t.Errorf("GetAttr of unlinked file without fh: %v nlink %d size %d", errno, a.Attr.Nlink, a.Attr.Size)
	}
	in := ringfuse.SetAttrIn{Valid: wire.FATTR_MODE, Mode: 0o600}
	if errno := fs.SetAttr(bg, e.Node, &in, &a); errno != 0 || a.Attr.Mode&0o777 != 0o600 {
		t.Errorf("chmod unlinked file: %v mode %o", errno, a.Attr.Mode)
	}
	in = ringfuse.SetAttrIn{Valid: wire.FATTR_SIZE | wire.FATTR_FH, Fh: out.Fh, Size: 3}
	if errno := fs.SetAttr(bg, e.Node, &in, &a); errno != 0 || a.Attr.Size != 3 {
		t.Errorf("ftruncate unlinked file: %v size %d", errno, a.Attr.Size)
	}
	fs.Release(bg, e.Node, out.Fh, 0)
}

func TestXattr(t *testing.T) {
	fs, src := newFS(t, nil)
	writeFile(t, filepath.Join(src, "f"), "")
	f := lookup(t, fs, fs.Root(), "f")
	if errno := fs.SetXattr(bg, f.Node, "user.k", []byte("value"), 0); errno != 0 {
		t.Fatalf("SetXattr: %v", errno)
	}
	if errno := fs.SetXattr(bg, f.Node, "user.k", []byte("v"), unix.XATTR_CREATE); errno != syscall.EEXIST {
		t.Errorf("SetXattr XATTR_CREATE existing: %v", errno)
	}
	if n, errno := fs.GetXattr(bg, f.Node, "user.k", nil); n != 5 || errno != 0 {
		t.Errorf("GetXattr size query = %d, %v", n, errno)
	}
	if _, errno := fs.GetXattr(bg, f.Node, "user.k", make([]byte, 2)); errno != syscall.ERANGE {
		t.Errorf("GetXattr small buffer: %v, want ERANGE", errno)
	}
	buf := make([]byte, 64)
	if n, errno := fs.GetXattr(bg, f.Node, "user.k", buf); errno != 0 || string(buf[:n]) != "value" {
		t.Errorf("GetXattr = %q, %v", buf[:n], errno)
	}
	if _, errno := fs.GetXattr(bg, f.Node, "user.none", buf); errno != syscall.ENODATA {
		t.Errorf("GetXattr missing: %v, want ENODATA", errno)
	}
	fs.SetXattr(bg, f.Node, "user.k2", []byte("x"), 0)
	n, errno := fs.ListXattr(bg, f.Node, nil)
	if errno != 0 || n != len("user.k\x00user.k2\x00") {
		t.Errorf("ListXattr size = %d, %v", n, errno)
	}
	if _, errno := fs.ListXattr(bg, f.Node, make([]byte, 3)); errno != syscall.ERANGE {
		t.Errorf("ListXattr small buffer: %v", errno)
	}
	n, _ = fs.ListXattr(bg, f.Node, buf)
	names := bytes.Split(bytes.TrimRight(buf[:n], "\x00"), []byte{0})
	if len(names) != 2 {
		t.Errorf("ListXattr names %q", names)
	}
	if errno := fs.RemoveXattr(bg, f.Node, "user.k"); errno != 0 {
		t.Errorf("RemoveXattr: %v", errno)
	}
	if errno := fs.RemoveXattr(bg, f.Node, "user.k"); errno != syscall.ENODATA {
		t.Errorf("RemoveXattr again: %v", errno)
	}
	// The root directory too.
	if errno := fs.SetXattr(bg, fs.Root(), "user.r", []byte("1"), 0); errno != 0 {
		t.Errorf("SetXattr on root: %v", errno)
	}
}

func TestStatFSAccessAllocSeekCopy(t *testing.T) {
	fs, src := newFS(t, nil)
	var sfs ringfuse.StatFS
	if errno := fs.StatFS(bg, fs.Root(), &sfs); errno != 0 || sfs.Blocks == 0 || sfs.Bsize == 0 || sfs.Namelen != 255 {
		t.Errorf("StatFS: %v %+v", errno, sfs)
	}
	if errno := fs.Access(bg, fs.Root(), unix.R_OK|unix.W_OK|unix.X_OK); errno != 0 {
		t.Errorf("Access: %v", errno)
	}
	writeFile(t, filepath.Join(src, "noexec"), "")
	ne := lookup(t, fs, fs.Root(), "noexec")
	if errno := fs.Access(bg, ne.Node, unix.X_OK); errno != syscall.EACCES {
		t.Errorf("Access X_OK on a 0644 file: %v", errno)
	}

	var e, e2 ringfuse.Entry
	var o, o2 ringfuse.OpenOut
	if errno := fs.Create(bg, fs.Root(), "sparse", unix.O_RDWR, 0o644, 0, &e, &o); errno != 0 {
		t.Fatal(errno)
	}
	defer fs.Release(bg, e.Node, o.Fh, 0)
	const mib = 1 << 20
	if errno := fs.Fallocate(bg, e.Node, o.Fh, 4*mib, mib, 0); errno != 0 {
		t.Fatalf("Fallocate: %v", errno)
	}
	fs.Write(bg, e.Node, o.Fh, 4*mib, bytes.Repeat([]byte("d"), mib), 0)
	if pos, errno := fs.Lseek(bg, e.Node, o.Fh, 0, unix.SEEK_DATA); errno != 0 || pos != 4*mib {
		t.Errorf("SEEK_DATA = %d, %v", pos, errno)
	}
	if pos, errno := fs.Lseek(bg, e.Node, o.Fh, 4*mib, unix.SEEK_HOLE); errno != 0 || pos != 5*mib {
		t.Errorf("SEEK_HOLE = %d, %v", pos, errno)
	}
	if _, errno := fs.Lseek(bg, e.Node, o.Fh, 6*mib, unix.SEEK_DATA); errno != syscall.ENXIO {
		t.Errorf("SEEK_DATA past EOF: %v", errno)
	}
	if errno := fs.Fallocate(bg, e.Node, o.Fh, 4*mib, 4096, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE); errno != 0 {
		t.Errorf("punch hole: %v", errno)
	}
	if errno := fs.Create(bg, fs.Root(), "copy", unix.O_RDWR, 0o644, 0, &e2, &o2); errno != 0 {
		t.Fatal(errno)
	}
	defer fs.Release(bg, e2.Node, o2.Fh, 0)
	if n, errno := fs.CopyFileRange(bg, e.Node, o.Fh, 4*mib+4096, e2.Node, o2.Fh, 10, 100, 0); errno != 0 || n != 100 {
		t.Errorf("CopyFileRange = %d, %v", n, errno)
	}
	b, _ := os.ReadFile(filepath.Join(src, "copy"))
	if len(b) != 110 || string(b[10:]) != string(bytes.Repeat([]byte("d"), 100)) {
		t.Errorf("copied %d bytes", len(b))
	}
}

// readAll lists a directory through ReadDir, at most per entries a call,
// resuming from the last offset, as the kernel does.
func readAll(t *testing.T, fs *FS, n ringfuse.Node, fh uint64, start uint64, plus bool, per int) []dirEnt {
	t.Helper()
	var all []dirEnt
	off := start
	for i := 0; ; i++ {
		w := &fakeDir{plus: plus, max: per}
		if errno := fs.ReadDir(bg, n, fh, off, w); errno != 0 {
			t.Fatalf("ReadDir at %d: %v", off, errno)
		}
		if len(w.ents) == 0 {
			return all
		}
		all = append(all, w.ents...)
		off = w.ents[len(w.ents)-1].off
		if i > 1e6 {
			t.Fatal("ReadDir does not end")
		}
	}
}

func names(ents []dirEnt) []string {
	var s []string
	for _, e := range ents {
		s = append(s, e.name)
	}
	return s
}

func TestReadDir(t *testing.T) {
	fs, src := newFS(t, nil)
	writeFile(t, filepath.Join(src, "file"), "x")
	os.Mkdir(filepath.Join(src, "dir"), 0o755)
	os.Symlink("file", filepath.Join(src, "link"))
	var out ringfuse.OpenOut
	if errno := fs.OpenDir(bg, fs.Root(), 0, &out); errno != 0 {
		t.Fatal(errno)
	}
	ents := readAll(t, fs, fs.Root(), out.Fh, 0, false, 0)
	got := names(ents)
	slices.Sort(got)
	if !slices.Equal(got, []string{".", "..", "dir", "file", "link"}) {
		t.Errorf("names %q", got)
	}
	types := map[string]uint32{}
	for _, e := range ents {
		types[e.name] = e.typ
	}
	if types["dir"] != unix.S_IFDIR || types["file"] != unix.S_IFREG || types["link"] != unix.S_IFLNK {
		t.Errorf("types %v", types)
	}
	// READDIRPLUS from the start, one entry per call.
	before := fs.Stats().Nodes
	plus := readAll(t, fs, fs.Root(), out.Fh, 0, true, 1)
	if !slices.Equal(names(plus), names(ents)) {
		t.Errorf("plus names %q, want %q", names(plus), names(ents))
	}
	for _, e := range plus {
		switch e.name {
		case ".", "..":
			if e.entry != nil {
				t.Errorf("%q came with a node", e.name)
			}
		default:
			if e.entry == nil || e.entry.Node == nil {
				t.Errorf("%q without a node", e.name)
				continue
			}
			var st unix.Stat_t
			unix.Lstat(filepath.Join(src, e.name), &st)
			if e.entry.Attr.Ino != st.Ino || e.entry.Attr.Mode != st.Mode || e.entry.Key.Ino != st.Ino {
				t.Errorf("%q: attr %+v", e.name, e.entry.Attr)
			}
		}
	}
	if got := fs.Stats().Nodes - before; got != 3 {
		t.Errorf("READDIRPLUS made %d nodes, want 3 (entries that did not fit must not count)", got)
	}
	fs.ReleaseDir(bg, fs.Root(), out.Fh)
	if fs.Stats().OpenFiles != 0 {
		t.Errorf("OpenFiles %d", fs.Stats().OpenFiles)
	}
	// A subdirectory listing, and FsyncDir.
	d := lookup(t, fs, fs.Root(), "dir")
	if errno := fs.OpenDir(bg, d.Node, 0, &out); errno != 0 {
		t.Fatal(errno)
	}
	if got := names(readAll(t, fs, d.Node, out.Fh, 0, false, 0)); len(got) != 2 {
		t.Errorf("empty dir lists %q", got)
	}
	if errno := fs.FsyncDir(bg, d.Node, out.Fh, false); errno != 0 {
		t.Errorf("FsyncDir: %v", errno)
	}
	fs.ReleaseDir(bg, d.Node, out.Fh)
	f := lookup(t, fs, fs.Root(), "file")
	if errno := fs.OpenDir(bg, f.Node, 0, &out); errno != syscall.ENOTDIR {
		t.Errorf("OpenDir of a file: %v", errno)
	}
}

func TestReadDirPlusUnsentNodes(t *testing.T) {
	fs, src := newFS(t, nil)
	for i := range 50 {
		writeFile(t, filepath.Join(src, fmt.Sprint("f", i)), "")
	}
	var out ringfuse.OpenOut
	if errno := fs.OpenDir(bg, fs.Root(), 0, &out); errno != 0 {
		t.Fatal(errno)
	}
	defer fs.ReleaseDir(bg, fs.Root(), out.Fh)
	w := &fakeDir{plus: true, max: 7}
	if errno := fs.ReadDir(bg, fs.Root(), out.Fh, 0, w); errno != 0 {
		t.Fatal(errno)
	}
	sent := 0
	for _, e := range w.ents {
		if e.entry != nil {
			sent++
		}
	}
	if got := fs.Stats().Nodes; got != int64(sent) {
		t.Errorf("Nodes = %d after sending %d entries with nodes", got, sent)
	}
	for _, e := range w.ents {
		if e.entry != nil {
			fs.Forget(e.entry.Node)
		}
	}
	if s := fs.Stats(); s.Nodes != 0 {
		t.Errorf("Nodes = %d after Forget", s.Nodes)
	}
}

func TestReadDirLarge(t *testing.T) {
	fs, src := newFS(t, nil)
	const n = 10000
	d := filepath.Join(src, "big")
	os.Mkdir(d, 0o755)
	want := make([]string, 0, n)
	for i := range n {
		name := fmt.Sprintf("entry-%05d-%s", i, bytes.Repeat([]byte("n"), i%40))
		fd, err := unix.Open(filepath.Join(d, name), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		want = append(want, name)
	}
	slices.Sort(want)
	dn := lookup(t, fs, fs.Root(), "big")
	var out ringfuse.OpenOut
	if errno := fs.OpenDir(bg, dn.Node, 0, &out); errno != 0 {
		t.Fatal(errno)
	}
	defer fs.ReleaseDir(bg, dn.Node, out.Fh)
	// Small replies, so entries stay buffered between calls.
	all := readAll(t, fs, dn.Node, out.Fh, 0, false, 13)
	var got []string
	for _, e := range all {
		if e.name != "." && e.name != ".." {
			got = append(got, e.name)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d names, want %d (first difference matters)", len(got), len(want))
	}
	// Seeking to any cookie continues with exactly the entries after it
	// (seekdir), also backwards and from the middle of a buffer.
	for _, k := range []int{0, 1, 2, 17, 500, n / 2, n - 1, n + 1, 3} {
		tail := readAll(t, fs, dn.Node, out.Fh, all[k].off, false, 100)
		if !slices.Equal(names(tail), names(all[k+1:])) {
			t.Errorf("resuming after entry %d: %d entries, want %d", k, len(tail), len(all)-k-1)
		}
	}
	// Restart at 0.
	if again := readAll(t, fs, dn.Node, out.Fh, 0, false, 1000); !slices.Equal(names(again), names(all)) {
		t.Errorf("relisting from 0 differs")
	}
	// READDIRPLUS over the big directory, then forget everything.
	plus := readAll(t, fs, dn.Node, out.Fh, 0, true, 50)
	if len(plus) != n+2 {
		t.Errorf("READDIRPLUS listed %d", len(plus))
	}
	if got := fs.Stats().Nodes; got != n+1 {
		t.Errorf("Nodes = %d, want %d", got, n+1)
	}
	for _, e := range plus {
		if e.entry != nil {
			fs.Forget(e.entry.Node)
		}
	}
	fs.Forget(dn.Node)
	if s := fs.Stats(); s.Nodes != 0 {
		t.Errorf("Nodes = %d after forgetting all", s.Nodes)
	}
}

func TestFdCacheBounded(t *testing.T) {
	fs, src := newFS(t, &Options{FdCacheSize: 1024})
	const n = 30000
	const dirs = 30
	for i := range dirs {
		os.Mkdir(filepath.Join(src, fmt.Sprint("d", i)), 0o755)
	}
	for i := range n {
		fd, err := unix.Open(filepath.Join(src, fmt.Sprint("d", i%dirs), fmt.Sprint("f", i)), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
	}
	base := countFds(t)
	seen := map[ringfuse.Node]bool{}
	var nodes []ringfuse.Node
	add := func(n ringfuse.Node) {
		if !seen[n] {
			seen[n] = true
			nodes = append(nodes, n)
		}
	}
	dnodes := make([]ringfuse.Node, dirs)
	for i := range dirs {
		dnodes[i] = lookup(t, fs, fs.Root(), fmt.Sprint("d", i)).Node
		add(dnodes[i])
	}
	maxFds := 0
	for i := range n {
		e := lookup(t, fs, dnodes[i%dirs], fmt.Sprint("f", i))
		add(e.Node)
		var a ringfuse.AttrOut
		if errno := fs.GetAttr(bg, e.Node, 0, false, &a); errno != 0 {
			t.Fatalf("GetAttr f%d: %v", i, errno)
		}
		if i%1000 == 999 {
			maxFds = max(maxFds, countFds(t))
		}
	}
	if len(nodes) != n+dirs {
		t.Fatalf("%d distinct nodes, want %d", len(nodes), n+dirs)
	}
	s := fs.Stats()
	if s.Nodes != n+dirs || s.CachedFds > 1024 || s.CachedFds < 1000 {
		t.Errorf("Stats %+v", s)
	}
	if maxFds >= base+1100 {
		t.Errorf("open descriptors reached %d, baseline %d", maxFds, base)
	}
	for _, nd := range nodes {
		fs.Forget(nd)
	}
	s = fs.Stats()
	if s.Nodes != 0 || s.CachedFds != 0 || s.OpenFiles != 0 {
		t.Errorf("after Forget: %+v", s)
	}
	if got := countFds(t); got > base {
		t.Errorf("descriptors %d after Forget, baseline %d", got, base)
	}
}

func TestFdCacheDisabled(t *testing.T) {
	fs, src := newFS(t, &Options{FdCacheSize: -1})
	os.Mkdir(filepath.Join(src, "d"), 0o755)
	writeFile(t, filepath.Join(src, "d", "f"), "x")
	base := countFds(t)
	d := lookup(t, fs, fs.Root(), "d")
	f := lookup(t, fs, d.Node, "f")
	var a ringfuse.AttrOut
	if errno := fs.GetAttr(bg, f.Node, 0, false, &a); errno != 0 || a.Attr.Size != 1 {
		t.Errorf("GetAttr: %v", errno)
	}
	var e ringfuse.Entry
	if errno := fs.Mkdir(bg, d.Node, "sub", 0o755, 0, &e); errno != 0 {
		t.Error(errno)
	}
	if s := fs.Stats(); s.CachedFds != 0 {
		t.Errorf("CachedFds %d with the cache disabled", s.CachedFds)
	}
	if got := countFds(t); got != base {
		t.Errorf("descriptors %d, baseline %d", got, base)
	}
}

// TestInodeReuse checks that a new inode that got the inode number of a
// deleted one the kernel still holds gets a node of its own (so a new node
// ID: sharing the old one would make the kernel splice the new inode onto
// the deleted one's dentry), and that the old node fails as the deleted
// inode would.
func TestInodeReuse(t *testing.T) {
	fs, src := newFS(t, nil)
	p := filepath.Join(src, "a")
	writeFile(t, p, "old")
	a := lookup(t, fs, fs.Root(), "a")
	ino := a.Attr.Ino
	os.Remove(p)
	var reused string
	for i := range 200 {
		q := filepath.Join(src, fmt.Sprint("b", i))
		writeFile(t, q, "new")
		var st unix.Stat_t
		unix.Stat(q, &st)
		if st.Ino == ino {
			reused = fmt.Sprint("b", i)
			break
		}
	}
	if reused == "" {
		t.Skip("the backing filesystem did not reuse the inode number")
	}
	b := lookup(t, fs, fs.Root(), reused)
	if b.Node == a.Node || b.Key == a.Key {
		t.Fatalf("the new inode shares the deleted inode's node (key %v)", b.Key)
	}
	var out ringfuse.OpenOut
	if errno := fs.Open(bg, b.Node, unix.O_RDONLY, &out); errno != 0 {
		t.Fatalf("Open after inode reuse: %v", errno)
	}
	buf := make([]byte, 10)
	n, _ := fs.Read(bg, b.Node, out.Fh, 0, buf)
	if string(buf[:n]) != "new" {
		t.Errorf("read %q", buf[:n])
	}
	fs.Release(bg, b.Node, out.Fh, 0)
	if errno := fs.Open(bg, a.Node, unix.O_RDONLY, &out); errno == 0 {
		fs.Release(bg, a.Node, out.Fh, 0)
		t.Errorf("the deleted inode's node opened the new inode")
	}
}

// TestNodeRefs checks the reference counting of ringfuse.NodeTable: each
// lookup is a reference, the node lives until Forget has given back the
// last one, and a freed node answers ESTALE rather than act on its slot.
func TestNodeRefs(t *testing.T) {
	fs, src := newFS(t, nil)
	writeFile(t, filepath.Join(src, "f"), "x")
	f := lookup(t, fs, fs.Root(), "f")
	if f2 := lookup(t, fs, fs.Root(), "f"); f2.Node != f.Node {
		t.Fatal("two lookups of one file gave two nodes")
	}
	num := fs.NodeNumber(f.Node)
	if num == 0 || fs.NodeAt(num) != f.Node {
		t.Fatalf("NodeNumber %d does not lead back to the node", num)
	}
	fs.Forget(f.Node)
	var a ringfuse.AttrOut
	if s := fs.Stats(); s.Nodes != 1 {
		t.Fatalf("Nodes = %d with one reference left, want 1", s.Nodes)
	}
	if errno := fs.GetAttr(bg, f.Node, 0, false, &a); errno != 0 {
		t.Fatalf("GetAttr with one reference left: %v", errno)
	}
	fs.Forget(f.Node)
	if s := fs.Stats(); s.Nodes != 0 || s.CachedFds != 0 {
		t.Fatalf("after the last Forget: %+v", s)
	}
	if errno := fs.GetAttr(bg, f.Node, 0, false, &a); errno != syscall.ESTALE {
		t.Errorf("GetAttr of a freed node: %v, want ESTALE", errno)
	}
	fs.Forget(f.Node) // one too many: ignored
	if errno := fs.Lookup(bg, f.Node, "x", &ringfuse.Entry{}); errno != syscall.ESTALE {
		t.Errorf("Lookup in a freed node: %v, want ESTALE", errno)
	}
	// A new lookup takes the lowest free slot again.
	f3 := lookup(t, fs, fs.Root(), "f")
	if fs.NodeNumber(f3.Node) != num {
		t.Errorf("the new node has number %#x, the freed one had %#x", fs.NodeNumber(f3.Node), num)
	}
	fs.Forget(f3.Node)
	for _, bad := range []uint64{0, 1 << 40, 17 << 32} {
		if n, _ := fs.NodeAt(bad).(*node); n != nil {
			t.Errorf("NodeAt(%#x) = %p", bad, n)
		}
	}
}

// TestNodeSize: a node record keeps its size, since a million of them are
// a storm's memory.
func TestNodeSize(t *testing.T) {
	if s := unsafe.Sizeof(node{}); s != sizeofNode {
		t.Errorf("node takes %d bytes, want %d", s, sizeofNode)
	}
}

func TestConcurrent(t *testing.T) {
	fs, src := newFS(t, &Options{FdCacheSize: 8})
	const files = 200
	for i := range files {
		writeFile(t, filepath.Join(src, fmt.Sprint("f", i)), "data")
	}
	base := countFds(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []ringfuse.Node
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range files {
				name := fmt.Sprint("f", (i+g*25)%files)
				var e ringfuse.Entry
				if errno := fs.Lookup(bg, fs.Root(), name, &e); errno != 0 {
					t.Errorf("Lookup: %v", errno)
					return
				}
				var a ringfuse.AttrOut
				if errno := fs.GetAttr(bg, e.Node, 0, false, &a); errno != 0 {
					t.Errorf("GetAttr: %v", errno)
				}
				var o ringfuse.OpenOut
				if errno := fs.Open(bg, e.Node, unix.O_RDONLY, &o); errno != 0 {
					t.Errorf("Open: %v", errno)
					continue
				}
				buf := make([]byte, 8)
				if n, errno := fs.Read(bg, e.Node, o.Fh, 0, buf); errno != 0 || string(buf[:n]) != "data" {
					t.Errorf("Read %q %v", buf[:n], errno)
				}
				fs.Release(bg, e.Node, o.Fh, 0)
				mu.Lock()
				got = append(got, e.Node)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	seen := map[ringfuse.Node]bool{}
	for _, n := range got {
		seen[n] = true
		fs.Forget(n) // one per lookup
	}
	if len(seen) != files {
		t.Errorf("%d distinct nodes for %d files", len(seen), files)
	}
	if s := fs.Stats(); s.Nodes != 0 || s.CachedFds != 0 || s.OpenFiles != 0 {
		t.Errorf("after Forget: %+v", s)
	}
	if c := countFds(t); c > base {
		t.Errorf("descriptors %d, baseline %d", c, base)
	}
}

// TestNodeMemory checks that nodes cost no Go heap: the node, its handle
// and its entry in the node table are all outside it (ext4's handles are
// 8 bytes).
func TestNodeMemory(t *testing.T) {
	fs, _ := newFS(t, nil)
	const n = 200000
	h := make([]byte, handleHeader+8)
	nodes := make([]*node, n)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		binary.NativeEndian.PutUint64(h[handleHeader:], uint64(i))
		nd, errno := fs.intern(ringfuse.InodeKey{Dev: 1, Ino: uint64(i) + 100}, h, 3, -1)
		if errno != 0 {
			t.Fatal(errno)
		}
		nodes[i] = nd
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
	t.Logf("%.1f bytes of Go heap per node (node record %d bytes)", per, unsafe.Sizeof(node{}))
	if per > 2 {
		t.Errorf("%.1f bytes of Go heap per node, want none", per)
	}
	if fs.Stats().Nodes != n {
		t.Errorf("Nodes = %d", fs.Stats().Nodes)
	}
	for _, nd := range nodes {
		fs.Forget(nd)
	}
	if got := fs.Stats().Nodes; got != 0 {
		t.Errorf("Nodes = %d after every Forget", got)
	}
}

func TestDirectIO(t *testing.T) {
	fs, src := newFS(t, nil)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB
	if err := os.WriteFile(filepath.Join(src, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f := lookup(t, fs, fs.Root(), "f")
	var out ringfuse.OpenOut
	if errno := fs.Open(bg, f.Node, unix.O_RDWR|unix.O_DIRECT, &out); errno == syscall.EINVAL {
		t.Skip("the backing filesystem refuses O_DIRECT")
	} else if errno != 0 {
		t.Fatal(errno)
	}
	defer fs.Release(bg, f.Node, out.Fh, 0)
	// Buffers deliberately misaligned, as a reply buffer after a header is.
	raw := make([]byte, 8192+4096+16)
	buf := alignedBuf(len(raw))[16 : 16+8192]
	n, errno := fs.Read(bg, f.Node, out.Fh, 4096, buf)
	if errno != 0 || n != 8192 || !bytes.Equal(buf, data[4096:4096+8192]) {
		t.Errorf("O_DIRECT read into a misaligned buffer = %d, %v", n, errno)
	}
	w := alignedBuf(4096 + 16)[16:]
	copy(w, bytes.Repeat([]byte("W"), 4096))
	if n, errno := fs.Write(bg, f.Node, out.Fh, 8192, w, 0); errno != 0 || n != 4096 {
		t.Errorf("O_DIRECT write from a misaligned buffer = %d, %v", n, errno)
	}
	got, _ := os.ReadFile(filepath.Join(src, "f"))
	if !bytes.Equal(got[8192:12288], bytes.Repeat([]byte("W"), 4096)) {
		t.Errorf("O_DIRECT write did not land")
	}
}

// TestPinnedNodes serves /proc/sys/kernel, whose filesystem has no file
// handles: nodes then hold an O_PATH descriptor until Forget.
func TestPinnedNodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	fs, err := New("/proc/sys/kernel", nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer fs.Close()
	if fs.root.hlen != 0 {
		t.Fatalf("procfs gave a file handle; this test needs a filesystem without")
	}
	base := countFds(t)
	e := lookup(t, fs, fs.Root(), "ostype")
	if n := e.Node.(*node); n.pfd < 0 || n.hlen != 0 {
		t.Fatalf("node not pinned: %+v", n)
	}
	if got := countFds(t); got != base+1 {
		t.Errorf("descriptors %d, want baseline %d + 1 for the pinned node", got, base)
	}
	if e2 := lookup(t, fs, fs.Root(), "ostype"); e2.Node != e.Node {
		t.Errorf("second lookup made another node")
	}
	if got := countFds(t); got != base+1 {
		t.Errorf("a second lookup kept a descriptor: %d", got)
	}
	var out ringfuse.OpenOut
	if errno := fs.Open(bg, e.Node, unix.O_RDONLY, &out); errno != 0 {
		t.Fatalf("Open pinned node: %v", errno)
	}
	buf := make([]byte, 64)
	n, errno := fs.Read(bg, e.Node, out.Fh, 0, buf)
	if errno != 0 || string(buf[:n]) != "Linux\n" {
		t.Errorf("Read = %q, %v", buf[:n], errno)
	}
	fs.Release(bg, e.Node, out.Fh, 0)
	var dout ringfuse.OpenOut
	if errno := fs.OpenDir(bg, fs.Root(), 0, &dout); errno != 0 {
		t.Fatalf("OpenDir: %v", errno)
	}
	ents := readAll(t, fs, fs.Root(), dout.Fh, 0, true, 0)
	fs.ReleaseDir(bg, fs.Root(), dout.Fh)
	if len(ents) < 10 {
		t.Errorf("listed %d entries", len(ents))
	}
	for _, de := range ents {
		if de.entry != nil {
			fs.Forget(de.entry.Node)
		}
	}
	fs.Forget(e.Node) // the two lookups
	fs.Forget(e.Node)
	if s := fs.Stats(); s.Nodes != 0 || s.OpenFiles != 0 {
		t.Errorf("after Forget: %+v", s)
	}
	if got := countFds(t); got != base {
		t.Errorf("descriptors %d after Forget, baseline %d", got, base)
	}
}

// TestSubmount checks a mount inside the source: its nodes are opened
// against a descriptor on that mount.
func TestSubmount(t *testing.T) {
	fs, src := newFS(t, nil)
	mnt := filepath.Join(src, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount tmpfs here (%v); submounts not checked", err)
	}
	t.Cleanup(func() {
		fs.Close()
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	m := lookup(t, fs, fs.Root(), "mnt")
	var e ringfuse.Entry
	var out ringfuse.OpenOut
	if errno := fs.Create(bg, m.Node, "f", unix.O_RDWR, 0o644, 0, &e, &out); errno != 0 {
		t.Fatalf("Create on the submount: %v", errno)
	}
	fs.Write(bg, e.Node, out.Fh, 0, []byte("sub"), 0)
	fs.Release(bg, e.Node, out.Fh, 0)
	if len(*fs.mounts.Load()) != 2 {
		t.Errorf("mounts %+v, want two", *fs.mounts.Load())
	}
	// Drop the cached descriptors so both nodes are reopened by handle.
	for _, n := range []ringfuse.Node{m.Node, e.Node} {
		nd := n.(*node)
		sh := fs.shardOf(nd.key)
		sh.mu.Lock()
		closeFd(sh.detach(nd))
		sh.mu.Unlock()
	}
	f := lookup(t, fs, m.Node, "f")
	if f.Node != e.Node {
		t.Errorf("lookup returned another node")
	}
	if errno := fs.Open(bg, f.Node, unix.O_RDONLY, &out); errno != 0 {
		t.Fatalf("Open on the submount: %v", errno)
	}
	buf := make([]byte, 8)
	if n, _ := fs.Read(bg, f.Node, out.Fh, 0, buf); string(buf[:n]) != "sub" {
		t.Errorf("read %q", buf[:n])
	}
	fs.Release(bg, f.Node, out.Fh, 0)
}

// TestHotPathAllocs: LOOKUP of a known node and GETATTR allocate nothing,
// so that a storm of them leaves the Go heap alone (docs/memory.md).
// ownedCtx is a request context of a caller served on a thread its
// goroutine owns, as the server's workers are (creds.Thread).
type ownedCtx struct {
	callerCtx
	thread creds.Thread
}

func (c *ownedCtx) CredThread() *creds.Thread { return &c.thread }

// TestHotPathAllocs checks that the hot operations allocate nothing, for
// root and for another user served on a worker's own thread, whose
// credentials the first call takes and the next ones keep.
func TestHotPathAllocs(t *testing.T) {
	t.Run("root", func(t *testing.T) { testHotPathAllocs(t, bg) })
	t.Run("caller", func(t *testing.T) {
		testHotPathAllocs(t, &ownedCtx{callerCtx: callerCtx{context.Background(), ringfuse.Caller{UID: 65534, GID: 65534}}})
	})
}

// onWorker runs f on a goroutine that owns its thread for good, like a
// server worker: a caller's credentials stay on it, and Go ends the
// thread with the goroutine, so the test's own goroutine stays root.
func onWorker(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		f()
	}()
	<-done
}

func testHotPathAllocs(t *testing.T, ctx context.Context) {
	fs, src := newFS(t, nil)
	if err := os.Chmod(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "f"), "x")
	// The kernel asks for xattrs (security.capability, ACLs) on writes
	// and listings; present and absent ones both must cost nothing.
	if err := unix.Setxattr(filepath.Join(src, "f"), "user.k", []byte("value"), 0); err != nil {
		t.Fatal(err)
	}
	f := lookup(t, fs, fs.Root(), "f")
	defer fs.Forget(f.Node)
	allocs := func(what string, op func() syscall.Errno) {
		t.Helper()
		var a float64
		var errno syscall.Errno
		onWorker(func() { a = testing.AllocsPerRun(1000, func() { errno = op() }) })
		if errno != 0 {
			t.Errorf("%s: %v", what, errno)
		} else if a != 0 {
			t.Errorf("%s allocates %.1f times", what, a)
		}
	}
	var e ringfuse.Entry
	allocs("Lookup", func() syscall.Errno {
		errno := fs.Lookup(ctx, fs.Root(), "f", &e)
		if errno == 0 {
			fs.Forget(e.Node)
		}
		return errno
	})
	var ao ringfuse.AttrOut
	allocs("GetAttr", func() syscall.Errno { return fs.GetAttr(ctx, f.Node, 0, false, &ao) })
	buf := make([]byte, 64)
	for _, name := range []string{"user.k", "security.capability"} {
		allocs("GetXattr "+name, func() syscall.Errno {
			if _, errno := fs.GetXattr(ctx, f.Node, name, buf); errno != 0 && errno != syscall.ENODATA {
				return errno
			}
			return 0
		})
	}
	allocs("ListXattr", func() syscall.Errno { _, errno := fs.ListXattr(ctx, f.Node, buf); return errno })
}

// BenchmarkGetXattr is the GETXATTR the kernel sends for
// security.capability, absent on most files, and a present user xattr.
//
//	go test -run XXX -bench GetXattr ./fs/passthrough
func BenchmarkGetXattr(b *testing.B) {
	fs, src := newFS(b, nil)
	writeFile(b, filepath.Join(src, "f"), "x")
	if err := unix.Setxattr(filepath.Join(src, "f"), "user.k", []byte("value"), 0); err != nil {
		b.Fatal(err)
	}
	f := lookup(b, fs, fs.Root(), "f")
	defer fs.Forget(f.Node)
	buf := make([]byte, 64)
	for _, name := range []string{"security.capability", "user.k"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				fs.GetXattr(bg, f.Node, name, buf)
			}
		})
	}
}

// BenchmarkLookup is LOOKUP of one name, as root, as another user on a
// worker's own thread (its credentials taken once and kept), and as two
// users taking turns (a switch every call): the cost of acting as the
// caller.
//
//	go test -run XXX -bench Lookup ./fs/passthrough
func BenchmarkLookup(b *testing.B) {
	fs, src := newFS(b, nil)
	if err := os.Chmod(src, 0o755); err != nil {
		b.Fatal(err)
	}
	writeFile(b, filepath.Join(src, "f"), "x")
	user := func(uid uint32) context.Context {
		return &ownedCtx{callerCtx: callerCtx{context.Background(), ringfuse.Caller{UID: uid, GID: uid}}}
	}
	var th creds.Thread
	for _, c := range []struct {
		name string
		ctxs []context.Context
	}{
		{"root", []context.Context{bg}},
		{"caller", []context.Context{user(65534)}},
		{"alternating", []context.Context{user(65534), user(65533)}},
	} {
		for i, ctx := range c.ctxs {
			// Users taking turns share one thread record, as requests
			// on one worker do.
			if o, ok := ctx.(*ownedCtx); ok && len(c.ctxs) > 1 {
				c.ctxs[i] = &sharedThreadCtx{ownedCtx: o, th: &th}
			}
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			onWorker(func() {
				var e ringfuse.Entry
				i := 0
				for b.Loop() {
					if errno := fs.Lookup(c.ctxs[i%len(c.ctxs)], fs.Root(), "f", &e); errno != 0 {
						b.Fatal(errno)
					}
					fs.Forget(e.Node)
					i++
				}
			})
		})
	}
}

// sharedThreadCtx is an ownedCtx whose thread record several callers share.
type sharedThreadCtx struct {
	*ownedCtx
	th *creds.Thread
}

func (c *sharedThreadCtx) CredThread() *creds.Thread { return c.th }
