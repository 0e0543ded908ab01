//go:build linux

package session_test

import (
	"bytes"
	"errors"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/fs/hello"
	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
)

// Session tests of the io_uring channel on the real kernel: fallback when
// the kernel does not offer the ring, unmount and abort with requests in
// flight, and leaks. Clients use raw blocking unix calls.

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1
}

type leakCheck struct {
	goroutines, fds int
}

func startLeakCheck(t testing.TB) leakCheck {
	return leakCheck{runtime.NumGoroutine(), countFDs(t)}
}

// check fails t if the session left a mount, a goroutine or a descriptor.
func (lc leakCheck) check(t testing.TB, s *session.Session) {
	t.Helper()
	if ok, _ := mount.IsMounted(s.Dir()); ok {
		t.Errorf("%s is still in /proc/mounts", s.Dir())
		_ = mount.ForceUnmount(s.Dir(), s.ConnID())
	}
	select {
	case <-s.Done():
	default:
		t.Error("session not done after unmount")
	}
	if r := s.Ring(); r != nil {
		select {
		case <-r.Done():
		default:
			t.Error("ring channel not done after unmount")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > lc.goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > lc.goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after unmount, %d before:\n%s", n, lc.goroutines, buf[:runtime.Stack(buf, true)])
	}
	if n := countFDs(t); n > lc.fds {
		t.Errorf("%d descriptors open after unmount, %d before", n, lc.fds)
	}
}

func needRoot(t testing.TB) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: ringfuse mounts with mount(2)")
	}
}

// hammer runs stat on path from one goroutine pinned to each of the first n
// CPUs plus two unpinned ones, until stop is closed, and counts the calls.
// Errors are expected once the mount goes away.
func hammer(n int, path string, stop <-chan struct{}, calls *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range n + 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < n {
				runtime.LockOSThread() // never unlocked: the thread ends with us
				var set unix.CPUSet
				set.Set(i)
				_ = unix.SchedSetaffinity(0, &set)
			}
			var st unix.Stat_t
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = unix.Stat(path, &st)
				calls.Add(1)
			}
		}()
	}
	return &wg
}

func uringOptions(lb *testmount.LogBuffer) *session.Options {
	return &session.Options{
		Server: server.Options{AttrTimeout: -1, EntryTimeout: -1, ErrorLog: log.New(lb, "", 0)},
		Uring:  &ring.Options{},
	}
}

func helloFS() *hello.FS { return &hello.FS{Name: "greeting", Data: []byte("hello, world\n")} }

// TestUringDisabled: with enable_uring=N the kernel does not offer the
// ring; Prepare's error names the parameter and the mount works over
// /dev/fuse.
func TestUringDisabled(t *testing.T) {
	needRoot(t)
	testmount.LockUringParam(t, true)
	old, err := os.ReadFile(mount.EnableUringParam)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mount.EnableUringParam, []byte("N"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(mount.EnableUringParam, bytes.TrimSpace(old), 0); err != nil {
			t.Errorf("restore %s: %v", mount.EnableUringParam, err)
		}
	})
	lc := startLeakCheck(t)
	lb := &testmount.LogBuffer{}
	dir := t.TempDir()
	s, err := session.Mount(dir, helloFS(), uringOptions(lb))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "greeting")); err != nil || string(b) != "hello, world\n" {
		t.Errorf("read: %q, %v", b, err)
	}
	err = s.Ring().Err()
	if !errors.Is(err, ring.ErrNotOffered) || !strings.Contains(err.Error(), mount.EnableUringParam) {
		t.Errorf("ring error %v; want ErrNotOffered naming %s", err, mount.EnableUringParam)
	}
	if !strings.Contains(lb.String(), mount.EnableUringParam) {
		t.Errorf("log does not name the parameter:\n%s", lb.String())
	}
	st := s.Server().Stats()
	if st.Requests("devfuse", "LOOKUP") == 0 || st.Channels["uring"] != nil {
		t.Errorf("devfuse LOOKUP %d, uring channel %+v", st.Requests("devfuse", "LOOKUP"), st.Channels["uring"])
	}
	if err := s.Unmount(); err != nil {
		t.Error(err)
	}
	lc.check(t, s)
}

// TestUringUnmountInFlight unmounts while goroutines on every CPU keep
// statting: nothing hangs and nothing is left.
func TestUringUnmountInFlight(t *testing.T) {
	needRoot(t)
	testmount.LockUringParam(t, false)
	for round := range 3 {
		lc := startLeakCheck(t)
		lb := &testmount.LogBuffer{}
		dir := t.TempDir()
		s, err := session.Mount(dir, helloFS(), uringOptions(lb))
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var calls atomic.Int64
		wg := hammer(s.Ring().Stats().Queues, filepath.Join(dir, "greeting"), stop, &calls)
		for calls.Load() < 1000 {
			time.Sleep(time.Millisecond)
		}
		errc := make(chan error, 1)
		go func() { errc <- s.Unmount() }()
		select {
		case err := <-errc:
			// A stat in the middle of its path walk can make the
			// unmount busy; the session then aborts and detaches.
			if err != nil && !errors.Is(err, mount.ErrBusy) {
				t.Errorf("round %d: unmount: %v", round, err)
			}
			t.Logf("round %d: unmount: %v; ring %+v", round, err, s.Ring().Stats())
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: unmount hangs", round)
		}
		close(stop)
		wg.Wait()
		if s.Server().Stats().Requests("uring", "GETATTR") == 0 {
			t.Errorf("round %d: nothing went over the ring", round)
		}
		lc.check(t, s)
		if t.Failed() {
			t.Logf("server log:\n%s", lb.String())
			return
		}
	}
}

// TestUringAbort aborts the connection through fusectl during I/O: the
// session ends, the ring with it, and the callers get errors.
func TestUringAbort(t *testing.T) {
	needRoot(t)
	testmount.LockUringParam(t, false)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "data"), bytes.Repeat([]byte("x"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	pfs, err := passthrough.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	lc := startLeakCheck(t)
	lb := &testmount.LogBuffer{}
	dir := t.TempDir()
	s, err := session.Mount(dir, pfs, uringOptions(lb))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var calls atomic.Int64
	wg := hammer(s.Ring().Stats().Queues, filepath.Join(dir, "data"), stop, &calls)
	// And readers of data.
	var reads atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 128<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				fd, err := unix.Open(filepath.Join(dir, "data"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					continue
				}
				for off := int64(0); off < 1<<20; off += int64(len(buf)) {
					if _, err := unix.Pread(fd, buf, off); err != nil {
						break
					}
					reads.Add(1)
				}
				// Drop the file's pages so reads keep reaching the
				// server.
				_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
				unix.Close(fd)
			}
		}()
	}
	for calls.Load() < 500 || reads.Load() < 10 {
		time.Sleep(time.Millisecond)
	}
	if err := mount.Abort(s.ConnID()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("session not done 20 s after the abort")
	}
	select {
	case <-s.Ring().Done():
	case <-time.After(20 * time.Second):
		t.Fatal("ring not done 20 s after the abort")
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "data"), &st); err != unix.ENOTCONN {
		t.Errorf("stat after abort: %v, want ENOTCONN", err)
	}
	close(stop)
	wg.Wait()
	if err := s.Unmount(); err != nil {
		t.Error(err)
	}
	pfs.Close()
	t.Logf("ring after abort: %+v", s.Ring().Stats())
	// Entries end with -ENOTCONN, or are cancelled when Stop closes the
	// rings first; none is lost to a failed commit.
	if cs := s.Ring().Stats(); cs.Stranded != 0 || cs.RegisterFailures != 0 || cs.Commits == 0 {
		t.Errorf("ring stats after abort %+v", cs)
	}
	lc.check(t, s)
	if t.Failed() {
		t.Logf("server log:\n%s", lb.String())
	}
}

// TestUringLeaks mounts, serves over the ring and unmounts several times;
// the process ends with as many goroutines and descriptors as it started.
func TestUringLeaks(t *testing.T) {
	needRoot(t)
	testmount.LockUringParam(t, false)
	lc := startLeakCheck(t)
	var last *session.Session
	for range 3 {
		lb := &testmount.LogBuffer{}
		dir := t.TempDir()
		s, err := session.Mount(dir, helloFS(), uringOptions(lb))
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if _, err := os.ReadFile(filepath.Join(dir, "greeting")); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.Server().Stats().Requests("uring", "READ"); n == 0 {
			t.Error("no READ over the ring")
		}
		if err := s.Unmount(); err != nil {
			t.Error(err)
		}
		// Idle entries end with -ENOTCONN at unmount, unless Stop
		// (once /dev/fuse reports the unmount) closes their ring first.
		if cs := s.Ring().Stats(); cs.Stranded != 0 || cs.RegisterFailures != 0 || cs.Dead > cs.Registered {
			t.Errorf("ring stats after unmount: %+v", cs)
		}
		last = s
	}
	lc.check(t, last)
}
