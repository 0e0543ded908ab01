//go:build linux

package uring

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newRing creates a ring that is closed when the test ends. It skips only when
// io_uring itself is unavailable, and says why.
func newRing(t testing.TB, entries uint32, opts *Options) *Ring {
	t.Helper()
	r, err := New(entries, opts)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("needs io_uring: %v", err)
	}
	if err != nil {
		t.Fatalf("New(%d, %+v): %v", entries, opts, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// lockThread pins the test goroutine to its OS thread for the rest of the
// test, as a ring owner must be.
func lockThread(t testing.TB) {
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
}

func queueNop(t testing.TB, r *Ring, ud uint64) {
	t.Helper()
	sqe := r.NextSQE()
	if sqe == nil {
		t.Fatalf("NextSQE: SQ full")
	}
	sqe.prepNop(ud)
}

// waitCQE submits, waits for one CQE and consumes it.
func waitCQE(t testing.TB, r *Ring) CQE {
	t.Helper()
	if _, err := r.SubmitAndWait(1); err != nil {
		t.Fatalf("SubmitAndWait: %v", err)
	}
	cqe, ok := r.peekCQE()
	if !ok {
		t.Fatalf("peekCQE: CQ empty after SubmitAndWait(1)")
	}
	r.advanceCQ(1)
	return cqe
}

func nopRoundTrip(t testing.TB, r *Ring, ud uint64) {
	t.Helper()
	queueNop(t, r, ud)
	cqe := waitCQE(t, r)
	if cqe.UserData != ud || cqe.Res != 0 {
		t.Fatalf("CQE = %+v, want user_data %d res 0", cqe, ud)
	}
}

func TestNopRoundTrip(t *testing.T) {
	r := newRing(t, 8, nil)
	t.Logf("kernel %s; features %#x; sq %d cq %d", uname(), r.Features(), r.sqEntries, r.CQEntries())
	if r.sqEntries != 8 || r.CQEntries() != 16 {
		t.Errorf("sizes sq %d cq %d, want 8 and 16", r.sqEntries, r.CQEntries())
	}
	if r.flags&IORING_SETUP_SQE128 == 0 {
		t.Errorf("ring lacks IORING_SETUP_SQE128")
	}
	queueNop(t, r, 0xdeadbeefcafe)
	n, err := r.SubmitAndWait(1)
	if err != nil || n != 1 {
		t.Fatalf("SubmitAndWait(1) = %d, %v; want 1, nil", n, err)
	}
	cqe, ok := r.peekCQE()
	if !ok || cqe.UserData != 0xdeadbeefcafe || cqe.Res != 0 {
		t.Fatalf("peekCQE = %+v, %v", cqe, ok)
	}
	r.advanceCQ(1)
	if _, ok := r.peekCQE(); ok || r.cqReady() != 0 {
		t.Errorf("CQ not empty after advanceCQ")
	}
	// Nothing pending: Submit must be a no-op.
	if n, err := r.Submit(); n != 0 || err != nil {
		t.Errorf("empty Submit = %d, %v", n, err)
	}
}

// TestNopBatch fills the whole SQ each round, so ring indices wrap many times.
func TestNopBatch(t *testing.T) {
	r := newRing(t, 16, &Options{CQEntries: 64})
	var ud uint64
	seen := make(map[uint64]bool)
	dst := make([]CQE, 5) // smaller than a batch: ReapCQEs must be called repeatedly
	for round := range 20 {
		first := ud
		for {
			sqe := r.NextSQE()
			if sqe == nil {
				break
			}
			sqe.prepNop(ud)
			ud++
		}
		if got := ud - first; got != uint64(r.sqEntries) {
			t.Fatalf("round %d: NextSQE gave %d slots, want %d", round, got, r.sqEntries)
		}
		n, err := r.SubmitAndWait(r.sqEntries)
		if err != nil || n != int(r.sqEntries) {
			t.Fatalf("round %d: SubmitAndWait = %d, %v", round, n, err)
		}
		for got := 0; got < int(r.sqEntries); {
			k := r.ReapCQEs(dst)
			if k == 0 {
				t.Fatalf("round %d: CQ empty after %d of %d", round, got, r.sqEntries)
			}
			for _, c := range dst[:k] {
				if c.Res != 0 || c.UserData < first || c.UserData >= ud || seen[c.UserData] {
					t.Fatalf("round %d: unexpected CQE %+v", round, c)
				}
				seen[c.UserData] = true
			}
			got += k
		}
	}
	if len(seen) != int(ud) {
		t.Errorf("saw %d distinct CQEs, want %d", len(seen), ud)
	}
}

func TestCQSize(t *testing.T) {
	r := newRing(t, 4, &Options{CQEntries: 100})
	if r.sqEntries != 4 || r.CQEntries() != 128 {
		t.Errorf("sq %d cq %d, want 4 and 128 (rounded up)", r.sqEntries, r.CQEntries())
	}
	if _, err := New(64, &Options{CQEntries: 8}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("CQEntries < entries: err = %v, want EINVAL", err)
	}
	if _, err := New(0, nil); !errors.Is(err, unix.EINVAL) {
		t.Errorf("New(0): err = %v, want EINVAL", err)
	}
}

// TestCQOverflow completes four times more NOPs than the CQ holds before
// reaping anything. With IORING_FEAT_NODROP the kernel parks the excess in its
// overflow list and raises IORING_SQ_CQ_OVERFLOW; older kernels answered
// EBUSY instead. Either way nothing may be lost.
func TestCQOverflow(t *testing.T) {
	r := newRing(t, 8, &Options{CQEntries: 8})
	total := 4 * int(r.CQEntries())
	queued, busy := 0, 0
	for queued < total {
		for queued < total {
			sqe := r.NextSQE()
			if sqe == nil {
				break
			}
			sqe.prepNop(uint64(queued))
			queued++
		}
		if _, err := r.Submit(); errors.Is(err, unix.EBUSY) {
			busy++
			break // the remaining SQEs stay queued; reap below
		} else if err != nil {
			t.Fatalf("Submit: %v", err)
		}
	}
	overflowFlag := atomic.LoadUint32(r.sqFlags)&IORING_SQ_CQ_OVERFLOW != 0
	t.Logf("NODROP=%v CQ_OVERFLOW flag=%v EBUSY=%d ready=%d",
		r.Features()&IORING_FEAT_NODROP != 0, overflowFlag, busy, r.cqReady())
	if r.cqReady() != r.CQEntries() {
		t.Errorf("CQ holds %d, want it full (%d)", r.cqReady(), r.CQEntries())
	}

	seen := make([]bool, total)
	got := 0
	dst := make([]CQE, 3)
	for spins := 0; got < total; spins++ {
		if spins > 10*total {
			t.Fatalf("only %d of %d CQEs after %d passes", got, total, spins)
		}
		// Submit both pushes still-queued SQEs and, seeing
		// IORING_SQ_CQ_OVERFLOW, flushes the overflow list into the CQ.
		if _, err := r.Submit(); err != nil && !errors.Is(err, unix.EBUSY) {
			t.Fatalf("Submit while draining: %v", err)
		}
		for {
			k := r.ReapCQEs(dst)
			if k == 0 {
				break
			}
			for _, c := range dst[:k] {
				if c.Res != 0 || c.UserData >= uint64(total) || seen[c.UserData] {
					t.Fatalf("unexpected CQE %+v", c)
				}
				seen[c.UserData] = true
				got++
			}
		}
	}
	if r.overflow() != 0 {
		t.Errorf("kernel dropped %d CQEs", r.overflow())
	}
	if atomic.LoadUint32(r.sqFlags)&IORING_SQ_CQ_OVERFLOW != 0 {
		t.Errorf("IORING_SQ_CQ_OVERFLOW still set after draining")
	}
}

func TestSQFull(t *testing.T) {
	r := newRing(t, 2, nil)
	w := newWaker(t)
	queueNop(t, r, 1)
	queueNop(t, r, 2)
	if r.NextSQE() != nil {
		t.Fatalf("NextSQE on a full SQ returned a slot")
	}
	if err := r.ArmWaker(w, 3); !errors.Is(err, ErrSQFull) {
		t.Fatalf("ArmWaker on a full SQ: %v, want ErrSQFull", err)
	}
	if n, err := r.SubmitAndWait(2); n != 2 || err != nil {
		t.Fatalf("SubmitAndWait(2) = %d, %v", n, err)
	}
	r.advanceCQ(100) // clamps to the 2 ready
	if r.cqReady() != 0 {
		t.Fatalf("cqReady = %d after advanceCQ", r.cqReady())
	}
	nopRoundTrip(t, r, 4)
}

func TestClose(t *testing.T) {
	r, err := New(4, nil)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("needs io_uring: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	fd := r.Fd()
	queueNop(t, r, 1) // an unsubmitted SQE must not upset Close
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if r.Fd() != -1 {
		t.Errorf("Fd after Close = %d", r.Fd())
	}
	if err := unix.Fstat(fd, new(unix.Stat_t)); !errors.Is(err, unix.EBADF) {
		t.Errorf("ring fd still open after Close: %v", err)
	}
	if r.NextSQE() != nil {
		t.Errorf("NextSQE after Close returned a slot")
	}
	if _, err := r.Submit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
	if _, err := r.SubmitAndWait(1); !errors.Is(err, ErrClosed) {
		t.Errorf("SubmitAndWait after Close: %v", err)
	}
	if _, ok := r.peekCQE(); ok || r.ReapCQEs(make([]CQE, 1)) != 0 || r.cqReady() != 0 {
		t.Errorf("CQ access after Close returned data")
	}
	r.advanceCQ(1)
	if err := r.RegisterFiles([]int32{0}); !errors.Is(err, ErrClosed) {
		t.Errorf("RegisterFiles after Close: %v", err)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"SingleIssuer", Options{SingleIssuer: true}},
		{"DeferTaskrun", Options{SingleIssuer: true, DeferTaskrun: true}},
		{"CoopTaskrun", Options{CoopTaskrun: true}},
		{"CoopTaskrun+SingleIssuer", Options{CoopTaskrun: true, SingleIssuer: true}},
		{"SubmitAll", Options{SubmitAll: true}},
		{"SQPoll", Options{SQPoll: true, SQThreadIdle: 2 * time.Millisecond}},
		{"SQPoll+SingleIssuer", Options{SQPoll: true, SingleIssuer: true, SQThreadIdle: time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// DEFER_TASKRUN runs completions only for the thread that
			// created the ring, so create, submit and reap on one thread.
			lockThread(t)
			r := newRing(t, 8, &tt.opts)
			for i := range 3 {
				nopRoundTrip(t, r, uint64(100+i))
			}
			queueNop(t, r, 1)
			queueNop(t, r, 2)
			if _, err := r.SubmitAndWait(2); err != nil {
				t.Fatal(err)
			}
			if r.ReapCQEs(make([]CQE, 4)) != 2 {
				t.Fatalf("batch: CQ lacks 2 CQEs")
			}
			// A completion that goes through task work (a poll), reaped
			// with Submit and peekCQE only, never a wait: with
			// DeferTaskrun or CoopTaskrun it shows up only because the
			// kernel raises IORING_SQ_TASKRUN and Submit enters for it.
			w := newWaker(t)
			if err := r.ArmWaker(w, wakeTag); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			if err := w.Wake(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for r.cqReady() == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("poll CQE never became visible through Submit (sq flags %#x)",
						atomic.LoadUint32(r.sqFlags))
				}
				if _, err := r.Submit(); err != nil {
					t.Fatal(err)
				}
			}
			if c := waitCQE(t, r); c.UserData != wakeTag {
				t.Fatalf("CQE %+v, want the wake tag", c)
			}
			if tt.opts.SQPoll {
				// Let the SQPOLL thread go idle so the next Submit must
				// wake it with IORING_ENTER_SQ_WAKEUP.
				deadline := time.Now().Add(5 * time.Second)
				for atomic.LoadUint32(r.sqFlags)&IORING_SQ_NEED_WAKEUP == 0 {
					if time.Now().After(deadline) {
						t.Fatalf("SQPOLL thread never set IORING_SQ_NEED_WAKEUP")
					}
					time.Sleep(time.Millisecond)
				}
				queueNop(t, r, 7)
				if n, err := r.Submit(); n != 1 || err != nil {
					t.Fatalf("Submit to a sleeping SQPOLL thread = %d, %v", n, err)
				}
				if c := waitCQE(t, r); c.UserData != 7 {
					t.Fatalf("CQE %+v, want user_data 7", c)
				}
			}
		})
	}
}

func TestOptionsInvalid(t *testing.T) {
	if _, err := New(8, &Options{DeferTaskrun: true}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("DeferTaskrun without SingleIssuer: %v, want EINVAL", err)
	}
	if _, err := New(8, &Options{SQPoll: true, SQThreadIdle: -time.Second}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("negative SQThreadIdle: %v, want EINVAL", err)
	}
	// The kernel refuses task-run flags with SQPOLL.
	if _, err := New(8, &Options{SQPoll: true, CoopTaskrun: true}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("SQPoll+CoopTaskrun: %v, want EINVAL", err)
	}
}

// TestSingleIssuerOtherThread documents the kernel rule Options.SingleIssuer
// relies on: the ring belongs to the thread that created it.
func TestSingleIssuerOtherThread(t *testing.T) {
	lockThread(t)
	r := newRing(t, 4, &Options{SingleIssuer: true})
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		queueNop(t, r, 1)
		_, err := r.Submit()
		errc <- err
		errc <- r.RegisterFiles([]int32{-1})
	}()
	if err := <-errc; !errors.Is(err, unix.EEXIST) {
		t.Fatalf("Submit from another thread: %v, want EEXIST", err)
	}
	if err := <-errc; !errors.Is(err, unix.EEXIST) {
		t.Fatalf("RegisterFiles from another thread: %v, want EEXIST", err)
	}
	// The SQE stays queued and the owner thread can still submit it.
	if c := waitCQE(t, r); c.UserData != 1 {
		t.Fatalf("CQE %+v, want user_data 1", c)
	}
}

// TestURingCmdErrors sends URING_CMDs the kernel must refuse: each must end in
// a negative res, not a failed submit or a crash.
func TestURingCmdErrors(t *testing.T) {
	r := newRing(t, 8, nil)
	w := newWaker(t)
	tests := []struct {
		name  string
		fd    int32
		flags uint8
		want  unix.Errno
	}{
		{"invalid fd", -1, 0, unix.EBADF},
		{"eventfd has no uring_cmd", int32(w.Fd()), 0, unix.EOPNOTSUPP},
		{"fixed file without a table", 0, IOSQE_FIXED_FILE, unix.EBADF},
	}
	for i, tt := range tests {
		sqe := r.NextSQE()
		sqe.PrepURingCmd(tt.fd, 1, uint64(i))
		sqe.Flags = tt.flags
		sqe.Cmd()[0] = 0xff
		c := waitCQE(t, r)
		if c.UserData != uint64(i) || c.Res >= 0 {
			t.Errorf("%s: CQE %+v, want a negative res", tt.name, c)
		} else if got := unix.Errno(-c.Res); got != tt.want {
			t.Logf("%s: res %v (expected %v)", tt.name, got, tt.want)
		}
	}
}

func TestRegisterFiles(t *testing.T) {
	r := newRing(t, 8, nil)
	w := newWaker(t)
	if err := r.RegisterFiles([]int32{-1, int32(w.Fd())}); err != nil {
		t.Fatalf("RegisterFiles: %v", err)
	}
	if err := r.RegisterFiles([]int32{int32(w.Fd())}); !errors.Is(err, unix.EBUSY) {
		t.Errorf("second RegisterFiles: %v, want EBUSY", err)
	}
	// Poll the eventfd through its fixed-file index 1.
	sqe := r.NextSQE()
	sqe.PrepPollAdd(1, unix.POLLIN, 77)
	sqe.Flags |= IOSQE_FIXED_FILE
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Wake(); err != nil {
		t.Fatal(err)
	}
	if c := waitCQE(t, r); c.UserData != 77 || c.Res&unix.POLLIN == 0 {
		t.Fatalf("fixed-file poll CQE %+v, want user_data 77 with POLLIN", c)
	}
	if err := r.unregisterFiles(); err != nil {
		t.Fatalf("unregisterFiles: %v", err)
	}
	if err := r.RegisterFiles(nil); !errors.Is(err, unix.EINVAL) {
		t.Errorf("RegisterFiles(nil): %v, want EINVAL", err)
	}
}

// TestPrepRW reads a file into mmap'd memory, which the kernel may write
// after Submit returns.
func TestPrepRW(t *testing.T) {
	r := newRing(t, 4, nil)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("hello, ring"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(buf)
	r.NextSQE().PrepRW(false, int32(fd), buf, 7, 9)
	c := waitCQE(t, r)
	if c.UserData != 9 || c.Res != 4 || string(buf[:4]) != "ring" {
		t.Fatalf("read CQE %+v, data %q; want 4 bytes \"ring\"", c, buf[:4])
	}
}

func uname() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// TestZeroAllocs checks that the hot path (take an SQE, submit, wait, reap,
// wake and re-arm) does not allocate.
func TestZeroAllocs(t *testing.T) {
	lockThread(t)
	r := newRing(t, 8, &Options{SingleIssuer: true})
	w := newWaker(t)
	var dst [4]CQE
	allocs := testing.AllocsPerRun(200, func() {
		r.NextSQE().prepNop(1)
		if _, err := r.SubmitAndWait(1); err != nil {
			panic(err)
		}
		if r.ReapCQEs(dst[:]) != 1 {
			panic("no CQE")
		}
	})
	if allocs != 0 {
		t.Errorf("NOP round trip: %v allocs, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(200, func() {
		if err := r.ArmWaker(w, 2); err != nil {
			panic(err)
		}
		if err := w.Wake(); err != nil {
			panic(err)
		}
		if _, err := r.SubmitAndWait(1); err != nil {
			panic(err)
		}
		if c, ok := r.peekCQE(); !ok || c.UserData != 2 {
			panic("no wake CQE")
		}
		r.advanceCQ(1)
	})
	if allocs != 0 {
		t.Errorf("waker round trip: %v allocs, want 0", allocs)
	}
}

func BenchmarkNop(b *testing.B) {
	for _, batch := range []uint32{1, 16} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			r := newRing(b, 16, &Options{SingleIssuer: true, DeferTaskrun: true})
			dst := make([]CQE, batch)
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch {
					r.NextSQE().prepNop(uint64(i))
				}
				if _, err := r.SubmitAndWait(batch); err != nil {
					b.Fatal(err)
				}
				if r.ReapCQEs(dst) != int(batch) {
					b.Fatal("short reap")
				}
			}
			b.ReportMetric(float64(batch), "cqes/op")
		})
	}
}
