// Package forgetstudy measures FORGET storms next to a 4k read workload:
// does delivering forgets over the io_uring ring (the proposed protocol
// 7.46 patch, "[PATCH v3] fuse: optional FORGET delivery over io_uring")
// help or hurt compared with the classic /dev/fuse batching?
//
// A [Policy] is one way of delivering forgets. Each policy runs the same
// experiment and returns a [Result]; [Run] repeats the policies, alternating
// them, and a [Report] quotes medians with min–max and writes Markdown, SVG
// plots and raw JSON. Policies are of one of two kinds, never mixed in one
// table: [KindRealKernel] policies mount for real on the running kernel,
// [KindModel] policies (package forgetstudy/model) compute their results
// from a model of the kernel. [RealKernelPolicies] lists the real-kernel
// ones: the transports, patch v3 (0001 of kernel/SERIES.md) and each
// alternative of the series, whose fuse module parameters a run sets and
// restores (a kernel without them skips those policies); [Pick] chooses
// among the policies a command offers.
//
// # The real-kernel experiment
//
// The built-in policies [DevFuse] and [UringForgetsOnDevFuse] serve a
// passthrough of a backing directory in this process (session.Mount):
//
//  1. Create [Params.Inodes] empty files natively in the backing directory,
//     at most 10,000 per subdirectory (reused between runs).
//  2. Mount, run an unmeasured fio warm-up, record the live node count
//     (the baseline), then lstat every file through the mount from a few
//     goroutines, so that the kernel holds one FUSE inode per file.
//     The passthrough keeps a file handle, not a descriptor, per inode, so
//     a million inodes fit under RLIMIT_NOFILE.
//  3. Run fio (4k randread, O_DIRECT, 64 MiB file, one reader per CPU at
//     [ReadJob.Depth]: psync at 1, libaio above) for [Params.Baseline]
//     without a storm, then again for [ReadJob.Runtime] with a storm:
//     [Params.StormDelay] after the first READ reaches the server, the
//     [Params.Evict] mode evicts the inodes and the kernel queues one
//     forget each: "sync; echo 2 > /proc/sys/vm/drop_caches" (one task),
//     unlink of every file by one thread per CPU (many tasks), or
//     memory.high=0 on a cgroup v2 whose find(1) looked the files up
//     (memcg reclaim). fio writes a per-I/O
//     completion-latency log with Unix-epoch millisecond timestamps, so
//     read latency can be cut into windows after the drop_caches write;
//     a window takes the reads in flight during it (issue time = logged
//     time less latency).
//  4. While the storm fio runs, a goroutine polls the server's live node
//     count every millisecond (drain detection) and every 10 ms records
//     live nodes, forgets received, VmRSS and the Go heap
//     (runtime/metrics, which does not stop the world).
//
// Around the trigger the run takes the daemon's counters ([Counters]:
// CPU, context switches, ring CQEs, commits and io_uring_enter calls,
// /dev/fuse reads) for the span before it, which carries reads alone, and
// from it to the drain: the report charges the forgets with the storm
// span's excess over the reads' rate. On the patched kernel the
// fuse_uring_forget_ents tracepoint gives the ring entries holding
// forgets over time; the sampler records SUnreclaim (where forget
// requests live) and the process's threads.
//
// Drain time runs from the drop_caches write until the live node count is
// back at the baseline. The kernel's share is approximated twice: by how
// long the drop_caches write took (eviction is synchronous, forgets are
// queued as inodes go) and by the first and last change of the live node
// count (when forgets started and stopped arriving). The kernel prunes
// dentries before it evicts inodes, so the first forget comes a few hundred
// milliseconds after the write; besides the fixed windows (first 100 ms,
// first 1 s, whole storm) the report therefore also cuts reads to the
// window "while forgets arrive". The live Go heap is also measured after a
// forced GC, outside the measured windows, with all nodes and after the
// drain: the difference per forget is the server's heap per node.
//
// Another process dropping caches (a concurrent benchmark) would evict the
// inodes early: a run notices it, looks the files up again and retries the
// baseline or the storm, up to three times. Other fio processes running
// during a storm are named in the run's notes.
//
// [NativeControl] runs the same lookups, fio job and drop_caches on the
// backing tree without FUSE: what eviction alone costs the reads.
//
// On a kernel without the 7.46 patch forgets never travel on the ring, so
// the ring policy's CQEs, commits and entries held by forgets are zero:
// the report says so rather than leaving them out.
package forgetstudy
