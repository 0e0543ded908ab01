//go:build linux

package ring_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/session"
)

// withWatchdog runs f and, if it has not returned within limit, aborts the
// connection so that every blocked client gets ENOTCONN, and fails the
// test: a request the server never answered must not hang the suite.
func withWatchdog(t *testing.T, s *session.Session, limit time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	fired := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(limit):
			close(fired)
			_ = mount.Abort(s.ConnID())
		}
	}()
	defer close(done)
	f()
	select {
	case <-fired:
		t.Fatalf("clients still blocked after %v: a request was never answered (connection aborted)", limit)
	default:
	}
}

// TestRingPoolDeepQueue keeps many requests in flight from each CPU, so that
// queues hand requests to their pools, and checks every answer. Requests
// handed to a pool are answered through the queue's waker; a lost wake-up
// leaves a client blocked, which the watchdog turns into a failure.
func TestRingPoolDeepQueue(t *testing.T) {
	src := t.TempDir()
	const size = 1 << 20
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(i*7 + i>>12)
	}
	if err := os.WriteFile(filepath.Join(src, "data"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	pfs, err := passthrough.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := mountT(t, pfs, session.Options{Server: noCache, Uring: &ring.Options{QueueDepth: 8}})
	t.Cleanup(func() { pfs.Close() })
	nq := s.Ring().Stats().Queues
	var clients atomic.Uint64
	withWatchdog(t, s, 2*time.Minute, func() {
		onCPUsN(t, nq, 6, func(cpu int) error {
			id := clients.Add(1)
			rng := rand.New(rand.NewPCG(id, 1))
			fd, err := unix.Open(filepath.Join(s.Dir(), "data"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			buf := make([]byte, 4096)
			for range 400 {
				off := rng.IntN(size/len(buf)) * len(buf)
				n, err := unix.Pread(fd, buf, int64(off))
				if err != nil {
					return fmt.Errorf("pread at %d: %w", off, err)
				}
				if !bytes.Equal(buf[:n], want[off:off+n]) || n != len(buf) {
					return fmt.Errorf("pread at %d: %d bytes that differ", off, n)
				}
			}
			// Creates, writes, fsyncs and closes: the mix under which
			// an answer handed back by the pool was once lost.
			for i := range 40 {
				name := filepath.Join(s.Dir(), fmt.Sprintf("w%d-%d", id, i))
				wfd, err := unix.Open(name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
				if err != nil {
					return fmt.Errorf("create: %w", err)
				}
				_, err = unix.Write(wfd, buf)
				if err == nil {
					err = unix.Fsync(wfd)
				}
				unix.Close(wfd)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				if err := unix.Unlink(name); err != nil {
					return err
				}
			}
			return nil
		})
	})
	cs := s.Ring().Stats()
	if cs.Pooled == 0 {
		t.Errorf("no request was handed to a pool with 6 clients per CPU: %+v", cs)
	}
	if cs.Stranded != 0 || cs.RegisterFailures != 0 {
		t.Errorf("ring stats %+v", cs)
	}
	st := s.Server().Stats()
	checkDevfuseIdle(t, &st)
	t.Logf("%d commits, %d served on the pools", cs.Commits, cs.Pooled)
}

// schedPolicy returns the scheduling policy of thread tid.
func schedPolicy(tid int) (uint32, error) {
	a, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return 0, err
	}
	return a.Policy, nil
}

// queueThreads returns the threads of this process pinned to exactly one
// CPU, by CPU: the queue threads (test goroutines pin only while they run).
func queueThreads(t *testing.T) map[int][]int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]int{}
	for _, e := range ents {
		var tid int
		if _, err := fmt.Sscan(e.Name(), &tid); err != nil {
			continue
		}
		var set unix.CPUSet
		if unix.SchedGetaffinity(tid, &set) != nil || set.Count() != 1 {
			continue
		}
		for cpu := range 1024 {
			if set.IsSet(cpu) {
				out[cpu] = append(out[cpu], tid)
				break
			}
		}
	}
	return out
}

// TestRingSchedIdle checks that with Options.SchedIdle the queue threads
// run in the SCHED_IDLE class, that requests are served, and that the
// starvation guard moves a queue thread back to the normal class while a
// busy thread of the normal class holds its CPU.
func TestRingSchedIdle(t *testing.T) {
	s, _ := mountT(t, helloFS(), session.Options{Server: noCache, Uring: &ring.Options{SchedIdle: true}})
	path := filepath.Join(s.Dir(), "greeting")
	nq := s.Ring().Stats().Queues
	idle := 0
	for _, tids := range queueThreads(t) {
		for _, tid := range tids {
			if p, err := schedPolicy(tid); err == nil && p == unix.SCHED_IDLE {
				idle++
			}
		}
	}
	// Under load (other test binaries, compilers) the guard may already
	// have lifted a queue thread back into the normal class.
	if d := int(s.Ring().Stats().Demotions); idle > nq || idle+d < nq {
		t.Errorf("%d SCHED_IDLE pinned threads and %d demotions, want one such thread per queue (%d)", idle, d, nq)
	}
	onCPUs(t, nq, func(int) error { return statN(path, 200) })
	if st := s.Server().Stats(); st.Requests("uring", "GETATTR") < uint64(nq*200) {
		t.Errorf("%d GETATTR on the ring", st.Requests("uring", "GETATTR"))
	}

	// A spinning thread pinned to CPU 0 next to a client on CPU 0: the
	// queue thread of CPU 0 waits for its CPU, and the guard must lift it.
	stop := make(chan struct{})
	spinning := make(chan struct{})
	go func() {
		lockPin(t, 0)
		close(spinning)
		for {
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	<-spinning
	before := s.Ring().Stats().Demotions
	deadline := time.Now().Add(20 * time.Second)
	withWatchdog(t, s, time.Minute, func() {
		onCPUsN(t, 1, 2, func(int) error {
			for s.Ring().Stats().Demotions == before && time.Now().Before(deadline) {
				if err := statN(path, 50); err != nil {
					return err
				}
			}
			return nil
		})
	})
	close(stop)
	if d := s.Ring().Stats().Demotions; d == before {
		t.Errorf("the starvation guard never lifted the queue thread of CPU 0 while a normal thread spun there")
	}
}

// lockPin locks the calling goroutine to its thread and pins the thread to
// cpu; the thread ends with the goroutine (it never unlocks).
func lockPin(t *testing.T, cpu int) {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		t.Errorf("pin to CPU %d: %v", cpu, err)
	}
}
