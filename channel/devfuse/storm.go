package devfuse

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/internal/osthread"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// Coalesce configures how the readers take a forget storm, such as
// drop_caches evicting a few hundred thousand inodes.
//
// The kernel queues each evicted inode's forget on its own and wakes a
// reader for it; a reader waiting in read(2) takes whatever is queued, so
// a storm that trickles in arrives as one FORGET per read, one wake-up and
// two context switches each, on CPUs the evicting task and the
// filesystem's clients need. Only when several forgets are queued does a
// read return them in one BATCH_FORGET (fs/fuse/dev.c, fuse_read_forget).
//
// With coalescing, once small forget messages come in a burst the readers take
// turns at read(2), one at a time, and the one whose turn it is waits
// until Window has passed since the last forget message before it reads:
// the forgets queued meanwhile come in one message, and no other reader
// is woken for them. The storm mode ends on the first request read Quiet
// after the last forget message.
//
// A request that is not a forget waits at most Window (plus a scheduler
// wake-up) longer than without coalescing: an INTERRUPT, and over
// /dev/fuse any request, unless Pending says it may be there, which cuts
// the wait short.
type Coalesce struct {
	// Window is the least time between two forget messages during a
	// storm (0: none; coalescing is off).
	Window time.Duration
	// Small: Burst forget messages in a row, each of fewer forgets than
	// Small and each within Window of the one before, start a storm (0:
	// 64 and 4). A stray forget (an unlink) does not: during a storm
	// every request pays a hand-off of the turn.
	Small, Burst int
	// Quiet ends a storm: the first request read that long after the
	// last forget message (0: 20 Windows, at least 10 ms).
	Quiet time.Duration
	// Pending, if not nil, reports whether the kernel may hold a request
	// for /dev/fuse other than forgets and interrupts, given the number
	// of requests the readers hold unanswered. The reader whose turn it
	// is asks it every Poll while it waits and reads at once if it says
	// yes. Nil: no request but forgets and interrupts comes to /dev/fuse
	// (they come over io_uring), and the wait runs to its end.
	Pending func(held int) bool
	// Poll is how often Pending is asked (0: Window/8, at least 20 µs).
	Poll time.Duration
	// Stats, if not nil, receives counts of the coalescing.
	Stats *CoalesceStats
	// Inline makes the readers apply the forgets they take themselves.
	// Otherwise a thread of its own applies them, at nice value Nice
	// (0: the readers' priority), so that the readers go straight back
	// to read(2).
	Inline bool
	Nice   int
}

// CoalesceStats count what coalescing did. They are updated atomically
// while the readers run.
type CoalesceStats struct {
	// Storms counts the times the readers began taking turns.
	Storms atomic.Uint64
	// Waits counts the waits before a read; Cut those that Pending cut
	// short; Waited is their total length in nanoseconds.
	Waits, Cut, Waited atomic.Uint64
}

// storm is the readers' shared state for Coalesce.
type storm struct {
	c     Coalesce
	small int
	burst int
	// streak counts the small forget messages in a row, each within a
	// window of the one before (the readers' saw calls are serialized
	// during a storm; before one, a lost update only delays its start).
	streak atomic.Int32
	quiet  int64
	poll   int64
	base   time.Time
	on     atomic.Bool
	// turn is the right to read during a storm: whoever holds the one
	// token reads; the other readers wait for it in Go, not in the
	// kernel, where every queued forget would wake one of them.
	turn chan struct{}
	// next is the time (ns since base) before which the reader whose
	// turn it is does not read; last is when the last forget message
	// was read.
	next, last atomic.Int64
	// held counts requests read and not yet answered, for Pending.
	held  atomic.Int32
	stats *CoalesceStats
}

func newStorm(c *Coalesce) *storm {
	if c == nil || c.Window <= 0 {
		return nil
	}
	s := &storm{c: *c, small: c.Small, base: time.Now(), turn: make(chan struct{}, 1), stats: c.Stats}
	if s.stats == nil {
		s.stats = new(CoalesceStats)
	}
	if s.small <= 0 {
		s.small = 64
	}
	if s.burst = c.Burst; s.burst <= 0 {
		s.burst = 4
	}
	quiet := c.Quiet
	if quiet <= 0 {
		quiet = max(20*c.Window, 10*time.Millisecond)
	}
	poll := c.Poll
	if poll <= 0 {
		poll = max(c.Window/8, 20*time.Microsecond)
	}
	s.quiet, s.poll = int64(quiet), int64(poll)
	s.turn <- struct{}{}
	return s
}

func (s *storm) now() int64 { return int64(time.Since(s.base)) }

// enter is called before a read. During a storm it waits for the turn and
// then for the window, and reports whether it holds the turn, which the
// caller gives back with leave once the read has returned.
func (s *storm) enter() bool {
	if s == nil || !s.on.Load() {
		return false
	}
	<-s.turn
	s.wait()
	return true
}

func (s *storm) leave(held bool) {
	if held {
		s.turn <- struct{}{}
	}
}

// wait sleeps until next, in slices of poll if Pending may cut it short.
// It sleeps in nanosleep(2), on the locked thread, rather than through Go's
// timers, whose wake-ups may come a millisecond late.
func (s *storm) wait() {
	start := s.now()
	d := s.next.Load() - start
	if d <= 0 {
		return
	}
	s.stats.Waits.Add(1)
	defer func() { s.stats.Waited.Add(uint64(s.now() - start)) }()
	for d > 0 {
		step := d
		if s.c.Pending != nil {
			if s.c.Pending(int(s.held.Load())) {
				s.stats.Cut.Add(1)
				return
			}
			step = min(d, s.poll)
		}
		sleepThread(time.Duration(step))
		d = s.next.Load() - s.now()
	}
}

// saw is called with the header of each message read. It starts and ends
// storms and sets the time of the next read.
func (s *storm) saw(msg []byte) {
	if s == nil || len(msg) < wire.SizeofInHeader {
		return
	}
	h := wire.View[wire.InHeader](msg)
	n, ok := forgetCount(h.Opcode, len(msg))
	if !ok {
		// An ordinary request reads the clock only during a storm.
		if s.on.Load() && s.now()-s.last.Load() > s.quiet {
			s.on.Store(false)
		}
		return
	}
	now := s.now()
	prev := s.last.Swap(now)
	switch {
	case n >= s.small:
		s.streak.Store(0)
	case prev != 0 && now-prev > int64(s.c.Window):
		s.streak.Store(1)
	case int(s.streak.Add(1)) >= s.burst && !s.on.Swap(true):
		s.stats.Storms.Add(1)
	}
	if s.on.Load() {
		s.next.Store(now + int64(s.c.Window))
	}
}

// forgetCount returns the number of forgets in a message of opcode op and
// length n, and whether it is a forget message at all.
func forgetCount(op wire.Opcode, n int) (int, bool) {
	switch op {
	case wire.FUSE_FORGET:
		return 1, true
	case wire.FUSE_BATCH_FORGET:
		return max(n-wire.SizeofInHeader-wire.SizeofBatchForgetIn, 0) / wire.SizeofForgetOne, true
	}
	return 0, false
}

// applier applies the forgets the readers take during coalescing, on a
// thread of its own (at Coalesce.Nice), so that the readers go straight
// back to read(2) and closing a storm's files in the filesystem runs off
// the request path.
//
// Its two buffers are anonymous mappings outside the Go heap, of
// applierCap forgets each: one fills while the other is applied. A storm
// must not leave a backlog's worth of heap behind (issue 5): a reader
// that finds no room applies its message itself, and the pages a large
// batch touched go back to the kernel once it is applied.
type applier struct {
	w    *server.Worker
	nice int
	mu   sync.Mutex
	in   server.Forgets // taken by the readers, not yet applied
	work server.Forgets // being applied (the applier's alone)
	maps [2][]byte
	wake chan struct{} // capacity 1: forgets are waiting
	done chan struct{}
}

// applierCap is the capacity of each buffer, in forgets (1 MiB).
const applierCap = 64 << 10

// applierKeep is the part of a buffer, in bytes, that stays resident
// after a batch is applied.
const applierKeep = 16 << 10

// newApplier starts an applier, or returns nil if its buffers cannot be
// mapped (the readers then apply forgets themselves).
func newApplier(s *server.Server, nice int) *applier {
	a := &applier{w: s.NewWorker("devfuse"), nice: nice, wake: make(chan struct{}, 1), done: make(chan struct{})}
	for i := range a.maps {
		m, err := unix.Mmap(-1, 0, applierCap*wire.SizeofForgetOne, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			a.unmap()
			return nil
		}
		a.maps[i] = m
	}
	a.in.Use(asForgets(a.maps[0]))
	a.work.Use(asForgets(a.maps[1]))
	go a.loop()
	return a
}

func asForgets(m []byte) []wire.ForgetOne {
	return unsafe.Slice((*wire.ForgetOne)(unsafe.Pointer(&m[0])), len(m)/wire.SizeofForgetOne)
}

func (a *applier) unmap() {
	for i, m := range a.maps {
		if m != nil {
			_ = unix.Munmap(m)
			a.maps[i] = nil
		}
	}
}

// take moves the forgets of msg into the applier's queue and reports
// whether it did; r is the reader's worker, which decodes it. A message
// that is not a forget, or does not fit, is the reader's to serve.
func (a *applier) take(r *server.Worker, msg []byte) bool {
	if len(msg) < wire.SizeofInHeader {
		return false
	}
	n, ok := forgetCount(wire.View[wire.InHeader](msg).Opcode, len(msg))
	if !ok {
		return false
	}
	a.mu.Lock()
	ok = a.in.Room() >= n && r.TakeForgetsDev(msg, &a.in)
	a.mu.Unlock()
	if ok {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	return ok
}

func (a *applier) loop() {
	defer close(a.done)
	// Locked for good: the priority is the thread's.
	runtime.LockOSThread()
	a.w.OwnThread()
	osthread.SetName("fuse-forget")
	if a.nice != 0 {
		setThreadNice(a.nice) // best effort
	}
	for range a.wake {
		a.applyAll()
	}
	a.applyAll() // what the readers took last
}

func (a *applier) applyAll() {
	for {
		a.mu.Lock()
		a.in.Swap(&a.work)
		a.mu.Unlock()
		if a.work.Messages() == 0 {
			return
		}
		n := a.work.Len()
		a.w.ApplyForgets(&a.work)
		if used := n * wire.SizeofForgetOne; used > applierKeep {
			b := a.work.Storage()
			discardPages(unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), used)[applierKeep:])
		}
	}
}

// stop applies what is left, ends the applier and unmaps its buffers; call
// it once no reader takes forgets any more.
func (a *applier) stop() {
	close(a.wake)
	<-a.done
	a.in, a.work = server.Forgets{}, server.Forgets{}
	a.unmap()
}
