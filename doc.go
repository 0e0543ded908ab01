// Package ringfuse is the API a filesystem author implements to be served
// by the ringfuse FUSE server, over /dev/fuse or FUSE-over-io_uring.
//
// A filesystem implements [FileSystem], which only names the root node,
// plus one small optional interface per operation it supports
// ([Lookuper], [Opener], [Reader], ...), much as an io/fs filesystem adds
// fs.ReadDirFS or fs.StatFS. The server finds the optional interfaces once,
// at mount, and answers ENOSYS for the rest.
//
// Nodes belong to the filesystem: a [Node] is any value the filesystem uses
// for one inode. Kernel node IDs and lookup counts belong to the server:
// when an operation returns an [Entry], the server finds or creates the
// kernel node for the entry's [InodeKey] and counts the lookup. When the
// kernel has forgotten every lookup, the server calls [Forgetter.Forget]
// exactly once. No filesystem has to get FORGET arithmetic right.
//
// Operations receive a context.Context that INTERRUPT cancels and that
// carries the caller's credentials ([CallerOf]). They return a
// syscall.Errno: 0 for success. The context and every slice passed in are
// valid only until the operation returns; the server reuses them.
package ringfuse
