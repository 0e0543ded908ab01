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
// The /dev/fuse channel keeps running next to the ring: in Linux 6.18 INIT,
// requests sent before the ring is ready, FORGET/BATCH_FORGET, INTERRUPT and
// unmount detection all still use /dev/fuse. Forgets that arrive on the ring
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
// # The kernel seam
//
// A queue talks to the kernel only through a [QueueRing]: queue a REGISTER
// or a COMMIT_AND_FETCH for an [Entry], submit and wait, reap completions,
// wake, close. [NewKernelRing] is the real one, on io_uring;
// [Options.NewRing] substitutes another, such as an in-process kernel model
// that writes requests into the entries' buffers as the kernel does.
package ring
