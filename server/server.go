// Package server is the ringfuse server core: INIT negotiation, the
// dispatch table, reply encoding, INTERRUPT, the node table whose lookup
// counts FORGET decrements, and statistics.
//
// The core does not know which channel carried a request. A channel (the
// /dev/fuse reader, an io_uring queue, or the kernel model) owns one
// [Worker] per thread of service, hands it each message together with the
// buffer the reply goes into, and sends the reply back on its own path. A
// second channel plugs in as a [Transport], prepared during INIT and started
// once the INIT reply is out.
//
// The server also sends the kernel notifications for changes the kernel
// did not make ([Server.InvalInode], [Server.InvalEntry], [Server.Delete],
// [Server.Store], [Server.Retrieve]). They name inodes by the filesystem's
// [ringfuse.InodeKey] ([RootKey] for the root) and go to /dev/fuse on both
// transports. In the kernel they wait for the locks of the inodes they
// name, which a request being served may hold (a LOOKUP holds its
// directory's): one sent from inside an operation must carry that
// operation's context, and the server refuses it with [ErrWouldDeadlock]
// when it names a node the operation holds.
package server

import (
	"log"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/internal/offheap"
	"github.com/ringfuse/ringfuse/wire"
)

// Options configure a Server. The zero value is a sane default.
type Options struct {
	// EntryTimeout and AttrTimeout are how long the kernel may cache names
	// and attributes. Zero means one second, the kernel's own default; a
	// negative value means no caching.
	EntryTimeout, AttrTimeout time.Duration
	// MaxWrite is the largest WRITE (and READ) the kernel sends, in bytes.
	// Zero means 1 MiB. It is rounded down to whole pages.
	MaxWrite uint32
	// MaxBackground is the number of background requests (readahead,
	// asynchronous direct I/O) the kernel keeps in flight. Zero means 64.
	MaxBackground uint16
	// Passthrough lets the filesystem hand the kernel backing files, so
	// reads and writes bypass the server (FUSE_PASSTHROUGH). Off by
	// default, so that benchmarks measure the server path.
	Passthrough bool
	// PosixACL asks the kernel to enforce POSIX ACLs itself
	// (FUSE_POSIX_ACL), reading them with GETXATTR, for a filesystem that
	// implements ringfuse.Xattrer. The kernel then also turns on
	// default_permissions and leaves the caller's umask to the filesystem
	// (the umask argument of Mkdir, Mknod and Create). Without it, ACL
	// attributes pass through unread by the kernel, and a filesystem that
	// acts as the caller (package creds) enforces them on the backing
	// files.
	PosixACL bool
	// ApplyUmask leaves the caller's umask to the filesystem
	// (FUSE_DONT_MASK): the mode of MKDIR, MKNOD and CREATE arrives
	// unmasked, with the umask beside it, so that a filesystem can let a
	// directory's default ACL decide instead, as Linux does. PosixACL
	// implies it.
	ApplyUmask bool
	// Transport, if set, is a second channel started at INIT, such as the
	// io_uring queues.
	Transport Transport
	// ErrorLog receives problems the server survives, such as undecodable
	// messages. Nil means standard error.
	ErrorLog *log.Logger
	// Debug logs every request to ErrorLog.
	Debug bool
}

// Transport is a channel that starts at INIT next to /dev/fuse.
type Transport interface {
	// Prepare is called while INIT is being answered, before the reply is
	// sent. It sets up what must exist before the kernel sees the reply
	// and returns the INIT flags to add (such as FUSE_OVER_IO_URING; only
	// those the kernel offered are sent), or an error to serve over
	// /dev/fuse alone. The error is logged; it should say what is
	// missing.
	Prepare(s *Server, init *InitInfo) (flags uint64, err error)
	// Start is called once the INIT reply has been written, if Prepare
	// succeeded and the kernel offered every flag it returned.
	Start()
}

// InitInfo describes the negotiated connection.
type InitInfo struct {
	Minor        uint32 // agreed protocol minor
	KernelMinor  uint32 // the kernel's own minor
	KernelFlags  uint64 // what the kernel offered
	Flags        uint64 // what was agreed
	MaxWrite     uint32
	MaxPages     uint16
	MaxReadahead uint32
}

// Server serves one FUSE connection for a filesystem. Create it with New.
type Server struct {
	fs   ringfuse.FileSystem
	ops  ops
	opts Options
	log  *log.Logger

	entryTimeout, attrTimeout time.Duration
	maxWrite                  uint32

	nodes         nodeTable
	forgetUnknown atomic.Uint64
	peakLive      atomic.Int64
	disconnected  atomic.Bool // the connection has ended: see Disconnect
	noInoLogged   atomic.Bool // an entry without inode number was logged

	conn     atomic.Pointer[connState]
	initOnce sync.Once
	initDone chan struct{}

	workersMu sync.Mutex
	workers   []*Worker

	backingMu sync.Mutex
	// backing counts the passthrough opens of each open file (usually
	// one); byNode holds the backing file of each node with such opens.
	backing   map[backingKey]int
	byNode    map[uint64]*nodeBacking
	backingFn func(fd int) (int32, error)
	backingCl func(id int32) error

	notify notifier // notify.go
}

// connState is what INIT negotiated.
type connState struct {
	wire wire.Conn
	info InitInfo
	// transport: Options.Transport prepared for the connection, and
	// starts once the INIT reply is out.
	transport bool
}

// New returns a server for fsys. The filesystem's optional interfaces are
// looked up here, once.
func New(fsys ringfuse.FileSystem, opts *Options) *Server {
	s := &Server{fs: fsys, initDone: make(chan struct{})}
	if opts != nil {
		s.opts = *opts
	}
	s.log = s.opts.ErrorLog
	if s.log == nil {
		s.log = log.New(os.Stderr, "ringfuse: ", log.LstdFlags)
	}
	s.entryTimeout = timeout(s.opts.EntryTimeout)
	s.attrTimeout = timeout(s.opts.AttrTimeout)
	s.maxWrite = s.opts.MaxWrite
	if s.maxWrite == 0 {
		s.maxWrite = 1 << 20
	}
	s.maxWrite &^= uint32(pageSize - 1)
	s.maxWrite = max(s.maxWrite, uint32(pageSize))
	s.ops.resolve(fsys)
	s.nodes.init(fsys.Root(), s.ops.table)
	// The node table's memory is not the collector's: unmap it once
	// nothing can reach the server.
	runtime.AddCleanup(s, offheap.Owned.Close, s.nodes.memory())
	return s
}

func timeout(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return time.Second
	case d < 0:
		return 0
	}
	return d
}

// MaxWrite returns the largest WRITE payload the server negotiates; a
// channel sizes its buffers from it.
func (s *Server) MaxWrite() uint32 { return s.maxWrite }

// ReadBufferSize is the size of a /dev/fuse read buffer: the kernel refuses
// reads shorter than one maximal WRITE plus its headers.
func (s *Server) ReadBufferSize() int {
	return max(wire.FUSE_MIN_READ_BUFFER, wire.SizeofInHeader+wire.SizeofWriteIn+int(s.maxWrite)) + pageSize
}

// ReplyBufferSize is the size of a buffer that holds any reply payload.
func (s *Server) ReplyBufferSize() int { return int(s.maxWrite) + pageSize }

// Initialized returns a channel closed once INIT has been answered.
func (s *Server) Initialized() <-chan struct{} { return s.initDone }

// Init returns what INIT negotiated, or nil before INIT.
func (s *Server) Init() *InitInfo {
	if c := s.conn.Load(); c != nil {
		return &c.info
	}
	return nil
}

// Logf logs through the server's error log.
func (s *Server) Logf(format string, args ...any) { s.log.Printf(format, args...) }

// SetBacking installs the functions that register and unregister
// passthrough backing files (FUSE_DEV_IOC_BACKING_OPEN/CLOSE on the
// connection). Whoever opened the connection (session.Mount) calls it
// before serving; without it, no file is opened in passthrough mode.
func (s *Server) SetBacking(open func(fd int) (int32, error), close func(id int32) error) {
	s.backingMu.Lock()
	s.backingFn, s.backingCl = open, close
	s.backing = map[backingKey]int{}
	s.byNode = map[uint64]*nodeBacking{}
	s.backingMu.Unlock()
}

// NodesAlive returns the number of kernel nodes the server holds, not
// counting the root.
func (s *Server) NodesAlive() int64 { return s.nodes.live.Load() }

// Lookups returns the kernel's lookup count for node id as the server
// knows it (0 if the node is not live). Tests use it.
func (s *Server) Lookups(id uint64) uint64 { return s.nodes.lookups(id) }

// NewWorker returns a worker for one thread of service of channel, such as
// "devfuse" or "uring". A worker is not safe for concurrent use.
func (s *Server) NewWorker(channel string) *Worker {
	w := &Worker{s: s, channel: channel}
	w.dw.w = w
	s.workersMu.Lock()
	s.workers = append(s.workers, w)
	s.workersMu.Unlock()
	return w
}

// Disconnect tells the server that the connection has ended (unmount or
// abort): no reply can reach the kernel any more, so the context of every
// request being served, and of any served from now on, is canceled. A
// filesystem that waits on its context then returns, and the channels can
// end. Channels call it when they see the end; it is idempotent.
func (s *Server) Disconnect() {
	if s.disconnected.Swap(true) {
		return
	}
	s.nodes.end()
	s.workersMu.Lock()
	ws := s.workers
	s.workersMu.Unlock()
	for _, w := range ws {
		w.ctx.interrupt(w.ctx.unique.Load())
	}
}

// interrupt cancels the request unique wherever it is being served.
func (s *Server) interrupt(unique uint64) {
	s.workersMu.Lock()
	ws := s.workers
	s.workersMu.Unlock()
	for _, w := range ws {
		if w.ctx.interrupt(unique) {
			return
		}
	}
}

// forgetNode drops nlookup lookups of id and tells the filesystem when the
// node is gone.
func (s *Server) forgetNode(id, nlookup uint64) {
	fsNode, dropped, known := s.nodes.forget(id, nlookup)
	if !known {
		s.forgetUnknown.Add(1)
		return
	}
	if dropped && s.ops.forget != nil {
		s.ops.forget(fsNode)
	}
}

// refEntry counts one lookup of e's inode and returns its node ID. It
// gives back e.Node's reference when the table already had a node for the
// key and the filesystem counts references (NodeTable). On error the
// reference stays with the caller.
func (s *Server) refEntry(e *ringfuse.Entry) (uint64, error) {
	id, dup, err := s.nodes.ref(e)
	if err == errNoInode {
		if !s.noInoLogged.Swap(true) {
			s.log.Printf("%v (answering EIO; logged once)", err)
		}
	} else if err != nil {
		s.log.Printf("no kernel node for inode %d: %v", e.Attr.Ino, err)
	}
	if dup && s.ops.table != nil {
		s.ops.forget(e.Node)
	}
	return id, err
}

// maybeCompact shrinks the node maps after a storm of forgets.
func (s *Server) maybeCompact() {
	live := s.nodes.live.Load()
	peak := s.peakLive.Load()
	if live > peak {
		s.peakLive.Store(live)
		return
	}
	if peak >= 4096 && live < peak/16 {
		if s.peakLive.CompareAndSwap(peak, live) {
			s.nodes.compact()
		}
	}
}
