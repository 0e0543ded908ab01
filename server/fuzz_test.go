package server

// Fuzz targets of the server core: INIT negotiation (FuzzInit) and whole
// sequences of requests through Worker.HandleDev and Worker.HandleRing
// (FuzzWorker). They check what the kernel checks of every reply, that
// lookup counts follow exactly the replies the kernel accepted and the
// forgets it sent, and that the /dev/fuse and io_uring paths answer the
// same bytes.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// fuzzLog is a server log for fuzzing: it counts recovered handler panics
// and keeps the last lines for a failure message, instead of logging
// every undecodable message to the test.
type fuzzLog struct {
	mu     sync.Mutex
	panics int
	lines  []string
}

// fuzzLogLines is how many log lines a failure message shows.
const fuzzLogLines = 8

func (l *fuzzLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := string(p)
	if strings.Contains(s, "panic serving") {
		l.panics++
	}
	if len(l.lines) == fuzzLogLines {
		l.lines = l.lines[1:]
	}
	l.lines = append(l.lines, strings.TrimSuffix(s, "\n"))
	return len(p), nil
}

func (l *fuzzLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *fuzzLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.panics
}

// initSizes are fuse_init_in sizes kernels send, and odd ones.
var initSizes = []int{0, 8, 15, wire.FUSE_COMPAT_INIT_IN_SIZE, 17, 20, 24, 32, wire.SizeofInitIn, wire.SizeofInitIn + 8}

// FuzzInit feeds one INIT, of any size, major, minor and flags, to a fresh
// server with fuzzed options, and checks the answer as the kernel reads it
// (process_init_reply), then that a second INIT is refused.
func FuzzInit(f *testing.F) {
	for _, minor := range []uint32{0, 11, 12, 22, 23, 35, 36, 44, 45, 46, 0xffffffff} {
		for _, size := range initSizes {
			for _, offer := range []uint64{0, kernelOffer, ^uint64(0)} {
				in := wire.InitIn{Major: 7, Minor: minor, MaxReadahead: 128 << 10, Flags: uint32(offer & 0xffffffff), Flags2: uint32(offer >> 32)}
				arg := append(append([]byte(nil), wire.AsBytes(&in)...), make([]byte, 8)...)[:size]
				f.Add(arg, uint64(2), uint32(0), uint16(0), uint8(0), uint64(wire.FUSE_OVER_IO_URING))
			}
		}
	}
	for _, major := range []uint32{0, 6, 8, 0xffffffff} {
		in := wire.InitIn{Major: major, Minor: 45, Flags: uint32(kernelOffer & 0xffffffff), Flags2: uint32(kernelOffer >> 32)}
		f.Add(wire.AsBytes(&in), uint64(4), uint32(1<<20), uint16(64), uint8(7), uint64(0))
	}
	in := wire.InitIn{Major: 7, Minor: 45, Flags: uint32(kernelOffer & 0xffffffff), Flags2: uint32(kernelOffer >> 32)}
	f.Add(wire.AsBytes(&in), uint64(0), uint32(0xffffffff), uint16(0xffff), uint8(0xff), ^uint64(0))
	f.Add(wire.AsBytes(&in), uint64(6), uint32(1<<28), uint16(30000), uint8(2), uint64(0))

	f.Fuzz(func(t *testing.T, arg []byte, unique uint64, maxWrite uint32, maxBg uint16, knobs uint8, trFlags uint64) {
		lg := &fuzzLog{}
		opts := &Options{MaxWrite: maxWrite, MaxBackground: maxBg, Passthrough: knobs&1 != 0, ErrorLog: log.New(lg, "", 0)}
		var tr *fakeTransport
		if knobs&2 != 0 {
			tr = &fakeTransport{flags: trFlags}
			if knobs&4 != 0 {
				tr.err = errors.New("fuzz: no ring")
			}
			opts.Transport = tr
		}
		var fsys ringfuse.FileSystem = newFuzzFS() // has locks and readdir
		if knobs&8 != 0 {
			fsys = newUnitFS() // readdir, no locks
		}
		srv := New(fsys, opts)
		w := srv.NewWorker("devfuse")
		out := make([]byte, wire.SizeofInitOut) // an INIT answer needs no more
		msg := wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_INIT, Unique: unique}, arg)
		rep := w.HandleDev(msg, out)
		if rep.Unique != unique || rep.Opcode != wire.FUSE_INIT {
			t.Fatalf("reply %+v to INIT unique %d", rep, unique)
		}
		checkErrno(t, rep)
		if unique == 0 {
			// Malformed: the kernel numbers every request.
			if !rep.None || rep.Init || srv.Init() != nil {
				t.Fatalf("INIT with unique 0: %+v, Init() %+v; want no answer", rep, srv.Init())
			}
			return
		}
		if rep.None {
			t.Fatalf("INIT unanswered: %+v", rep)
		}
		if len(arg) < wire.FUSE_COMPAT_INIT_IN_SIZE {
			if rep.Error != -int32(syscall.EIO) || rep.Init || srv.Init() != nil {
				t.Fatalf("%d-byte INIT: %+v, Init() %+v; want EIO", len(arg), rep, srv.Init())
			}
			return
		}
		var in wire.InitIn
		copy(wire.AsBytes(&in), arg)
		switch {
		case in.Major > wire.FUSE_KERNEL_VERSION:
			io := wire.View[wire.InitOut](out)
			if rep.Error != 0 || rep.Len != wire.FUSE_COMPAT_22_INIT_OUT_SIZE || rep.Init ||
				io.Major != wire.FUSE_KERNEL_VERSION || srv.Init() != nil {
				t.Fatalf("INIT %d.%d: %+v, %+v; want our version and another INIT", in.Major, in.Minor, rep, io)
			}
			return
		case in.Major < wire.FUSE_KERNEL_VERSION || in.Minor < wire.MinKernelMinor:
			if rep.Error != -int32(syscall.EPROTO) || !rep.Init || srv.Init() != nil {
				t.Fatalf("INIT %d.%d: %+v, Init() %+v; want EPROTO", in.Major, in.Minor, rep, srv.Init())
			}
			return
		}
		if rep.Error != 0 || !rep.Init {
			t.Fatalf("INIT %d.%d: %+v\n%s", in.Major, in.Minor, rep, lg)
		}
		io := *wire.View[wire.InitOut](out)
		agreed := min(in.Minor, wire.FUSE_KERNEL_MINOR_VERSION)
		wantLen := wire.SizeofInitOut
		if agreed < 23 {
			wantLen = wire.FUSE_COMPAT_22_INIT_OUT_SIZE
		}
		if io.Major != wire.FUSE_KERNEL_VERSION || io.Minor != agreed || rep.Len != wantLen {
			t.Fatalf("INIT 7.%d: answered %d.%d in %d bytes, want 7.%d in %d", in.Minor, io.Major, io.Minor, rep.Len, agreed, wantLen)
		}
		kflags := uint64(in.Flags)
		if in.Flags&wire.FUSE_INIT_EXT != 0 {
			kflags |= uint64(in.Flags2) << 32
		}
		got := uint64(io.Flags) | uint64(io.Flags2)<<32
		if got&^kflags != 0 {
			t.Fatalf("offered %#x, the reply asks for %#x", kflags, got&^kflags)
		}
		// A transport may add flags (FUSE_OVER_IO_URING) unless it failed.
		trAdds := func(flag uint64) bool { return tr != nil && tr.err == nil && tr.flags&flag != 0 }
		if got&wire.FUSE_OVER_IO_URING != 0 && !trAdds(wire.FUSE_OVER_IO_URING) {
			t.Fatalf("FUSE_OVER_IO_URING agreed without a prepared transport")
		}
		if got&wire.FUSE_PASSTHROUGH != 0 && (!(opts.Passthrough || trAdds(wire.FUSE_PASSTHROUGH)) || io.MaxStackDepth == 0) {
			t.Fatalf("FUSE_PASSTHROUGH agreed with Passthrough %v, transport flags %#x, max_stack_depth %d", opts.Passthrough, trFlags, io.MaxStackDepth)
		}
		if got&wire.FUSE_PASSTHROUGH == 0 && io.MaxStackDepth != 0 {
			t.Fatalf("max_stack_depth %d without FUSE_PASSTHROUGH", io.MaxStackDepth)
		}
		mw := srv.MaxWrite()
		if io.MaxWrite != mw || mw < 4096 || mw%4096 != 0 || srv.ReplyBufferSize() < int(mw) {
			t.Fatalf("max_write %d, server MaxWrite %d, reply buffer %d", io.MaxWrite, mw, srv.ReplyBufferSize())
		}
		// The kernel caps a request at max_pages pages (at least one), so
		// max_pages must cover max_write wherever it can.
		if wantPages := min(mw/4096, 0xffff); uint32(io.MaxPages) != wantPages {
			t.Fatalf("max_write %d answered with max_pages %d, want %d", mw, io.MaxPages, wantPages)
		}
		wantBg := uint32(maxBg)
		if wantBg == 0 {
			wantBg = 64
		}
		if uint32(io.MaxBackground) != wantBg || uint32(io.CongestionThreshold) != wantBg*3/4 {
			t.Fatalf("max_background %d, congestion_threshold %d; want %d and %d", io.MaxBackground, io.CongestionThreshold, wantBg, wantBg*3/4)
		}
		if io.MaxReadahead != in.MaxReadahead || io.TimeGran == 0 || io.TimeGran > 1e9 {
			t.Fatalf("max_readahead %d (offered %d), time_gran %d", io.MaxReadahead, in.MaxReadahead, io.TimeGran)
		}
		info := srv.Init()
		if info == nil || info.Minor != agreed || info.KernelMinor != in.Minor || info.Flags != got || info.KernelFlags != kflags ||
			info.MaxWrite != mw || info.MaxPages != io.MaxPages {
			t.Fatalf("Init() = %+v after reply %+v", info, io)
		}
		before := *info
		rep = w.HandleDev(wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_INIT, Unique: unique + 2}, arg), out)
		if rep.Error != -int32(syscall.EIO) || rep.Len != 0 || *srv.Init() != before {
			t.Fatalf("second INIT: %+v, Init() %+v", rep, srv.Init())
		}
		if n := lg.count(); n != 0 {
			t.Fatalf("%d handler panics:\n%s", n, lg)
		}
	})
}

// checkErrno checks an error the way fuse_dev_do_write does.
func checkErrno(t *testing.T, rep Reply) {
	t.Helper()
	if rep.Error > 0 || rep.Error < -wire.MaxErrno {
		t.Fatalf("reply error %d out of range: %+v", rep.Error, rep)
	}
	if rep.Error != 0 && rep.Len != 0 {
		t.Fatalf("error reply with %d payload bytes: %+v", rep.Len, rep)
	}
}

// Tables the program decoder picks values from: a fuzzer finds an index
// far sooner than a meaningful 64-bit value.
var (
	fzSizes   = []uint32{0, 1, 16, 100, 4095, 4096, 8192, 1 << 16, 1 << 20, 1 << 31, 0xffffffff}
	fzOffsets = []uint64{0, 1, 100, 4095, 4096, 8191, 8192, 1<<16 - 1, 1 << 16, 1 << 40, 1<<63 - 1, 1 << 63, ^uint64(0)}
	fzCounts  = []uint64{0, 1, 2, 3, 1 << 32, ^uint64(0)}
	fzData    = []int{0, 1, 100, 4096, 9000}
	fzModes   = []uint32{syscall.S_IFREG | 0o644, syscall.S_IFDIR | 0o755, syscall.S_IFIFO | 0o600, syscall.S_IFLNK | 0o777, 0o644, 0, 0xffffffff, syscall.S_IFCHR | 0o600}
	fzMinors  = []uint32{45, 12, 22, 23, 35, 36, 46}
	fzRawIDs  = []uint64{0, 2, 3, 1000, pollHackID, 1 << 63, ^uint64(0)}
	fzNames   = []string{"a", "b", "c", "d", "e", fzPanicMkdir, fzPanicList, ".", "..", PollHackName,
		strings.Repeat("x", fzMaxName), strings.Repeat("y", fzMaxName+1), "s/l", "d2", "\xff"}
	fzOpcodes = []wire.Opcode{
		wire.FUSE_LOOKUP, wire.FUSE_FORGET, wire.FUSE_BATCH_FORGET, wire.FUSE_GETATTR, wire.FUSE_SETATTR,
		wire.FUSE_STATX, wire.FUSE_READLINK, wire.FUSE_SYMLINK, wire.FUSE_MKNOD, wire.FUSE_MKDIR,
		wire.FUSE_UNLINK, wire.FUSE_RMDIR, wire.FUSE_RENAME, wire.FUSE_RENAME2, wire.FUSE_LINK,
		wire.FUSE_OPEN, wire.FUSE_READ, wire.FUSE_WRITE, wire.FUSE_STATFS, wire.FUSE_RELEASE,
		wire.FUSE_FSYNC, wire.FUSE_SETXATTR, wire.FUSE_GETXATTR, wire.FUSE_LISTXATTR, wire.FUSE_REMOVEXATTR,
		wire.FUSE_FLUSH, wire.FUSE_INIT, wire.FUSE_OPENDIR, wire.FUSE_READDIR, wire.FUSE_READDIRPLUS,
		wire.FUSE_RELEASEDIR, wire.FUSE_FSYNCDIR, wire.FUSE_GETLK, wire.FUSE_SETLK, wire.FUSE_SETLKW,
		wire.FUSE_ACCESS, wire.FUSE_CREATE, wire.FUSE_INTERRUPT, wire.FUSE_BMAP, wire.FUSE_DESTROY,
		wire.FUSE_IOCTL, wire.FUSE_POLL, wire.FUSE_NOTIFY_REPLY, wire.FUSE_FALLOCATE, wire.FUSE_LSEEK,
		wire.FUSE_COPY_FILE_RANGE, wire.FUSE_COPY_FILE_RANGE_64, wire.FUSE_SYNCFS, wire.FUSE_TMPFILE,
		wire.FUSE_SETUPMAPPING, wire.FUSE_REMOVEMAPPING, 7, 99, wire.OpcodeMax, wire.CUSE_INIT,
	}
)

// Record kinds of a FuzzWorker program: a byte below fzRawRing builds a
// request from fzOpcodes; fzRawRing and up are raw inputs.
const (
	fzRawRing = 0xe0 // raw ring entry areas, served by both workers over the ring
	fzRawDev  = 0xf0 // a raw /dev/fuse message
)

// Mutations applied to a built request (the low nibble of its mutation
// byte); the high bit makes the kernel refuse the reply, as a write(2)
// that gets ENOENT for an interrupted request.
const (
	mutTruncate    = 1 // one byte less, fuse_in_header.len fixed up
	mutBadLen      = 2 // one byte less, len not fixed up
	mutExtension   = 3 // an 8-byte extension header appended
	mutExtra       = 4 // one byte more, len fixed up
	mutUniqueZero  = 5 // unique 0
	mutReplyFailed = 0x80
)

// fzRawSel: a node selector byte at or above it picks from fzRawIDs.
const fzRawSel = 0xe0

// fzMaxKnown bounds the node IDs a program remembers for its selectors.
const fzMaxKnown = 32

// fzMaxRaw bounds a raw message of a program.
const fzMaxRaw = 1024

// fzProg reads a FuzzWorker program; past its end it reads zeros.
type fzProg struct {
	b []byte
	i int
}

func (p *fzProg) more() bool { return p.i < len(p.b) }

func (p *fzProg) u8() byte {
	if p.i >= len(p.b) {
		return 0
	}
	v := p.b[p.i]
	p.i++
	return v
}

func (p *fzProg) u16() int { return int(p.u8()) | int(p.u8())<<8 }

func (p *fzProg) bytes(n int) []byte {
	out := make([]byte, n)
	k := copy(out, p.b[min(p.i, len(p.b)):])
	p.i += k
	return out
}

func pick[T any](p *fzProg, table []T) T { return table[int(p.u8())%len(table)] }

// workerRig is one server with a /dev/fuse worker and a ring worker.
type workerRig struct {
	fs   *fuzzFS
	log  *fuzzLog
	srv  *Server
	dev  *Worker
	ring *Worker
	out  []byte // the /dev/fuse reply buffer
	pay  []byte // a ring entry's payload buffer, where the reply goes too
}

// fzMaxWrite keeps the buffers of a FuzzWorker run small.
const fzMaxWrite = 16 << 10

func newWorkerRig() *workerRig {
	r := &workerRig{fs: newFuzzFS(), log: &fuzzLog{}}
	r.srv = New(r.fs, &Options{MaxWrite: fzMaxWrite, ErrorLog: log.New(r.log, "", 0)})
	r.dev, r.ring = r.srv.NewWorker("devfuse"), r.srv.NewWorker("uring")
	r.out = make([]byte, r.srv.ReplyBufferSize())
	r.pay = make([]byte, r.srv.ReplyBufferSize())
	return r
}

// fzKernel is what the fuzzed "kernel" knows: the node IDs it holds
// lookups of, as fuse_iget and FORGET count them.
type fzKernel struct {
	lookups map[uint64]uint64
	known   []uint64 // node IDs seen, for the program's selectors
	unique  uint64
	lastU   uint64 // the last unique sent, for INTERRUPT
}

func (k *fzKernel) learn(id uint64) {
	if len(k.known) < fzMaxKnown && !containsID(k.known, id) {
		k.known = append(k.known, id)
	}
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (k *fzKernel) nodeSel(p *fzProg) uint64 {
	s := p.u8()
	if s >= fzRawSel {
		return fzRawIDs[int(s)%len(fzRawIDs)]
	}
	all := append([]uint64{wire.FUSE_ROOT_ID}, k.known...)
	return all[int(s)%len(all)]
}

// counted reports whether the kernel counts a lookup of a node ID an entry
// reply carried: not of the root, of node 0 (a negative entry) or of the
// poll-hack node, which the server does not count.
func counted(id uint64) bool { return id > wire.FUSE_ROOT_ID && id != pollHackID }

func (k *fzKernel) forget(id, n uint64) {
	if c, ok := k.lookups[id]; ok {
		k.lookups[id] = c - min(c, n)
	}
}

// build decodes one request of a program. It returns the message and the
// mutation byte.
func (k *fzKernel) build(p *fzProg, op wire.Opcode) ([]byte, byte) {
	k.unique += 2
	h := wire.InHeader{Opcode: op, Unique: k.unique, NodeID: k.nodeSel(p), UID: testUID, GID: testGID, PID: testPID}
	var parts [][]byte
	name := func() []byte { return wire.CString(pick(p, fzNames)) }
	readIn := func() []byte {
		in := wire.ReadIn{Fh: k.nodeSel(p), Offset: pick(p, fzOffsets), Size: pick(p, fzSizes)}
		return wire.AsBytes(&in)
	}
	switch op {
	case wire.FUSE_LOOKUP, wire.FUSE_UNLINK, wire.FUSE_RMDIR, wire.FUSE_REMOVEXATTR:
		parts = [][]byte{name()}
	case wire.FUSE_FORGET:
		in := wire.ForgetIn{Nlookup: pick(p, fzCounts)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_BATCH_FORGET:
		h.NodeID = 0
		n := int(p.u8() % 5)
		in := wire.BatchForgetIn{Count: uint32(n)}
		parts = [][]byte{wire.AsBytes(&in)}
		for range n {
			one := wire.ForgetOne{NodeID: k.nodeSel(p), Nlookup: pick(p, fzCounts)}
			parts = append(parts, wire.AsBytes(&one))
		}
	case wire.FUSE_GETATTR:
		in := wire.GetattrIn{GetattrFlags: uint32(p.u8() & 1), Fh: k.nodeSel(p)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_SETATTR:
		in := wire.SetattrIn{Valid: uint32(p.u8()), Size: pick(p, fzOffsets), Mode: pick(p, fzModes)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_STATX:
		in := wire.StatxIn{GetattrFlags: uint32(p.u8() & 1), SxMask: 0x7ff}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_SYMLINK:
		parts = [][]byte{name(), name()}
	case wire.FUSE_MKNOD:
		in := wire.MknodIn{Mode: pick(p, fzModes), Umask: 0o022}
		parts = [][]byte{wire.AsBytes(&in), name()}
	case wire.FUSE_MKDIR:
		in := wire.MkdirIn{Mode: pick(p, fzModes), Umask: 0o022}
		parts = [][]byte{wire.AsBytes(&in), name()}
	case wire.FUSE_RENAME:
		in := wire.RenameIn{Newdir: k.nodeSel(p)}
		parts = [][]byte{wire.AsBytes(&in), name(), name()}
	case wire.FUSE_RENAME2:
		in := wire.Rename2In{Newdir: k.nodeSel(p), Flags: uint32(p.u8() % 5)}
		parts = [][]byte{wire.AsBytes(&in), name(), name()}
	case wire.FUSE_LINK:
		in := wire.LinkIn{Oldnodeid: k.nodeSel(p)}
		parts = [][]byte{wire.AsBytes(&in), name()}
	case wire.FUSE_OPEN, wire.FUSE_OPENDIR:
		in := wire.OpenIn{Flags: uint32(p.u8() % 4)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_READ, wire.FUSE_READDIR, wire.FUSE_READDIRPLUS:
		parts = [][]byte{readIn()}
	case wire.FUSE_WRITE:
		data := bytes.Repeat([]byte{p.u8()}, pick(p, fzData))
		in := wire.WriteIn{Fh: k.nodeSel(p), Offset: pick(p, fzOffsets), Size: uint32(len(data))}
		parts = [][]byte{wire.AsBytes(&in), data}
	case wire.FUSE_RELEASE, wire.FUSE_RELEASEDIR:
		in := wire.ReleaseIn{Fh: k.nodeSel(p), Flags: uint32(p.u8())}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_FSYNC, wire.FUSE_FSYNCDIR:
		in := wire.FsyncIn{Fh: k.nodeSel(p), FsyncFlags: uint32(p.u8() & 1)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_SETXATTR:
		value := bytes.Repeat([]byte{'v'}, pick(p, fzData))
		in := wire.SetxattrIn{Size: uint32(len(value)), Flags: uint32(p.u8() % 3)}
		parts = [][]byte{wire.AsBytes(&in)[:wire.FUSE_COMPAT_SETXATTR_IN_SIZE], name(), value}
	case wire.FUSE_GETXATTR:
		in := wire.GetxattrIn{Size: pick(p, fzSizes)}
		parts = [][]byte{wire.AsBytes(&in), name()}
	case wire.FUSE_LISTXATTR:
		in := wire.GetxattrIn{Size: pick(p, fzSizes)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_FLUSH:
		in := wire.FlushIn{Fh: k.nodeSel(p)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_INIT:
		h.NodeID = 0
		in := wire.InitIn{Major: 7, Minor: pick(p, fzMinors), Flags: uint32(kernelOffer & 0xffffffff), Flags2: uint32(kernelOffer >> 32)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_GETLK, wire.FUSE_SETLK, wire.FUSE_SETLKW:
		in := wire.LkIn{Fh: k.nodeSel(p), Owner: 1, Lk: wire.FileLock{Start: pick(p, fzOffsets), End: pick(p, fzOffsets), Type: uint32(p.u8() % 4)}, LkFlags: uint32(p.u8() & 1)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_ACCESS:
		in := wire.AccessIn{Mask: uint32(p.u8() % 9)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_CREATE:
		in := wire.CreateIn{Flags: uint32(p.u8()), Mode: pick(p, fzModes), Umask: 0o022}
		parts = [][]byte{wire.AsBytes(&in), name()}
	case wire.FUSE_INTERRUPT:
		h.NodeID = 0
		in := wire.InterruptIn{Unique: k.lastU}
		if p.u8()&1 != 0 {
			in.Unique = pick(p, fzOffsets)
		}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_FALLOCATE:
		in := wire.FallocateIn{Fh: k.nodeSel(p), Offset: pick(p, fzOffsets), Length: pick(p, fzOffsets), Mode: uint32(p.u8() % 3)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_LSEEK:
		in := wire.LseekIn{Fh: k.nodeSel(p), Offset: pick(p, fzOffsets), Whence: uint32(p.u8() % 6)}
		parts = [][]byte{wire.AsBytes(&in)}
	case wire.FUSE_COPY_FILE_RANGE, wire.FUSE_COPY_FILE_RANGE_64:
		in := wire.CopyFileRangeIn{FhIn: 1, OffIn: pick(p, fzOffsets), NodeidOut: k.nodeSel(p), OffOut: pick(p, fzOffsets), Len: pick(p, fzOffsets)}
		parts = [][]byte{wire.AsBytes(&in)}
	default:
		// STATFS, READLINK, DESTROY, opaque and unknown opcodes: a few raw
		// bytes of body.
		parts = [][]byte{p.bytes(int(p.u8() % 32))}
	}
	k.lastU = h.Unique
	mut := p.u8()
	switch mut & 0x0f {
	case mutUniqueZero:
		h.Unique = 0
	case mutExtension:
		h.TotalExtlen = 1
		parts = append(parts, make([]byte, 8))
	}
	msg := wire.AppendRequest(nil, h, parts...)
	switch mut & 0x0f {
	case mutTruncate:
		msg = msg[:len(msg)-1]
		if h := wire.View[wire.InHeader](msg); h != nil {
			h.Len--
		}
	case mutBadLen:
		msg = msg[:len(msg)-1]
	case mutExtra:
		msg = append(msg, 0x5a)
		wire.View[wire.InHeader](msg).Len++
	}
	return msg, mut
}

// ringSplit lays a consistent /dev/fuse message out as the kernel fills a
// ring entry: the header in in_out, the opcode's fixed struct in op_in
// (whose other bytes are stale), the rest in the payload buffer. It fails
// if the message is not one the kernel could put on the ring.
func ringSplit(msg []byte, c *wire.Conn, payBuf []byte) (inOut, opIn, payload []byte, ok bool) {
	if len(msg) < wire.SizeofInHeader {
		return nil, nil, nil, false
	}
	h := wire.View[wire.InHeader](msg)
	if int(h.Len) != len(msg) || h.Opcode == wire.FUSE_INIT {
		return nil, nil, nil, false
	}
	body := msg[wire.SizeofInHeader:]
	k := min(wire.ArgSize(h.Opcode, c), len(body))
	if len(body)-k > len(payBuf) {
		return nil, nil, nil, false
	}
	inOut = make([]byte, wire.FUSE_URING_IN_OUT_HEADER_SZ)
	copy(inOut, msg[:wire.SizeofInHeader])
	opIn = bytes.Repeat([]byte{0xa5}, wire.FUSE_URING_OP_IN_OUT_SZ)
	copy(opIn, body[:k])
	n := copy(payBuf, body[k:])
	return inOut, opIn, payBuf[:n], true
}

// FuzzWorker runs a program of requests against two servers of identical
// filesystems: server A gets each request on /dev/fuse, server B the same
// request laid out in a ring entry, whose payload buffer its reply
// overwrites. Both must answer the same bytes. Every reply must pass the
// kernel's checks (length, unique, errno, out-arg sizes, directory
// entries, node IDs), no reply may be sent to a request that takes none,
// lookup counts must match the entry replies the kernel accepted minus the
// forgets it sent, no handler may panic unless the filesystem did, and
// forgetting everything at the end must leave no node alive.
func FuzzWorker(f *testing.F) {
	for _, s := range workerSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		a, b := newWorkerRig(), newWorkerRig()
		k := &fzKernel{lookups: map[uint64]uint64{}}
		p := &fzProg{b: prog}
		if first := p.u8(); first&0x80 == 0 {
			// Normally the program starts after INIT; with the high bit
			// it starts before, and only an INIT record ends that.
			in := wire.InitIn{Major: 7, Minor: fzMinors[int(first)%len(fzMinors)], MaxReadahead: 1 << 17,
				Flags: uint32(kernelOffer & 0xffffffff), Flags2: uint32(kernelOffer >> 32)}
			k.unique += 2
			msg := wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_INIT, Unique: k.unique}, wire.AsBytes(&in))
			ra, rb := a.dev.HandleDev(msg, a.out), b.dev.HandleDev(msg, b.out)
			if ra.Error != 0 || rb.Error != 0 {
				t.Fatalf("INIT: %+v, %+v", ra, rb)
			}
		}
		for step := 0; p.more(); step++ {
			kind := p.u8()
			var ra, rb Reply
			var outA, outB []byte
			var hdr []byte // the request's fuse_in_header, or less
			var failed bool
			var req wire.Request // the request as the decoder sees it
			var decodeErr error
			switch {
			case kind >= fzRawDev:
				msg := p.bytes(p.u16() % fzMaxRaw)
				hdr = msg
				decodeErr = wire.ParseDev(msg, a.dev.conn(), &req)
				ra, outA = a.dev.HandleDev(msg, a.out), a.out
				rb, outB = b.dev.HandleDev(msg, b.out), b.out
			case kind >= fzRawRing:
				inOut := p.bytes(wire.SizeofInHeader)
				opIn := p.bytes(wire.FUSE_URING_OP_IN_OUT_SZ)
				payload := p.bytes(p.u16() % fzMaxRaw)
				hdr = inOut
				decodeErr = wire.ParseRing(inOut, opIn, payload, a.ring.conn(), &req)
				ra, outA = a.ring.HandleRing(inOut, opIn, payload, a.out), a.out
				n := copy(b.pay, payload)
				rb, outB = b.ring.HandleRing(inOut, opIn, b.pay[:n], b.pay), b.pay
			default:
				msg, mut := k.build(p, fzOpcodes[int(kind)%len(fzOpcodes)])
				hdr = msg
				decodeErr = wire.ParseDev(msg, a.dev.conn(), &req)
				ra, outA = a.dev.HandleDev(msg, a.out), a.out
				wb := b.dev
				if inOut, opIn, payload, ok := ringSplit(msg, b.ring.conn(), b.pay); ok {
					wb = b.ring
					rb, outB = b.ring.HandleRing(inOut, opIn, payload, b.pay), b.pay
				} else {
					rb, outB = b.dev.HandleDev(msg, b.out), b.out
				}
				if mut&mutReplyFailed != 0 && !ra.None && !rb.None {
					failed = true
					a.dev.ReplyFailed()
					wb.ReplyFailed()
				}
			}
			if ra.Len > len(outA) || rb.Len > len(outB) {
				t.Fatalf("step %d: reply lengths %d, %d beyond the %d-byte buffers", step, ra.Len, rb.Len, len(outA))
			}
			outA, outB = outA[:ra.Len], outB[:rb.Len]
			if ra != rb || !bytes.Equal(outA, outB) {
				t.Fatalf("step %d (kind %#x): /dev/fuse and ring answers differ:\n A %+v % x\n B %+v % x", step, kind, ra, head(outA), rb, head(outB))
			}
			checkReply(t, step, hdr, decodeErr, &req, ra, outA)
			if ra.Error == 0 && !ra.None && !failed {
				k.accept(&req, outA)
			}
			if decodeErr == nil {
				k.forgets(&req)
			}
			for _, r := range []*workerRig{a, b} {
				k.checkCounts(t, step, r.srv)
			}
		}
		for _, r := range []*workerRig{a, b} {
			if got, want := r.log.count(), int(r.fs.panics.Load()); got != want {
				t.Fatalf("%d handler panics logged, the filesystem panicked %d times:\n%s", got, want, r.log)
			}
		}
		// Forget everything the kernel holds: nothing may stay alive.
		if a.srv.Init() == nil {
			return
		}
		var ones []wire.ForgetOne
		for id, n := range k.lookups {
			if n > 0 {
				ones = append(ones, wire.ForgetOne{NodeID: id, Nlookup: n})
			}
		}
		in := wire.BatchForgetIn{Count: uint32(len(ones))}
		parts := [][]byte{wire.AsBytes(&in)}
		for i := range ones {
			parts = append(parts, wire.AsBytes(&ones[i]))
		}
		msg := wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_BATCH_FORGET, Unique: k.unique + 2}, parts...)
		for _, r := range []*workerRig{a, b} {
			if rep := r.dev.HandleDev(msg, r.out); !rep.None {
				t.Fatalf("final BATCH_FORGET answered: %+v", rep)
			}
			if n := r.srv.NodesAlive(); n != 0 {
				t.Fatalf("%d nodes alive after forgetting every lookup", n)
			}
		}
	})
}

func head(b []byte) []byte { return b[:min(len(b), 64)] }

// outSize returns the out-arg size the kernel sets up for a request and
// whether the last out-arg is variable (fuse_args.out_argvar), as
// fuse_copy_out_args checks a reply against them. unknown is set for
// requests whose success reply the check does not know.
func outSize(req *wire.Request) (size int, variable, unknown bool) {
	switch req.Header.Opcode {
	case wire.FUSE_LOOKUP, wire.FUSE_MKNOD, wire.FUSE_MKDIR, wire.FUSE_SYMLINK, wire.FUSE_LINK:
		return wire.SizeofEntryOut, false, false
	case wire.FUSE_CREATE:
		return wire.SizeofEntryOut + wire.SizeofOpenOut, false, false
	case wire.FUSE_GETATTR, wire.FUSE_SETATTR:
		return wire.SizeofAttrOut, false, false
	case wire.FUSE_STATX:
		return wire.SizeofStatxOut, false, false
	case wire.FUSE_READLINK:
		return fzMaxTarget, true, false
	case wire.FUSE_OPEN, wire.FUSE_OPENDIR:
		return wire.SizeofOpenOut, false, false
	case wire.FUSE_READ, wire.FUSE_READDIR, wire.FUSE_READDIRPLUS:
		return int(wire.ArgAs[wire.ReadIn](req).Size), true, false
	case wire.FUSE_WRITE, wire.FUSE_COPY_FILE_RANGE:
		return wire.SizeofWriteOut, false, false
	case wire.FUSE_COPY_FILE_RANGE_64:
		return wire.SizeofCopyFileRangeOut, false, false
	case wire.FUSE_STATFS:
		return wire.SizeofStatfsOut, false, false
	case wire.FUSE_GETXATTR, wire.FUSE_LISTXATTR:
		if n := wire.ArgAs[wire.GetxattrIn](req).Size; n != 0 {
			return int(n), true, false
		}
		return wire.SizeofGetxattrOut, false, false
	case wire.FUSE_GETLK:
		return wire.SizeofLkOut, false, false
	case wire.FUSE_LSEEK:
		return wire.SizeofLseekOut, false, false
	case wire.FUSE_INIT:
		return 0, false, true
	}
	return 0, false, false
}

// checkReply checks one reply as the kernel would: hdr is the request's
// header as sent (possibly short), req and decodeErr what the decoder
// made of it.
func checkReply(t *testing.T, step int, hdr []byte, decodeErr error, req *wire.Request, rep Reply, out []byte) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d: %s: reply %+v", step, fmt.Sprintf(format, args...), rep)
	}
	if len(hdr) < wire.SizeofInHeader {
		if !rep.None {
			fail("a reply to a %d-byte message, which has no unique", len(hdr))
		}
		return
	}
	h := wire.View[wire.InHeader](hdr)
	if rep.Unique != h.Unique || rep.Opcode != h.Opcode {
		fail("reply to unique %d %v, the request was %d %v", rep.Unique, rep.Opcode, h.Unique, h.Opcode)
	}
	if rep.None {
		if !h.Opcode.NoReply() && h.Unique != 0 {
			fail("no reply to %v", h.Opcode)
		}
		return
	}
	if h.Opcode.NoReply() {
		fail("a reply to %v, which takes none", h.Opcode)
	}
	if h.Unique == 0 {
		fail("a reply with unique 0, which the kernel takes for a notification")
	}
	checkErrno(t, rep)
	if rep.Error != 0 {
		return
	}
	if decodeErr != nil {
		fail("success for an undecodable request (%v)", decodeErr)
	}
	if rep.Init {
		return
	}
	size, variable, unknown := outSize(req)
	if unknown {
		return
	}
	if rep.Len > size || (!variable && rep.Len != size) {
		fail("%d payload bytes, the kernel expects %d (variable %v)", rep.Len, size, variable)
	}
	switch req.Header.Opcode {
	case wire.FUSE_LOOKUP, wire.FUSE_MKNOD, wire.FUSE_MKDIR, wire.FUSE_SYMLINK, wire.FUSE_LINK, wire.FUSE_CREATE:
		checkEntry(t, step, wire.View[wire.EntryOut](out), req.Header.Opcode == wire.FUSE_LOOKUP)
	case wire.FUSE_GETATTR, wire.FUSE_SETATTR:
		if ao := wire.View[wire.AttrOut](out); ao.AttrValidNsec >= 1e9 {
			fail("attr_valid_nsec %d", ao.AttrValidNsec)
		}
	case wire.FUSE_READDIR, wire.FUSE_READDIRPLUS:
		if err := walkDirents(out, req.Header.Opcode == wire.FUSE_READDIRPLUS, func(name []byte, e *wire.EntryOut) {
			if e != nil && e.NodeID != 0 && !isDot(name) {
				checkEntry(t, step, e, false)
			}
		}); err != nil {
			fail("%v", err)
		}
	}
}

// checkEntry checks a fuse_entry_out as fuse_lookup_name and
// create_new_entry do.
func checkEntry(t *testing.T, step int, e *wire.EntryOut, lookup bool) {
	t.Helper()
	if e.NodeID == wire.FUSE_ROOT_ID || (e.NodeID == 0 && !lookup) {
		t.Fatalf("step %d: entry with node ID %d", step, e.NodeID)
	}
	if e.EntryValidNsec >= 1e9 || e.AttrValidNsec >= 1e9 {
		t.Fatalf("step %d: entry valid nsec %d, attr valid nsec %d", step, e.EntryValidNsec, e.AttrValidNsec)
	}
}

func isDot(name []byte) bool { return string(name) == "." || string(name) == ".." }

// fuseNameMax is FUSE_NAME_MAX, the longest name parse_dirfile accepts.
const fuseNameMax = 1024

// walkDirents parses a READDIR or READDIRPLUS reply as parse_dirfile and
// parse_dirplusfile do, and requires it to hold whole entries only.
func walkDirents(b []byte, plus bool, fn func(name []byte, e *wire.EntryOut)) error {
	fixed := wire.SizeofDirent
	if plus {
		fixed = wire.SizeofDirentplus
	}
	for len(b) > 0 {
		if len(b) < fixed {
			return fmt.Errorf("%d trailing bytes", len(b))
		}
		var d *wire.Dirent
		var e *wire.EntryOut
		if plus {
			dp := wire.View[wire.Direntplus](b)
			d, e = &dp.Dirent, &dp.Entry
		} else {
			d = wire.View[wire.Dirent](b)
		}
		if d.Namelen == 0 || d.Namelen > fuseNameMax {
			return fmt.Errorf("dirent name length %d", d.Namelen)
		}
		size := (fixed + int(d.Namelen) + 7) &^ 7
		if size > len(b) {
			return fmt.Errorf("dirent of %d bytes in %d", size, len(b))
		}
		name := b[fixed : fixed+int(d.Namelen)]
		if bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0 {
			return fmt.Errorf("dirent name %q", name)
		}
		if pad := b[fixed+int(d.Namelen) : size]; bytes.Count(pad, []byte{0}) != len(pad) {
			return fmt.Errorf("dirent padding % x", pad)
		}
		fn(name, e)
		b = b[size:]
	}
	return nil
}

// accept counts the lookups a successful reply hands the kernel.
func (k *fzKernel) accept(req *wire.Request, out []byte) {
	switch op := req.Header.Opcode; op {
	case wire.FUSE_LOOKUP, wire.FUSE_MKNOD, wire.FUSE_MKDIR, wire.FUSE_SYMLINK, wire.FUSE_LINK, wire.FUSE_CREATE:
		id := wire.View[wire.EntryOut](out).NodeID
		if counted(id) {
			k.lookups[id]++
			k.learn(id)
		}
	case wire.FUSE_READDIRPLUS:
		_ = walkDirents(out, true, func(name []byte, e *wire.EntryOut) {
			if !isDot(name) && counted(e.NodeID) {
				k.lookups[e.NodeID]++
				k.learn(e.NodeID)
			}
		})
	}
}

// forgets applies a decoded FORGET or BATCH_FORGET.
func (k *fzKernel) forgets(req *wire.Request) {
	switch req.Header.Opcode {
	case wire.FUSE_FORGET:
		k.forget(req.Header.NodeID, wire.ArgAs[wire.ForgetIn](req).Nlookup)
	case wire.FUSE_BATCH_FORGET:
		for _, one := range req.ForgetOnes() {
			k.forget(one.NodeID, one.Nlookup)
		}
	}
}

// checkCounts compares the server's lookup counts with the kernel's.
func (k *fzKernel) checkCounts(t *testing.T, step int, srv *Server) {
	t.Helper()
	var live int64
	for id, n := range k.lookups {
		if got := srv.Lookups(id); got != n {
			t.Fatalf("step %d: node %d: server holds %d lookups, the kernel %d", step, id, got, n)
		}
		if n > 0 {
			live++
		}
	}
	if got := srv.NodesAlive(); got != live {
		t.Fatalf("step %d: server holds %d nodes, the kernel %d", step, got, live)
	}
}

// workerSeeds are programs that walk the filesystem: lookups, creates,
// listings with READDIRPLUS, reads, writes, xattrs, renames, forgets,
// refused replies, deliberate panics and raw messages of both channels.
func workerSeeds() [][]byte {
	op := func(o wire.Opcode) byte {
		for i, x := range fzOpcodes {
			if x == o {
				return byte(i)
			}
		}
		panic("no opcode " + o.String())
	}
	name := func(s string) byte {
		for i, x := range fzNames {
			if x == s {
				return byte(i)
			}
		}
		panic("no name " + s)
	}
	const root, first, second = 0, 1, 2 // node selectors: the root, then the IDs learnt in order
	var seeds [][]byte
	// LOOKUP a twice, READ it, FORGET once, LOOKUP b with a refused reply.
	seeds = append(seeds, []byte{0,
		op(wire.FUSE_LOOKUP), root, name("a"), 0,
		op(wire.FUSE_LOOKUP), root, name("a"), 0,
		op(wire.FUSE_OPEN), first, 0, 0,
		op(wire.FUSE_READ), first, first, 0, 5, 0,
		op(wire.FUSE_FORGET), first, 1, 0,
		op(wire.FUSE_LOOKUP), root, name("b"), mutReplyFailed,
		op(wire.FUSE_GETATTR), second, 0, 0, 0,
	})
	// MKDIR d2, CREATE c in it, WRITE, SETXATTR, GETXATTR, LISTXATTR,
	// RENAME, READDIRPLUS of the root, BATCH_FORGET.
	seeds = append(seeds, []byte{0,
		op(wire.FUSE_MKDIR), root, 1, name("d2"), 0,
		op(wire.FUSE_CREATE), first, 2, 0, name("c"), 0,
		op(wire.FUSE_WRITE), second, 7, 3, second, 4, 0,
		op(wire.FUSE_SETXATTR), second, 2, 0, name("e"), 0,
		op(wire.FUSE_GETXATTR), second, 0, name("e"), 0,
		op(wire.FUSE_GETXATTR), second, 5, name("e"), 0,
		op(wire.FUSE_LISTXATTR), second, 5, 0,
		op(wire.FUSE_RENAME), first, root, name("c"), name("e"), 0,
		op(wire.FUSE_OPENDIR), root, 0, 0,
		op(wire.FUSE_READDIRPLUS), root, root, 0, 7, 0,
		op(wire.FUSE_READDIR), root, root, 2, 4, 0,
		op(wire.FUSE_BATCH_FORGET), 0, 2, first, 1, second, 5, 0,
	})
	// Deliberate panics: MKDIR panic, and READDIRPLUS over boom.
	seeds = append(seeds, []byte{0,
		op(wire.FUSE_MKDIR), root, 0, name(fzPanicMkdir), 0,
		op(wire.FUSE_MKNOD), root, 0, name(fzPanicList), 0,
		op(wire.FUSE_READDIRPLUS), root, root, 0, 7, 0,
		op(wire.FUSE_LOOKUP), root, name(fzPanicList), 0,
		op(wire.FUSE_SYMLINK), root, name("c"), name("a"), 0,
		op(wire.FUSE_READLINK), second, 0, 0,
		op(wire.FUSE_LINK), root, first, name("e"), 0,
	})
	// Mutations: truncated, bad length, extension header, extra byte,
	// unique 0; INTERRUPT, INIT again, the poll hack, unknown opcodes.
	seeds = append(seeds, []byte{0,
		op(wire.FUSE_LOOKUP), root, name("a"), mutTruncate,
		op(wire.FUSE_LOOKUP), root, name("a"), mutBadLen,
		op(wire.FUSE_LOOKUP), root, name("a"), mutExtension,
		op(wire.FUSE_GETATTR), root, 0, 0, mutExtra,
		op(wire.FUSE_GETATTR), root, 0, 0, mutUniqueZero,
		op(wire.FUSE_FORGET), root, 1, mutTruncate,
		op(wire.FUSE_INTERRUPT), 0, 0, 0,
		op(wire.FUSE_INIT), 0, 0, 0,
		op(wire.FUSE_LOOKUP), root, name(PollHackName), 0,
		op(wire.FUSE_GETATTR), first, 0, 0, 0,
		op(wire.FUSE_FORGET), first, 1, 0,
		op(7), root, 3, 1, 2, 3, 0,
		op(wire.FUSE_POLL), root, 0, 0,
		op(wire.FUSE_STATFS), root, 0, 0,
		op(wire.FUSE_LSEEK), root, root, 1, 3, 0,
		op(wire.FUSE_COPY_FILE_RANGE_64), root, 0, root, 0, 3, 0,
	})
	// Before INIT: a request, then INIT, then a request.
	seeds = append(seeds, []byte{0x80,
		op(wire.FUSE_GETATTR), root, 0, 0, 0,
		op(wire.FUSE_INIT), 0, 0, 0,
		op(wire.FUSE_LOOKUP), root, name("a"), 0,
	})
	// Raw /dev/fuse and raw ring records.
	getattr := reqMsg(nil, wire.FUSE_GETATTR, 2, wire.FUSE_ROOT_ID, make([]byte, wire.SizeofGetattrIn))
	raw := []byte{0, fzRawDev}
	raw = binary.LittleEndian.AppendUint16(raw, uint16(len(getattr)))
	raw = append(raw, getattr...)
	raw = append(raw, fzRawDev, 5, 0, 1, 2, 3, 4, 5)
	lookup := reqMsg(nil, wire.FUSE_LOOKUP, 4, wire.FUSE_ROOT_ID, wire.CString("a"))
	raw = append(raw, fzRawRing)
	raw = append(raw, lookup[:wire.SizeofInHeader]...)
	raw = append(raw, make([]byte, wire.FUSE_URING_OP_IN_OUT_SZ)...)
	raw = binary.LittleEndian.AppendUint16(raw, 2)
	raw = append(raw, 'a', 0)
	seeds = append(seeds, raw)
	return seeds
}
