// Package kmodel is an in-process model of the kernel side of a FUSE
// connection: the /dev/fuse queues and the FUSE-over-io_uring queues of
// Linux 6.18 (protocol 7.45), optionally with the proposed 7.46 patch
// "fuse: optional FORGET delivery over io_uring" and the forget policies of
// the project's kernel series (kernel/SERIES.md, patches 0001-0004 and
// 0006). It is to the channels what
// httptest.ResponseRecorder is to a handler: the real server and the real
// channel code run against it unchanged, so that the patched FORGET path,
// fault injection and the forget study can run on a kernel without the
// patch. It is the project's only fake kernel.
//
// A [Conn] is one connection, just mounted ([New]). Its three faces, and
// the modelled machine ([Conn.Host], a ring.Host with [Config.NrQueues]
// possible CPUs):
//
//   - [Conn.Dev] is the /dev/fuse descriptor, a devfuse.Device: Read and
//     Writev as fuse_dev_do_read and fuse_dev_do_write, with interrupts
//     first, the forget list with BATCH_FORGET and the 16:8 fairness, and
//     the kernel's errors.
//   - [Conn.NewRing] is a ring.Options.NewRing: each QueueRing is one
//     io_uring instance; REGISTER and COMMIT_AND_FETCH are checked as in
//     dev_uring.c, entries move through the states of dev_uring_i.h, and
//     requests are copied into the entries' buffers laid out as the kernel
//     does (fuse_in_header in in_out, in_args[0] in op_in, the rest in the
//     payload). It is also a ring.FileIORing: the channel's own reads and
//     writes of the filesystem's files run on it (uring.go; the fuse_ring
//     logic is in ring.go).
//   - [Conn.Do], [Conn.Start], [Conn.Forget], [Conn.Evict],
//     [Conn.EvictAll], [Conn.EvictStorm], [Conn.Interrupt], [Conn.Unmount]
//     and [Conn.Abort] are the clients: system calls from tasks on given
//     CPUs. [Conn.Drive] runs many of them with eviction storms and reports
//     latencies and forget drain times.
//
// Wiring a server to a model:
//
//	m, _ := kmodel.New(kmodel.Config{Patched: true})
//	ch := ring.New(-1, &ring.Options{ForgetCommit: true, NewRing: m.NewRing, Host: m.Host()})
//	srv := server.New(fsys, &server.Options{Transport: ch})
//	go devfuse.Serve(srv, m.Dev(), nil)
//	<-m.Ready()
//	rep, err := m.Do(0, kmodel.Lookup(wire.FUSE_ROOT_ID, "name"))
//	...
//	m.Unmount() // devfuse.Serve returns; then ch.Stop()
//
// The model starts no goroutine of its own but the evicting tasks of
// [Conn.EvictStorm], which it joins before returning, and the timers of
// uring_forget_delay_ms. Requests move when clients, /dev/fuse readers and
// ring queues call into it; a ring's deliveries happen inside its
// SubmitAndWait and Reap, on the queue's own goroutine, as the kernel
// copies in the submitting task's context.
//
// # The 7.46 patch and the policies
//
// With [Config.Patched], forgets stay on the /dev/fuse forget list until a
// REGISTER carries wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT; once that
// happened and the ring is ready, each forget becomes a single FUSE_FORGET
// request (nodeid in the header, fuse_forget_in in op_in, payload_sz 0)
// queued on the queue of the evicting task's CPU like any request
// (fuse_uring_task_to_queue; queues never steal from each other), holding
// its entry until the server commits it (the reply is ignored: noreply).
// That is patch 0001, v3 as posted. The series' module parameters, as
// [Config] fields of the same names, select the other policies:
// uring_forget_batch ([Config.UringForgetBatch], 0002), uring_forget_cap
// ([Config.UringForgetCap], 0003), uring_forget_threshold and
// uring_forget_delay_ms ([Config.UringForgetThreshold],
// [Config.UringForgetDelay], 0004) and uring_small_ents
// ([Config.UringSmallEnts], 0006: entries of several sizes, forgets only in
// small ones, a request only in an entry it fits). With any of the forget
// parameters, forgets wait on a list of the evicting task's queue, and one
// request per queue waits in the queue's request list, first in first out
// with ordinary requests, to take them: the entry that picks it up takes
// one forget, or with uring_forget_batch as many as its payload holds (its
// payload size / 16); forgets arriving meanwhile join it; while the cap is
// reached it lets the request behind it pass.
//
// Evictions come from tasks on CPUs: [Conn.EvictAll] forgets every
// evictable node at once from one CPU; [Conn.EvictStorm] paces the storm
// over one or more tasks (drop_caches is one task, kswapd one per node, an
// unlink storm the unlinking tasks), at [DefaultEvictRate] per task unless
// told otherwise, in bursts of [DefaultEvictBurst] forgets per lock hold.
//
// [QueueStats] counts, per queue, entries held by forgets (now, most, time
// weighted mean), CQEs, commits, forget messages, and io_uring_enter calls
// (SubmitAndWait: one system call however many commands and completions it
// carries), those that carried forget work, and those that slept;
// [DevStats] counts /dev/fuse reads and the reads that slept.
//
// # Differences from the real kernel
//
//   - No VFS: no page cache, dentry or attribute cache, readahead,
//     writeback or revalidation. Clients issue exactly the FUSE requests
//     they are given. The model counts lookups from the replies it accepts
//     (entry replies and READDIRPLUS entries, as fuse_iget and
//     fuse_direntplus_link do) and evicts only when told to ([Conn.Evict],
//     [Conn.EvictAll], [Conn.EvictStorm]); an open node is never evicted.
//     Node IDs other than the root are never special.
//   - Eviction has no dentry pruning, LRU or reclaim: a storm forgets the
//     nodes in node ID order at a fixed rate per task (the kernel's rate
//     varies with the inode cache and the CPU; 250,000/s is what
//     drop_caches reached on the project's machines, not a kernel
//     constant). The pacing is wall-clock: a task sleeps when ahead by
//     200 µs or more and yields otherwise, so on a loaded machine it falls
//     behind and then catches up in bursts of at most Storm.Burst. kswapd
//     is just a task on a CPU; memory pressure is not modelled.
//   - No background requests: max_background and congestion_threshold are
//     ignored, nothing is held back by fc->blocked, and the ring's per-queue
//     background admission (fuse_uring_flush_bg) is not modelled. Forced
//     requests (RELEASE) wait for the ring like any other.
//   - Synchronous delivery: a request assigned to an entry is copied when
//     the ring holding the entry's command next calls SubmitAndWait or
//     Reap. There is no io-wq, SQPOLL or DEFER_TASKRUN difference, the CQ
//     never overflows, and a full SQ is an error.
//   - Times are the Go scheduler's: a task woken through the model (a
//     /dev/fuse reader, a ring's SubmitAndWait) runs later than a kernel
//     wake-up would, so whatever depends on how fast the server keeps up
//     with arrival (forgets per /dev/fuse message, entries held, backlog)
//     is skewed towards larger batches; counts per message are exact.
//   - One lock guards the whole connection (the kernel has fiq, fpq and
//     per-queue locks), so interleavings are coarser than the kernel's.
//   - io_uring_enter is counted per SubmitAndWait. Reap never enters (the
//     real channel reads the CQ ring from user space too), task work runs
//     in both, and "slept" is a SubmitAndWait that found nothing to
//     return and blocked: the model has no scheduler, so task switches
//     are counted only there and at /dev/fuse reads that block, not
//     measured. An enter carried forget work if it submitted the commit of
//     a forget message or returned with the completion of one posted.
//   - A read or write queued with StartIO is done with pread or pwrite
//     when it is submitted and completes at once: never -EAGAIN, no
//     io-wq, no short read that io_uring would retry.
//   - Teardown is immediate: entries in transient states are released at
//     once instead of by the 50 ms delayed work. Parked commands complete
//     with -ENOTCONN at unmount and at abort (fuse_uring_entry_teardown);
//     commands submitted afterwards get -ENOTCONN after an unmount and
//     -ECONNABORTED after an abort. Clients see ECONNABORTED for requests
//     in flight and ENOTCONN for new ones; FUSE_ABORT_ERROR is not
//     modelled. Queued forgets are dropped. No DESTROY is sent.
//   - Interrupts are simplified: [Conn.Interrupt] queues FUSE_INTERRUPT as
//     queue_interrupt does (at once if the request was sent, else when it
//     is), and -ENOSYS and -EAGAIN answers are honoured, but there are no
//     signals: a client never abandons a request, pending or sent, and
//     killable waits are not modelled.
//   - Not modelled: notifications (a write with unique 0 fails with
//     EINVAL), NOTIFY_REPLY and RETRIEVE, passthrough ioctls, splice,
//     request timeouts (FUSE_REQUEST_TIMEOUT), the sync-INIT ioctl, CUSE,
//     extension headers, per-request credentials beyond what the client
//     passes (forgets carry uid, gid and pid 0).
//   - INIT: only the agreed flags (masked by the offer), the minor,
//     max_write (at least 4096) and max_pages are taken from the reply;
//     max_write is 4096 before INIT. A failed INIT reply makes every
//     request fail with ECONNREFUSED.
//   - CPUs are numbers: a client stays on its CPU, and a CPU beyond the
//     queues uses queue 0 (the kernel WARNs). [Config.NrQueues] stands for
//     num_possible_cpus() and must match the queues the ring channel makes.
//   - The 7.46 routing follows the project's series (kernel/SERIES.md, as of
//     its 0001-0006 of 7 December 2026); its commit path is the 6.18 one,
//     and header mistakes in a forget's commit are counted
//     ([QueueStats].ForgetBadCommits) but ignored.
//   - Of the series, not modelled: allocation failures (the kernel then
//     sends the forget, or a queue's whole list, to the /dev/fuse forget
//     list; the model never fails to allocate) and the tracepoint of 0005
//     (the counters in [QueueStats] stand for it). The forget request's
//     unique is assigned when an entry takes it, not when it is queued.
//     The uring_forget_delay_ms timer holds no connection reference; it is
//     stopped at teardown. A request's fit (0006) is the larger of its
//     payload arguments and its largest reply as the model sizes them
//     (wire.ReplySize), which for a few opcodes with variable replies may differ
//     from the kernel's out_args.
//   - /dev/fuse still sends forgets with the 16:8 fairness against
//     ordinary requests (fuse_dev_do_read); the ring's forget request has
//     none: it waits its turn among the ordinary requests, as in the
//     series.
package kmodel
