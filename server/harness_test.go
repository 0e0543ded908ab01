package server

// Shared helpers of the server's unit tests: a small in-memory filesystem
// and a harness that feeds /dev/fuse messages to a Worker. Nothing here
// mounts; every test builds its messages with wire.AppendRequest.

import (
	"context"
	"io"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// kernelOffer is what a 7.45 kernel with io_uring enabled offers at INIT.
const kernelOffer uint64 = wire.FUSE_ASYNC_READ | wire.FUSE_POSIX_LOCKS | wire.FUSE_ATOMIC_O_TRUNC |
	wire.FUSE_EXPORT_SUPPORT | wire.FUSE_BIG_WRITES | wire.FUSE_DONT_MASK | wire.FUSE_SPLICE_WRITE |
	wire.FUSE_SPLICE_MOVE | wire.FUSE_SPLICE_READ | wire.FUSE_FLOCK_LOCKS | wire.FUSE_HAS_IOCTL_DIR |
	wire.FUSE_AUTO_INVAL_DATA | wire.FUSE_DO_READDIRPLUS | wire.FUSE_READDIRPLUS_AUTO |
	wire.FUSE_ASYNC_DIO | wire.FUSE_WRITEBACK_CACHE | wire.FUSE_NO_OPEN_SUPPORT |
	wire.FUSE_PARALLEL_DIROPS | wire.FUSE_HANDLE_KILLPRIV | wire.FUSE_POSIX_ACL |
	wire.FUSE_ABORT_ERROR | wire.FUSE_MAX_PAGES | wire.FUSE_CACHE_SYMLINKS |
	wire.FUSE_NO_OPENDIR_SUPPORT | wire.FUSE_EXPLICIT_INVAL_DATA | wire.FUSE_MAP_ALIGNMENT |
	wire.FUSE_SUBMOUNTS | wire.FUSE_HANDLE_KILLPRIV_V2 | wire.FUSE_SETXATTR_EXT | wire.FUSE_INIT_EXT |
	wire.FUSE_SECURITY_CTX | wire.FUSE_HAS_INODE_DAX | wire.FUSE_CREATE_SUPP_GROUP |
	wire.FUSE_HAS_EXPIRE_ONLY | wire.FUSE_DIRECT_IO_ALLOW_MMAP | wire.FUSE_PASSTHROUGH |
	wire.FUSE_NO_EXPORT_SUPPORT | wire.FUSE_HAS_RESEND | wire.FUSE_ALLOW_IDMAP |
	wire.FUSE_OVER_IO_URING | wire.FUSE_REQUEST_TIMEOUT

// Credentials every test request carries.
const (
	testUID = 1000
	testGID = 100
	testPID = 4242
)

// initMsg builds an INIT request. Kernels before 7.36 send the 16-byte
// compat fuse_init_in, so that is what a minor below 36 gets.
func initMsg(unique uint64, major, minor uint32, flags uint64) []byte {
	in := wire.InitIn{Major: major, Minor: minor, MaxReadahead: 128 << 10,
		Flags: uint32(flags), Flags2: uint32(flags >> 32)}
	arg := wire.AsBytes(&in)
	if minor < 36 {
		arg = arg[:wire.FUSE_COMPAT_INIT_IN_SIZE]
	}
	return wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_INIT, Unique: unique}, arg)
}

// reqMsg appends a request to dst[:0].
func reqMsg(dst []byte, op wire.Opcode, unique, nodeID uint64, parts ...[]byte) []byte {
	h := wire.InHeader{Opcode: op, Unique: unique, NodeID: nodeID, UID: testUID, GID: testGID, PID: testPID}
	return wire.AppendRequest(dst[:0], h, parts...)
}

// tbWriter sends a server's log to the test's log.
type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// panicWatch is a log writer that remembers whether a handler panicked.
type panicWatch struct {
	tb     testing.TB
	panics atomic.Int64
}

func (p *panicWatch) Write(b []byte) (int, error) {
	if strings.Contains(string(b), "panic serving") {
		p.panics.Add(1)
	}
	p.tb.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// newLogger returns a logger writing bare lines to w.
func newLogger(w io.Writer) *log.Logger { return log.New(w, "", 0) }

// harness is one Worker of a server plus a reply buffer and a message
// buffer, so that a test reads like a conversation with the kernel.
type harness struct {
	tb     testing.TB
	srv    *Server
	w      *Worker
	out    []byte
	msg    []byte
	unique *atomic.Uint64 // shared by the forks of a harness
}

// newServer returns a server for fsys whose log goes to tb.
func newServer(tb testing.TB, fsys ringfuse.FileSystem, opts *Options) *Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ErrorLog == nil {
		o.ErrorLog = log.New(tbWriter{tb}, "server: ", 0)
	}
	return New(fsys, &o)
}

// newHarness starts a server for fsys, with a worker on channel "test",
// and answers INIT as a 7.45 kernel offering kernelOffer.
func newHarness(tb testing.TB, fsys ringfuse.FileSystem, opts *Options) *harness {
	tb.Helper()
	h := &harness{tb: tb, srv: newServer(tb, fsys, opts), unique: new(atomic.Uint64)}
	h.w = h.srv.NewWorker("test")
	h.out = make([]byte, h.srv.ReplyBufferSize())
	rep := h.w.HandleDev(initMsg(h.next(), 7, 45, kernelOffer), h.out)
	if rep.Error != 0 || !rep.Init {
		tb.Fatalf("INIT: %+v", rep)
	}
	h.srv.InitReplied()
	return h
}

// fork returns a harness with its own worker on the same server.
func (h *harness) fork(channel string) *harness {
	return &harness{tb: h.tb, srv: h.srv, w: h.srv.NewWorker(channel),
		out: make([]byte, h.srv.ReplyBufferSize()), unique: h.unique}
}

func (h *harness) next() uint64 { return h.unique.Add(1) }

// send hands the worker one request and returns its reply.
func (h *harness) send(op wire.Opcode, nodeID uint64, parts ...[]byte) Reply {
	h.msg = reqMsg(h.msg, op, h.next(), nodeID, parts...)
	return h.w.HandleDev(h.msg, h.out)
}

// payload returns the reply payload of rep.
func (h *harness) payload(rep Reply) []byte { return h.out[:rep.Len] }

// lookup looks name up in parent and returns the fuse_entry_out.
func (h *harness) lookup(parent uint64, name string) (wire.EntryOut, syscall.Errno) {
	h.tb.Helper()
	rep := h.send(wire.FUSE_LOOKUP, parent, wire.CString(name))
	if rep.Error != 0 {
		return wire.EntryOut{}, syscall.Errno(-rep.Error)
	}
	if rep.Len != wire.SizeofEntryOut {
		h.tb.Fatalf("LOOKUP %q: %d-byte reply, want %d", name, rep.Len, wire.SizeofEntryOut)
	}
	return *wire.View[wire.EntryOut](h.out), 0
}

// mustLookup is lookup failing the test on an error.
func (h *harness) mustLookup(parent uint64, name string) wire.EntryOut {
	h.tb.Helper()
	eo, errno := h.lookup(parent, name)
	if errno != 0 {
		h.tb.Fatalf("LOOKUP %q: %v", name, errno)
	}
	return eo
}

func (h *harness) forget(id, nlookup uint64) Reply {
	in := wire.ForgetIn{Nlookup: nlookup}
	return h.send(wire.FUSE_FORGET, id, wire.AsBytes(&in))
}

func (h *harness) batchForget(ones ...wire.ForgetOne) Reply {
	in := wire.BatchForgetIn{Count: uint32(len(ones))}
	parts := [][]byte{wire.AsBytes(&in)}
	for i := range ones {
		parts = append(parts, wire.AsBytes(&ones[i]))
	}
	return h.send(wire.FUSE_BATCH_FORGET, 0, parts...)
}

func (h *harness) read(id, fh, off uint64, size uint32) Reply {
	in := wire.ReadIn{Fh: fh, Offset: off, Size: size}
	return h.send(wire.FUSE_READ, id, wire.AsBytes(&in))
}

func (h *harness) getattr(id uint64) Reply {
	var in wire.GetattrIn
	return h.send(wire.FUSE_GETATTR, id, wire.AsBytes(&in))
}

// channel returns the statistics of the harness's channel.
func (h *harness) channel() *ChannelStats {
	cs := h.srv.Stats().Channels[h.w.Channel()]
	if cs == nil {
		return &ChannelStats{}
	}
	return cs
}

// unitNode is what unitFS hands the server: a fresh value for every
// lookup, so that a test can tell which one the server kept.
type unitNode struct{ f *unitFile }

// unitFile is one inode of unitFS.
type unitFile struct {
	name string
	key  ringfuse.InodeKey // zero: by Attr.Ino
	attr wire.Attr
	data []byte
}

// unitFS is a small in-memory filesystem: a root directory holding the
// files added with add. Lookup of "panic" panics.
type unitFS struct {
	root  unitFile
	files []*unitFile // in directory order

	mu       sync.Mutex
	forgets  map[*unitNode]int // Forget calls by node
	lookups  atomic.Int64      // successful Lookup calls
	nforgets atomic.Int64
}

func newUnitFS() *unitFS {
	return &unitFS{
		root:    unitFile{attr: wire.Attr{Ino: 1, Mode: syscall.S_IFDIR | 0o755, Nlink: 2}},
		forgets: map[*unitNode]int{},
	}
}

// add adds a regular file with inode number ino and returns it.
func (f *unitFS) add(name string, ino uint64, data string) *unitFile {
	uf := &unitFile{name: name, data: []byte(data),
		attr: wire.Attr{Ino: ino, Mode: syscall.S_IFREG | 0o644, Nlink: 1, Size: uint64(len(data))}}
	f.files = append(f.files, uf)
	return uf
}

func (f *unitFS) file(n ringfuse.Node) *unitFile {
	if un, ok := n.(*unitNode); ok {
		return un.f
	}
	return &f.root
}

func (f *unitFS) Root() ringfuse.Node { return &unitNode{f: &f.root} }

func (f *unitFS) entry(uf *unitFile, out *ringfuse.Entry) {
	out.Node = &unitNode{f: uf}
	out.Key = uf.key
	out.Attr = uf.attr
}

func (f *unitFS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	if name == "panic" {
		panic("unitFS: lookup of panic")
	}
	if f.file(parent) != &f.root {
		return syscall.ENOTDIR
	}
	for _, uf := range f.files {
		if uf.name == name {
			f.entry(uf, out)
			f.lookups.Add(1)
			return 0
		}
	}
	return syscall.ENOENT
}

func (f *unitFS) Forget(n ringfuse.Node) {
	f.nforgets.Add(1)
	f.mu.Lock()
	f.forgets[n.(*unitNode)]++
	f.mu.Unlock()
}

// forgetCalls returns how often Forget was called for n.
func (f *unitFS) forgetCalls(n *unitNode) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forgets[n]
}

func (f *unitFS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	out.Attr = f.file(n).attr
	return 0
}

func (f *unitFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	data := f.file(n).data
	if off >= int64(len(data)) {
		return 0, 0
	}
	return copy(buf, data[off:]), 0
}

func (f *unitFS) Write(ctx context.Context, n ringfuse.Node, fh uint64, off int64, data []byte, flags uint32) (int, syscall.Errno) {
	return len(data), 0
}

// ReadDir lists ".", ".." and the files; cookie i resumes after entry i.
func (f *unitFS) ReadDir(ctx context.Context, n ringfuse.Node, fh uint64, off uint64, w ringfuse.DirWriter) syscall.Errno {
	dot := ringfuse.Entry{Attr: f.root.attr}
	names := []string{".", ".."}
	for _, uf := range f.files {
		names = append(names, uf.name)
	}
	for i := off; i < uint64(len(names)); i++ {
		var ok bool
		switch {
		case i < 2 && w.Plus():
			ok = w.AddEntry(names[i], &dot, i+1)
		case i < 2:
			ok = w.Add(names[i], 1, syscall.S_IFDIR, i+1)
		case w.Plus():
			var e ringfuse.Entry
			f.entry(f.files[i-2], &e)
			ok = w.AddEntry(names[i], &e, i+1)
		default:
			uf := f.files[i-2]
			ok = w.Add(names[i], uf.attr.Ino, uf.attr.Mode, i+1)
		}
		if !ok {
			break
		}
	}
	return 0
}

var (
	_ ringfuse.Lookuper  = (*unitFS)(nil)
	_ ringfuse.Forgetter = (*unitFS)(nil)
	_ ringfuse.GetAttrer = (*unitFS)(nil)
	_ ringfuse.Reader    = (*unitFS)(nil)
	_ ringfuse.Writer    = (*unitFS)(nil)
	_ ringfuse.DirReader = (*unitFS)(nil)
)
