// Package faults holds fault tests of ringfuse on real mounts, over both
// transports (/dev/fuse and FUSE-over-io_uring). Every case must end with
// a clear error for the client and a usable system: no hang (every
// blocking client call runs under a watchdog, so a hang fails the test),
// no panic, no leftover mount, and no loss of data that fsync
// acknowledged. What the clients see (Linux 6.18):
//
//   - Daemon SIGKILLed under load (TestKilledDaemonRestart): writers fail
//     with ENOTCONN or ECONNABORTED, over io_uring also ECANCELED or EINTR; the dead
//     mount answers ENOTCONN and unmounts; a restarted daemon shows every
//     fsync-acknowledged byte.
//   - Connection aborted through fusectl (TestAbortInProcess,
//     TestAbortDaemon): ECONNABORTED for requests in flight, ENOTCONN
//     afterwards; the session ends with devfuse.ErrAborted and the daemon
//     exits with status 1 saying so.
//   - Unmount with requests in flight (TestUnmountInFlight): a lazy
//     unmount lets them finish and the session ends with the last user; a
//     plain one is busy, so the session aborts: ENOTCONN or ECONNABORTED.
//   - Backing filesystem full (TestBackingFull): ENOSPC from write(2);
//     reads, stat, statfs and unlink keep working, and writes work again
//     once space is freed.
//   - Daemon out of descriptors (TestDaemonOutOfFds): EMFILE for opens;
//     stat, lookups and reads of open files keep working, and opens,
//     creates and listings work again once files are closed.
//   - Backing directory removed (TestBackingRemoved): ENOENT for names,
//     creates and listings; open files keep working. Replaced
//     (TestBackingReplaced): no error, the mount keeps serving the
//     original directory.
//
// The package has only tests; they need root. The daemon cases build
// cmd/ringfuse (with -race when the tests run with it) and run it as a
// separate process.
package faults
