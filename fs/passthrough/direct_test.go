//go:build linux

package passthrough

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
)

// openDirectFile opens name in fs's root with O_RDWR|O_DIRECT and returns
// its node, fh and open file; the open file's reference is dropped and
// the handle released at cleanup.
func openDirectFile(t *testing.T, fs *FS, name string) (ringfuse.Node, uint64, *openFile) {
	t.Helper()
	e := lookup(t, fs, fs.Root(), name)
	t.Cleanup(func() { fs.Forget(e.Node) })
	var out ringfuse.OpenOut
	if errno := fs.Open(bg, e.Node, unix.O_RDWR|unix.O_DIRECT, &out); errno == syscall.EINVAL {
		t.Skip("the backing filesystem refuses O_DIRECT")
	} else if errno != 0 {
		t.Fatal(errno)
	}
	t.Cleanup(func() { fs.Release(bg, e.Node, out.Fh, 0) })
	of := fs.handles.get(out.Fh)
	of.put()
	return e.Node, out.Fh, of
}

// TestDirectUnalignedIO checks the second descriptor of an O_DIRECT
// handle: reads and writes not aligned as statx says go to it, aligned
// ones and the FdFiler's choice follow the same rule, a plain handle has
// none, and RELEASE closes both.
func TestDirectUnalignedIO(t *testing.T) {
	fs, src := newFS(t, nil)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB
	if err := os.WriteFile(filepath.Join(src, "f"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The fd cache may keep the lookup's O_PATH descriptor: count
	// descriptors outside it.
	fds := countFds(t) - fs.Stats().CachedFds
	n, fh, of := openDirectFile(t, fs, "f")
	if of.bfd < 0 {
		t.Fatal("an O_DIRECT handle has no second descriptor")
	}
	if fl, _ := unix.FcntlInt(uintptr(of.bfd), unix.F_GETFL, 0); fl&unix.O_DIRECT != 0 || fl&unix.O_ACCMODE != unix.O_RDWR {
		t.Errorf("second descriptor's flags %#x: want O_RDWR without O_DIRECT", fl)
	}
	var stx unix.Statx_t
	if err := unix.Statx(of.fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx); err == nil &&
		stx.Mask&unix.STATX_DIOALIGN != 0 && int64(stx.Dio_offset_align) != of.dioAlign {
		t.Errorf("dioAlign %d, statx says %d", of.dioAlign, stx.Dio_offset_align)
	}
	if w, errno := fs.Write(bg, n, fh, 7, []byte("HELLO"), 0); errno != 0 || w != 5 {
		t.Errorf("unaligned write on an O_DIRECT handle = %d, %v", w, errno)
	}
	copy(data[7:], "HELLO")
	buf := make([]byte, 10)
	if r, errno := fs.Read(bg, n, fh, 3, buf); errno != 0 || r != 10 || !bytes.Equal(buf, data[3:13]) {
		t.Errorf("unaligned read on an O_DIRECT handle = %d, %v, %q", r, errno, buf[:max(r, 0)])
	}
	if got, _ := os.ReadFile(filepath.Join(src, "f")); !bytes.Equal(got, data) {
		t.Error("backing file differs after the unaligned write")
	}
	for _, c := range []struct {
		off  int64
		size int
		want int
	}{{4096, 4096, of.fd}, {0, 512 * 3, of.fd}, {7, 5, of.bfd}, {4096, 100, of.bfd}, {100, 4096, of.bfd}} {
		if of.dioAlign > 512 && c.size == 512*3 {
			continue
		}
		fd, hold, ok := fs.AcquireFd(fh, c.off, c.size)
		if !ok || fd != c.want {
			t.Errorf("AcquireFd(%d bytes at %d) = %d, %v; want %d (fd %d, second %d)", c.size, c.off, fd, ok, c.want, of.fd, of.bfd)
		}
		if ok {
			fs.ReleaseFd(hold)
		}
	}
	fs.Release(bg, n, fh, 0)
	if got := countFds(t) - fs.Stats().CachedFds; got != fds {
		t.Errorf("%d descriptors open (outside the fd cache) after RELEASE, %d before the open", got, fds)
	}

	writeFile(t, filepath.Join(src, "g"), "plain")
	g := lookup(t, fs, fs.Root(), "g")
	defer fs.Forget(g.Node)
	var out ringfuse.OpenOut
	if errno := fs.Open(bg, g.Node, unix.O_RDWR, &out); errno != 0 {
		t.Fatal(errno)
	}
	defer fs.Release(bg, g.Node, out.Fh, 0)
	if fd, hold, ok := fs.AcquireFd(out.Fh, 7, 5); !ok || fd < 0 {
		t.Errorf("AcquireFd of a plain handle = %d, %v", fd, ok)
	} else {
		if pof := hold.(*openFile); pof.bfd != -1 || fd != pof.fd {
			t.Errorf("a plain handle got a second descriptor (%d) or lent another (%d)", pof.bfd, fd)
		}
		fs.ReleaseFd(hold)
	}
}

// TestDirectUnknownAlignment is an O_DIRECT handle whose alignment the
// daemon misjudged (statx reporting none, a filesystem needing more than
// a page): the write O_DIRECT refuses is retried on the second
// descriptor.
func TestDirectUnknownAlignment(t *testing.T) {
	fs, src := newFS(t, nil)
	writeFile(t, filepath.Join(src, "f"), string(make([]byte, 8192)))
	n, fh, of := openDirectFile(t, fs, "f")
	of.dioAlign = 1 // everything looks aligned
	if w, errno := fs.Write(bg, n, fh, 4095, []byte("xy"), 0); errno != 0 || w != 2 {
		t.Errorf("misjudged unaligned write = %d, %v", w, errno)
	}
	buf := make([]byte, 4)
	if r, errno := fs.Read(bg, n, fh, 4094, buf); errno != 0 || r != 4 || string(buf) != "\x00xy\x00" {
		t.Errorf("misjudged unaligned read = %d, %v, %q", r, errno, buf)
	}
}

// TestDirectCreate checks that CREATE with O_DIRECT (and O_TRUNC, which
// the second open must not repeat) gets the second descriptor too.
func TestDirectCreate(t *testing.T) {
	fs, src := newFS(t, nil)
	var e ringfuse.Entry
	var out ringfuse.OpenOut
	errno := fs.Create(bg, fs.Root(), "c", unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_DIRECT, 0o644, 0, &e, &out)
	if errno == syscall.EINVAL {
		t.Skip("the backing filesystem refuses O_DIRECT")
	} else if errno != 0 {
		t.Fatal(errno)
	}
	defer fs.Forget(e.Node)
	defer fs.Release(bg, e.Node, out.Fh, 0)
	if of := fs.handles.get(out.Fh); of == nil || of.bfd < 0 {
		t.Fatal("CREATE with O_DIRECT made no second descriptor")
	} else {
		of.put()
	}
	if w, errno := fs.Write(bg, e.Node, out.Fh, 0, []byte("tail"), 0); errno != 0 || w != 4 {
		t.Fatalf("unaligned write after CREATE = %d, %v", w, errno)
	}
	if got, _ := os.ReadFile(filepath.Join(src, "c")); string(got) != "tail" {
		t.Errorf("backing file holds %q", got)
	}
}

// TestDirectAllocs checks that reads and writes, plain and O_DIRECT
// (aligned from an aligned buffer, or unaligned), and lending a
// descriptor allocate nothing.
func TestDirectAllocs(t *testing.T) {
	fs, src := newFS(t, nil)
	writeFile(t, filepath.Join(src, "f"), string(make([]byte, 16384)))
	writeFile(t, filepath.Join(src, "g"), string(make([]byte, 16384)))
	n, fh, _ := openDirectFile(t, fs, "f")
	g := lookup(t, fs, fs.Root(), "g")
	defer fs.Forget(g.Node)
	var out ringfuse.OpenOut
	if errno := fs.Open(bg, g.Node, unix.O_RDWR, &out); errno != 0 {
		t.Fatal(errno)
	}
	defer fs.Release(bg, g.Node, out.Fh, 0)
	buf := alignedBuf(4096)
	cases := []struct {
		name string
		n    ringfuse.Node
		fh   uint64
		off  int64
		b    []byte
	}{
		{"plain 4k", g.Node, out.Fh, 4096, buf},
		{"plain unaligned", g.Node, out.Fh, 7, buf[:100]},
		{"O_DIRECT aligned", n, fh, 4096, buf},
		{"O_DIRECT unaligned", n, fh, 7, buf[:100]},
	}
	for _, c := range cases {
		if a := testing.AllocsPerRun(200, func() {
			if _, errno := fs.Write(bg, c.n, c.fh, c.off, c.b, 0); errno != 0 {
				t.Fatal(errno)
			}
			if _, errno := fs.Read(bg, c.n, c.fh, c.off, c.b); errno != 0 {
				t.Fatal(errno)
			}
			_, hold, _ := fs.AcquireFd(c.fh, c.off, len(c.b))
			fs.ReleaseFd(hold)
		}); a != 0 {
			t.Errorf("%s: Write, Read and AcquireFd allocate %.1f times", c.name, a)
		}
	}
}
