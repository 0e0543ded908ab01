//go:build linux

package passthrough_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/posixtest"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
	"github.com/ringfuse/ringfuse/wire"

	"golang.org/x/sys/unix"
)

// mountPassthrough serves a fresh backing directory through ringfuse.
func mountPassthrough(t *testing.T, transport string, mo mount.Options) (src string, s *session.Session, fsys *passthrough.FS) {
	t.Helper()
	src = t.TempDir()
	testmount.Traversable(t, src)
	fsys, err := passthrough.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	s = testmount.Mount(t, fsys, testmount.Options{Transport: transport, Mount: mo, Cleanup: func() { fsys.Close() }})
	return src, s, fsys
}

// TestPOSIX runs the POSIX suite on a passthrough mount over every
// transport; posixtest's own test runs it on the native directory.
func TestPOSIX(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			_, s, _ := mountPassthrough(t, tr, mount.Options{AllowOther: true, DefaultPermissions: true})
			posixtest.Run(t, func(t *testing.T) posixtest.Env {
				return posixtest.Env{Dir: s.Dir(), DefaultPermissions: true}
			})
		})
	}
}

// TestForget instantiates 200,000 inodes through the mount, evicts them
// with drop_caches, and checks that the server's live nodes and the
// process's descriptors return to their baseline.
func TestForget(t *testing.T) {
	const n = 200_000
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src, s, fsys := mountPassthrough(t, tr, mount.Options{})
			for d := range 100 {
				dir := filepath.Join(src, fmt.Sprint(d))
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for i := range n / 100 {
					if err := unix.Mknod(filepath.Join(dir, fmt.Sprint(i)), unix.S_IFREG|0o644, 0); err != nil {
						t.Fatal(err)
					}
				}
			}
			dropCaches(t)
			waitNodes(t, s, 0)
			baseNodes, baseFDs := s.Server().NodesAlive(), testmount.CountFDs(t)
			var st unix.Stat_t
			for d := range 100 {
				for i := range n / 100 {
					if err := unix.Lstat(filepath.Join(s.Dir(), fmt.Sprint(d), fmt.Sprint(i)), &st); err != nil {
						t.Fatal(err)
					}
				}
			}
			live := s.Server().NodesAlive()
			if live < n {
				t.Fatalf("%d nodes alive after %d lookups", live, n)
			}
			t.Logf("%s: %d nodes alive, fs holds %+v, %d fds", tr, live, fsys.Stats(), testmount.CountFDs(t))
			start := time.Now()
			dropCaches(t)
			waitNodes(t, s, baseNodes)
			t.Logf("%s: forgot %d nodes in %v; %+v", tr, live-baseNodes, time.Since(start), fsys.Stats())
			if got := fsys.Stats().Nodes; got != 0 {
				t.Errorf("filesystem still holds %d nodes", got)
			}
			if fds := testmount.CountFDs(t); fds > baseFDs {
				t.Errorf("%d descriptors open, %d before the lookups", fds, baseFDs)
			}
			var b strings.Builder
			stats := s.Server().Stats()
			stats.WriteTo(&b)
			t.Log(b.String())
		})
	}
}

func dropCaches(t *testing.T) {
	t.Helper()
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
}

func waitNodes(t *testing.T, s *session.Session, want int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for s.Server().NodesAlive() > want {
		if time.Now().After(deadline) {
			t.Fatalf("%d nodes alive 60 s after drop_caches, want %d", s.Server().NodesAlive(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mountKernelPassthrough mounts a passthrough of a new directory over
// transport tr with FUSE_PASSTHROUGH on, and returns the directory.
func mountKernelPassthrough(t *testing.T, tr string) (string, *session.Session) {
	t.Helper()
	src := t.TempDir()
	fsys, err := passthrough.New(src, &passthrough.Options{Passthrough: true})
	if err != nil {
		t.Fatal(err)
	}
	s := testmount.Mount(t, fsys, testmount.Options{Transport: tr, Server: server.Options{Passthrough: true}, Cleanup: func() { fsys.Close() }})
	if s.Server().Init().Flags&wire.FUSE_PASSTHROUGH == 0 {
		t.Fatal("FUSE_PASSTHROUGH not negotiated")
	}
	return src, s
}

// TestKernelPassthrough serves reads and writes through FUSE_PASSTHROUGH
// backing files: data moves, yet no READ or WRITE reaches the server.
func TestKernelPassthrough(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src, s := mountKernelPassthrough(t, tr)
			p := filepath.Join(s.Dir(), "f")
			data := make([]byte, 1<<20)
			for i := range data {
				data[i] = byte(i * 7)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("data read back differs")
			}
			if b, _ := os.ReadFile(filepath.Join(src, "f")); !bytes.Equal(b, data) {
				t.Fatal("backing file differs")
			}
			st := s.Server().Stats()
			for _, ch := range []string{"devfuse", "uring"} {
				if n := st.Requests(ch, "READ") + st.Requests(ch, "WRITE"); n != 0 {
					t.Errorf("%s carried %d READ/WRITE requests; passthrough should bypass the server", ch, n)
				}
			}
		})
	}
}

// TestKernelPassthroughSharedBacking opens one file several times at once,
// read-only first and then for writing and through a hard link: the
// kernel takes one backing file per inode, so every open must get the
// same one. Writes through the later opens reach the backing file and are
// seen through the first, no READ or WRITE reaches the server, and the
// backing file is unregistered once the last open is closed.
func TestKernelPassthroughSharedBacking(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src, s := mountKernelPassthrough(t, tr)
			p := filepath.Join(s.Dir(), "f")
			if err := os.WriteFile(p, []byte("0123456789"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(p, filepath.Join(s.Dir(), "g")); err != nil {
				t.Fatal(err)
			}
			r, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			w, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatalf("second open of an open file: %v", err)
			}
			defer w.Close()
			l, err := os.OpenFile(filepath.Join(s.Dir(), "g"), os.O_RDWR, 0)
			if err != nil {
				t.Fatalf("open through a hard link: %v", err)
			}
			defer l.Close()
			if n := s.Server().BackingFiles(); n != 1 {
				t.Errorf("%d backing files registered for three opens of one inode, want 1", n)
			}
			if _, err := w.WriteAt([]byte("ab"), 0); err != nil {
				t.Fatalf("write through the second open: %v", err)
			}
			if _, err := l.WriteAt([]byte("yz"), 8); err != nil {
				t.Fatalf("write through the hard link: %v", err)
			}
			buf := make([]byte, 10)
			if _, err := r.ReadAt(buf, 0); err != nil {
				t.Fatalf("read through the first open: %v", err)
			}
			if string(buf) != "ab234567yz" {
				t.Errorf("first open reads %q, want %q", buf, "ab234567yz")
			}
			if b, _ := os.ReadFile(filepath.Join(src, "f")); string(b) != "ab234567yz" {
				t.Errorf("backing file holds %q", b)
			}
			for _, f := range []*os.File{r, w, l} {
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
			}
			// RELEASE is asynchronous: wait for the server to see it.
			deadline := time.Now().Add(5 * time.Second)
			for s.Server().BackingFiles() != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := s.Server().BackingFiles(); n != 0 {
				t.Errorf("%d backing files still registered after every open was closed", n)
			}
			// A new open after the last release registers afresh.
			if b, err := os.ReadFile(p); err != nil || string(b) != "ab234567yz" {
				t.Errorf("reopen: %q, %v", b, err)
			}
			st := s.Server().Stats()
			for _, ch := range []string{"devfuse", "uring"} {
				if n := st.Requests(ch, "READ") + st.Requests(ch, "WRITE"); n != 0 {
					t.Errorf("%s carried %d READ/WRITE requests; passthrough should bypass the server", ch, n)
				}
			}
		})
	}
}
