package uring

import (
	"testing"
	"unsafe"
)

// TestLayout checks every field offset against include/uapi/linux/io_uring.h.
func TestLayout(t *testing.T) {
	var p Params
	var sq SQRingOffsets
	var cq CQRingOffsets
	var sqe SQE
	var cqe CQE
	var iov Iovec
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"io_uring_params.sq_entries", unsafe.Offsetof(p.SQEntries), 0},
		{"io_uring_params.cq_entries", unsafe.Offsetof(p.CQEntries), 4},
		{"io_uring_params.flags", unsafe.Offsetof(p.Flags), 8},
		{"io_uring_params.sq_thread_cpu", unsafe.Offsetof(p.SQThreadCPU), 12},
		{"io_uring_params.sq_thread_idle", unsafe.Offsetof(p.SQThreadIdle), 16},
		{"io_uring_params.features", unsafe.Offsetof(p.Features), 20},
		{"io_uring_params.wq_fd", unsafe.Offsetof(p.WQFd), 24},
		{"io_uring_params.sq_off", unsafe.Offsetof(p.SQOff), 40},
		{"io_uring_params.cq_off", unsafe.Offsetof(p.CQOff), 80},

		{"io_sqring_offsets.head", unsafe.Offsetof(sq.Head), 0},
		{"io_sqring_offsets.tail", unsafe.Offsetof(sq.Tail), 4},
		{"io_sqring_offsets.ring_mask", unsafe.Offsetof(sq.RingMask), 8},
		{"io_sqring_offsets.ring_entries", unsafe.Offsetof(sq.RingEntries), 12},
		{"io_sqring_offsets.flags", unsafe.Offsetof(sq.Flags), 16},
		{"io_sqring_offsets.dropped", unsafe.Offsetof(sq.Dropped), 20},
		{"io_sqring_offsets.array", unsafe.Offsetof(sq.Array), 24},
		{"io_sqring_offsets.user_addr", unsafe.Offsetof(sq.UserAddr), 32},

		{"io_cqring_offsets.head", unsafe.Offsetof(cq.Head), 0},
		{"io_cqring_offsets.tail", unsafe.Offsetof(cq.Tail), 4},
		{"io_cqring_offsets.ring_mask", unsafe.Offsetof(cq.RingMask), 8},
		{"io_cqring_offsets.ring_entries", unsafe.Offsetof(cq.RingEntries), 12},
		{"io_cqring_offsets.overflow", unsafe.Offsetof(cq.Overflow), 16},
		{"io_cqring_offsets.cqes", unsafe.Offsetof(cq.CQEs), 20},
		{"io_cqring_offsets.flags", unsafe.Offsetof(cq.Flags), 24},
		{"io_cqring_offsets.user_addr", unsafe.Offsetof(cq.UserAddr), 32},

		{"io_uring_sqe.opcode", unsafe.Offsetof(sqe.Opcode), 0},
		{"io_uring_sqe.flags", unsafe.Offsetof(sqe.Flags), 1},
		{"io_uring_sqe.ioprio", unsafe.Offsetof(sqe.Ioprio), 2},
		{"io_uring_sqe.fd", unsafe.Offsetof(sqe.Fd), 4},
		{"io_uring_sqe.off", unsafe.Offsetof(sqe.Off), 8},
		{"io_uring_sqe.addr", unsafe.Offsetof(sqe.Addr), 16},
		{"io_uring_sqe.len", unsafe.Offsetof(sqe.Len), 24},
		{"io_uring_sqe.rw_flags", unsafe.Offsetof(sqe.OpFlags), 28},
		{"io_uring_sqe.user_data", unsafe.Offsetof(sqe.UserData), 32},
		{"io_uring_sqe.buf_index", unsafe.Offsetof(sqe.BufIndex), 40},
		{"io_uring_sqe.personality", unsafe.Offsetof(sqe.Personality), 42},
		{"io_uring_sqe.file_index", unsafe.Offsetof(sqe.FileIndex), 44},
		{"io_uring_sqe.cmd", unsafe.Offsetof(sqe.cmd), 48},

		{"io_uring_cqe.user_data", unsafe.Offsetof(cqe.UserData), 0},
		{"io_uring_cqe.res", unsafe.Offsetof(cqe.Res), 8},
		{"io_uring_cqe.flags", unsafe.Offsetof(cqe.Flags), 12},

		{"iovec.iov_base", unsafe.Offsetof(iov.Base), 0},
		{"iovec.iov_len", unsafe.Offsetof(iov.Len), 8},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s at offset %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

// TestSQECmdOp checks that cmd_op lands at byte 8 and __pad1 stays zero.
func TestSQECmdOp(t *testing.T) {
	var s SQE
	s.PrepURingCmd(7, 0x01020304, 99)
	b := (*[SizeofSQE]byte)(unsafe.Pointer(&s))
	if got := *(*uint32)(unsafe.Pointer(&b[8])); got != 0x01020304 {
		t.Errorf("cmd_op = %#x, want 0x01020304", got)
	}
	if got := *(*uint32)(unsafe.Pointer(&b[12])); got != 0 {
		t.Errorf("__pad1 = %#x, want 0", got)
	}
	if s.cmdOp() != 0x01020304 {
		t.Errorf("cmdOp() = %#x", s.cmdOp())
	}
	s.Cmd()[0] = 0xAB
	if b[48] != 0xAB {
		t.Errorf("Cmd()[0] is not SQE byte 48")
	}
	if b[0] != IORING_OP_URING_CMD || IORING_OP_URING_CMD != 46 {
		t.Errorf("opcode = %d, want 46", b[0])
	}
}
