package ring

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKernelRingWakeAfterReap checks the waker contract of the kernel ring:
// a Wake made after Reap and before the next SubmitAndWait ends that wait.
// The pool depends on it: it hands back an entry and wakes the queue at any
// moment, also just after the queue looked at its hand-back list.
func TestKernelRingWakeAfterReap(t *testing.T) {
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(null)
	type result struct {
		round int
		err   error
	}
	const rounds = 50
	waits := make(chan result)
	next := make(chan struct{})
	var k QueueRing
	ready := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var err error
		k, err = NewKernelRing(RingConfig{Fd: null, Depth: 2})
		ready <- err
		if err != nil {
			return
		}
		defer k.Close()
		var dst [4]Completion
		for i := range rounds {
			// The other side Wakes between our Reap and our wait.
			next <- struct{}{}
			<-next
			err := k.SubmitAndWait()
			if n := k.Reap(dst[:]); n != 0 {
				t.Errorf("round %d: %d completions on a ring with no commands", i, n)
			}
			waits <- result{i, err}
		}
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	for i := range rounds {
		<-next
		if err := k.Wake(); err != nil {
			t.Fatal(err)
		}
		next <- struct{}{}
		select {
		case r := <-waits:
			if r.err != nil {
				t.Fatalf("round %d: %v", r.round, r.err)
			}
		case <-time.After(5 * time.Second):
			_ = k.Wake() // rescue the queue goroutine
			t.Fatalf("round %d: a Wake made between Reap and SubmitAndWait was lost", i)
		}
	}
}
