package kmodel

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/ringfuse/ringfuse/wire"
)

// DefaultKernelFlags is what Linux 6.18 with enable_uring=Y offers at INIT
// (flags 0x73fffffb, flags2 0x7fd, as observed on the project's machines).
// Among them: FUSE_INIT_EXT, FUSE_OVER_IO_URING, FUSE_ASYNC_READ,
// FUSE_BIG_WRITES, FUSE_MAX_PAGES, FUSE_DO_READDIRPLUS, FUSE_PASSTHROUGH.
const DefaultKernelFlags uint64 = 0x7fd<<32 | 0x73fffffb

// Defaults of [Config].
const (
	DefaultNrQueues      = 2
	DefaultKernelMinor   = 45
	DefaultMaxPagesLimit = 256 // sysctl fs.fuse.max_pages_limit
	DefaultMaxReadahead  = 128 << 10
)

// Channel names, as in [Reply.Channel]. They match the names the server's
// workers count under in server.Stats.
const (
	ChannelDev  = "devfuse"
	ChannelRing = "uring"
)

// Config configures a model connection. The zero value models Linux 6.18 on
// a 2-CPU machine with enable_uring=Y, without the 7.46 FORGET patch.
type Config struct {
	// NrQueues is the number of ring queues: num_possible_cpus() of the
	// modelled machine. Zero means [DefaultNrQueues]. The ring channel makes
	// one queue per possible CPU of the real machine; a REGISTER for a qid
	// beyond NrQueues is refused with -EINVAL, as the kernel does.
	NrQueues int

	// KernelFlags are the INIT flags the kernel offers (flags | flags2<<32).
	// Zero means [DefaultKernelFlags].
	KernelFlags uint64
	// KernelMinor is the kernel's protocol minor. Zero means 45.
	KernelMinor uint32
	// DisableUring models enable_uring=N: FUSE_OVER_IO_URING is not
	// offered and REGISTER fails with -EOPNOTSUPP.
	DisableUring bool
	// MaxPagesLimit is fs.fuse.max_pages_limit. Zero means 256.
	MaxPagesLimit int
	// PageSize is the modelled PAGE_SIZE in bytes. Zero means 4096.
	PageSize int
	// MaxReadahead is fuse_init_in.max_readahead. Zero means 128 KiB.
	MaxReadahead uint32

	// Patched models the proposed 7.46 patch "fuse: optional FORGET
	// delivery over io_uring": once any REGISTER carried
	// wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT and the ring is ready,
	// forgets go to the ring queue of the evicting CPU instead of the
	// /dev/fuse forget list.
	Patched bool

	// The series' module parameters (kernel/SERIES.md), which select
	// forget policies beyond patch v3 on a Patched kernel. All zero is
	// patch 0001 alone, patch v3 as posted: every forget is a FUSE_FORGET
	// request of its own, queued first-in first-out with ordinary
	// requests. Any of them makes forgets wait on a list of the evicting
	// task's queue instead, with one request per queue waiting among the
	// ordinary requests to take them (0002).
	//
	// UringForgetBatch is uring_forget_batch (0002): the entry that picks
	// up the forget request takes as many forgets as its payload holds
	// (max_payload_sz / 16), in a FUSE_BATCH_FORGET (a FUSE_FORGET for
	// one); without it, one forget per entry.
	UringForgetBatch bool
	// UringForgetCap is uring_forget_cap (0003): if positive, at most this
	// many entries of a queue hold forgets; while the cap is reached the
	// forget request lets the request behind it pass, and forgets wait on
	// the list.
	UringForgetCap int
	// UringForgetThreshold is uring_forget_threshold (0004): if positive,
	// forgets wait on the list until this many wait, then all of them go.
	UringForgetThreshold int
	// UringForgetDelay is uring_forget_delay_ms (0004): if positive,
	// forgets wait on the list until the oldest waited this long (a timer,
	// as the kernel's delayed work), then all of them go.
	UringForgetDelay time.Duration
	// UringSmallEnts is uring_small_ents (0006): REGISTER accepts payload
	// buffers below max_payload_sz (at least FUSE_MIN_READ_BUFFER). A
	// request goes to an entry it fits (its payload arguments and its
	// largest reply), small entries tried first; forgets go only to small
	// entries when the queue has any; a free entry looks at the first 16
	// queued requests for one that fits; the ring is ready only when every
	// queue has a full-sized entry. Without Patched it has no effect.
	UringSmallEnts bool

	// Faults are the initial fault-injection knobs; see [Conn.SetFaults].
	Faults Faults
}

// Faults are the model's fault-injection knobs.
type Faults struct {
	// RefuseRegister, if not zero, makes every REGISTER fail with
	// -RefuseRegister, as a refused iovec would: the kernel then drops the
	// ring for the connection (fc->io_uring = 0) and releases requests
	// waiting for it to /dev/fuse.
	RefuseRegister syscall.Errno

	// Truncate, if set, is called for every ordinary request the model
	// delivers, on either channel. A positive result n makes the model
	// deliver a message whose fuse_in_header.len disagrees with what was
	// delivered: on /dev/fuse, read returns n bytes fewer than len says;
	// on the ring, payload_sz is lowered by n (if the payload is shorter
	// than n, len is raised by n instead).
	Truncate func(op wire.Opcode, unique uint64) int
}

// Conn is the kernel side of one FUSE connection: the /dev/fuse queues
// ([Conn.Dev]), the io_uring queues ([Conn.NewRing]) and the clients
// ([Conn.Do], [Conn.Forget]). It is safe for concurrent use. It starts no
// goroutines: requests move when clients, /dev/fuse readers and ring
// queues call into it.
type Conn struct {
	cfg      Config
	offered  uint64 // INIT flags offered
	pageSize int

	mu        sync.Mutex
	readCond  sync.Cond // /dev/fuse readers: something to read, or the end
	drainCond sync.Cond // forget drain waiters

	connected   bool
	aborted     bool
	initialized bool
	connError   bool
	ioUring     bool // fc->io_uring: the server accepted FUSE_OVER_IO_URING
	noInterrupt bool
	minor       uint32
	flags       uint64 // agreed INIT flags
	maxWrite    uint32
	maxPages    int
	reqctr      uint64
	faults      Faults

	// Requests waiting in fuse_get_req (fuse_block_alloc).
	blockedReqs fifo[*request]

	// struct fuse_iqueue and the /dev/fuse processing queue.
	pending     fifo[*request]
	interrupts  fifo[*request]
	forgets     fifo[wire.ForgetOne]
	forgetBatch int
	processing  map[uint64]*request

	ring     *kring
	rings    []*modelRing // every ring made by NewRing, for their counters
	readyCh  chan struct{}
	initCh   chan struct{}
	closedCh chan struct{}

	nodes map[uint64]*nodeAcct

	outstanding int // forgets queued and not yet drained
	dev         DevStats
	fg          forgetCounters
}

// nodeAcct is the model's record of one node.
type nodeAcct struct {
	kernel uint64 // lookups the kernel holds (fi->nlookup)
	server uint64 // lookups the server should hold: replies accepted minus forgets delivered
	// unsettled counts lookups in ring replies the kernel refused with
	// -ENOTCONN once the connection had ended: the server cannot tell
	// them from replies it took, so it may hold them too.
	unsettled uint64
	opens     int // open handles: an open inode is never evicted
}

// Errors of New.
var (
	// ErrConfig: a Config field is out of range.
	ErrConfig = errors.New("kmodel: invalid config")
)

// New returns a model connection, just mounted: FUSE_INIT is queued on
// /dev/fuse, and client requests block until the server's INIT reply has
// been processed.
func New(cfg Config) (*Conn, error) {
	if cfg.NrQueues == 0 {
		cfg.NrQueues = DefaultNrQueues
	}
	if cfg.KernelFlags == 0 {
		cfg.KernelFlags = DefaultKernelFlags
	}
	if cfg.KernelMinor == 0 {
		cfg.KernelMinor = DefaultKernelMinor
	}
	if cfg.MaxPagesLimit == 0 {
		cfg.MaxPagesLimit = DefaultMaxPagesLimit
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = 4096
	}
	if cfg.MaxReadahead == 0 {
		cfg.MaxReadahead = DefaultMaxReadahead
	}
	switch {
	case cfg.NrQueues < 0 || cfg.NrQueues > 1<<16:
		return nil, fmt.Errorf("%w: NrQueues %d", ErrConfig, cfg.NrQueues)
	case cfg.MaxPagesLimit < 0 || cfg.MaxPagesLimit > 65535:
		return nil, fmt.Errorf("%w: MaxPagesLimit %d", ErrConfig, cfg.MaxPagesLimit)
	case cfg.PageSize < 0 || cfg.PageSize&(cfg.PageSize-1) != 0:
		return nil, fmt.Errorf("%w: PageSize %d", ErrConfig, cfg.PageSize)
	case cfg.UringForgetCap < 0 || cfg.UringForgetThreshold < 0 || cfg.UringForgetDelay < 0:
		return nil, fmt.Errorf("%w: negative forget policy", ErrConfig)
	case cfg.KernelMinor < 12:
		return nil, fmt.Errorf("%w: KernelMinor %d", ErrConfig, cfg.KernelMinor)
	}
	c := &Conn{
		cfg:        cfg,
		offered:    cfg.KernelFlags | wire.FUSE_INIT_EXT,
		pageSize:   cfg.PageSize,
		connected:  true,
		maxWrite:   4096,
		maxPages:   wire.FUSE_DEFAULT_MAX_PAGES_PER_REQ,
		faults:     cfg.Faults,
		processing: make(map[uint64]*request),
		readyCh:    make(chan struct{}),
		initCh:     make(chan struct{}),
		closedCh:   make(chan struct{}),
		nodes:      make(map[uint64]*nodeAcct),
	}
	if cfg.DisableUring {
		c.offered &^= wire.FUSE_OVER_IO_URING
	}
	c.readCond.L = &c.mu
	c.drainCond.L = &c.mu
	c.queueInit()
	return c, nil
}

// Config returns the configuration in effect, with defaults filled in.
func (c *Conn) Config() Config { return c.cfg }

// SetFaults replaces the fault-injection knobs.
func (c *Conn) SetFaults(f Faults) {
	c.mu.Lock()
	c.faults = f
	c.mu.Unlock()
}

// uringEnabled is the module parameter enable_uring.
func (c *Conn) uringEnabled() bool { return c.offered&wire.FUSE_OVER_IO_URING != 0 }

// nextUnique is fuse_get_unique: uniques are even, step 2.
func (c *Conn) nextUnique() uint64 {
	c.reqctr += 2
	return c.reqctr
}

// queueInit queues FUSE_INIT as fuse_send_init does.
func (c *Conn) queueInit() {
	in := wire.InitIn{
		Major:        wire.FUSE_KERNEL_VERSION,
		Minor:        c.cfg.KernelMinor,
		MaxReadahead: c.cfg.MaxReadahead,
		Flags:        uint32(c.offered),
		Flags2:       uint32(c.offered >> 32),
	}
	r := newRequest(-1, Request{Op: wire.FUSE_INIT, Arg: wire.AsBytes(&in)})
	c.queueDev(r)
}

// processInitReply is process_init_reply: it runs when the INIT reply has
// been accepted (or failed) on /dev/fuse.
func (c *Conn) processInitReply(errno int32, out []byte) {
	ok := errno == 0 && len(out) >= wire.FUSE_COMPAT_22_INIT_OUT_SIZE
	var io wire.InitOut
	if ok {
		copy(wire.AsBytes(&io), out)
		ok = io.Major == wire.FUSE_KERNEL_VERSION
	}
	if ok {
		flags := uint64(io.Flags)
		if flags&wire.FUSE_INIT_EXT != 0 {
			flags |= uint64(io.Flags2) << 32
		}
		c.flags = flags & c.offered
		c.minor = io.Minor
		c.maxWrite = max(4096, io.MaxWrite)
		if flags&wire.FUSE_MAX_PAGES != 0 {
			c.maxPages = min(c.cfg.MaxPagesLimit, max(1, int(io.MaxPages)))
		}
		if flags&wire.FUSE_OVER_IO_URING != 0 && c.uringEnabled() {
			c.ioUring = true
		}
	} else {
		c.connError = true
	}
	c.initialized = true
	close(c.initCh)
	c.unblock()
}

// Initialized is closed once the server's INIT reply has been processed.
func (c *Conn) Initialized() <-chan struct{} { return c.initCh }

// Ready is closed once the ring is ready: every queue has had an entry
// available at once. It is never closed if the ring is not used.
func (c *Conn) Ready() <-chan struct{} { return c.readyCh }

// Closed is closed once the connection has been unmounted or aborted.
func (c *Conn) Closed() <-chan struct{} { return c.closedCh }

// Negotiated returns what INIT agreed: the flags (masked by the offer),
// the minor, max_write and max_pages. Before INIT it returns zeros and the
// kernel's defaults.
func (c *Conn) Negotiated() (flags uint64, minor uint32, maxWrite uint32, maxPages int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flags, c.minor, c.maxWrite, c.maxPages
}

// MaxPayload returns the ring's max_payload_sz as the next REGISTER would
// require it: max(8192, max_write, max_pages * page size).
func (c *Conn) MaxPayload() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxPayload()
}

func (c *Conn) maxPayload() int {
	if c.ring != nil {
		return c.ring.maxPayload
	}
	return max(wire.FUSE_MIN_READ_BUFFER, int(c.maxWrite), c.maxPages*c.pageSize)
}

// Unmount models umount(2) of the mount: the connection ends as in
// fuse_abort_conn without fc->aborted. Requests in flight fail with
// ECONNABORTED, queued forgets are dropped, /dev/fuse readers get ENODEV,
// every available ring entry completes with -ENOTCONN, and commands
// submitted afterwards get -ENOTCONN. It is idempotent.
func (c *Conn) Unmount() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endConn()
}

// Abort models an abort through fusectl (echo 1 > .../abort): as Unmount,
// but /dev/fuse readers get ECONNABORTED and ring commands submitted
// afterwards get -ECONNABORTED. It is idempotent.
func (c *Conn) Abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connected {
		c.aborted = true
	}
	c.endConn()
}

// endConn is fuse_abort_conn.
func (c *Conn) endConn() {
	if !c.connected {
		return
	}
	c.connected = false
	// /dev/fuse: pending and processing requests end, forgets and
	// interrupts are dropped.
	for c.pending.len() > 0 {
		c.end(c.pending.pop(), -int32(syscall.ECONNABORTED), nil)
	}
	for u, r := range c.processing {
		delete(c.processing, u)
		c.end(r, -int32(syscall.ECONNABORTED), nil)
	}
	c.interrupts.reset()
	c.fg.dropped += uint64(c.forgets.len())
	c.outstanding -= c.forgets.len()
	c.forgets.reset()
	if c.ring != nil {
		c.ringTeardown()
	}
	close(c.closedCh)
	c.unblock()
	c.readCond.Broadcast()
	c.drainCond.Broadcast()
}

// node returns the accounting record of id, creating it.
func (c *Conn) node(id uint64) *nodeAcct {
	n := c.nodes[id]
	if n == nil {
		n = &nodeAcct{}
		c.nodes[id] = n
	}
	return n
}

// acct returns a copy of node id's record (zero for a node never seen).
func (c *Conn) acct(id uint64) nodeAcct {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.nodes[id]; n != nil {
		return *n
	}
	return nodeAcct{}
}

// Lookups returns the number of lookups of node id the kernel holds (the
// inode's nlookup): entry replies accepted minus forgets queued.
func (c *Conn) Lookups(id uint64) uint64 {
	return c.acct(id).kernel
}

// ServerLookups returns the number of lookups of node id the server should
// hold: entry replies the kernel accepted minus forgets delivered to the
// server (read from /dev/fuse or copied into a ring entry). Forgets still
// queued, or dropped at unmount or abort, never reached the server.
func (c *Conn) ServerLookups(id uint64) uint64 {
	return c.acct(id).server
}

// UnsettledLookups returns the number of lookups of node id in ring
// replies whose commit the kernel refused with -ENOTCONN after the
// connection ended. The kernel answers a commit that way and also cancels
// the fetch of a commit it took with -ENOTCONN, so a server cannot tell
// whether these replies arrived: it holds between ServerLookups and
// ServerLookups plus UnsettledLookups of the node.
func (c *Conn) UnsettledLookups(id uint64) uint64 {
	return c.acct(id).unsettled
}

// Nodes returns every node ID the model has seen in an entry reply, sorted.
func (c *Conn) Nodes() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]uint64, 0, len(c.nodes))
	for id := range c.nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// WaitForgets blocks until every forget queued so far has drained (read
// from /dev/fuse, or delivered on the ring and its entry committed; forgets
// dropped at unmount or abort count as drained) or ctx is done, and then
// returns ctx.Err().
func (c *Conn) WaitForgets(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.drainCond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.outstanding > 0 && ctx.Err() == nil {
		c.drainCond.Wait()
	}
	if c.outstanding > 0 {
		return ctx.Err()
	}
	return nil
}

// forgetDrained notes that n queued forgets have drained.
func (c *Conn) forgetDrained(n int) {
	c.outstanding -= n
	if c.outstanding <= 0 {
		c.drainCond.Broadcast()
	}
}
