package server

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// Read modes of ctxFS, chosen by the READ's file handle.
const (
	ctxBlock      = 1 // hand the context to the test, wait for cancellation
	ctxLateDone   = 2 // hand the context over, wait for a go-ahead, then call Done
	ctxInspect    = 3 // record the context's state and return
	ctxBlockAgain = 4 // like ctxBlock
)

// ctxFS is a filesystem whose READ shows the test its context.
type ctxFS struct {
	*unitFS
	entered chan context.Context
	proceed chan struct{}
	result  chan ctxState
}

// ctxState is what a READ saw of its context.
type ctxState struct {
	err    error
	closed bool // Done() was closed
	caller ringfuse.Caller
}

func doneClosed(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

func (f *ctxFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	switch fh {
	case ctxBlock, ctxBlockAgain:
		done := ctx.Done()
		f.entered <- ctx
		<-done
		f.result <- ctxState{err: ctx.Err(), closed: true, caller: ringfuse.CallerOf(ctx)}
		return 0, syscall.EINTR
	case ctxLateDone:
		f.entered <- ctx
		<-f.proceed
		f.result <- ctxState{err: ctx.Err(), closed: doneClosed(ctx)}
		return 0, syscall.EINTR
	}
	f.result <- ctxState{err: ctx.Err(), closed: doneClosed(ctx), caller: ringfuse.CallerOf(ctx)}
	return 0, 0
}

func newCtxFS() *ctxFS {
	return &ctxFS{unitFS: newUnitFS(), entered: make(chan context.Context),
		proceed: make(chan struct{}), result: make(chan ctxState, 1)}
}

// interrupt has worker h send INTERRUPT for unique.
func (h *harness) interrupt(unique uint64) Reply {
	in := wire.InterruptIn{Unique: unique}
	return h.send(wire.FUSE_INTERRUPT, 0, wire.AsBytes(&in))
}

// startRead serves a READ with file handle mode and unique on h's worker in
// a goroutine; the reply arrives on the returned channel.
func (h *harness) startRead(unique, mode uint64) <-chan Reply {
	msg := reqMsg(nil, wire.FUSE_READ, unique, wire.FUSE_ROOT_ID, wire.AsBytes(&wire.ReadIn{Fh: mode, Size: 16}))
	ch := make(chan Reply, 1)
	go func() { ch <- h.w.HandleDev(msg, h.out) }()
	return ch
}

func TestInterruptClosesDone(t *testing.T) {
	fsys := newCtxFS()
	a := newHarness(t, fsys, nil)
	b := a.fork("other")
	const unique = 1 << 40

	replies := a.startRead(unique, ctxBlock)
	ctx := <-fsys.entered
	if doneClosed(ctx) || ctx.Err() != nil {
		t.Fatalf("context canceled before any INTERRUPT: %v", ctx.Err())
	}
	if _, ok := ctx.Deadline(); ok || ctx.Value("key") != nil {
		t.Errorf("request context has a deadline or values")
	}

	// INTERRUPTs for requests that are not in flight change nothing.
	for _, u := range []uint64{unique + 1, unique - 1, 0, a.unique.Load()} {
		if rep := b.interrupt(u); !rep.None || rep.Error != 0 {
			t.Errorf("INTERRUPT for %d: %+v, want Reply.None", u, rep)
		}
		if doneClosed(ctx) || ctx.Err() != nil {
			t.Fatalf("INTERRUPT for unique %d canceled request %d", u, unique)
		}
	}

	// The INTERRUPT for it, on another worker, cancels it at once.
	if rep := b.interrupt(unique); !rep.None || rep.Error != 0 {
		t.Errorf("INTERRUPT: %+v, want Reply.None", rep)
	}
	if !doneClosed(ctx) {
		t.Fatalf("Done() still open once the INTERRUPT was handled")
	}
	st := <-fsys.result
	if st.err != context.Canceled {
		t.Errorf("Err() = %v after INTERRUPT, want context.Canceled", st.err)
	}
	if want := (ringfuse.Caller{UID: testUID, GID: testGID, PID: testPID}); st.caller != want {
		t.Errorf("CallerOf = %+v, want %+v", st.caller, want)
	}
	if rep := <-replies; rep.Error != -int32(syscall.EINTR) || rep.Unique != unique {
		t.Errorf("interrupted READ: %+v, want EINTR", rep)
	}
	// A second INTERRUPT for the finished request does nothing.
	b.interrupt(unique)

	// The next request on the worker starts with a fresh context.
	replies = a.startRead(unique+2, ctxInspect)
	st = <-fsys.result
	if st.err != nil || st.closed {
		t.Errorf("next request: Err() = %v, Done closed %v; want a live context", st.err, st.closed)
	}
	<-replies

	// And it can be interrupted too: the reset context still works.
	replies = a.startRead(unique+3, ctxBlockAgain)
	ctx = <-fsys.entered
	b.interrupt(unique + 3)
	if st := <-fsys.result; st.err != context.Canceled || !doneClosed(ctx) {
		t.Errorf("second interrupted READ: %+v", st)
	}
	<-replies

	if n := b.srv.Stats().Requests("other", "INTERRUPT"); n != 7 {
		t.Errorf("%d INTERRUPTs counted, want 7", n)
	}
}

// TestInterruptBeforeDone: a request interrupted before it asked for
// Done() gets a channel that is already closed.
func TestInterruptBeforeDone(t *testing.T) {
	fsys := newCtxFS()
	a := newHarness(t, fsys, nil)
	b := a.fork("other")
	replies := a.startRead(500, ctxLateDone)
	<-fsys.entered
	b.interrupt(500)
	fsys.proceed <- struct{}{}
	if st := <-fsys.result; st.err != context.Canceled || !st.closed {
		t.Errorf("interrupted before Done(): Err() = %v, Done closed %v", st.err, st.closed)
	}
	<-replies

	// The next request is not canceled, and Done() was never made.
	replies = a.startRead(501, ctxInspect)
	if st := <-fsys.result; st.err != nil || st.closed {
		t.Errorf("next request: Err() = %v, Done closed %v", st.err, st.closed)
	}
	<-replies
}

// TestInterruptOnlyItsRequest has one worker serve a stream of requests
// while another sends INTERRUPTs for the request being served. No request
// may see a cancellation that was meant for another.
func TestInterruptOnlyItsRequest(t *testing.T) {
	const requests = 20000
	var (
		current  atomic.Uint64 // unique the filesystem is serving
		targeted sync.Map      // uniques an INTERRUPT was sent for
		wrong    atomic.Int64
	)
	fsys := &spyFS{unitFS: newUnitFS(), check: func(ctx context.Context, unique uint64) {
		current.Store(unique)
		for range 20 {
			if ctx.Err() != nil {
				if _, ok := targeted.Load(unique); !ok {
					wrong.Add(1)
				}
				return
			}
		}
	}}
	a := newHarness(t, fsys, nil)
	b := a.fork("other")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if u := current.Load(); u != 0 {
				targeted.Store(u, true)
				b.interrupt(u)
			}
		}
	}()
	msg := make([]byte, 0, 128)
	var in wire.GetattrIn
	for u := uint64(1 << 50); u < 1<<50+requests; u++ {
		msg = reqMsg(msg, wire.FUSE_GETATTR, u, wire.FUSE_ROOT_ID, wire.AsBytes(&in))
		a.w.HandleDev(msg, a.out)
	}
	close(stop)
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d requests saw a cancellation meant for an earlier request", n)
	}
}

// spyFS calls check with each GETATTR's context and unique.
type spyFS struct {
	*unitFS
	check func(ctx context.Context, unique uint64)
}

func (f *spyFS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	f.check(ctx, ctx.(*reqCtx).unique.Load())
	return f.unitFS.GetAttr(ctx, n, fh, hasFh, out)
}
