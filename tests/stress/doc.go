// Package stress holds the concurrency stress test of ringfuse: parallel
// clients, in this process and in child processes, create, rename,
// unlink, link, mkdir, rmdir, list and stat names in a few shared
// directories of a passthrough mount while the kernel's dentry and inode
// caches are dropped in a loop, so that lookups race forgets. It runs over
// /dev/fuse and over io_uring.
//
// The test passes when nothing deadlocks (a watchdog dumps the goroutines
// and the kernel stacks and aborts the connection if the test overruns),
// no client sees an error a local filesystem would not also give under
// the same races (see allowedErrnos), the mount and the backing directory
// agree at the end, and the server's node table drains back to the root
// once the caches are dropped.
package stress
