package wire

// Protocol version spoken by this package.
const (
	FUSE_KERNEL_VERSION = 7
	// FUSE_KERNEL_MINOR_VERSION is the newest minor ringfuse negotiates:
	// 7.46 of the proposed FORGET-over-io_uring series (kernel/patches),
	// whose one addition, FUSE_IO_URING_REGISTER_FORGET_COMMIT, lives in
	// the io_uring REGISTER command; nothing in INIT or the message layouts
	// changed from 7.45.
	FUSE_KERNEL_MINOR_VERSION = 46

	// MinKernelMinor is the oldest kernel minor ringfuse accepts: 7.12 gave
	// MKNOD, MKDIR and CREATE their umask, and every Linux since 2.6.31
	// speaks it.
	MinKernelMinor = 12

	// FUSE_ROOT_ID is the node ID of the root inode.
	FUSE_ROOT_ID = 1

	// FUSE_MIN_READ_BUFFER is the smallest read(2) the kernel accepts on
	// /dev/fuse, whatever max_write is.
	FUSE_MIN_READ_BUFFER = 8192

	// FUSE_DEFAULT_MAX_PAGES_PER_REQ is max_pages when INIT does not set
	// FUSE_MAX_PAGES.
	FUSE_DEFAULT_MAX_PAGES_PER_REQ = 32
)

// INIT flags (fuse_init_in.flags | fuse_init_in.flags2<<32). Bits 32 and up
// travel in flags2 and only when FUSE_INIT_EXT is set.
const (
	FUSE_ASYNC_READ           = 1 << 0
	FUSE_POSIX_LOCKS          = 1 << 1
	FUSE_FILE_OPS             = 1 << 2
	FUSE_ATOMIC_O_TRUNC       = 1 << 3
	FUSE_EXPORT_SUPPORT       = 1 << 4
	FUSE_BIG_WRITES           = 1 << 5
	FUSE_DONT_MASK            = 1 << 6
	FUSE_SPLICE_WRITE         = 1 << 7
	FUSE_SPLICE_MOVE          = 1 << 8
	FUSE_SPLICE_READ          = 1 << 9
	FUSE_FLOCK_LOCKS          = 1 << 10
	FUSE_HAS_IOCTL_DIR        = 1 << 11
	FUSE_AUTO_INVAL_DATA      = 1 << 12
	FUSE_DO_READDIRPLUS       = 1 << 13
	FUSE_READDIRPLUS_AUTO     = 1 << 14
	FUSE_ASYNC_DIO            = 1 << 15
	FUSE_WRITEBACK_CACHE      = 1 << 16
	FUSE_NO_OPEN_SUPPORT      = 1 << 17
	FUSE_PARALLEL_DIROPS      = 1 << 18
	FUSE_HANDLE_KILLPRIV      = 1 << 19
	FUSE_POSIX_ACL            = 1 << 20
	FUSE_ABORT_ERROR          = 1 << 21
	FUSE_MAX_PAGES            = 1 << 22
	FUSE_CACHE_SYMLINKS       = 1 << 23
	FUSE_NO_OPENDIR_SUPPORT   = 1 << 24
	FUSE_EXPLICIT_INVAL_DATA  = 1 << 25
	FUSE_MAP_ALIGNMENT        = 1 << 26
	FUSE_SUBMOUNTS            = 1 << 27
	FUSE_HANDLE_KILLPRIV_V2   = 1 << 28
	FUSE_SETXATTR_EXT         = 1 << 29
	FUSE_INIT_EXT             = 1 << 30
	FUSE_INIT_RESERVED        = 1 << 31
	FUSE_SECURITY_CTX         = 1 << 32
	FUSE_HAS_INODE_DAX        = 1 << 33
	FUSE_CREATE_SUPP_GROUP    = 1 << 34
	FUSE_HAS_EXPIRE_ONLY      = 1 << 35
	FUSE_DIRECT_IO_ALLOW_MMAP = 1 << 36
	FUSE_PASSTHROUGH          = 1 << 37
	FUSE_NO_EXPORT_SUPPORT    = 1 << 38
	FUSE_HAS_RESEND           = 1 << 39
	FUSE_ALLOW_IDMAP          = 1 << 40
	FUSE_OVER_IO_URING        = 1 << 41
	FUSE_REQUEST_TIMEOUT      = 1 << 42
)

// fuse_open_out.open_flags.
const (
	FOPEN_DIRECT_IO              = 1 << 0
	FOPEN_KEEP_CACHE             = 1 << 1
	FOPEN_NONSEEKABLE            = 1 << 2
	FOPEN_CACHE_DIR              = 1 << 3
	FOPEN_STREAM                 = 1 << 4
	FOPEN_NOFLUSH                = 1 << 5
	FOPEN_PARALLEL_DIRECT_WRITES = 1 << 6
	FOPEN_PASSTHROUGH            = 1 << 7
)

// fuse_setattr_in.valid.
const (
	FATTR_MODE         = 1 << 0
	FATTR_UID          = 1 << 1
	FATTR_GID          = 1 << 2
	FATTR_SIZE         = 1 << 3
	FATTR_ATIME        = 1 << 4
	FATTR_MTIME        = 1 << 5
	FATTR_FH           = 1 << 6
	FATTR_ATIME_NOW    = 1 << 7
	FATTR_MTIME_NOW    = 1 << 8
	FATTR_LOCKOWNER    = 1 << 9
	FATTR_CTIME        = 1 << 10
	FATTR_KILL_SUIDGID = 1 << 11
)

// Per-request flag words.
const (
	FUSE_GETATTR_FH = 1 << 0 // fuse_getattr_in.getattr_flags: fh is valid

	FUSE_RELEASE_FLUSH        = 1 << 0 // fuse_release_in.release_flags
	FUSE_RELEASE_FLOCK_UNLOCK = 1 << 1

	FUSE_WRITE_CACHE        = 1 << 0 // fuse_write_in.write_flags
	FUSE_WRITE_LOCKOWNER    = 1 << 1
	FUSE_WRITE_KILL_SUIDGID = 1 << 2

	FUSE_READ_LOCKOWNER = 1 << 1 // fuse_read_in.read_flags

	FUSE_LK_FLOCK = 1 << 0 // fuse_lk_in.lk_flags: BSD flock, not POSIX

	FUSE_FSYNC_FDATASYNC = 1 << 0 // fuse_fsync_in.fsync_flags

	FUSE_OPEN_KILL_SUIDGID = 1 << 0 // fuse_open_in.open_flags

	FUSE_SETXATTR_ACL_KILL_SGID = 1 << 0 // fuse_setxattr_in.setxattr_flags
)

// Sizes of structs that older minors sent shorter.
const (
	FUSE_COMPAT_SETXATTR_IN_SIZE = 8  // without FUSE_SETXATTR_EXT
	FUSE_COMPAT_INIT_IN_SIZE     = 16 // before 7.36
	FUSE_COMPAT_22_INIT_OUT_SIZE = 24 // before 7.23
)

// Limits the kernel enforces on replies.
const (
	// MaxErrno bounds fuse_out_header.error: the kernel rejects errors at or
	// beyond -ERESTARTSYS (512).
	MaxErrno = 511
)
