// Package patched tests ringfuse on the Linux 7.2 kernel with the 7.46
// FORGET-over-io_uring patch series (kernel/patches), in a VM.
//
// The package's tests run in two places:
//
//   - On the host, TestVM gets the kernel image (RINGFUSE_KERNEL_IMAGE, or
//     the last line of kernel/build, which builds or reuses it), compiles
//     this package's test binary and the ringfuse command as static
//     binaries, and runs the test binary as root in a VM on that kernel
//     with kernel/vm, streaming its output (prefixed "vm| "). It fails if
//     the guest's tests fail, the guest dies, or the VM times out. It needs
//     root; -short or RINGFUSE_VM_TESTS=0 skips it.
//   - In the guest (RINGFUSE_IN_VM=1), every other test runs for real:
//     TestMain first checks that the kernel offers protocol 7.46 and
//     FUSE-over-io_uring and stops everything otherwise; then the forget
//     storms (with and without the daemon's opt-in, and with each
//     alternative the series offers as a fuse module parameter), and
//     SIGKILL, abort and unmount during a storm on the ring.
//
// TestStudyVM, also on the host, runs kernel/study (the forget study's VM
// runner) with a small study of patch v3 and its batched variant and
// checks the counts it brings back: one forget per ring message under v3,
// batches under uring_forget_batch, the fuse_uring_forget_ents trace.
//
// Each storm prints one line "STORM {json}" with its counts (forgets per
// message on each path, ring CQEs, commits and io_uring_enter calls per
// forget); TestVM repeats those lines in its log. The storm's size is
// RINGFUSE_STORM_INODES (default 2000); RINGFUSE_VM_CPUS and
// RINGFUSE_VM_MEMORY size the VM (default 2 CPUs, 2G), RINGFUSE_VM_RUN
// selects guest tests (-test.run).
package patched
