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
// with EOPNOTSUPP) a node is pinned instead: it holds an O_PATH descriptor
// until Forget, as in passthrough_hp.
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
// used only where Linux has no call for O_PATH descriptors: extended
// attributes, truncate without an open file, and chmod before fchmodat2
// (Linux 6.6).
//
// A file handle stays valid if its file is moved out of the source tree
// on the same filesystem; like a passthrough_hp O_PATH descriptor, a node
// the kernel holds keeps reaching its inode.
//
// # Ownership
//
// The daemon runs as root and creates files as root, then, before
// answering, gives each new file, directory, symlink and special file to
// the caller ([ringfuse.CallerOf]): owner uid, and group gid or, in a
// set-group-ID directory, the directory's group (a new subdirectory keeps
// S_ISGID). It then restores mode bits that the daemon's umask or chown
// changed, so the mode is exactly the one the kernel sent. Default ACLs of
// backing directories are therefore not applied to new nodes, and the
// supplementary groups of the caller are not known when deciding whether a
// new file in a set-group-ID directory keeps S_ISGID.
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
