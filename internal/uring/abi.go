package uring

import (
	"structs"
	"unsafe"
)

// Structs in this file mirror include/uapi/linux/io_uring.h field by field.
// Unions are represented by their widest member; accessors cover the other
// spellings where ringfuse needs them.

// Params is struct io_uring_params, passed to io_uring_setup(2) and filled in
// by the kernel on success.
type Params struct {
	_            structs.HostLayout
	SQEntries    uint32
	CQEntries    uint32 // input only with IORING_SETUP_CQSIZE
	Flags        uint32 // IORING_SETUP_*
	SQThreadCPU  uint32 // with IORING_SETUP_SQ_AFF
	SQThreadIdle uint32 // milliseconds, with IORING_SETUP_SQPOLL
	Features     uint32 // IORING_FEAT_*, output
	WQFd         uint32 // with IORING_SETUP_ATTACH_WQ
	_            [3]uint32
	SQOff        SQRingOffsets
	CQOff        CQRingOffsets
}

// SQRingOffsets is struct io_sqring_offsets: byte offsets of the SQ ring
// fields inside the IORING_OFF_SQ_RING mapping.
type SQRingOffsets struct {
	_           structs.HostLayout
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Flags       uint32 // IORING_SQ_*
	Dropped     uint32
	Array       uint32
	_           uint32 // resv1
	UserAddr    uint64 // with IORING_SETUP_NO_MMAP
}

// CQRingOffsets is struct io_cqring_offsets: byte offsets of the CQ ring
// fields inside the IORING_OFF_CQ_RING mapping.
type CQRingOffsets struct {
	_           structs.HostLayout
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Overflow    uint32
	CQEs        uint32
	Flags       uint32 // IORING_CQ_*
	_           uint32 // resv1
	UserAddr    uint64 // with IORING_SETUP_NO_MMAP
}

// SQE is a 128-byte submission queue entry: struct io_uring_sqe (64 bytes)
// followed by the second half that IORING_SETUP_SQE128 adds. The last 80
// bytes, from offset 48, are the command area of IORING_OP_URING_CMD (see
// [SQE.Cmd]); for other opcodes offset 48 holds addr3.
type SQE struct {
	_        structs.HostLayout
	Opcode   uint8  // IORING_OP_*
	Flags    uint8  // IOSQE_*
	Ioprio   uint16 // ioprio; send/recv/accept flags for some opcodes
	Fd       int32  // file descriptor, or fixed-file index with IOSQE_FIXED_FILE
	Off      uint64 // union: off, addr2, {cmd_op u32, __pad1 u32}; see [SQE.SetCmdOp]
	Addr     uint64 // union: addr, splice_off_in; a user address the kernel reads or writes
	Len      uint32 // buffer size or number of iovecs
	OpFlags  uint32 // union: rw_flags, poll32_events, uring_cmd_flags, ...
	UserData uint64 // echoed in the CQE
	BufIndex uint16 // union: buf_index, buf_group
	// Personality is a credential id from IORING_REGISTER_PERSONALITY.
	Personality uint16
	FileIndex   uint32 // union: splice_fd_in, file_index, optlen, addr_len
	cmd         [80]byte
}

// CQE is struct io_uring_cqe (16 bytes; the ring never uses CQE32).
type CQE struct {
	_        structs.HostLayout
	UserData uint64
	Res      int32 // result, or a negated errno
	Flags    uint32
}

// Iovec is struct iovec on 64-bit Linux, as pointed to by SQE.Addr for FUSE
// REGISTER (two of them) and for vectored I/O.
type Iovec struct {
	_    structs.HostLayout
	Base uint64
	Len  uint64
}

// Sizes of the ABI structs in bytes.
const (
	SizeofParams        = 120
	SizeofSQRingOffsets = 40
	SizeofCQRingOffsets = 40
	SizeofSQE64         = 64  // struct io_uring_sqe
	SizeofSQE           = 128 // struct io_uring_sqe with IORING_SETUP_SQE128
	SizeofCQE           = 16
	SizeofIovec         = 16

	// SizeofSQECmd is the command area of a 128-byte URING_CMD SQE.
	SizeofSQECmd = SizeofSQE - offsetofSQECmd

	offsetofSQECmd = 48
)

// Compile-time layout checks in both directions: a mismatch makes an array
// length negative and fails the build.
var (
	_ [SizeofParams - unsafe.Sizeof(Params{})]byte
	_ [unsafe.Sizeof(Params{}) - SizeofParams]byte
	_ [SizeofSQRingOffsets - unsafe.Sizeof(SQRingOffsets{})]byte
	_ [unsafe.Sizeof(SQRingOffsets{}) - SizeofSQRingOffsets]byte
	_ [SizeofCQRingOffsets - unsafe.Sizeof(CQRingOffsets{})]byte
	_ [unsafe.Sizeof(CQRingOffsets{}) - SizeofCQRingOffsets]byte
	_ [SizeofSQE - unsafe.Sizeof(SQE{})]byte
	_ [unsafe.Sizeof(SQE{}) - SizeofSQE]byte
	_ [SizeofCQE - unsafe.Sizeof(CQE{})]byte
	_ [unsafe.Sizeof(CQE{}) - SizeofCQE]byte
	_ [SizeofIovec - unsafe.Sizeof(Iovec{})]byte
	_ [unsafe.Sizeof(Iovec{}) - SizeofIovec]byte
	_ [offsetofSQECmd - unsafe.Offsetof(SQE{}.cmd)]byte
	_ [unsafe.Offsetof(SQE{}.cmd) - offsetofSQECmd]byte
)

// io_uring_setup(2) flags (io_uring_params.flags).
const (
	IORING_SETUP_IOPOLL             = 1 << 0
	IORING_SETUP_SQPOLL             = 1 << 1
	IORING_SETUP_SQ_AFF             = 1 << 2
	IORING_SETUP_CQSIZE             = 1 << 3
	IORING_SETUP_CLAMP              = 1 << 4
	IORING_SETUP_ATTACH_WQ          = 1 << 5
	IORING_SETUP_R_DISABLED         = 1 << 6
	IORING_SETUP_SUBMIT_ALL         = 1 << 7
	IORING_SETUP_COOP_TASKRUN       = 1 << 8
	IORING_SETUP_TASKRUN_FLAG       = 1 << 9
	IORING_SETUP_SQE128             = 1 << 10
	IORING_SETUP_CQE32              = 1 << 11
	IORING_SETUP_SINGLE_ISSUER      = 1 << 12
	IORING_SETUP_DEFER_TASKRUN      = 1 << 13
	IORING_SETUP_NO_MMAP            = 1 << 14
	IORING_SETUP_REGISTERED_FD_ONLY = 1 << 15
	IORING_SETUP_NO_SQARRAY         = 1 << 16
)

// Opcodes (enum io_uring_op), SQE.Opcode.
const (
	IORING_OP_NOP = iota
	IORING_OP_READV
	IORING_OP_WRITEV
	IORING_OP_FSYNC
	IORING_OP_READ_FIXED
	IORING_OP_WRITE_FIXED
	IORING_OP_POLL_ADD
	IORING_OP_POLL_REMOVE
	IORING_OP_SYNC_FILE_RANGE
	IORING_OP_SENDMSG
	IORING_OP_RECVMSG
	IORING_OP_TIMEOUT
	IORING_OP_TIMEOUT_REMOVE
	IORING_OP_ACCEPT
	IORING_OP_ASYNC_CANCEL
	IORING_OP_LINK_TIMEOUT
	IORING_OP_CONNECT
	IORING_OP_FALLOCATE
	IORING_OP_OPENAT
	IORING_OP_CLOSE
	IORING_OP_FILES_UPDATE
	IORING_OP_STATX
	IORING_OP_READ
	IORING_OP_WRITE
	IORING_OP_FADVISE
	IORING_OP_MADVISE
	IORING_OP_SEND
	IORING_OP_RECV
	IORING_OP_OPENAT2
	IORING_OP_EPOLL_CTL
	IORING_OP_SPLICE
	IORING_OP_PROVIDE_BUFFERS
	IORING_OP_REMOVE_BUFFERS
	IORING_OP_TEE
	IORING_OP_SHUTDOWN
	IORING_OP_RENAMEAT
	IORING_OP_UNLINKAT
	IORING_OP_MKDIRAT
	IORING_OP_SYMLINKAT
	IORING_OP_LINKAT
	IORING_OP_MSG_RING
	IORING_OP_FSETXATTR
	IORING_OP_SETXATTR
	IORING_OP_FGETXATTR
	IORING_OP_GETXATTR
	IORING_OP_SOCKET
	IORING_OP_URING_CMD // 46
	IORING_OP_SEND_ZC
	IORING_OP_SENDMSG_ZC
	IORING_OP_READ_MULTISHOT
	IORING_OP_WAITID
	IORING_OP_FUTEX_WAIT
	IORING_OP_FUTEX_WAKE
	IORING_OP_FUTEX_WAITV
)

// SQE.Flags.
const (
	IOSQE_FIXED_FILE       = 1 << 0 // SQE.Fd is an index into the registered files
	IOSQE_IO_DRAIN         = 1 << 1
	IOSQE_IO_LINK          = 1 << 2
	IOSQE_IO_HARDLINK      = 1 << 3
	IOSQE_ASYNC            = 1 << 4
	IOSQE_BUFFER_SELECT    = 1 << 5
	IOSQE_CQE_SKIP_SUCCESS = 1 << 6
)

// POLL_ADD command flags, carried in SQE.Len.
const (
	IORING_POLL_ADD_MULTI        = 1 << 0
	IORING_POLL_UPDATE_EVENTS    = 1 << 1
	IORING_POLL_UPDATE_USER_DATA = 1 << 2
	IORING_POLL_ADD_LEVEL        = 1 << 3
)

// CQE.Flags.
const (
	IORING_CQE_F_BUFFER        = 1 << 0
	IORING_CQE_F_MORE          = 1 << 1
	IORING_CQE_F_SOCK_NONEMPTY = 1 << 2
	IORING_CQE_F_NOTIF         = 1 << 3
)

// mmap(2) offsets selecting which ring region to map.
const (
	IORING_OFF_SQ_RING = 0
	IORING_OFF_CQ_RING = 0x8000000
	IORING_OFF_SQES    = 0x10000000
)

// SQ ring flags (the word at SQRingOffsets.Flags), written by the kernel.
const (
	IORING_SQ_NEED_WAKEUP = 1 << 0 // the SQPOLL thread sleeps: enter with IORING_ENTER_SQ_WAKEUP
	IORING_SQ_CQ_OVERFLOW = 1 << 1 // CQEs wait in the kernel's overflow list: enter with GETEVENTS
	IORING_SQ_TASKRUN     = 1 << 2 // task work is pending: enter to run it (IORING_SETUP_TASKRUN_FLAG)
)

// CQ ring flags (the word at CQRingOffsets.Flags), written by the application.
const (
	IORING_CQ_EVENTFD_DISABLED = 1 << 0
)

// io_uring_enter(2) flags.
const (
	IORING_ENTER_GETEVENTS       = 1 << 0
	IORING_ENTER_SQ_WAKEUP       = 1 << 1
	IORING_ENTER_SQ_WAIT         = 1 << 2
	IORING_ENTER_EXT_ARG         = 1 << 3
	IORING_ENTER_REGISTERED_RING = 1 << 4
)

// Feature bits reported in Params.Features.
const (
	IORING_FEAT_SINGLE_MMAP     = 1 << 0
	IORING_FEAT_NODROP          = 1 << 1
	IORING_FEAT_SUBMIT_STABLE   = 1 << 2
	IORING_FEAT_RW_CUR_POS      = 1 << 3
	IORING_FEAT_CUR_PERSONALITY = 1 << 4
	IORING_FEAT_FAST_POLL       = 1 << 5
	IORING_FEAT_POLL_32BITS     = 1 << 6
	IORING_FEAT_SQPOLL_NONFIXED = 1 << 7
	IORING_FEAT_EXT_ARG         = 1 << 8
	IORING_FEAT_NATIVE_WORKERS  = 1 << 9
	IORING_FEAT_RSRC_TAGS       = 1 << 10
	IORING_FEAT_CQE_SKIP        = 1 << 11
	IORING_FEAT_LINKED_FILE     = 1 << 12
	IORING_FEAT_REG_REG_RING    = 1 << 13
)

// io_uring_register(2) opcodes.
const (
	IORING_REGISTER_BUFFERS          = 0
	IORING_UNREGISTER_BUFFERS        = 1
	IORING_REGISTER_FILES            = 2
	IORING_UNREGISTER_FILES          = 3
	IORING_REGISTER_EVENTFD          = 4
	IORING_UNREGISTER_EVENTFD        = 5
	IORING_REGISTER_FILES_UPDATE     = 6
	IORING_REGISTER_EVENTFD_ASYNC    = 7
	IORING_REGISTER_PROBE            = 8
	IORING_REGISTER_PERSONALITY      = 9
	IORING_UNREGISTER_PERSONALITY    = 10
	IORING_REGISTER_RESTRICTIONS     = 11
	IORING_REGISTER_ENABLE_RINGS     = 12
	IORING_REGISTER_FILES2           = 13
	IORING_REGISTER_FILES_UPDATE2    = 14
	IORING_REGISTER_BUFFERS2         = 15
	IORING_REGISTER_BUFFERS_UPDATE   = 16
	IORING_REGISTER_IOWQ_AFF         = 17
	IORING_UNREGISTER_IOWQ_AFF       = 18
	IORING_REGISTER_IOWQ_MAX_WORKERS = 19
	IORING_REGISTER_RING_FDS         = 20
	IORING_UNREGISTER_RING_FDS       = 21
)

// Kernel limits on ring sizes (io_uring/io_uring.h); larger requests fail
// with EINVAL because the ring does not use IORING_SETUP_CLAMP.
const (
	IORING_MAX_ENTRIES    = 32768
	IORING_MAX_CQ_ENTRIES = 2 * IORING_MAX_ENTRIES
)
