//go:build linux

package server

import (
	"encoding/binary"
	"io"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/wire"
)

// fdFS is unitFS with a descriptor behind handle fdFSHandle: an FdFiler,
// as the passthrough is, that counts the descriptors it has lent.
type fdFS struct {
	*unitFS
	fd   int
	held atomic.Int64
}

// fdFSHandle is the one handle fdFS lends a descriptor for.
const fdFSHandle = 7

func (f *fdFS) AcquireFd(fh uint64, off int64, size int) (int, any, bool) {
	if fh != fdFSHandle {
		return 0, nil, false
	}
	f.held.Add(1)
	return f.fd, f, true
}

func (f *fdFS) ReleaseFd(hold any) {
	if hold != f {
		panic("ReleaseFd with a hold AcquireFd did not give")
	}
	f.held.Add(-1)
}

// FuzzFileIO feeds ring requests with fuzzed headers (opcode, length,
// node, handle, offset, size, write flags, payload and its length, the
// room for the reply) to Worker.StartFileIO, and ends every one it takes
// with FinishFileIO and a fuzzed result, as a queue would with the CQE of
// its read or write, done to the end. What the channel would do with a taken request must
// stay inside the entry (the data of a WRITE in its payload, a READ no
// longer than the room), the reply must be one the kernel accepts for the
// request, and every descriptor lent must be given back.
func FuzzFileIO(f *testing.F) {
	f.Add(uint8(0), uint8(1), uint8(0), uint64(0), uint32(4096), uint32(0), uint16(8192), []byte{}, int32(4096), uint8(0))
	f.Add(uint8(1), uint8(1), uint8(0), uint64(512), uint32(5), uint32(0), uint16(100), []byte("hello"), int32(5), uint8(0))
	f.Add(uint8(1), uint8(1), uint8(0), uint64(0), uint32(3), uint32(wire.FUSE_WRITE_KILL_SUIDGID), uint16(100), []byte("abc"), int32(3), uint8(0))
	f.Add(uint8(0), uint8(1), uint8(1), uint64(1<<63), uint32(10), uint32(0), uint16(10), []byte{}, int32(-4), uint8(1))
	f.Add(uint8(0), uint8(0), uint8(0), uint64(0), uint32(10), uint32(0), uint16(10), []byte{}, int32(2), uint8(0))
	f.Add(uint8(1), uint8(2), uint8(0), uint64(0), uint32(9), uint32(0), uint16(10), []byte("truncated"), int32(-11), uint8(2))
	f.Fuzz(func(t *testing.T, opSel, nodeSel, fhSel uint8, off uint64, size, writeFlags uint32, room uint16, data []byte, res int32, lenSel uint8) {
		mfd, err := unix.MemfdCreate("fuzzfileio", unix.MFD_CLOEXEC)
		if err != nil {
			t.Skip(err)
		}
		defer unix.Close(mfd)
		if err := unix.Ftruncate(mfd, 64<<10); err != nil {
			t.Fatal(err)
		}
		fs := &fdFS{unitFS: newUnitFS(), fd: mfd}
		fs.add("a", 10, "0123456789")
		h := newHarness(t, fs, &Options{MaxWrite: 16 << 10, ErrorLog: newLogger(io.Discard)})
		id := h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID
		w := h.srv.NewWorker("uring")
		payBuf := make([]byte, h.srv.ReplyBufferSize())

		ops := []wire.Opcode{wire.FUSE_READ, wire.FUSE_WRITE, wire.FUSE_GETATTR, wire.FUSE_FLUSH}
		op := ops[int(opSel)%len(ops)]
		node := []uint64{id, wire.FUSE_ROOT_ID, id + 1, pollHackID}[int(nodeSel)%4]
		fh := []uint64{fdFSHandle, 0, 1 << 40}[int(fhSel)%3]
		var opIn [wire.FUSE_URING_OP_IN_OUT_SZ]byte
		argLen := 0
		switch op {
		case wire.FUSE_READ:
			*(*wire.ReadIn)(unsafe.Pointer(&opIn[0])) = wire.ReadIn{Fh: fh, Offset: off, Size: size}
			argLen = wire.SizeofReadIn
			data = nil
		case wire.FUSE_WRITE:
			*(*wire.WriteIn)(unsafe.Pointer(&opIn[0])) = wire.WriteIn{Fh: fh, Offset: off, Size: uint32(len(data)), WriteFlags: writeFlags}
			argLen = wire.SizeofWriteIn
		}
		data = data[:min(len(data), len(payBuf))]
		payload := payBuf[:copy(payBuf, data)]
		// lenSel 0 gives the length the kernel would; others are off
		// by some bytes, as a corrupt entry would be.
		length := uint32(wire.SizeofInHeader + argLen + len(payload))
		length += []uint32{0, 1, ^uint32(0), 64, 1 << 20}[int(lenSel)%5]
		unique := uint64(1000 + int(opSel))
		var inOut [wire.FUSE_URING_IN_OUT_HEADER_SZ]byte
		*(*wire.InHeader)(unsafe.Pointer(&inOut[0])) = wire.InHeader{Len: length, Opcode: op, Unique: unique, NodeID: node}
		outCap := min(int(room), len(payBuf))

		var fio FileIO
		w.DecodeRing(inOut[:], opIn[:], payload)
		if !w.StartFileIO(outCap, &fio) {
			if n := fs.held.Load(); n != 0 {
				t.Fatalf("StartFileIO declined %v but holds %d descriptors", op, n)
			}
			return
		}
		// Any live node will do: the handle names the file, as in Read.
		if op != wire.FUSE_READ && op != wire.FUSE_WRITE || node != id && node != wire.FUSE_ROOT_ID || fh != fdFSHandle {
			t.Fatalf("StartFileIO took %v of node %d, handle %d", op, node, fh)
		}
		if fio.Fd != mfd || fio.Off < 0 || fio.Off != int64(off) || fio.Unique != unique || fs.held.Load() != 1 {
			t.Fatalf("taken: %+v (memfd %d, offset %d), %d held", fio, mfd, off, fs.held.Load())
		}
		if fio.Write {
			if op != wire.FUSE_WRITE || writeFlags&wire.FUSE_WRITE_KILL_SUIDGID != 0 ||
				fio.Len != len(fio.Data) || fio.Len > len(payload) ||
				len(fio.Data) > 0 && unsafe.SliceData(fio.Data) != unsafe.SliceData(payload) {
				t.Fatalf("WRITE taken as %+v from a %d-byte payload", fio, len(payload))
			}
		} else if op != wire.FUSE_READ || fio.Len > outCap || fio.Len > int(size) {
			t.Fatalf("READ of %d into %d bytes taken as %+v", size, outCap, fio)
		}

		// The CQE: the kernel never reports more than was asked.
		if res > int32(fio.Len) {
			res = int32(fio.Len)
		}
		if res < 0 {
			res = -(-res % 4096) // an errno
		}
		rep := w.FinishFileIO(&fio, res, payBuf)
		if fs.held.Load() != 0 {
			t.Fatalf("%d descriptors still lent after FinishFileIO", fs.held.Load())
		}
		if rep.Unique != unique || rep.Opcode != op || rep.Error > 0 || rep.Error <= -4096 {
			t.Fatalf("reply %+v to %v unique %d", rep, op, unique)
		}
		if rep.Error != 0 {
			if rep.Len != 0 {
				t.Fatalf("error reply %+v with a body", rep)
			}
			return
		}
		if op == wire.FUSE_WRITE {
			got := binary.LittleEndian.Uint32(payBuf)
			if rep.Len != wire.SizeofWriteOut || int(got) > len(payload) {
				t.Fatalf("WRITE of %d bytes answered %+v, size %d", len(payload), rep, got)
			}
		} else if rep.Len > outCap || rep.Len > int(size) {
			t.Fatalf("READ of %d into %d bytes answered %d bytes", size, outCap, rep.Len)
		}
	})
}
