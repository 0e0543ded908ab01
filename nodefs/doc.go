// Package nodefs is ringfuse's node-tree API: a filesystem is a tree of
// Go values, each embedding an [Inode], and each implements only the
// operations it needs ([Lookuper], [Getattrer], [Reader], ...), as in
// go-fuse's fs package.
//
// A directory's children are either persistent, added once (typically in
// [OnAdder.OnAdd]) with [Inode.NewPersistentInode] and [Inode.AddChild],
// or dynamic, made on demand by the directory's [Lookuper] with
// [Inode.NewInode] and dropped again when the kernel forgets them. A node
// without Lookuper finds names among its children; one without
// [Readdirer] lists them.
//
// The server core keeps owning kernel node IDs and lookup counts: the tree
// hands each of its inodes to the server keyed by the inode number, and
// learns that the kernel forgot an inode through one call, which reaches
// [OnForgetter]. No author counts forgets. Inode numbers are the tree's
// business too: a zero [StableAttr.Ino] gets a fresh number, and two
// inodes made with the same nonzero number are one inode (a hard link).
//
// [New] turns a tree into a [ringfuse.FileSystem]; [Mount] mounts it.
// [MemRegularFile] and [MemDir] are in-memory files and directories, and
// package nodefs/loopback serves a host directory as a node tree.
//
// Every method a node type has that is named like an operation but does
// not match the operation's interface is reported when the node joins the
// tree (see [ringfuse.Check]); a mismatch at the root fails [New].
package nodefs
