package ring

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// Errors of this package; match them with [errors.Is].
var (
	// ErrNotOffered means the kernel's INIT did not offer
	// FUSE_OVER_IO_URING: the fuse module parameter enable_uring was N
	// when the connection was made, or the kernel lacks
	// CONFIG_FUSE_IO_URING. The server then serves over /dev/fuse alone.
	ErrNotOffered = errors.New("ring: kernel did not offer FUSE_OVER_IO_URING")

	// ErrStopped is returned by Prepare after Stop, or on a second call.
	ErrStopped = errors.New("ring: channel stopped or already prepared")
)

// headerStride is the space each entry's header takes in a queue's mapping:
// fuse_uring_req_header (288 bytes) rounded up to whole cache lines.
const headerStride = 320

// Channel is the FUSE-over-io_uring channel of one connection; it
// implements [server.Transport]. Create it with [New], hand it to the
// server as server.Options.Transport, and call Stop once the /dev/fuse
// channel has ended (the connection is unmounted or aborted).
//
// Stop, Done, Err and Stats are safe for concurrent use.
type Channel struct {
	fd      int
	opts    Options
	host    Host
	newRing func(RingConfig) (QueueRing, error)

	mu       sync.Mutex // guards prepared, queues, prepErr and the stop/done transitions
	prepared bool
	prepErr  error
	queues   []*queue
	mem      [][]byte // one mapping per queue: headers, then payloads

	start     chan struct{}
	startOnce sync.Once
	stop      chan struct{}
	stopping  atomic.Bool
	wg        sync.WaitGroup // queue goroutines
	exited    chan struct{}  // closed once every queue goroutine has returned
	guardWG   sync.WaitGroup // the starvation guard (Options.SchedIdle)
	done      chan struct{}
}

var _ server.Transport = (*Channel)(nil)

// New returns a channel that will serve over io_uring on the /dev/fuse
// descriptor fd. Nothing happens until the server calls Prepare at INIT. A
// nil opts means the zero [Options]. The channel does not own fd.
func New(fd int, opts *Options) *Channel {
	c := &Channel{
		fd:     fd,
		start:  make(chan struct{}),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
		done:   make(chan struct{}),
	}
	if opts != nil {
		c.opts = *opts
	}
	c.newRing = c.opts.NewRing
	c.host = c.opts.Host
	if c.host == nil {
		c.host = Machine{}
	}
	if c.newRing == nil {
		c.newRing = NewKernelRing
	}
	return c
}

// Prepare implements [server.Transport]. It checks that the kernel offered
// FUSE_OVER_IO_URING, maps every entry's buffers, and starts one goroutine
// per possible CPU, each locked to its thread with its own ring, waiting for
// Start. On any failure it undoes everything and returns the error: the
// server then serves over /dev/fuse alone.
func (c *Channel) Prepare(s *server.Server, info *server.InitInfo) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prepared || c.stopping.Load() {
		return 0, ErrStopped
	}
	c.prepared = true
	err := c.prepare(s, info)
	if err != nil {
		c.prepErr = err
		c.stopping.Store(true)
		close(c.stop)
		c.wg.Wait()
		c.unmapAll()
		c.queues = nil
		close(c.done)
		return 0, err
	}
	if c.opts.SchedIdle {
		c.startGuard()
	}
	go func() {
		c.wg.Wait()
		close(c.exited)
		c.guardWG.Wait()
		c.unmapAll()
		close(c.done)
	}()
	return wire.FUSE_OVER_IO_URING, nil
}

func (c *Channel) prepare(s *server.Server, info *server.InitInfo) error {
	if info.KernelFlags&wire.FUSE_OVER_IO_URING == 0 {
		return notOffered(c.host)
	}
	depth := c.opts.QueueDepth
	if depth == 0 {
		depth = DefaultQueueDepth
	}
	if depth < 0 {
		return fmt.Errorf("ring: negative queue depth %d", depth)
	}
	nq, err := c.opts.Queues, error(nil)
	if nq <= 0 {
		nq, err = c.host.PossibleCPUs()
	}
	if err != nil {
		return err
	}
	// fuse_uring_create: max_payload_sz = max(FUSE_MIN_READ_BUFFER,
	// max_write, max_pages * PAGE_SIZE); a shorter payload buffer is
	// refused at REGISTER.
	payload := max(wire.FUSE_MIN_READ_BUFFER, int(info.MaxWrite), int(info.MaxPages)*pageSize)
	hdrArea := roundUp(max(depth/max(c.opts.Threads, 1), 1)*headerStride, pageSize)
	stride := roundUp(payload, pageSize)
	conn := wire.Conn{Minor: info.Minor}

	threads := max(c.opts.Threads, 1)
	per := max(depth/threads, 1)
	small, smallPayload, err := smallEntries(&c.opts, per, threads, payload)
	if err != nil {
		return err
	}
	if !c.opts.KeepProcs {
		// Room for pool goroutines blocked in system calls.
		c.host.EnsureProcs(runtime.NumCPU() + nq*threads*min(per, poolSize))
	}
	ready := make(chan error, nq*threads)
	for qid := range nq {
		for range threads {
			mem, err := mapAnon(hdrArea + per*stride)
			if err != nil {
				return err
			}
			c.mem = append(c.mem, mem)
			q := newQueue(c, s, qid, per, conn)
			for i := range q.ents {
				e := &q.ents[i]
				e.Qid, e.Index = uint16(qid), i
				e.Header = (*wire.UringReqHeader)(unsafe.Pointer(&mem[i*headerStride]))
				off, n := hdrArea+i*stride, payload
				if i < small {
					n = smallPayload
				}
				e.Payload = mem[off : off+n : off+n]
			}
			c.queues = append(c.queues, q)
			c.wg.Add(1)
			go q.run(ready)
		}
	}
	// Queues fail alike (io_uring refused, a kernel limit): report the
	// first, on one line, and how many more failed.
	var first error
	failed := 0
	for range nq * threads {
		if err := <-ready; err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if failed > 1 {
		return fmt.Errorf("%w (and %d more queues)", first, failed-1)
	}
	return first
}

// smallEntries checks Options.SmallEntries and SmallPayload against a
// thread's per entries and the full payload size, and returns how many of a
// thread's entries are small and their payload size.
func smallEntries(o *Options, per, threads, payload int) (int, int, error) {
	if o.SmallEntries == 0 {
		return 0, payload, nil
	}
	size := o.SmallPayload
	if size == 0 {
		size = wire.FUSE_MIN_READ_BUFFER
	}
	small := o.SmallEntries / threads
	switch {
	case o.SmallEntries < 0 || o.SmallPayload < 0:
		return 0, 0, fmt.Errorf("ring: negative small entries %d or payload %d", o.SmallEntries, o.SmallPayload)
	case size < wire.FUSE_MIN_READ_BUFFER:
		return 0, 0, fmt.Errorf("ring: small payload %d is below the kernel's minimum of %d", size, wire.FUSE_MIN_READ_BUFFER)
	case size >= payload:
		return 0, 0, fmt.Errorf("ring: small payload %d is not smaller than max_payload_sz %d", size, payload)
	case small < 1 || small >= per:
		// The kernel's ring becomes ready only when each queue has a
		// full-sized entry.
		return 0, 0, fmt.Errorf("ring: %d small entries over %d threads of %d entries: each thread needs at least one small and one full-sized entry", o.SmallEntries, threads, per)
	}
	return small, size, nil
}

// notOffered builds the Prepare error for a kernel that did not offer the
// ring, with the host's hint.
func notOffered(h Host) error {
	if hint := h.WhyNotOffered(); hint != "" {
		return fmt.Errorf("%w (%s)", ErrNotOffered, hint)
	}
	return ErrNotOffered
}

func (c *Channel) unmapAll() {
	// Every queue goroutine has closed its ring and is about to end its
	// thread, so the kernel can no longer copy into these buffers.
	for i, m := range c.mem {
		_ = unmap(m)
		c.mem[i] = nil
	}
	c.mem = nil
	for _, q := range c.queues {
		for i := range q.ents {
			q.ents[i].Header, q.ents[i].Payload = nil, nil
		}
	}
}

// Start implements [server.Transport]: it lets every queue REGISTER its
// entries. The server calls it once the INIT reply has been written;
// REGISTERs sent before the kernel processed that reply come back with
// -EAGAIN and are repeated.
func (c *Channel) Start() {
	c.startOnce.Do(func() { close(c.start) })
}

// Stop makes every queue exit, closes their rings, unmaps the buffers and
// waits for all of it. It is idempotent. Call it once the connection is
// gone (the /dev/fuse channel has returned): closing a ring while the
// connection is alive cancels its entries, and requests from that queue's
// CPU then wait until the connection is aborted. Stop must not be called
// from a filesystem handler running on a queue.
func (c *Channel) Stop() {
	c.mu.Lock()
	if !c.stopping.Swap(true) {
		close(c.stop)
		if !c.prepared {
			close(c.done)
		}
		for _, q := range c.queues {
			q.wake()
		}
	}
	c.mu.Unlock()
	<-c.done
}

// Done is closed once the channel has ended: every queue has exited (after
// Stop, or because the kernel ended all of a queue's entries at unmount) and
// the buffers are unmapped; or Prepare failed; or Stop was called before
// Prepare.
func (c *Channel) Done() <-chan struct{} { return c.done }

// Err returns the error Prepare failed with, or nil.
func (c *Channel) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prepErr
}
