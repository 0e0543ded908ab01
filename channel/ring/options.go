package ring

import "time"

// DefaultQueueDepth is the number of entries per queue when
// [Options.QueueDepth] is zero; libfuse uses the same default.
const DefaultQueueDepth = 8

// Options configure a [Channel]. The zero value (or a nil *Options) is a
// sane default: 8 entries per queue, a plain interrupt-driven ring per
// queue, each queue pinned to its CPU. New copies them; changing them
// afterwards has no effect.
type Options struct {
	// QueueDepth is the number of entries each queue registers, i.e. how
	// many requests from one CPU can be in flight at once (-o
	// io_uring_q_depth). Each entry owns a payload buffer of max_payload_sz
	// bytes (1 MiB with the default MaxWrite), mapped lazily. Zero means
	// [DefaultQueueDepth]; a negative value makes Prepare fail.
	QueueDepth int

	// ForgetCommit sets FUSE_IO_URING_REGISTER_FORGET_COMMIT on every
	// REGISTER, telling a kernel with the proposed protocol 7.46 FORGET
	// patch that this server commits forgets delivered in ring entries, so
	// that the kernel sends them over the ring instead of /dev/fuse. A
	// kernel without the patch ignores the bit. Off by default.
	ForgetCommit bool

	// SmallEntries is how many of each queue's entries register a payload
	// buffer of SmallPayload bytes instead of max_payload_sz (-o
	// io_uring_small_ents), divided among the queue's Threads like
	// QueueDepth. A kernel with the series' uring_small_ents parameter set
	// sends forgets only to small entries and other requests to entries
	// they fit, so that small requests leave the large entries free; any
	// other kernel refuses the REGISTER, and the connection falls back to
	// /dev/fuse. Every thread keeps at least one full-sized entry. Zero (the
	// default) registers only full-sized entries.
	SmallEntries int

	// SmallPayload is the payload size of the small entries; zero means
	// FUSE_MIN_READ_BUFFER (8 KiB), the least the kernel accepts.
	SmallPayload int

	// SingleIssuer creates each queue's ring with IORING_SETUP_SINGLE_ISSUER.
	// Each queue submits only from its own locked thread, so it is always
	// safe. Off by default, as in libfuse.
	SingleIssuer bool

	// DeferTaskrun (IORING_SETUP_DEFER_TASKRUN) runs completion task work,
	// including the kernel's copy of a request into the entry, only when
	// the queue thread waits. Requires SingleIssuer.
	DeferTaskrun bool

	// CoopTaskrun (IORING_SETUP_COOP_TASKRUN) spares the queue thread the
	// inter-processor interrupt that otherwise announces task work.
	CoopTaskrun bool

	// SQPoll (IORING_SETUP_SQPOLL) gives each queue a kernel thread that
	// polls its submission queue. It costs a busy CPU per queue; it cannot
	// be combined with DeferTaskrun or CoopTaskrun.
	SQPoll bool

	// SQThreadIdle is how long an SQPoll thread spins without work before it
	// sleeps. Zero means the kernel's default of one second. Ignored unless
	// SQPoll is set.
	SQThreadIdle time.Duration

	// SchedIdle runs each queue thread in the SCHED_IDLE scheduling class,
	// so that a client woken by its answer stays on the queue's CPU
	// instead of moving to an idle one (see idle.go). A guard puts a
	// thread that waits for its CPU for more than 2 ms of a 10 ms period
	// back in the normal class for a second.
	SchedIdle bool

	// FileIO makes the queues serve the READ and WRITE requests of a
	// filesystem that implements ringfuse.FdFiler (the passthrough does)
	// as asynchronous reads and writes on their own rings, without calling
	// its Read and Write, whenever a client keeps several in flight: a
	// queue then keeps up to its depth of them in flight from one thread,
	// without handing them to other threads. A lone READ or WRITE is
	// still served inline through Read and Write, which is faster. It is
	// off by default because it bypasses Read and Write: a filesystem that
	// wraps another and overrides Read inherits the inner one's FdFiler.
	// The ringfuse daemon, which serves the passthrough alone, turns it on
	// unless given -o io_uring_no_file_io.
	FileIO bool
	// FileIOAlways, with FileIO, does lone READs and WRITEs on the ring
	// too, so that every read and write takes that path (the tests use it
	// to check the path with serial clients).
	FileIOAlways bool
	// KeepProcs leaves GOMAXPROCS alone. By default Prepare raises it (never
	// lowers it) to the CPU count plus one per pool goroutine: pool
	// goroutines block in system calls, and Go hands the P of a blocked
	// thread to a ready goroutine only once its monitor notices, 20 µs to
	// 10 ms later; with spare Ps a ready goroutine runs at once. Raising
	// GOMAXPROCS also stops Go from adjusting it to CPU limits later.
	KeepProcs bool

	// Threads is the number of threads, each with its own ring and its
	// share of the entries, that serve one queue. Zero means one. The
	// kernel may hand a queue's requests to any of its entries, so more
	// threads let requests from one CPU that block (a deep O_DIRECT
	// queue) be served in parallel without a hand-off between threads.
	Threads int

	// Queues is the number of queues to serve. Zero means one per
	// possible CPU, which the real kernel requires: its ring becomes
	// ready only when every possible CPU's queue has an entry. Other
	// values only make sense with a NewRing model of a kernel with that
	// many queues.
	Queues int

	// NoAffinity skips pinning each queue's thread to its CPU with
	// sched_setaffinity. Pinning is best effort either way: a CPU outside
	// the process's allowed set is left alone.
	NoAffinity bool

	// Host is the machine the queues run on (CPU count, thread placement,
	// scheduling class, GOMAXPROCS). Nil means [Machine].
	Host Host

	// NewRing, if set, replaces the kernel: it is called once per queue,
	// on the queue's own locked OS thread, during Prepare, and returns the
	// ring the queue talks through. Nil means [NewKernelRing], io_uring on
	// the /dev/fuse descriptor. Tests and the kernel model use it; a
	// wrapper around NewKernelRing can inject faults.
	NewRing func(cfg RingConfig) (QueueRing, error)
}
