// Package fsx is an fsx-style randomized differential test of the
// passthrough filesystem: one seeded sequence of file system operations is
// applied, step by step, to a ringfuse passthrough mount and to a native
// directory on the same backing filesystem, and the results of every
// operation and everything observable in the two trees are compared after
// each step.
//
// # Pieces
//
//   - [Op] is one operation (open, pwrite, fallocate, mmap write, rename,
//     setxattr, utimensat...) on a small fixed namespace of paths
//     ([Paths]) and a handful of descriptor slots ([NumSlots]), possibly
//     as an unprivileged caller ([Op.User]). An Op is self-contained: it
//     names paths and slots, never the result of an earlier operation, so
//     any subsequence of a run is itself a valid run. That is what lets the
//     shrinker drop operations freely.
//   - [Generator] produces the operation stream of a seed. The stream is a
//     function of the seed alone, whatever the operations return, so the
//     first n operations of a seed are the same in every run.
//   - [Side] applies operations to one directory tree and keeps its
//     descriptor slots; [Side.Apply] returns a [Result] (errno, count,
//     bytes, summary) for comparison.
//   - [Take] records a [Snapshot] of a side: for every name in the tree its
//     type, permission bits, link count, owner, size, data, symlink target,
//     extended attributes, hard-link group and mtime class, and for every
//     open slot its attributes, offset and names. [Diff] compares two.
//   - [Run] drives two sides in lockstep and returns the first
//     [Divergence]; [Shrink] reduces a failing sequence by delta debugging
//     against a replay predicate.
//
// # What is not compared, and why
//
// Inode and device numbers differ between the trees; they are compared
// only as identity: which paths and open descriptors share an inode.
// st_blocks depends on when the backing filesystem allocates delayed
// blocks, and st_blksize is the FUSE connection's; atime moves only when a
// read reaches the backing file, which the FUSE page cache often spares;
// ctime cannot be set, and the daemon's own chown and chmod of a file it
// creates for a caller move it on the backing side. mtime is compared
// exactly when it is one a utimensat operation set (a fixed time in the
// past, see [SentinelSec]) and otherwise only as "recent".
//
// Directory offsets are cookies: ext4 seeks a hashed directory within its
// hash range, while the FUSE kernel seeks a directory as a file of its
// i_size without asking the server, so lseek on a directory is not
// compared; listings are compared as sorted names, since getdents order is
// unspecified. listxattr is compared as a sorted set plus its size.
// SEEK_DATA and SEEK_HOLE answers that differ only by a range of zeros
// count as equal ([SeekEquivalent]): ext4 reports an unwritten extent as
// data where its pages are cached, and the FUSE kernel's read-ahead
// through the server caches other pages of the backing file than native
// reads do. Those two leave the file offset where it was, so that such a
// difference does not carry over.
//
// Operations run as root or, in one variant, as two unprivileged users;
// fallocate and copy_file_range always run as root: natively they clear
// set-ID bits when the caller lacks CAP_FSETID, but FUSE_FALLOCATE and
// FUSE_COPY_FILE_RANGE carry no kill flag for the server to act on.
//
// # The test
//
// TestFSX runs a bounded number of operations (3,000) over each
// transport, on a fresh mount in one of several variants: the daemon's
// defaults, no kernel caching and no fd cache, kernel passthrough
// (FUSE_PASSTHROUGH), and operations by several users under
// default_permissions. The variant follows from the seed and the
// transport, so one run covers two. Flags:
//
//	-fsx.seed=S        the seed (default: from the clock; always logged)
//	-fsx.ops=N         operations per round
//	-fsx.duration=D    keep running rounds with seeds S, S+1, ... for D
//	-fsx.variant=V     force a variant
//	-fsx.keep=LIST     run only these operations of the stream (3,17,40-45)
//	-fsx.shrinktime=D  time allowed for shrinking a failure
//	-fsx.trace         log every operation and its results
//
// A divergence prints the seed, what differs, a shrunk numbered list of
// operations with both sides' results, and the command that replays it.
// A long soak, from the module root:
//
//	go test ./tests/fsx -run TestFSX -fsx.duration=10m -timeout 30m -v
package fsx
