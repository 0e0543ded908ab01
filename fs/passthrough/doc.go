// Package passthrough is a ringfuse filesystem that serves a directory
// tree of the host, in the manner of libfuse's passthrough_hp, but without
// holding a descriptor for every inode the kernel knows.
//
// # Nodes
//
// A node is keyed by the backing inode's device and inode number
// ([ringfuse.InodeKey]) and holds the inode's file handle from
// name_to_handle_at(2), not a descriptor. When an operation needs the
// inode it reopens it with open_by_handle_at(2) (O_PATH), which needs
// CAP_DAC_READ_SEARCH, against one descriptor kept per backing mount (the
// first directory seen on it, opened O_RDONLY because open_by_handle_at
// refuses O_PATH mount descriptors; mounts are told apart by their unique
// 64-bit ID on Linux 6.12 and later). A
// bounded LRU cache ([Options.FdCacheSize]) keeps the O_PATH descriptors
// of recently used nodes, so busy directories are not reopened on every
// request; Forget evicts a node's descriptor. The number of kernel-held
// inodes is therefore bounded by memory (about 100 bytes a node), not by
// RLIMIT_NOFILE.
//
// On a backing filesystem without file handles (name_to_handle_at fails
// with EOPNOTSUPP), and in a daemon run by a user without
// CAP_DAC_READ_SEARCH, a node is pinned instead: it holds an O_PATH
// descriptor until Forget, as in passthrough_hp.
//
// When a new inode gets the inode number of a deleted one whose node the
// kernel still holds, the new inode gets a node of its own, under a key
// tagged with an incarnation number, and so a new node ID; the old node
// answers as the deleted inode would (ESTALE) until the kernel forgets it.
//
// # Security
//
// The filesystem never resolves a path from the client. Every operation
// works on a descriptor and, for names, on a single component relative to
// a directory descriptor; "", ".", "..", and names containing '/' are
// refused, so nothing above the source directory is reachable. Symlinks
// are never followed on a client's behalf: lookups stat with
// AT_SYMLINK_NOFOLLOW, opens use O_NOFOLLOW (opening a symlink node fails
// with ELOOP), and attribute changes use AT_EMPTY_PATH on the node's own
// descriptor. /proc/self/fd paths of the filesystem's own descriptors are
// used where Linux has no call for O_PATH descriptors (extended
// attributes, truncate without an open file, chmod before fchmodat2 in
// Linux 6.6) and to reopen a node as the caller (OPEN, OPENDIR, LINK); the
// magic link reaches the node's own object and never follows a symlink
// there (opening one fails with ELOOP).
//
// A file handle stays valid if its file is moved out of the source tree
// on the same filesystem; like a passthrough_hp O_PATH descriptor, a node
// the kernel holds keeps reaching its inode.
//
// # Acting as the caller
//
// Every call that a permission decides runs with the credentials of the
// process that made the request (package creds: its fsuid, fsgid and
// supplementary groups on the serving thread): LOOKUP, the calls that make,
// link, rename and remove names, OPEN, OPENDIR and CREATE (an existing
// file is opened with the caller's rights, which the kernel did not
// check), SETATTR, ACCESS, the extended attribute calls, and WRITE,
// FALLOCATE and COPY_FILE_RANGE (so that a write by a caller without
// CAP_FSETID clears set-ID bits as natively). The backing filesystem
// therefore checks modes, POSIX ACLs, sticky directories and protected
// hard links for the caller, and a new object gets the caller's owner and
// group, or the directory's group and S_ISGID in a set-group-ID directory,
// when it is made, with no moment when root owns it. Opening reopens the
// node's O_PATH descriptor through /proc/self/fd as the caller, since
// open_by_handle_at(2) checks nothing. The daemon's own rights are used
// only for open_by_handle_at (CAP_DAC_READ_SEARCH), for the mount
// descriptors, for clearing set-ID bits when the kernel asks for it
// (FATTR_KILL_SUIDGID, chown(f, -1, -1)), for the second descriptor of an
// O_DIRECT handle, and for mode bits that the daemon's own umask took
// (the daemon should run with umask 0).
//
// LOOKUP resolves a name once, as the caller (openat with O_PATH and
// O_NOFOLLOW), and takes the attributes and the file handle from that one
// descriptor, so a rename on the host between the two cannot pair one
// file's attributes with another's handle.
//
// The caller's umask is applied here when the server leaves it to the
// filesystem (server.Options ApplyUmask, or PosixACL), unless the
// directory has a default ACL, which then decides as it does natively.
//
// Without default_permissions the kernel asks the server only when it
// looks a name up: a name cached by one user is walked by the next without
// a LOOKUP, so the search permission of its directories is not checked
// for that user. Mount without name caching then (EntryTimeout negative;
// ringfuse mount -o no_default_permissions does), or keep
// default_permissions, which ringfuse mount does by default for mounts
// other users reach.
//
// # Handles
//
// Open files and directories live in a table indexed by the fh the kernel
// sends back; an fh carries a generation, so a stale or forged fh gets
// EBADF and never reaches an unrelated descriptor. Reads and writes use
// pread and pwrite on the open descriptor. A file opened with O_DIRECT is
// also reopened through /proc/self/fd without it, and reads and writes
// not aligned as statx's STATX_DIOALIGN says (pages written back from a
// shared mapping end at EOF) use that descriptor, so none is refused with
// EINVAL; [FS.AcquireFd] lends the ring the descriptor by the same rule.
// Directory listings use the backing d_off cookies as offsets.
//
// Locking is not implemented: the kernel then applies POSIX and BSD locks
// locally, which is right for a tree only this host serves.
package passthrough
