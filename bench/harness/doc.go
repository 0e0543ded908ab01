// Package harness runs ringfuse's end-to-end benchmarks.
//
// A [Config] is a way of presenting a backing directory at a path: "native"
// is the directory itself, every other configuration is a mount command that
// the harness starts as a child process per run and stops with SIGTERM. A
// [Workload] is a client job (fio, fs_mark, or the built-in stat job) that
// runs against that path. [Env.RunOne] runs one (configuration, workload)
// pair on a fresh mount and measures the daemon's CPU time and context
// switches over exactly the workload's measured window; [Run] repeats all
// pairs, alternating configurations within each round, and [Report] turns
// the results into Markdown tables (median and min–max per cell) and JSON.
//
// The harness needs root: it mounts with the daemon's own mount(2), writes
// /proc/sys/vm/drop_caches, and cleans up a mount left behind with a lazy
// unmount and an abort through /sys/fs/fuse/connections.
//
// The method follows performance.md §5 of the project documentation.
package harness
