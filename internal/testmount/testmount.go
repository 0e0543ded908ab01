// Package testmount mounts filesystems for tests, over each transport, and
// checks that nothing is left behind: no mount, no goroutine, no
// descriptor.
package testmount

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
	"github.com/ringfuse/ringfuse/wire"

	"golang.org/x/sys/unix"
)

// Transports are the channels every transport test runs over.
var Transports = []string{"devfuse", "uring"}

// Options configure Mount.
type Options struct {
	// Transport is "devfuse" or "uring".
	Transport string
	Server    server.Options
	Mount     mount.Options
	// Session lets a test adjust the session options last.
	Session func(*session.Options)
	// Cleanup runs after the unmount, before the leak checks (to close
	// the filesystem's own descriptors).
	Cleanup func()
}

// Mount mounts fsys under a fresh temporary directory and returns the
// session. Cleanup unmounts it and fails the test if the mount, a
// goroutine of the session or a descriptor outlives it.
func Mount(t testing.TB, fsys ringfuse.FileSystem, opts Options) *session.Session {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: ringfuse mounts with mount(2)")
	}
	dir := t.TempDir()
	Traversable(t, dir)
	goroutines := runtime.NumGoroutine()
	fds := CountFDs(t)
	so := &session.Options{Server: opts.Server, Mount: opts.Mount}
	if opts.Transport == "uring" {
		setUring(t, so)
	}
	if opts.Session != nil {
		opts.Session(so)
	}
	s, err := session.Mount(dir, fsys, so)
	if err != nil {
		t.Fatalf("mount %s over %s: %v", dir, opts.Transport, err)
	}
	if opts.Transport == "uring" {
		if info := s.Server().Init(); info == nil || info.Flags&wire.FUSE_OVER_IO_URING == 0 {
			s.Unmount()
			t.Fatalf("io_uring was not negotiated (is %s Y?)", mount.EnableUringParam)
		}
	}
	t.Cleanup(func() {
		if err := s.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		if ok, _ := mount.IsMounted(dir); ok {
			t.Errorf("%s is still mounted", dir)
			_ = mount.ForceUnmount(dir, 0)
		}
		if opts.Cleanup != nil {
			opts.Cleanup()
		}
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines after unmount, %d before:\n%s", n, goroutines, buf)
		}
		if n := CountFDs(t); n > fds {
			t.Errorf("%d descriptors open after unmount, %d before", n, fds)
		}
	})
	return s
}

// Traversable makes dir and its parent directories up to the system's
// temporary directory searchable by everyone, so that tests can act as
// other users inside it.
func Traversable(t testing.TB, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for d := filepath.Clean(dir); strings.HasPrefix(d, tmp+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// CountFDs returns the number of descriptors this process has open.
func CountFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the directory being read
}

// LogBuffer collects a server's log (server.Options.ErrorLog) for a test
// to inspect; it is safe for concurrent use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// LockUringParam serializes tests, in any process, around the
// enable_uring parameter: a test that turns it off holds the lock
// exclusively, tests that need the ring hold it shared.
func LockUringParam(t testing.TB, exclusive bool) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "ringfuse-enable_uring.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

// Within runs f on its own goroutine and returns its result, or, if f has
// not returned after d, calls onHang (when not nil, to dump what is
// blocked) and fails the test. A call stuck in the kernel is left behind
// until the test's cleanup tears the mount down, which ends it.
func Within[T any](t testing.TB, d time.Duration, what string, onHang func(), f func() T) T {
	t.Helper()
	c := make(chan T, 1)
	go func() { c <- f() }()
	select {
	case v := <-c:
		return v
	case <-time.After(d):
		if onHang != nil {
			onHang()
		}
		t.Fatalf("%s: still blocked after %v (hung)", what, d)
		panic("unreachable")
	}
}

// DevFuseForAll makes /dev/fuse usable by every user (mode 0666), as udev's
// rule on a normal Debian system leaves it: fusermount3 opens it as the
// user who mounts. Machines without udev (containers, CI) keep the kernel's
// 0600. The mode is left at 0666, the system's usual state, because tests
// in other processes may rely on it at the same time.
func DevFuseForAll(t testing.TB) {
	t.Helper()
	st, err := os.Stat("/dev/fuse")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o666 == 0o666 {
		return
	}
	t.Logf("/dev/fuse was %v; making it 0666, as udev does", st.Mode().Perm())
	if err := os.Chmod("/dev/fuse", 0o666); err != nil {
		t.Fatal(err)
	}
}
