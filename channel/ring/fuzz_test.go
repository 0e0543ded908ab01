//go:build linux

package ring_test

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/wire"
)

// fuzzFileID stands for the file's node ID in a program: the server makes
// node IDs of its own, so the fuzzer cannot know them; requests and
// forgets for fuzzFileID go to the ID the last LOOKUP of the file gave.
const fuzzFileID = wire.FUSE_ROOT_ID + 1

// pollHackNodeID is the server's ID for the poll-hack node, which a
// fuzzed LOOKUP may reach; it is not the file's.
const pollHackNodeID = 1<<63 + 1

// Opcodes FuzzRingEntry picks from; any other value of the opcode byte
// is used as is.
var fuzzRingOps = []wire.Opcode{
	wire.FUSE_LOOKUP, wire.FUSE_FORGET, wire.FUSE_BATCH_FORGET, wire.FUSE_GETATTR,
	wire.FUSE_READ, wire.FUSE_OPEN, wire.FUSE_INTERRUPT, wire.FUSE_NOTIFY_REPLY, wire.FUSE_INIT,
}

// FuzzRingEntry delivers a fuzzed sequence of ring entries (any header,
// in.len, op_in bytes, payload and payload_sz, forgets among them) to one
// queue of the ring channel and checks each commit as the kernel's
// fuse_uring_commit reads it: a commit for the entry's commit id, with a
// header whose len covers exactly the payload_sz committed, which fits the
// payload buffer; an errno in range; the request's unique echoed, or the
// commit id for requests that take no reply; and an empty commit for
// forgets. At the end, the server's lookup count of the file must be what
// the replies handed out minus what the forgets took.
func FuzzRingEntry(f *testing.F) {
	lookup := append([]byte{0, 1, 0, 0, 0, 9}, "greeting\x00"...)
	forget := []byte{1, 2, 0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	batch := append([]byte{2, 0, 0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0, 16}, wire.AsBytes(&wire.ForgetOne{NodeID: fuzzFileID, Nlookup: 1})...)
	f.Add(append(append(append([]byte{}, lookup...), lookup...), forget...))
	f.Add(append(append([]byte{}, lookup...), batch...))
	f.Add([]byte{3, 1, 0, 1, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // GETATTR, payload_sz beyond the buffer
	f.Add([]byte{6, 0, 0, 0, 8, 4, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 200, 1})   // INTERRUPT, then an unknown opcode
	f.Fuzz(func(t *testing.T, prog []byte) {
		env := newModelEnv(t, envOptions{ring: ring.Options{Queues: 1, QueueDepth: 2}})
		var lookups uint64
		fileID := uint64(fuzzFileID) // until a LOOKUP tells
		p := prog
		u8 := func() byte {
			if len(p) == 0 {
				return 0
			}
			v := p[0]
			p = p[1:]
			return v
		}
		take := func(n int) []byte {
			n = min(n, len(p))
			b := p[:n]
			p = p[n:]
			return b
		}
		for len(p) > 0 {
			sel := u8()
			op := wire.Opcode(sel)
			if int(sel) < len(fuzzRingOps) {
				op = fuzzRingOps[sel]
			}
			node := []uint64{wire.FUSE_ROOT_ID, fileID, 0, 1 << 63}[u8()%4]
			mode := u8() // bit 0: in.len wrong by one; bit 1: payload_sz beyond the buffer; bit 2: unique 0
			opIn := take(int(u8() % (wire.FUSE_URING_OP_IN_OUT_SZ + 1)))
			payload := append([]byte(nil), take(int(u8()))...)
			if op == wire.FUSE_BATCH_FORGET {
				for i := 0; i+8 <= len(payload); i += int(unsafe.Sizeof(wire.ForgetOne{})) {
					if binary.LittleEndian.Uint64(payload[i:]) == fuzzFileID {
						binary.LittleEndian.PutUint64(payload[i:], fileID)
					}
				}
			}
			var h wire.InHeader
			psz := uint32(len(payload))
			if mode&2 != 0 {
				psz = 1 << 31
			}
			rec, u := env.inject(0, func(id uint64) (wire.InHeader, []byte, []byte, uint32) {
				h = wire.InHeader{Opcode: op, Unique: id, NodeID: node, Len: uint32(wire.SizeofInHeader + len(opIn) + len(payload))}
				if mode&1 != 0 {
					h.Len++
				}
				if mode&4 != 0 {
					h.Unique = 0
				}
				return h, opIn, payload, psz
			})
			if int(rec.psz) > rec.size || rec.out.Len != wire.SizeofOutHeader+rec.psz ||
				rec.out.Error > 0 || rec.out.Error < -wire.MaxErrno || (rec.out.Error != 0 && rec.psz != 0) {
				t.Fatalf("%v: commit %+v, payload_sz %d of a %d-byte buffer", op, rec.out, rec.psz, rec.size)
			}
			noReply := op.NoReply() || h.Unique == 0
			switch {
			case noReply && (rec.out.Unique != u || rec.out.Error != 0 || rec.psz != 0):
				t.Fatalf("%v: commit %+v, payload_sz %d; want an empty commit for %d", op, rec.out, rec.psz, u)
			case !noReply && rec.out.Unique != h.Unique:
				t.Fatalf("%v: reply to unique %d, the request was %d", op, rec.out.Unique, h.Unique)
			}
			// Decode the request as the queue saw it, to know which
			// forgets it applied: its payload is payload_sz bytes of the
			// buffer, at most the whole buffer.
			inOut := make([]byte, wire.SizeofInHeader)
			*(*wire.InHeader)(unsafe.Pointer(&inOut[0])) = h
			opArea := make([]byte, wire.FUSE_URING_OP_IN_OUT_SZ)
			copy(opArea, opIn)
			seen := make([]byte, min(int(psz), rec.size))
			copy(seen, payload)
			var r wire.Request
			if wire.ParseRing(inOut, opArea, seen, nil, &r) != nil {
				continue
			}
			switch op {
			case wire.FUSE_LOOKUP:
				if id := rec.head; rec.out.Error == 0 && h.Unique != 0 && id != pollHackNodeID {
					if id != fileID && lookups != 0 {
						t.Fatalf("LOOKUP gave the file node %d while the kernel holds %d lookups of node %d", id, lookups, fileID)
					}
					fileID = id
					lookups++
				}
			case wire.FUSE_FORGET:
				if node == fileID {
					lookups -= min(lookups, wire.ArgAs[wire.ForgetIn](&r).Nlookup)
				}
			case wire.FUSE_BATCH_FORGET:
				for _, one := range r.ForgetOnes() {
					if one.NodeID == fileID {
						lookups -= min(lookups, one.Nlookup)
					}
				}
			}
		}
		if got := env.s.Lookups(fileID); got != lookups {
			t.Fatalf("server holds %d lookups of the file, the kernel %d", got, lookups)
		}
	})
}
