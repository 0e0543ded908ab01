package server

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// TestDispatchTable checks that every opcode of the protocol is either
// served or deliberately unsupported, never both, and that neither list
// names an opcode the protocol does not have.
func TestDispatchTable(t *testing.T) {
	unsup := map[wire.Opcode]bool{}
	for _, op := range unsupported {
		if !op.Known() {
			t.Errorf("unsupported lists %v, which is not an opcode", op)
		}
		if unsup[op] {
			t.Errorf("unsupported lists %v twice", op)
		}
		unsup[op] = true
	}
	for op := wire.Opcode(0); op < wire.OpcodeMax; op++ {
		served := handlers[op] != nil
		switch {
		case !op.Known() && served:
			t.Errorf("handlers has an entry for %v, which is not an opcode", op)
		case !op.Known():
		case served && unsup[op]:
			t.Errorf("%v is both served and on the unsupported list", op)
		case !served && !unsup[op]:
			t.Errorf("%v has no handler and is not on the unsupported list", op)
		}
	}
}

// TestUnsupportedOpcodes sends each deliberately unsupported opcode: each
// answers ENOSYS and is counted under its own name, not as unknown.
func TestUnsupportedOpcodes(t *testing.T) {
	h := newHarness(t, newUnitFS(), nil)
	for _, op := range unsupported {
		rep := h.send(op, wire.FUSE_ROOT_ID)
		if rep.Error != -int32(syscall.ENOSYS) || rep.None || rep.Len != 0 {
			t.Errorf("%v: %+v, want ENOSYS", op, rep)
		}
	}
	cs := h.channel()
	for _, op := range unsupported {
		if n := cs.Requests[op.String()]; n != 1 {
			t.Errorf("%v counted %d times, want 1", op, n)
		}
	}
	if cs.Unknown != 0 || cs.DecodeErrors != 0 {
		t.Errorf("unknown %d, undecodable %d; want 0 and 0", cs.Unknown, cs.DecodeErrors)
	}
}

// TestPollENOSYS: the kernel stops sending POLL only once it gets ENOSYS.
func TestPollENOSYS(t *testing.T) {
	h := newHarness(t, newUnitFS(), nil)
	rep := h.send(wire.FUSE_POLL, wire.FUSE_ROOT_ID, make([]byte, 24))
	if rep.Error != -int32(syscall.ENOSYS) || rep.None {
		t.Errorf("POLL: %+v, want ENOSYS", rep)
	}
}

func TestUnknownOpcode(t *testing.T) {
	for _, op := range []wire.Opcode{7, 19, 99, wire.OpcodeMax, wire.CUSE_INIT} {
		t.Run(op.String(), func(t *testing.T) {
			h := newHarness(t, newUnitFS(), nil)
			rep := h.send(op, wire.FUSE_ROOT_ID)
			if rep.Error != -int32(syscall.ENOSYS) || rep.None || rep.Len != 0 {
				t.Errorf("reply %+v, want ENOSYS", rep)
			}
			if rep.Unique != h.unique.Load() {
				t.Errorf("reply to unique %d, want %d", rep.Unique, h.unique.Load())
			}
			if cs := h.channel(); cs.Unknown != 1 {
				t.Errorf("Unknown = %d, want 1", cs.Unknown)
			}
			// The worker goes on serving.
			if rep := h.getattr(wire.FUSE_ROOT_ID); rep.Error != 0 {
				t.Errorf("GETATTR after an unknown opcode: %+v", rep)
			}
		})
	}
}

// TestUndecodable feeds malformed messages: each answers EIO (or nothing,
// for opcodes without a reply), is counted, and never panics.
func TestUndecodable(t *testing.T) {
	getattr := reqMsg(nil, wire.FUSE_GETATTR, 77, wire.FUSE_ROOT_ID, make([]byte, wire.SizeofGetattrIn))
	truncated := reqMsg(nil, wire.FUSE_GETATTR, 77, wire.FUSE_ROOT_ID, make([]byte, wire.SizeofGetattrIn-1))
	forget := reqMsg(nil, wire.FUSE_FORGET, 77, 5, make([]byte, wire.SizeofForgetIn-1))
	batch := wire.BatchForgetIn{Count: 3}
	overcount := reqMsg(nil, wire.FUSE_BATCH_FORGET, 77, 0, wire.AsBytes(&batch), make([]byte, wire.SizeofForgetOne))
	lookup := reqMsg(nil, wire.FUSE_LOOKUP, 77, wire.FUSE_ROOT_ID, []byte("no-nul"))
	cases := []struct {
		name string
		msg  []byte
		none bool // no reply: the kernel expects none, or there is no unique to answer
	}{
		{"GETATTR/truncated", truncated, false},
		{"GETATTR/len-too-big", getattr[:len(getattr)-1], false},
		{"GETATTR/oversized", reqMsg(nil, wire.FUSE_GETATTR, 77, wire.FUSE_ROOT_ID, make([]byte, wire.SizeofGetattrIn+8)), false},
		{"short-header", getattr[:wire.SizeofInHeader-1], true},
		{"empty", nil, true},
		{"FORGET/truncated", forget, true},
		{"BATCH_FORGET/count-beyond-payload", overcount, true},
		{"LOOKUP/name-without-NUL", lookup, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, newUnitFS(), nil)
			rep := h.w.HandleDev(c.msg, h.out)
			if rep.None != c.none || rep.Len != 0 {
				t.Errorf("reply %+v, want None = %v", rep, c.none)
			}
			if !c.none && (rep.Error != -int32(syscall.EIO) || rep.Unique != 77) {
				t.Errorf("reply %+v, want EIO to unique 77", rep)
			}
			if cs := h.channel(); cs.DecodeErrors != 1 {
				t.Errorf("DecodeErrors = %d, want 1", cs.DecodeErrors)
			}
			if rep := h.getattr(wire.FUSE_ROOT_ID); rep.Error != 0 {
				t.Errorf("GETATTR after a bad message: %+v", rep)
			}
		})
	}
}

func TestNoReplyOpcodes(t *testing.T) {
	h := newHarness(t, newUnitFS(), nil)
	intr := wire.InterruptIn{Unique: 12345}
	for _, c := range []struct {
		name string
		rep  func() Reply
	}{
		{"FORGET", func() Reply { return h.forget(wire.FUSE_ROOT_ID, 1) }},
		{"BATCH_FORGET", func() Reply { return h.batchForget(wire.ForgetOne{NodeID: wire.FUSE_ROOT_ID, Nlookup: 1}) }},
		{"BATCH_FORGET/empty", func() Reply { return h.batchForget() }},
		{"INTERRUPT", func() Reply { return h.send(wire.FUSE_INTERRUPT, 0, wire.AsBytes(&intr)) }},
		{"NOTIFY_REPLY", func() Reply { return h.send(wire.FUSE_NOTIFY_REPLY, 0, make([]byte, 8)) }},
	} {
		if rep := c.rep(); !rep.None || rep.Error != 0 || rep.Len != 0 {
			t.Errorf("%s: %+v, want Reply.None", c.name, rep)
		}
	}
	// A request that takes a reply must not be None.
	if rep := h.getattr(wire.FUSE_ROOT_ID); rep.None {
		t.Errorf("GETATTR: None set")
	}
}

func TestRequestBeforeInit(t *testing.T) {
	fsys := newUnitFS()
	fsys.add("a", 2, "")
	srv := newServer(t, fsys, nil)
	w := srv.NewWorker("test")
	out := make([]byte, srv.ReplyBufferSize())
	for _, msg := range [][]byte{
		reqMsg(nil, wire.FUSE_GETATTR, 1, wire.FUSE_ROOT_ID, make([]byte, wire.SizeofGetattrIn)),
		reqMsg(nil, wire.FUSE_LOOKUP, 2, wire.FUSE_ROOT_ID, wire.CString("a")),
	} {
		rep := w.HandleDev(msg, out)
		if rep.Error != -int32(syscall.EIO) || rep.Init || rep.Len != 0 {
			t.Errorf("%v before INIT: %+v, want EIO", w.Request().Header.Opcode, rep)
		}
	}
	if fsys.lookups.Load() != 0 || srv.NodesAlive() != 0 {
		t.Errorf("the filesystem was called before INIT")
	}
	if srv.Init() != nil {
		t.Errorf("Init() = %+v before INIT, want nil", srv.Init())
	}
	select {
	case <-srv.Initialized():
		t.Errorf("Initialized() closed before INIT")
	default:
	}
}

func TestSecondInit(t *testing.T) {
	h := newHarness(t, newUnitFS(), nil)
	first := *h.srv.Init()
	rep := h.w.HandleDev(initMsg(h.next(), 7, 30, wire.FUSE_ASYNC_READ), h.out)
	if rep.Error != -int32(syscall.EIO) || rep.Len != 0 {
		t.Errorf("second INIT: %+v, want EIO", rep)
	}
	if got := *h.srv.Init(); got != first {
		t.Errorf("second INIT changed the negotiation: %+v, was %+v", got, first)
	}
}

func TestInitOldMinor(t *testing.T) {
	srv := newServer(t, newUnitFS(), nil)
	w := srv.NewWorker("test")
	out := make([]byte, srv.ReplyBufferSize())
	rep := w.HandleDev(initMsg(1, 7, 11, wire.FUSE_ASYNC_READ), out)
	if rep.Error != -int32(syscall.EPROTO) || rep.Len != 0 || !rep.Init {
		t.Errorf("INIT 7.11: %+v, want EPROTO", rep)
	}
	if srv.Init() != nil {
		t.Errorf("INIT 7.11 left a negotiation behind: %+v", srv.Init())
	}
	rep = w.HandleDev(initMsg(2, 6, 45, wire.FUSE_ASYNC_READ), out)
	if rep.Error != -int32(syscall.EPROTO) {
		t.Errorf("INIT 6.45: %+v, want EPROTO", rep)
	}
}

// TestInitNewerMajor: a kernel with a newer major gets our version in the
// old 24-byte reply and then sends INIT again.
func TestInitNewerMajor(t *testing.T) {
	srv := newServer(t, newUnitFS(), nil)
	w := srv.NewWorker("test")
	out := make([]byte, srv.ReplyBufferSize())
	rep := w.HandleDev(initMsg(1, 8, 3, kernelOffer), out)
	if rep.Error != 0 || rep.Len != wire.FUSE_COMPAT_22_INIT_OUT_SIZE {
		t.Fatalf("INIT 8.3: %+v, want a %d-byte reply", rep, wire.FUSE_COMPAT_22_INIT_OUT_SIZE)
	}
	io := wire.View[wire.InitOut](out)
	if io.Major != wire.FUSE_KERNEL_VERSION || io.Minor != wire.FUSE_KERNEL_MINOR_VERSION {
		t.Errorf("answered %d.%d, want %d.%d", io.Major, io.Minor, wire.FUSE_KERNEL_VERSION, wire.FUSE_KERNEL_MINOR_VERSION)
	}
	if srv.Init() != nil {
		t.Fatalf("the major-8 INIT counted as the negotiation")
	}
	rep = w.HandleDev(initMsg(2, 7, 45, kernelOffer), out)
	if rep.Error != 0 || rep.Len != wire.SizeofInitOut {
		t.Errorf("INIT 7.45 after the major-8 INIT: %+v", rep)
	}
}

// TestInitNewerMajorThenTransport replays the handshake with a newer
// kernel as the /dev/fuse channel does it, calling InitReplied after every
// reply marked Init: the reply to the major-8 INIT must not end the
// handshake, or the transport negotiated by the INIT that follows never
// starts.
func TestInitNewerMajorThenTransport(t *testing.T) {
	tr := &fakeTransport{flags: wire.FUSE_OVER_IO_URING}
	srv := newServer(t, newUnitFS(), &Options{Transport: tr})
	w := srv.NewWorker("test")
	out := make([]byte, srv.ReplyBufferSize())
	serve := func(msg []byte) Reply {
		rep := w.HandleDev(msg, out)
		if rep.Init {
			srv.InitReplied()
		}
		return rep
	}
	if rep := serve(initMsg(1, 8, 0, kernelOffer)); rep.Init {
		t.Errorf("the reply to a major-8 INIT is marked Init: %+v", rep)
	}
	select {
	case <-srv.Initialized():
		t.Fatalf("Initialized() closed by the reply to a major-8 INIT")
	default:
	}
	if rep := serve(initMsg(2, 7, 45, kernelOffer)); rep.Error != 0 || !rep.Init {
		t.Fatalf("INIT 7.45: %+v", rep)
	}
	if tr.prepare != 1 || tr.start != 1 {
		t.Errorf("Prepare called %d times, Start %d times; want 1 and 1", tr.prepare, tr.start)
	}
	select {
	case <-srv.Initialized():
	default:
		t.Errorf("Initialized() open after the INIT 7.45 reply")
	}
}

// TestInitRefusedEndsHandshake: a refused INIT still releases Initialized
// waiters (the session then finds no negotiation and fails fast) and
// starts nothing.
func TestInitRefusedEndsHandshake(t *testing.T) {
	tr := &fakeTransport{flags: wire.FUSE_OVER_IO_URING}
	srv := newServer(t, newUnitFS(), &Options{Transport: tr})
	rep := srv.NewWorker("test").HandleDev(initMsg(1, 7, 11, kernelOffer), make([]byte, srv.ReplyBufferSize()))
	if !rep.Init || rep.Error != -int32(syscall.EPROTO) {
		t.Fatalf("INIT 7.11: %+v", rep)
	}
	srv.InitReplied()
	select {
	case <-srv.Initialized():
	default:
		t.Errorf("Initialized() open after a refused INIT")
	}
	if srv.Init() != nil || tr.prepare != 0 || tr.start != 0 {
		t.Errorf("refused INIT: Init() %+v, Prepare %d, Start %d", srv.Init(), tr.prepare, tr.start)
	}
}

// TestInitReplySize: kernels before 7.23 read a 24-byte fuse_init_out, and
// the agreed minor is the smaller of the two.
func TestInitReplySize(t *testing.T) {
	for _, c := range []struct {
		kernel, agreed uint32
		size           int
	}{
		{12, 12, wire.FUSE_COMPAT_22_INIT_OUT_SIZE},
		{22, 22, wire.FUSE_COMPAT_22_INIT_OUT_SIZE},
		{23, 23, wire.SizeofInitOut},
		{35, 35, wire.SizeofInitOut},
		{36, 36, wire.SizeofInitOut},
		{45, 45, wire.SizeofInitOut},
		{46, 46, wire.SizeofInitOut},
		{47, 46, wire.SizeofInitOut},
		{99, 46, wire.SizeofInitOut},
	} {
		srv := newServer(t, newUnitFS(), nil)
		w := srv.NewWorker("test")
		out := make([]byte, srv.ReplyBufferSize())
		rep := w.HandleDev(initMsg(1, 7, c.kernel, kernelOffer), out)
		if rep.Error != 0 || rep.Len != c.size {
			t.Errorf("INIT 7.%d: %+v, want a %d-byte reply", c.kernel, rep, c.size)
			continue
		}
		io := wire.View[wire.InitOut](out)
		if io.Major != 7 || io.Minor != c.agreed {
			t.Errorf("INIT 7.%d: answered %d.%d, want 7.%d", c.kernel, io.Major, io.Minor, c.agreed)
		}
		if info := srv.Init(); info == nil || info.Minor != c.agreed || info.KernelMinor != c.kernel {
			t.Errorf("INIT 7.%d: Init() = %+v", c.kernel, info)
		}
		if c.kernel < 36 && io.Flags2 != 0 {
			t.Errorf("INIT 7.%d: flags2 %#x in a reply to a kernel without flags2", c.kernel, io.Flags2)
		}
	}
}

func TestInitReplyFields(t *testing.T) {
	srv := newServer(t, newUnitFS(), &Options{MaxWrite: 300<<10 + 100, MaxBackground: 40})
	out := make([]byte, srv.ReplyBufferSize())
	if rep := srv.NewWorker("test").HandleDev(initMsg(1, 7, 45, kernelOffer), out); rep.Error != 0 {
		t.Fatalf("INIT: %+v", rep)
	}
	io := wire.View[wire.InitOut](out)
	if io.MaxWrite != 300<<10 || io.MaxPages != 75 {
		t.Errorf("max_write %d, max_pages %d; want %d and 75 (whole pages)", io.MaxWrite, io.MaxPages, 300<<10)
	}
	if io.MaxBackground != 40 || io.CongestionThreshold != 30 {
		t.Errorf("max_background %d, congestion_threshold %d; want 40 and 30", io.MaxBackground, io.CongestionThreshold)
	}
	if io.MaxReadahead != 128<<10 || io.TimeGran != 1 {
		t.Errorf("max_readahead %d, time_gran %d; want %d and 1", io.MaxReadahead, io.TimeGran, 128<<10)
	}
	if io.MaxStackDepth != 0 || io.Flags2&(wire.FUSE_PASSTHROUGH>>32) != 0 {
		t.Errorf("passthrough negotiated without Options.Passthrough")
	}
	if info := srv.Init(); info.MaxWrite != 300<<10 || info.MaxPages != 75 || info.MaxReadahead != 128<<10 {
		t.Errorf("Init() = %+v", info)
	}
}

// TestInitFlagsSubset: whatever the kernel offers, the reply asks only for
// flags it offered, and flags2 counts only with FUSE_INIT_EXT.
func TestInitFlagsSubset(t *testing.T) {
	offers := []uint64{
		0,
		kernelOffer,
		kernelOffer &^ wire.FUSE_INIT_EXT,
		wire.FUSE_ASYNC_READ,
		wire.FUSE_INIT_EXT | wire.FUSE_PASSTHROUGH | wire.FUSE_OVER_IO_URING,
		^uint64(0),
		^uint64(0) &^ wire.FUSE_INIT_EXT,
		0x5555_5555_5555_5555,
		0xaaaa_aaaa_aaaa_aaaa,
	}
	for _, passthrough := range []bool{false, true} {
		for _, offer := range offers {
			tr := &fakeTransport{flags: wire.FUSE_OVER_IO_URING | wire.FUSE_ALLOW_IDMAP}
			srv := newServer(t, newUnitFS(), &Options{Passthrough: passthrough, Transport: tr})
			out := make([]byte, srv.ReplyBufferSize())
			rep := srv.NewWorker("test").HandleDev(initMsg(1, 7, 45, offer), out)
			if rep.Error != 0 {
				t.Fatalf("INIT offering %#x: %+v", offer, rep)
			}
			io := wire.View[wire.InitOut](out)
			got := uint64(io.Flags) | uint64(io.Flags2)<<32
			offered := offer & 0xffff_ffff
			if offer&wire.FUSE_INIT_EXT != 0 {
				offered = offer
			}
			if got&^offered != 0 {
				t.Errorf("offered %#x, reply asks for %#x: %#x was not offered", offer, got, got&^offered)
			}
			if info := srv.Init(); info.Flags != got || info.KernelFlags != offered {
				t.Errorf("offered %#x: InitInfo flags %#x, kernel flags %#x; reply %#x", offer, info.Flags, info.KernelFlags, got)
			}
			if offered&wire.FUSE_ASYNC_READ != 0 && got&wire.FUSE_ASYNC_READ == 0 {
				t.Errorf("offered %#x: FUSE_ASYNC_READ not taken", offer)
			}
			if !passthrough && got&wire.FUSE_PASSTHROUGH != 0 {
				t.Errorf("offered %#x: FUSE_PASSTHROUGH taken without Options.Passthrough", offer)
			}
		}
	}
}

// fakeTransport records what INIT did with it.
type fakeTransport struct {
	flags   uint64
	err     error
	info    InitInfo
	prepare int
	start   int
}

func (f *fakeTransport) Prepare(s *Server, init *InitInfo) (uint64, error) {
	f.prepare++
	f.info = *init
	return f.flags, f.err
}

func (f *fakeTransport) Start() { f.start++ }

func TestInitTransport(t *testing.T) {
	for _, c := range []struct {
		name      string
		offer     uint64
		err       error
		wantUring bool
	}{
		{"prepared", kernelOffer, nil, true},
		{"prepare-failed", kernelOffer, errors.New("no rings today"), false},
		{"not-offered", kernelOffer &^ wire.FUSE_OVER_IO_URING, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := &fakeTransport{flags: wire.FUSE_OVER_IO_URING, err: c.err}
			srv := newServer(t, newUnitFS(), &Options{Transport: tr})
			out := make([]byte, srv.ReplyBufferSize())
			rep := srv.NewWorker("test").HandleDev(initMsg(1, 7, 45, c.offer), out)
			if rep.Error != 0 || !rep.Init {
				t.Fatalf("INIT: %+v", rep)
			}
			if tr.prepare != 1 {
				t.Fatalf("Prepare called %d times, want 1", tr.prepare)
			}
			if tr.info.Minor != 45 || tr.info.KernelFlags != c.offer || tr.info.Flags&wire.FUSE_OVER_IO_URING != 0 {
				t.Errorf("Prepare saw %+v", tr.info)
			}
			io := wire.View[wire.InitOut](out)
			uring := io.Flags2&(wire.FUSE_OVER_IO_URING>>32) != 0
			if uring != c.wantUring || (srv.Init().Flags&wire.FUSE_OVER_IO_URING != 0) != c.wantUring {
				t.Errorf("FUSE_OVER_IO_URING in reply %v, in Init() %#x; want %v", uring, srv.Init().Flags, c.wantUring)
			}
			if tr.start != 0 {
				t.Errorf("Start called before the reply was written")
			}
			select {
			case <-srv.Initialized():
				t.Errorf("Initialized() closed before InitReplied")
			default:
			}
			srv.InitReplied()
			srv.InitReplied()
			want := 0
			if c.wantUring {
				want = 1
			}
			if tr.start != want {
				t.Errorf("Start called %d times, want %d", tr.start, want)
			}
			select {
			case <-srv.Initialized():
			default:
				t.Errorf("Initialized() still open after InitReplied")
			}
		})
	}
}

// allOpsFS implements every optional interface, trivially.
type allOpsFS struct{}

func (allOpsFS) Root() ringfuse.Node { return 1 }

func (allOpsFS) entry(out *ringfuse.Entry) syscall.Errno {
	out.Node = 2
	out.Attr = wire.Attr{Ino: 2, Mode: syscall.S_IFREG | 0o644, Nlink: 1}
	return 0
}
func (f allOpsFS) Lookup(_ context.Context, _ ringfuse.Node, _ string, out *ringfuse.Entry) syscall.Errno {
	return f.entry(out)
}
func (allOpsFS) Forget(ringfuse.Node) {}
func (allOpsFS) GetAttr(context.Context, ringfuse.Node, uint64, bool, *ringfuse.AttrOut) syscall.Errno {
	return 0
}
func (allOpsFS) Statx(context.Context, ringfuse.Node, uint64, bool, uint32, uint32, *ringfuse.StatxOut) syscall.Errno {
	return 0
}
func (allOpsFS) SetAttr(context.Context, ringfuse.Node, *ringfuse.SetAttrIn, *ringfuse.AttrOut) syscall.Errno {
	return 0
}
func (allOpsFS) Readlink(context.Context, ringfuse.Node) ([]byte, syscall.Errno) {
	return []byte("target"), 0
}
func (f allOpsFS) Symlink(_ context.Context, _ ringfuse.Node, _, _ string, out *ringfuse.Entry) syscall.Errno {
	return f.entry(out)
}
func (f allOpsFS) Mknod(_ context.Context, _ ringfuse.Node, _ string, _, _, _ uint32, out *ringfuse.Entry) syscall.Errno {
	return f.entry(out)
}
func (f allOpsFS) Mkdir(_ context.Context, _ ringfuse.Node, _ string, _, _ uint32, out *ringfuse.Entry) syscall.Errno {
	return f.entry(out)
}
func (allOpsFS) Unlink(context.Context, ringfuse.Node, string) syscall.Errno { return 0 }
func (allOpsFS) Rmdir(context.Context, ringfuse.Node, string) syscall.Errno  { return 0 }
func (allOpsFS) Rename(context.Context, ringfuse.Node, string, ringfuse.Node, string, uint32) syscall.Errno {
	return 0
}
func (f allOpsFS) Link(_ context.Context, _, _ ringfuse.Node, _ string, out *ringfuse.Entry) syscall.Errno {
	return f.entry(out)
}
func (allOpsFS) Open(context.Context, ringfuse.Node, uint32, *ringfuse.OpenOut) syscall.Errno {
	return 0
}
func (allOpsFS) Read(context.Context, ringfuse.Node, uint64, int64, []byte) (int, syscall.Errno) {
	return 0, 0
}
func (allOpsFS) Write(_ context.Context, _ ringfuse.Node, _ uint64, _ int64, data []byte, _ uint32) (int, syscall.Errno) {
	return len(data), 0
}
func (allOpsFS) StatFS(context.Context, ringfuse.Node, *ringfuse.StatFS) syscall.Errno { return 0 }
func (allOpsFS) Release(context.Context, ringfuse.Node, uint64, uint32)                {}
func (allOpsFS) Fsync(context.Context, ringfuse.Node, uint64, bool) syscall.Errno      { return 0 }
func (allOpsFS) Flush(context.Context, ringfuse.Node, uint64, uint64) syscall.Errno    { return 0 }
func (allOpsFS) SetXattr(context.Context, ringfuse.Node, string, []byte, uint32) syscall.Errno {
	return 0
}
func (allOpsFS) GetXattr(context.Context, ringfuse.Node, string, []byte) (int, syscall.Errno) {
	return 0, 0
}
func (allOpsFS) ListXattr(context.Context, ringfuse.Node, []byte) (int, syscall.Errno) {
	return 0, 0
}
func (allOpsFS) RemoveXattr(context.Context, ringfuse.Node, string) syscall.Errno { return 0 }
func (allOpsFS) OpenDir(context.Context, ringfuse.Node, uint32, *ringfuse.OpenOut) syscall.Errno {
	return 0
}
func (allOpsFS) ReadDir(_ context.Context, _ ringfuse.Node, _, _ uint64, w ringfuse.DirWriter) syscall.Errno {
	w.Add(".", 1, syscall.S_IFDIR, 1)
	return 0
}
func (allOpsFS) ReleaseDir(context.Context, ringfuse.Node, uint64)                   {}
func (allOpsFS) FsyncDir(context.Context, ringfuse.Node, uint64, bool) syscall.Errno { return 0 }
func (allOpsFS) Access(context.Context, ringfuse.Node, uint32) syscall.Errno         { return 0 }
func (f allOpsFS) Create(_ context.Context, _ ringfuse.Node, _ string, _, _, _ uint32, out *ringfuse.Entry, _ *ringfuse.OpenOut) syscall.Errno {
	return f.entry(out)
}
func (allOpsFS) Fallocate(context.Context, ringfuse.Node, uint64, int64, int64, uint32) syscall.Errno {
	return 0
}
func (allOpsFS) Lseek(_ context.Context, _ ringfuse.Node, _ uint64, off int64, _ uint32) (int64, syscall.Errno) {
	return off, 0
}
func (allOpsFS) CopyFileRange(context.Context, ringfuse.Node, uint64, int64, ringfuse.Node, uint64, int64, uint64, uint64) (uint64, syscall.Errno) {
	return 0, 0
}
func (allOpsFS) GetLk(context.Context, ringfuse.Node, uint64, uint64, *ringfuse.FileLock, *ringfuse.FileLock) syscall.Errno {
	return 0
}
func (allOpsFS) SetLk(context.Context, ringfuse.Node, uint64, uint64, *ringfuse.FileLock, bool, bool) syscall.Errno {
	return 0
}
func (allOpsFS) Destroy() {}

// minimalArgs returns the smallest well-formed body of op, with node IDs
// pointing at the root.
func minimalArgs(op wire.Opcode) [][]byte {
	arg := make([]byte, wire.ArgSize(op, &wire.Conn{Minor: 45}))
	switch op {
	case wire.FUSE_RENAME:
		arg = wire.AsBytes(&wire.RenameIn{Newdir: wire.FUSE_ROOT_ID})
	case wire.FUSE_RENAME2:
		arg = wire.AsBytes(&wire.Rename2In{Newdir: wire.FUSE_ROOT_ID})
	case wire.FUSE_LINK:
		arg = wire.AsBytes(&wire.LinkIn{Oldnodeid: wire.FUSE_ROOT_ID})
	case wire.FUSE_COPY_FILE_RANGE, wire.FUSE_COPY_FILE_RANGE_64:
		arg = wire.AsBytes(&wire.CopyFileRangeIn{NodeidOut: wire.FUSE_ROOT_ID, Len: 4096})
	case wire.FUSE_READ, wire.FUSE_READDIR, wire.FUSE_READDIRPLUS:
		arg = wire.AsBytes(&wire.ReadIn{Size: 4096})
	case wire.FUSE_GETXATTR, wire.FUSE_LISTXATTR:
		arg = wire.AsBytes(&wire.GetxattrIn{Size: 64})
	case wire.FUSE_NOTIFY_REPLY:
		arg = wire.AsBytes(&wire.NotifyRetrieveIn{}) // an empty answer
	}
	switch op {
	case wire.FUSE_LOOKUP, wire.FUSE_MKNOD, wire.FUSE_MKDIR, wire.FUSE_UNLINK, wire.FUSE_RMDIR,
		wire.FUSE_LINK, wire.FUSE_CREATE, wire.FUSE_GETXATTR, wire.FUSE_REMOVEXATTR, wire.FUSE_SETXATTR:
		return [][]byte{arg, wire.CString("x")}
	case wire.FUSE_SYMLINK, wire.FUSE_RENAME, wire.FUSE_RENAME2:
		return [][]byte{arg, wire.CString("x"), wire.CString("y")}
	}
	return [][]byte{arg}
}

// TestEveryHandler sends every served opcode a minimal well-formed message,
// to a filesystem with every operation and to one with almost none: no
// handler may panic, and each answers a valid errno or a payload that fits.
func TestEveryHandler(t *testing.T) {
	for _, fc := range []struct {
		name string
		fs   ringfuse.FileSystem
	}{{"all-ops", allOpsFS{}}, {"unitFS", newUnitFS()}} {
		t.Run(fc.name, func(t *testing.T) {
			pw := &panicWatch{tb: t}
			h := newHarness(t, fc.fs, &Options{ErrorLog: newLogger(pw)})
			for op := wire.Opcode(0); op < wire.OpcodeMax; op++ {
				if handlers[op] == nil || op == wire.FUSE_INIT {
					continue
				}
				rep := h.send(op, wire.FUSE_ROOT_ID, minimalArgs(op)...)
				if rep.Opcode != op || rep.Unique != h.unique.Load() {
					t.Errorf("%v: reply for %v, unique %d", op, rep.Opcode, rep.Unique)
				}
				if rep.Error > 0 || rep.Error < -wire.MaxErrno || (rep.Error != 0 && rep.Len != 0) {
					t.Errorf("%v: bad reply %+v", op, rep)
				}
				if rep.Len < 0 || rep.Len > len(h.out) {
					t.Errorf("%v: reply length %d", op, rep.Len)
				}
				if rep.None != op.NoReply() {
					t.Errorf("%v: None = %v", op, rep.None)
				}
			}
			if n := pw.panics.Load(); n != 0 {
				t.Errorf("%d handlers panicked", n)
			}
			if cs := h.channel(); cs.DecodeErrors != 0 {
				t.Errorf("%d messages did not decode: fix minimalArgs", cs.DecodeErrors)
			}
		})
	}
}
