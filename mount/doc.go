// Package mount attaches a FUSE connection to the file system tree and takes
// it down again.
//
// It owns the kernel side of mounting and nothing else: it parses the
// kernel-level mount options ([ParseOptions], [Options]), opens /dev/fuse and
// calls mount(2) ([Mount]), unmounts ([Unmount], [UnmountLazy]), aborts a
// connection through the fusectl file system ([Abort], [ForceUnmount]), and
// reads the fuse module parameters that decide which transports can be used
// ([UringEnabled], [MaxPagesLimit]). It never reads or answers a request;
// the [Conn] returned by Mount hands its descriptor to the server, which must
// answer FUSE_INIT before the mount becomes usable.
//
// As root, ringfuse mounts with mount(2) directly, as libfuse does. Any
// other user mounts through the setuid helper fusermount3 (Debian package
// fuse3), with libfuse's protocol: the helper gets one end of a socket pair
// in _FUSE_COMMFD, mounts, and sends the /dev/fuse descriptor back with
// SCM_RIGHTS; [Unmount] then falls back to "fusermount3 -u". With
// [Options.AutoUnmount] a watcher process unmounts when the process that
// mounted dies, however it dies.
//
// # Never touching the mount
//
// A FUSE mount whose server has not answered FUSE_INIT, or has hung, blocks
// every process that stats or opens anything inside it. The functions that
// inspect or remove a mount ([IsMounted], [LookupMount], [WaitMounted],
// [Unmount], [UnmountLazy], [Abort], [ForceUnmount], [Conn.ConnID]) therefore
// never stat the mount point: they read /proc/self/mountinfo and the fusectl
// directory, and umount2(2) resolves its path without asking the file system.
// Symbolic links in the mount point's path are resolved with readlink(2),
// which does not call into a mounted file system.
//
// The package serves Linux only; elsewhere it compiles, and [Mount] fails
// with [ErrLinuxOnly].
package mount
