package server

import (
	"os"
	"syscall"

	"github.com/ringfuse/ringfuse/wire"
)

// wantFlags are the INIT flags ringfuse asks for when the kernel offers
// them; operation-dependent ones are added in doInit.
const wantFlags = wire.FUSE_ASYNC_READ | wire.FUSE_BIG_WRITES | wire.FUSE_MAX_PAGES |
	wire.FUSE_PARALLEL_DIROPS | wire.FUSE_ASYNC_DIO | wire.FUSE_ATOMIC_O_TRUNC |
	wire.FUSE_AUTO_INVAL_DATA | wire.FUSE_INIT_EXT |
	// Reads fail with ECONNABORTED rather than ENODEV after a fusectl
	// abort, so an abort is told apart from an unmount.
	wire.FUSE_ABORT_ERROR |
	// The server clears set-ID bits on write, truncate and open(O_TRUNC)
	// by callers without CAP_FSETID (the kernel says when), which the
	// kernel cannot do itself with FUSE_ATOMIC_O_TRUNC.
	wire.FUSE_HANDLE_KILLPRIV_V2

// pageSize is the kernel's PAGE_SIZE, which max_pages counts in (64 KiB on
// some arm64 and ppc64 kernels).
var pageSize = os.Getpagesize()

// maxPagesField is the largest max_pages fuse_init_out can carry (a 16-bit
// field: a larger count must saturate, not wrap to a tiny one).
const maxPagesField = 1<<16 - 1

func (w *Worker) doInit(out []byte) (int, syscall.Errno) {
	s := w.s
	in := wire.ArgAs[wire.InitIn](&w.req)
	if s.conn.Load() != nil {
		return 0, syscall.EIO // a second INIT
	}
	io := wire.View[wire.InitOut](out)
	*io = wire.InitOut{Major: wire.FUSE_KERNEL_VERSION, Minor: wire.FUSE_KERNEL_MINOR_VERSION}
	if in.Major > wire.FUSE_KERNEL_VERSION {
		// A newer major: answer ours, and the kernel sends INIT again.
		return wire.FUSE_COMPAT_22_INIT_OUT_SIZE, 0
	}
	if in.Major < wire.FUSE_KERNEL_VERSION || in.Minor < wire.MinKernelMinor {
		s.log.Printf("kernel speaks FUSE %d.%d; ringfuse needs %d.%d or later", in.Major, in.Minor, wire.FUSE_KERNEL_VERSION, wire.MinKernelMinor)
		return 0, syscall.EPROTO
	}
	kflags := uint64(in.Flags)
	if in.Flags&wire.FUSE_INIT_EXT != 0 {
		kflags |= uint64(in.Flags2) << 32
	}
	want := uint64(wantFlags)
	if s.ops.readdir != nil {
		want |= wire.FUSE_DO_READDIRPLUS | wire.FUSE_READDIRPLUS_AUTO
	}
	if s.ops.lock != nil {
		want |= wire.FUSE_POSIX_LOCKS | wire.FUSE_FLOCK_LOCKS
	}
	if s.opts.Passthrough {
		want |= wire.FUSE_PASSTHROUGH
	}
	if s.opts.PosixACL && s.ops.xattr != nil {
		want |= wire.FUSE_POSIX_ACL
	}
	if s.opts.ApplyUmask {
		want |= wire.FUSE_DONT_MASK
	}
	flags := kflags & want
	info := InitInfo{
		Minor:        min(in.Minor, wire.FUSE_KERNEL_MINOR_VERSION),
		KernelMinor:  in.Minor,
		KernelFlags:  kflags,
		MaxWrite:     s.maxWrite,
		MaxPages:     uint16(min(int(s.maxWrite)/pageSize, maxPagesField)),
		MaxReadahead: in.MaxReadahead,
	}
	transport := false
	if t := s.opts.Transport; t != nil {
		info.Flags = flags
		extra, err := t.Prepare(s, &info)
		if err != nil {
			s.log.Printf("%v; serving over /dev/fuse alone", err)
		} else {
			flags |= extra & kflags
			// It runs only if the kernel agreed to all it asked for.
			transport = extra&kflags == extra
		}
	}
	info.Flags = flags
	io.Minor = info.Minor
	io.MaxReadahead = in.MaxReadahead
	io.Flags = uint32(flags)
	io.Flags2 = uint32(flags >> 32)
	bg := s.opts.MaxBackground
	if bg == 0 {
		bg = 64
	}
	io.MaxBackground = bg
	io.CongestionThreshold = uint16(uint32(bg) * 3 / 4) // in 32 bits: bg*3 overflows 16
	io.MaxWrite = s.maxWrite
	io.TimeGran = 1
	io.MaxPages = info.MaxPages
	if flags&wire.FUSE_PASSTHROUGH != 0 {
		io.MaxStackDepth = 1
	}
	s.conn.Store(&connState{wire: wire.Conn{Minor: info.Minor}, info: info, transport: transport})
	if info.Minor < 23 {
		return wire.FUSE_COMPAT_22_INIT_OUT_SIZE, 0
	}
	return wire.SizeofInitOut, 0
}

// InitReplied is called by the channel once the INIT reply is written: it
// starts the transport, if its Prepare accepted the connection, and
// releases Initialized waiters.
func (s *Server) InitReplied() {
	s.initOnce.Do(func() {
		if c := s.conn.Load(); c != nil && c.transport {
			s.opts.Transport.Start()
		}
		close(s.initDone)
	})
}
