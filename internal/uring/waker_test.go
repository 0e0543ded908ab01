//go:build linux

package uring

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newWaker(t testing.TB) *Waker {
	t.Helper()
	w, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Waker.Close: %v", err)
		}
	})
	return w
}

const wakeTag = 1 << 63

// TestWakerMPSC runs the documented pattern: producers push to a queue and
// Wake; the owner, blocked in SubmitAndWait on a locked thread, re-arms then
// drains. Every item must arrive.
func TestWakerMPSC(t *testing.T) {
	const producers, perProducer = 4, 200
	w := newWaker(t)

	var mu sync.Mutex
	var queue []int
	received := make(chan int, 1)
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		r, err := New(8, &Options{SingleIssuer: true, DeferTaskrun: true})
		if err != nil {
			ready <- err
			return
		}
		defer r.Close()
		if err := r.ArmWaker(w, wakeTag); err != nil {
			ready <- err
			return
		}
		ready <- nil
		got, wakes := 0, 0
		var dst [8]CQE
		for got < producers*perProducer {
			if _, err := r.SubmitAndWait(1); err != nil {
				t.Errorf("SubmitAndWait: %v", err)
				break
			}
			for _, c := range dst[:r.ReapCQEs(dst[:])] {
				if c.UserData != wakeTag || c.Res&unix.POLLIN == 0 {
					t.Errorf("unexpected CQE %+v", c)
					continue
				}
				wakes++
				if err := r.ArmWaker(w, wakeTag); err != nil {
					t.Errorf("ArmWaker: %v", err)
				}
				mu.Lock()
				got += len(queue)
				queue = queue[:0]
				mu.Unlock()
			}
		}
		t.Logf("%d items in %d wake-ups", got, wakes)
		received <- got
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				mu.Lock()
				queue = append(queue, p*perProducer+i)
				mu.Unlock()
				if err := w.Wake(); err != nil {
					t.Errorf("Wake: %v", err)
				}
				if i%8 == 0 {
					// Give the owner time to wake, so that re-arming
					// runs many times rather than once.
					time.Sleep(100 * time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	select {
	case got := <-received:
		if got != producers*perProducer {
			t.Fatalf("received %d items, want %d", got, producers*perProducer)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("owner never received all items: a wake-up was lost")
	}
}

// TestWaitSurvivesSignals blocks the owner in SubmitAndWait while its thread
// is hit by signals and the runtime collects garbage. The wait must neither
// fail nor return before the wake-up.
func TestWaitSurvivesSignals(t *testing.T) {
	w := newWaker(t)
	var woken atomic.Bool
	tidc := make(chan int, 1)
	type result struct {
		cqe   CQE
		eintr uint64
		err   error
		early bool
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		r, err := New(8, &Options{CoopTaskrun: true})
		if err != nil {
			tidc <- -1
			done <- result{err: err}
			return
		}
		defer r.Close()
		// The POLL_ADD is submitted by the same call that waits, so a
		// signal can also land between the submit and the wait.
		if err := r.ArmWaker(w, wakeTag); err != nil {
			tidc <- -1
			done <- result{err: err}
			return
		}
		tidc <- unix.Gettid()
		_, err = r.SubmitAndWait(1)
		res := result{err: err, eintr: r.eintr, early: !woken.Load()}
		res.cqe, _ = r.peekCQE()
		done <- res
	}()
	tid := <-tidc
	if tid < 0 {
		res := <-done
		if errors.Is(res.err, ErrNotSupported) {
			t.Skip(res.err)
		}
		t.Fatal(res.err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { // garbage and GC cycles
			var sink [][]byte
			for {
				select {
				case <-stop:
					return
				default:
				}
				sink = append(sink, make([]byte, 4096))
				if len(sink) > 256 {
					sink = nil
					runtime.GC()
				}
			}
		})
	}
	pid := unix.Getpid()
	for range 300 {
		// SIGURG is Go's preemption signal; the runtime ignores stray
		// ones, but they interrupt io_uring_enter.
		if err := unix.Tgkill(pid, tid, unix.SIGURG); err != nil {
			t.Fatalf("tgkill: %v", err)
		}
		time.Sleep(200 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	woken.Store(true)
	if err := w.Wake(); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("SubmitAndWait: %v", res.err)
		}
		if res.early {
			t.Fatalf("SubmitAndWait returned before the wake-up (CQE %+v)", res.cqe)
		}
		if res.cqe.UserData != wakeTag {
			t.Fatalf("CQE %+v, want the wake tag", res.cqe)
		}
		t.Logf("io_uring_enter interrupted %d times", res.eintr)
		if res.eintr == 0 {
			t.Errorf("no EINTR observed: the retry path did not run")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("owner not woken")
	}
}

func TestWakerClose(t *testing.T) {
	w, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Wake(); !errors.Is(err, ErrClosed) {
		t.Errorf("Wake after Close: %v", err)
	}
}
