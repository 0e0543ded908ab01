package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/creds"
)

// reqCtx is the context.Context of the request a worker is serving. It is
// reused from request to request, so a request costs no allocation; the
// done channel is only made if a filesystem asks for it.
type reqCtx struct {
	unique   atomic.Uint64 // request being served, 0 when idle
	caller   ringfuse.Caller
	dirty    atomic.Bool // done made or canceled: reset before reuse
	mu       sync.Mutex
	done     chan struct{}
	canceled bool

	// owned says the worker's goroutine keeps its OS thread for good
	// (Worker.OwnThread); thread then records that thread's credentials.
	owned  bool
	thread creds.Thread
}

var _ context.Context = (*reqCtx)(nil)

func (c *reqCtx) begin(unique uint64, caller ringfuse.Caller) {
	c.caller = caller
	if c.dirty.Load() {
		c.mu.Lock()
		c.done = nil
		c.canceled = false
		// Under mu: an interrupt that sets dirty after this reset must
		// not see it cleared.
		c.dirty.Store(false)
		c.mu.Unlock()
	}
	c.unique.Store(unique)
}

func (c *reqCtx) end() { c.unique.Store(0) }

// interrupt cancels the context if it is serving unique.
func (c *reqCtx) interrupt(unique uint64) bool {
	if unique == 0 || c.unique.Load() != unique {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Mark the context dirty before checking unique again: if the worker
	// ends this request after the check, its next begin then sees dirty
	// and waits for mu, so the cancellation cannot leak into the next
	// request. A spurious mark only costs that begin a lock.
	c.dirty.Store(true)
	if c.unique.Load() != unique || c.canceled {
		return false
	}
	c.canceled = true
	if c.done != nil {
		close(c.done)
	}
	return true
}

// Caller implements the interface ringfuse.CallerOf looks for.
func (c *reqCtx) Caller() ringfuse.Caller { return c.caller }

// CredThread names the OS thread serving the request to package creds, if
// the worker's goroutine keeps it for good, so that a caller's credentials
// may stay on it from one request to the next.
func (c *reqCtx) CredThread() *creds.Thread {
	if c.owned {
		return &c.thread
	}
	return nil
}

// Deadline implements context.Context: requests have none.
func (c *reqCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context; INTERRUPT closes the channel.
func (c *reqCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.canceled {
			close(c.done)
		}
		c.dirty.Store(true)
	}
	return c.done
}

// Err implements context.Context.
func (c *reqCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.canceled {
		return context.Canceled
	}
	return nil
}

// reqCtxKey finds the request's context under contexts derived from it
// (notifications check which request sends them).
type reqCtxKey struct{}

// Value implements context.Context; request contexts carry no values of
// the filesystem's.
func (c *reqCtx) Value(key any) any {
	if _, ok := key.(reqCtxKey); ok { // not ==: a key may be uncomparable
		return c
	}
	return nil
}
