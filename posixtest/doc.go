// Package posixtest is a POSIX conformance suite that runs against any
// directory: a FUSE mount served by ringfuse, or a plain local directory,
// which checks the suite itself.
//
// [All] is an ordered list of named [Case] values. [Run] runs each of them as
// a subtest in a fresh directory of its own. Cases talk to the file system
// with raw golang.org/x/sys/unix calls, the os package, and, where other
// credentials are needed, child processes (/bin/sh, /bin/cat and coreutils).
// Every mismatch is reported with t.Errorf naming the operation and the
// errno, so one run shows every difference from the expected behaviour; a
// case stops early (t.Fatalf) only when a later step cannot mean anything.
//
// Requirements on the caller:
//
//   - Run as root. Cases that need root (chown, dropped credentials) skip
//     with a reason otherwise.
//   - Cases do not run in parallel: some change the process umask.
//   - The cases that run a child process as uid/gid 65534 (PermissionsNonRoot,
//     NewNodeOwner, SetgidDirectory) need every ancestor of Env.Dir to be
//     searchable by that user (mode o+x); t.TempDir makes 0700 directories,
//     so chmod them 0755. On a FUSE mount they also need allow_other, or the
//     kernel refuses every access by another user.
//   - A FUSE server must support what the cases use: create, mknod (FIFOs),
//     link, symlink, rename with RENAME_NOREPLACE and RENAME_EXCHANGE,
//     setattr by file handle on unlinked files, xattrs, fallocate (including
//     PUNCH_HOLE), lseek (SEEK_DATA/SEEK_HOLE, or ENOSYS for the kernel's
//     fallback), copy_file_range, fsync/fsyncdir, and readdir offsets that
//     can be seeked to. Files made for a caller must belong to the caller's
//     uid and gid, following setgid directories.
package posixtest
