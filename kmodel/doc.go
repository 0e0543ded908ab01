// Package kmodel is an in-process model of the kernel side of a FUSE
// connection: the /dev/fuse queues and the FUSE-over-io_uring queues of
// Linux 6.18 (protocol 7.45), optionally with the proposed 7.46 patch
// "fuse: optional FORGET delivery over io_uring" and with forget policies
// the patch does not have. It is to the channels what
// httptest.ResponseRecorder is to a handler: the real server and the real
// channel code run against it unchanged, so that the patched FORGET path,
// fault injection and the forget study can run on a kernel without the
// patch.
//
// A [Conn] is one connection, just mounted ([New]). Its three faces:
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
//     payload).
//   - [Conn.Do], [Conn.Start], [Conn.Forget], [Conn.Evict],
//     [Conn.EvictAll], [Conn.Interrupt], [Conn.Unmount] and [Conn.Abort]
//     are the clients: system calls from tasks on given CPUs. [Conn.Drive]
//     runs many of them with eviction storms and reports latencies and
//     forget drain times.
//
// Wiring a server to a model:
//
//	m, _ := kmodel.New(kmodel.Config{Patched: true})
//	ch := ring.New(-1, &ring.Options{ForgetCommit: true, NewRing: m.NewRing})
//	srv := server.New(fsys, &server.Options{Transport: ch})
//	go devfuse.Serve(srv, m.Dev(), nil)
//	<-m.Ready()
//	rep, err := m.Do(0, kmodel.Lookup(wire.FUSE_ROOT_ID, "name"))
//	...
//	m.Unmount() // devfuse.Serve returns; then ch.Stop()
//
// The model starts no goroutine. Requests move when clients, /dev/fuse
// readers and ring queues call into it; a ring's deliveries happen inside
// its SubmitAndWait and Reap, on the queue's own goroutine, as the kernel
// copies in the submitting task's context.
//
// # The 7.46 patch and the policies
//
// With [Config.Patched], forgets stay on the /dev/fuse forget list until a
// REGISTER carries wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT; once that
// happened and the ring is ready, each forget becomes a single FUSE_FORGET
// request (nodeid in the header, fuse_forget_in in op_in, payload_sz 0)
// queued on the evicting CPU's queue like any request, holding its entry
// until the server commits it (the reply is ignored: noreply).
// [Config.ForgetBatchOnRing] and [Config.ForgetEntryCap] select policies the
// patch lacks: batched forgets per entry, and a cap on the entries forgets
// may hold. [QueueStats] counts entries held by forgets (now, most, time
// weighted mean), CQEs, commits and forget messages per queue.
//
// # Differences from the real kernel
//
//   - No VFS: no page cache, dentry or attribute cache, readahead,
//     writeback or revalidation. Clients issue exactly the FUSE requests
//     they are given. The model counts lookups from the replies it accepts
//     (entry replies and READDIRPLUS entries, as fuse_iget and
//     fuse_direntplus_link do) and evicts only when told to ([Conn.Evict],
//     [Conn.EvictAll] as drop_caches); an open node is never evicted. Node
//     IDs other than the root are never special.
//   - No background requests: max_background and congestion_threshold are
//     ignored, nothing is held back by fc->blocked, and the ring's per-queue
//     background admission (fuse_uring_flush_bg) is not modelled. Forced
//     requests (RELEASE) wait for the ring like any other.
//   - Synchronous delivery: a request assigned to an entry is copied when
//     the ring holding the entry's command next calls SubmitAndWait or
//     Reap. There is no io-wq, SQPOLL or DEFER_TASKRUN difference, the CQ
//     never overflows, and a full SQ is an error.
//   - One lock guards the whole connection (the kernel has fiq, fpq and
//     per-queue locks), so interleavings are coarser than the kernel's.
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
//   - The 7.46 routing follows the patch's cover letter and v1 code; its
//     commit path is the 6.18 one, and header mistakes in a forget's commit
//     are counted ([QueueStats].ForgetBadCommits) but ignored.
package kmodel
