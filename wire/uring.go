package wire

import (
	"structs"
	"unsafe"
)

// FUSE-over-io_uring (6.14, protocol 7.42) ABI.

// Sizes of the areas of struct fuse_uring_req_header.
const (
	FUSE_URING_IN_OUT_HEADER_SZ = 128 // in_out: fuse_in_header on delivery, fuse_out_header on commit
	FUSE_URING_OP_IN_OUT_SZ     = 128 // op_in: the per-op header (in_args[0])
)

// FUSE_URING_IOV_SEGS is the iovec count REGISTER expects: header, payload.
const FUSE_URING_IOV_SEGS = 2

// UringCmd is enum fuse_uring_cmd, the cmd_op of an IORING_OP_URING_CMD
// submitted on /dev/fuse.
type UringCmd uint32

// Commands of enum fuse_uring_cmd.
const (
	FUSE_IO_URING_CMD_INVALID UringCmd = 0
	// FUSE_IO_URING_CMD_REGISTER hands the kernel one entry (a header and a
	// payload buffer) for queue qid.
	FUSE_IO_URING_CMD_REGISTER UringCmd = 1
	// FUSE_IO_URING_CMD_COMMIT_AND_FETCH answers the request commit_id and
	// re-arms its entry for the next request.
	FUSE_IO_URING_CMD_COMMIT_AND_FETCH UringCmd = 2
)

// FUSE_IO_URING_REGISTER_FORGET_COMMIT (proposed protocol 7.46, "fuse:
// optional FORGET delivery over io_uring" v3) is a bit of
// fuse_uring_cmd_req.flags on REGISTER. It tells a patched kernel that the
// server commits every FUSE_FORGET it receives in a ring entry; once any
// REGISTER carries it, the kernel delivers each forget as a single
// FUSE_FORGET on the current CPU's queue instead of on /dev/fuse. The
// entry is held until the server sends COMMIT_AND_FETCH with an empty reply
// (error 0, payload_sz 0). A kernel without the patch ignores the bit, so it
// cannot be used to detect support.
const FUSE_IO_URING_REGISTER_FORGET_COMMIT = 1 << 0

// UringEntInOut is struct fuse_uring_ent_in_out, the last 32 bytes of the
// entry header.
type UringEntInOut struct {
	_        structs.HostLayout
	Flags    uint64
	CommitID uint64 // equals the request's unique on delivery
	// PayloadSz is the byte count of the payload buffer that is in use: set
	// by the kernel on delivery and by the server on commit.
	PayloadSz uint32
	_         uint32
	_         uint64
}

// UringReqHeader is struct fuse_uring_req_header, the header buffer
// (iov[0]) of one ring entry.
type UringReqHeader struct {
	_       structs.HostLayout
	InOut   [FUSE_URING_IN_OUT_HEADER_SZ]byte
	OpIn    [FUSE_URING_OP_IN_OUT_SZ]byte
	RingEnt UringEntInOut
}

// UringCmdReq is struct fuse_uring_cmd_req, written into the 80-byte
// command area of a 128-byte SQE (at SQE offset 48).
type UringCmdReq struct {
	_        structs.HostLayout
	Flags    uint64
	CommitID uint64
	QID      uint16
	_        [6]uint8
}

// Sizes of the io_uring ABI structs.
const (
	SizeofUringEntInOut  = 32
	SizeofUringReqHeader = 288
	SizeofUringCmdReq    = 24
)

var (
	_ [SizeofUringEntInOut - unsafe.Sizeof(UringEntInOut{})]byte
	_ [unsafe.Sizeof(UringEntInOut{}) - SizeofUringEntInOut]byte
	_ [SizeofUringReqHeader - unsafe.Sizeof(UringReqHeader{})]byte
	_ [unsafe.Sizeof(UringReqHeader{}) - SizeofUringReqHeader]byte
	_ [SizeofUringCmdReq - unsafe.Sizeof(UringCmdReq{})]byte
	_ [unsafe.Sizeof(UringCmdReq{}) - SizeofUringCmdReq]byte
)
