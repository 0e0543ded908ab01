package uring

import "unsafe"

// The Prep helpers set only the fields their opcode needs and expect the
// zeroed SQE that NextSQE returns. Fields not covered (Flags such as
// IOSQE_FIXED_FILE, Addr/Len for a FUSE REGISTER, ...) can be set directly
// afterwards.

// prepNop makes s an IORING_OP_NOP, which completes with res 0. It is useful
// to test the ring and to wake a thread waiting on it.
func (s *SQE) prepNop(userData uint64) {
	s.Opcode = IORING_OP_NOP
	s.Fd = -1
	s.UserData = userData
}

// PrepRW makes s an IORING_OP_READ into buf (or, with write, an
// IORING_OP_WRITE of buf) at offset off of fd. buf must stay valid, and
// outside the Go heap or pinned, until the CQE arrives.
func (s *SQE) PrepRW(write bool, fd int32, buf []byte, off uint64, userData uint64) {
	s.Opcode = IORING_OP_READ
	if write {
		s.Opcode = IORING_OP_WRITE
	}
	s.Fd = fd
	s.Off = off
	s.Len = uint32(len(buf))
	if len(buf) > 0 {
		s.Addr = uint64(uintptr(unsafe.Pointer(&buf[0])))
	}
	s.UserData = userData
}

// PrepURingCmd makes s an IORING_OP_URING_CMD for the file fd (or the fixed
// file with index fd if IOSQE_FIXED_FILE is then set in s.Flags), with the
// driver command cmdOp. The command's payload goes in [SQE.Cmd]; a FUSE
// REGISTER also sets s.Addr to the address of its iovec[2] and s.Len to 2.
// A file without a uring_cmd handler completes with -EOPNOTSUPP.
func (s *SQE) PrepURingCmd(fd int32, cmdOp uint32, userData uint64) {
	s.Opcode = IORING_OP_URING_CMD
	s.Fd = fd
	s.SetCmdOp(cmdOp)
	s.UserData = userData
}

// SetCmdOp sets cmd_op, the low-addressed 32 bits of the off union, leaving
// __pad1 (which the kernel requires to be 0) alone. Addressing the half
// directly keeps this right on either byte order.
func (s *SQE) SetCmdOp(op uint32) {
	*(*uint32)(unsafe.Pointer(&s.Off)) = op
}

// CmdOp returns cmd_op; see SetCmdOp.
func (s *SQE) cmdOp() uint32 {
	return *(*uint32)(unsafe.Pointer(&s.Off))
}

// Cmd returns the 80-byte command area at offset 48 of the SQE, where
// IORING_OP_URING_CMD carries the driver's command (FUSE puts its
// fuse_uring_cmd_req at the start). For other opcodes its first 8 bytes are
// addr3.
func (s *SQE) Cmd() *[SizeofSQECmd]byte {
	return &s.cmd
}

// PrepPollAdd makes s a one-shot IORING_OP_POLL_ADD that completes, with the
// ready poll mask as res, once fd reports one of events (unix.POLLIN, ...).
func (s *SQE) PrepPollAdd(fd int32, events uint32, userData uint64) {
	s.Opcode = IORING_OP_POLL_ADD
	s.Fd = fd
	s.OpFlags = events // poll32_events; little-endian layout only
	s.UserData = userData
}
