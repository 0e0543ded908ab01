//go:build linux

package ring_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/fs/hello"
	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
)

// These tests mount for real. Clients use raw blocking unix calls (never
// Go's netpoller, never a raw syscall that would hold a P while the server
// needs it).

// mountT mounts fsys with the ring channel under a temporary directory. Its
// cleanup unmounts, and fails the test if the mount, a goroutine or a
// descriptor is left behind.
func mountT(t testing.TB, fsys ringfuse.FileSystem, so session.Options) (*session.Session, *testmount.LogBuffer) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: ringfuse mounts with mount(2)")
	}
	testmount.LockUringParam(t, false)
	if on, err := mount.UringEnabled(); err != nil || !on {
		t.Fatalf("FUSE over io_uring is off (%v, %v): echo Y > %s", on, err, mount.EnableUringParam)
	}
	if so.Uring == nil {
		so.Uring = &ring.Options{}
	}
	lb := &testmount.LogBuffer{}
	so.Server.ErrorLog = log.New(lb, "", 0)
	dir := t.TempDir()
	goroutines, fds := runtime.NumGoroutine(), countFDs(t)
	s, err := session.Mount(dir, fsys, &so)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		checkGone(t, s, goroutines, fds)
		if t.Failed() {
			t.Logf("server log:\n%s", lb.String())
		}
	})
	return s, lb
}

// checkGone checks that the session left nothing behind.
func checkGone(t testing.TB, s *session.Session, goroutines, fds int) {
	t.Helper()
	if ok, _ := mount.IsMounted(s.Dir()); ok {
		t.Errorf("%s is still in /proc/mounts", s.Dir())
		_ = mount.ForceUnmount(s.Dir(), s.ConnID())
	}
	select {
	case <-s.Ring().Done():
	default:
		t.Error("ring channel not done after unmount")
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after unmount, %d before:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
	}
	if n := countFDs(t); n > fds {
		t.Errorf("%d descriptors open after unmount, %d before", n, fds)
	}
}

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1
}

// onCPUs runs f(i) on a goroutine pinned to CPU i, for every CPU i we may
// use among the first n, and waits for all. Each goroutine stays locked to
// its thread, which therefore ends with it, CPU mask and all.
func onCPUs(t testing.TB, n int, f func(cpu int) error) {
	t.Helper()
	onCPUsN(t, n, 1, f)
}

// onCPUsN is onCPUs with per goroutines on each CPU.
func onCPUsN(t testing.TB, n, per int, f func(cpu int) error) {
	t.Helper()
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n*per)
	for i := range n * per {
		cpu := i % n
		if !allowed.IsSet(cpu) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // never unlocked: the pinned thread exits with us
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				errs[i] = err
				return
			}
			errs[i] = f(cpu)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func helloFS() *hello.FS { return &hello.FS{Name: "greeting", Data: []byte("hello, world\n")} }

// noCache makes every stat reach the server.
var noCache = server.Options{AttrTimeout: -1, EntryTimeout: -1}

// statN stats path n times.
func statN(path string, n int) error {
	var st unix.Stat_t
	for range n {
		if err := unix.Stat(path, &st); err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
	}
	return nil
}

// checkDevfuseIdle checks that /dev/fuse carried only what 6.18 always
// sends there.
func checkDevfuseIdle(t testing.TB, st *server.Stats) {
	t.Helper()
	for op, n := range st.Channels["devfuse"].Requests {
		switch op {
		case "INIT", "FORGET", "BATCH_FORGET", "INTERRUPT":
		default:
			t.Errorf("/dev/fuse carried %d %s", n, op)
		}
	}
}

// TestRingCarriesRequests: stat, create, write, read and fstat from
// goroutines pinned to each CPU all travel on the ring, on every queue.
func TestRingCarriesRequests(t *testing.T) {
	src := t.TempDir()
	pfs, err := passthrough.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := mountT(t, pfs, session.Options{Server: noCache})
	t.Cleanup(func() { pfs.Close() }) // runs after the unmount
	nq := s.Ring().Stats().Queues
	data := bytes.Repeat([]byte("ring"), 16<<10)
	onCPUs(t, nq, func(cpu int) error {
		buf := make([]byte, len(data))
		for i := range 10 {
			name := filepath.Join(s.Dir(), fmt.Sprintf("f%d-%d", cpu, i))
			fd, err := unix.Open(name, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
			if err != nil {
				return fmt.Errorf("create: %w", err)
			}
			n, err := unix.Pwrite(fd, data, 0)
			if err == nil && n != len(data) {
				err = fmt.Errorf("short write %d", n)
			}
			if err == nil {
				n, err = unix.Pread(fd, buf, 0)
				if err == nil && !bytes.Equal(buf[:n], data) {
					err = fmt.Errorf("read back %d bytes that differ", n)
				}
			}
			var st unix.Stat_t
			if err == nil {
				err = unix.Fstat(fd, &st)
			}
			unix.Close(fd)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := statN(name, 5); err != nil {
				return err
			}
		}
		return nil
	})
	st := s.Server().Stats()
	for _, op := range []string{"LOOKUP", "GETATTR", "CREATE", "WRITE", "READ", "FLUSH", "RELEASE"} {
		if st.Requests("uring", op) == 0 {
			t.Errorf("no %s on the ring", op)
		}
	}
	checkDevfuseIdle(t, &st)
	cs := s.Ring().Stats()
	for qid, n := range cs.QueueCommits {
		if n == 0 {
			t.Errorf("queue %d carried nothing: %+v", qid, cs)
		}
	}
	if cs.RegisterFailures != 0 || cs.Stranded != 0 || cs.Registered != uint64(cs.Queues*cs.Depth) {
		t.Errorf("ring stats %+v", cs)
	}
	if _, err := os.ReadFile(filepath.Join(src, "f0-0")); err != nil {
		t.Errorf("backing file: %v", err)
	}
}

func TestRingQueueDepth(t *testing.T) {
	for _, depth := range []int{1, 8, 32} {
		t.Run(fmt.Sprint(depth), func(t *testing.T) {
			s, _ := mountT(t, helloFS(), session.Options{Server: noCache, Uring: &ring.Options{QueueDepth: depth}})
			path := filepath.Join(s.Dir(), "greeting")
			// More callers than entries on each queue.
			onCPUsN(t, s.Ring().Stats().Queues, 4, func(int) error { return statN(path, 200) })
			st := s.Server().Stats()
			if st.Requests("uring", "GETATTR") < 4*200 {
				t.Errorf("%d GETATTR on the ring", st.Requests("uring", "GETATTR"))
			}
			checkDevfuseIdle(t, &st)
			if cs := s.Ring().Stats(); cs.Depth != depth || cs.Registered != uint64(cs.Queues*depth) {
				t.Errorf("ring stats %+v", cs)
			}
		})
	}
}

// TestRingSetupFlags serves over rings made with each io_uring setup flag.
func TestRingSetupFlags(t *testing.T) {
	for name, o := range map[string]ring.Options{
		"SingleIssuer":              {SingleIssuer: true},
		"SingleIssuer+DeferTaskrun": {SingleIssuer: true, DeferTaskrun: true},
		"CoopTaskrun":               {CoopTaskrun: true},
		"SQPoll":                    {SQPoll: true, SQThreadIdle: 10 * time.Millisecond},
		"NoAffinity":                {NoAffinity: true},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := mountT(t, helloFS(), session.Options{Server: noCache, Uring: &o})
			path := filepath.Join(s.Dir(), "greeting")
			onCPUs(t, s.Ring().Stats().Queues, func(int) error { return statN(path, 50) })
			if err := s.Ring().Err(); err != nil {
				t.Fatal(err)
			}
			st := s.Server().Stats()
			if st.Requests("uring", "GETATTR") < 50 {
				t.Errorf("%d GETATTR on the ring", st.Requests("uring", "GETATTR"))
			}
			checkDevfuseIdle(t, &st)
		})
	}
}

// faultRing wraps the kernel ring and changes what REGISTER tells the
// kernel.
type faultRing struct {
	ring.QueueRing
	mangle func(e *ring.Entry)
}

func (f faultRing) Register(e *ring.Entry, flags uint64) error {
	e2 := *e
	f.mangle(&e2)
	return f.QueueRing.Register(&e2, flags)
}

// TestRingRegisterRefused: a REGISTER the kernel refuses makes the kernel
// serve over /dev/fuse, and the mount keeps working.
func TestRingRegisterRefused(t *testing.T) {
	for _, c := range []struct {
		name   string
		queues func(nq int) int // how many queues (from 0) get the fault
		mangle func(e *ring.Entry, nq int)
	}{
		// The kernel refuses a payload buffer shorter than
		// max_payload_sz with -EINVAL.
		{"short payload", func(nq int) int { return nq }, func(e *ring.Entry, _ int) { e.Payload = e.Payload[:len(e.Payload)-1] }},
		// Queue 0 registers with a qid beyond the last queue: refused,
		// while the other queues' entries are accepted and wait.
		{"bad qid", func(int) int { return 1 }, func(e *ring.Entry, nq int) { e.Qid = uint16(nq) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			nq := 0
			o := &ring.Options{QueueDepth: 2, NewRing: func(cfg ring.RingConfig) (ring.QueueRing, error) {
				r, err := ring.NewKernelRing(cfg)
				if err != nil || cfg.Qid >= c.queues(nq) {
					return r, err
				}
				return faultRing{r, func(e *ring.Entry) { c.mangle(e, nq) }}, nil
			}}
			var err error
			if nq, err = possibleCPUs(); err != nil {
				t.Fatal(err)
			}
			s, lb := mountT(t, helloFS(), session.Options{Server: noCache, Uring: o})
			path := filepath.Join(s.Dir(), "greeting")
			onCPUs(t, nq, func(int) error { return statN(path, 20) })
			if b, err := os.ReadFile(path); err != nil || string(b) != "hello, world\n" {
				t.Errorf("read: %q, %v", b, err)
			}
			st := s.Server().Stats()
			if st.Requests("devfuse", "GETATTR") < 20 || st.Requests("uring", "GETATTR") != 0 {
				t.Errorf("GETATTR on /dev/fuse %d, on the ring %d", st.Requests("devfuse", "GETATTR"), st.Requests("uring", "GETATTR"))
			}
			want := uint64(2 * c.queues(nq))
			deadline := time.Now().Add(5 * time.Second)
			for s.Ring().Stats().RegisterFailures < want && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			cs := s.Ring().Stats()
			if cs.RegisterFailures != want || cs.Registered != uint64(2*nq)-want {
				t.Errorf("ring stats %+v; want %d REGISTER failures", cs, want)
			}
			if n := strings.Count(lb.String(), "REGISTER refused: invalid argument; serving over /dev/fuse"); n != c.queues(nq) {
				t.Errorf("%d refusal lines, want one per faulty queue:\n%s", n, lb.String())
			}
		})
	}
}

func possibleCPUs() (int, error) { return ring.Machine{}.PossibleCPUs() }

// TestRingZeroAllocs: a request served over the real ring allocates
// nothing in the process (client fstat included).
func TestRingZeroAllocs(t *testing.T) {
	s, _ := mountT(t, helloFS(), session.Options{Server: noCache})
	fd, err := unix.Open(filepath.Join(s.Dir(), "greeting"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	before := s.Server().Stats().Requests("uring", "GETATTR")
	avg := testing.AllocsPerRun(2000, func() {
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
	})
	if n := s.Server().Stats().Requests("uring", "GETATTR") - before; n < 2000 {
		t.Fatalf("only %d GETATTR on the ring", n)
	}
	if avg >= 1 {
		t.Errorf("%v allocations per fstat round trip", avg)
	}
}

// BenchmarkStat: stat(2) from one goroutine pinned to each CPU, nothing
// cached, over /dev/fuse alone and over the ring.
//
//	go test -run XXX -bench Stat -benchtime 100000x ./channel/ring/
func BenchmarkStat(b *testing.B) {
	for _, c := range []struct {
		name  string
		uring *ring.Options
	}{{"devfuse", nil}, {"uring-depth8", &ring.Options{QueueDepth: 8}}} {
		b.Run(c.name, func(b *testing.B) {
			if os.Geteuid() != 0 {
				b.Skip("needs root")
			}
			testmount.LockUringParam(b, false)
			dir := b.TempDir()
			s, err := session.Mount(dir, helloFS(), &session.Options{Server: noCache, Uring: c.uring})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Unmount()
			path := filepath.Join(dir, "greeting")
			nq, _ := possibleCPUs()
			b.ReportAllocs()
			b.ResetTimer()
			onCPUs(b, nq, func(int) error { return statN(path, b.N/nq) })
			b.StopTimer()
			st := s.Server().Stats()
			b.ReportMetric(float64(st.Requests("uring", "GETATTR")+st.Requests("devfuse", "GETATTR"))/float64(b.N), "getattr/op")
		})
	}
}
