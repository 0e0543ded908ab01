// Package ring is the FUSE-over-io_uring channel (Linux 6.14 and later,
// CONFIG_FUSE_IO_URING, fuse module parameter enable_uring=Y).
//
// A [Channel] is a [server.Transport]: the server calls [Channel.Prepare]
// while it answers INIT and [Channel.Start] once the INIT reply is written.
// Prepare sets up one queue per possible CPU (the kernel routes a request to
// the queue of the CPU its caller runs on, and the ring becomes ready only
// when every queue has an entry). Each queue is one goroutine locked to its
// OS thread, pinned to its CPU, that owns one io_uring instance, QueueDepth
// entries and a server [server.Worker]. Start makes every queue REGISTER its
// entries; from then on a queue loops: wait for completions, serve each
// request inline into its entry's buffers, and answer all of them with
// COMMIT_AND_FETCH commands that the next wait submits in one
// io_uring_enter.
//
//	ch := ring.New(conn.Fd(), &ring.Options{QueueDepth: 16})
//	srv := server.New(fsys, &server.Options{Transport: ch})
//	err := devfuse.Serve(srv, devfuse.FD(conn.Fd()), nil) // INIT, forgets, unmount
//	ch.Stop()
//
// # Deep queues and the pool
//
// The kernel never moves a request to another CPU's queue, so a client that
// keeps many requests in flight from one CPU would be served one request at
// a time. When a completion batch holds more than one request, or some are
// still out, a queue hands data and lock-wait requests (READ, WRITE, FSYNC,
// FALLOCATE, COPY_FILE_RANGE, SETLKW) to a pool of goroutines, which run on
// any CPU; the pool hands finished entries back and wakes the queue, which
// alone submits their commits. A serial client is always served inline. A
// queue that saw two requests at once keeps using the pool for a while, so
// that a lone request in a gap does not hold the queue thread through its
// I/O.
//
// # Reads and writes on the ring
//
// With [Options.FileIO], when the filesystem implements ringfuse.FdFiler
// (the passthrough does), a queue serves READ and WRITE without calling the
// filesystem or the pool: it queues an IORING_OP_READ into the entry's
// payload buffer, or an IORING_OP_WRITE from it, on its own ring, and
// commits the entry when that completes. One thread then keeps as many
// reads and writes in flight as it has entries, with no hand-off between
// threads; a short transfer is finished synchronously, as the filesystem
// would (fileio.go). The server only lends the descriptor and builds the
// reply.
//
// # The seam
//
// Everything the channel asks of the kernel goes through [QueueRing] (and
// [FileIORing]), made by [Options.NewRing]; everything it asks of the
// machine (possible CPUs, thread pinning, SCHED_IDLE, GOMAXPROCS) through
// [Host]. [NewKernelRing] and [Machine] are the real ones; package kmodel
// implements both, and the tests of this package run the queues on it.
//
// # Scheduling class
//
// With [Options.SchedIdle] the queue threads run as SCHED_IDLE, so that a
// client woken by its answer stays on the queue's CPU rather than moving to
// an idle CPU and back on every request; a starvation guard lifts a queue
// thread that waits for its CPU back into the normal class for a while.
// See idle.go for the reasoning.
//
// The /dev/fuse channel keeps running next to the ring: in Linux 6.18 INIT,
// requests sent before the ring is ready, FORGET/BATCH_FORGET, INTERRUPT and
// unmount detection all still use /dev/fuse, and so do the server's
// notifications, but the NOTIFY_REPLY that answers a RETRIEVE is queued like
// any request and arrives on the ring. Forgets that arrive on the ring
// (a kernel with the proposed 7.46 patch and [Options.ForgetCommit]) are
// committed at once with an empty reply and applied in batches afterwards.
//
// # Falling back
//
// If the kernel did not offer FUSE_OVER_IO_URING, Prepare fails with an
// error wrapping [ErrNotOffered] and the server serves over /dev/fuse alone.
// If the kernel refuses a REGISTER, it falls back to /dev/fuse by itself; the
// channel logs it once per queue and counts it in [Stats].
//
// # Replies the kernel refuses
//
// A reply can hand the kernel lookups (LOOKUP, CREATE, READDIRPLUS...) and
// an open handle. Over /dev/fuse the write of a refused reply fails, and the
// server takes back what it carried. On the ring a commit's fate shows only
// in its completion, so each entry keeps what its reply handed out until
// then: a new request in the entry means the kernel took the reply; a commit
// refused with -ECONNABORTED (submitted after an abort), -ENOENT or the like
// gives it back. -ENOTCONN is ambiguous: Linux 6.18 answers it both to a
// commit that arrives after the connection ended and to the parked fetch of
// a commit it took, when the connection ends later. The channel then keeps
// what the reply carried and counts it in [Stats].Unsettled; no forget can
// come for it any more.
//
// # The kernel seam
//
// A queue talks to the kernel only through a [QueueRing]: queue a REGISTER
// or a COMMIT_AND_FETCH for an [Entry], submit and wait, reap completions,
// wake, close. [NewKernelRing] is the real one, on io_uring;
// [Options.NewRing] substitutes another, such as an in-process kernel model
// that writes requests into the entries' buffers as the kernel does.
package ring
