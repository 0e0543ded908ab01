package server

import (
	"context"
	"errors"
	"math"
	"sync"
	"syscall"
	"unsafe"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// Notifications tell the kernel about changes it did not make: a file
// changed on the network, an entry appeared or vanished. They address
// inodes by the filesystem's [ringfuse.InodeKey], the key it gave in the
// Entry, and the server turns that into the kernel's node ID; a key the
// kernel holds no node for fails with syscall.ENOENT without a write, as
// the kernel would fail it. They are always written to /dev/fuse, also
// when requests come over io_uring.
//
// A notification waits in the kernel for locks that requests hold:
// INVAL_ENTRY and DELETE for the directory's inode lock, INVAL_INODE and
// STORE for the file's page locks. Sent synchronously from the handler of
// a request that holds that lock (INVAL_ENTRY of a directory from inside a
// LOOKUP in it, INVAL_INODE of a file from inside its READ), it would wait
// forever. Pass the request's context to a notification sent from inside
// an operation: the server then refuses such a notification with
// [ErrWouldDeadlock], and the filesystem can send it from another
// goroutine once the operation has returned.

// NotifyDevice is the device notifications are written to: the /dev/fuse
// descriptor (devfuse.FD). Writev must write the buffers as one message.
type NotifyDevice interface {
	Writev(bufs [][]byte) (int, error)
}

// RootKey names the root directory in notifications: the server does not
// know the key the filesystem has for its root.
var RootKey = ringfuse.InodeKey{Dev: math.MaxUint64, Ino: math.MaxUint64}

// Notification errors. A notification the kernel refuses returns the
// kernel's syscall.Errno (ENOENT when it holds no such inode or name,
// EINVAL for STORE or RETRIEVE on a node that is not a regular file).
var (
	// ErrNotInitialized: the kernel has not sent INIT yet. It matches
	// syscall.ENOSYS.
	ErrNotInitialized error = notInitialized{}
	// ErrDisconnected: the connection has ended (unmount or abort), or
	// the server was never given a device (SetNotifyDevice).
	ErrDisconnected = errors.New("server: notification on a connection that has ended")
	// ErrWouldDeadlock: the notification was sent with the context of a
	// request that holds a lock the notification needs; send it from
	// another goroutine after the request has returned.
	ErrWouldDeadlock = errors.New("server: notification would wait for a lock the calling request holds")
)

type notInitialized struct{}

func (notInitialized) Error() string        { return "server: notification before INIT" }
func (notInitialized) Is(target error) bool { return target == syscall.ENOSYS }

// notifier is the server's notification state, kept apart from the
// request path.
type notifier struct {
	// mu is held for reading across each write, and for writing while
	// the device changes, so that no write reaches a descriptor after
	// the session has closed it (its number could name another file).
	mu  sync.RWMutex
	dev NotifyDevice

	// Retrievals waiting for their NOTIFY_REPLY, by notify unique.
	retrMu   sync.Mutex
	retrieve map[uint64]*retrieval
	retrSeq  uint64
}

// retrieval is one Retrieve waiting for the kernel's data.
type retrieval struct {
	buf  []byte
	n    int
	done chan struct{}
}

// notifyMsg holds one notification's header and iovecs. Pooled, so that
// INVAL_INODE, INVAL_ENTRY, DELETE and STORE do not allocate.
type notifyMsg struct {
	head [wire.MaxNotifyHeader]byte
	bufs [3][]byte
}

var notifyPool = sync.Pool{New: func() any { return new(notifyMsg) }}

// nul ends the name of INVAL_ENTRY and DELETE.
var nul = []byte{0}

// SetNotifyDevice sets the device notifications are written to; nil stops
// them (ErrDisconnected). It waits for a notification being written, so
// that a session can close the descriptor once it returns.
func (s *Server) SetNotifyDevice(d NotifyDevice) {
	s.notify.mu.Lock()
	s.notify.dev = d
	s.notify.mu.Unlock()
}

// InvalInode tells the kernel that node key changed: it drops the cached
// attributes and, unless off is negative, the cached data from off for
// length bytes (to the end if length <= 0). The next stat or read asks the
// filesystem again. ctx is the request's context when called from inside
// an operation (see ErrWouldDeadlock), otherwise any context.
func (s *Server) InvalInode(ctx context.Context, key ringfuse.InodeKey, off, length int64) error {
	id, err := s.notifyTarget(ctx, key, false)
	if err != nil {
		return err
	}
	m := notifyPool.Get().(*notifyMsg)
	defer notifyPool.Put(m)
	n, err := wire.PutNotifyInvalInode(m.head[:], id, off, length)
	if err != nil {
		return err
	}
	m.bufs[0] = m.head[:n]
	return s.writeNotify(m.bufs[:1])
}

// InvalEntry tells the kernel that name in directory parent may have
// changed: it drops the cached entry (and a negative entry), so the next
// access looks it up again. ctx is as for InvalInode.
func (s *Server) InvalEntry(ctx context.Context, parent ringfuse.InodeKey, name string) error {
	return s.notifyName(ctx, parent, nil, name)
}

// Delete tells the kernel that name in directory parent, which named child,
// is gone: the kernel drops the entry and, if it still maps name to child,
// marks child unlinked (an empty directory child is also made dead, so
// processes inside it see it deleted). If the kernel holds no node for
// child, Delete is an InvalEntry. ctx is as for InvalInode.
func (s *Server) Delete(ctx context.Context, parent, child ringfuse.InodeKey, name string) error {
	return s.notifyName(ctx, parent, &child, name)
}

func (s *Server) notifyName(ctx context.Context, parent ringfuse.InodeKey, child *ringfuse.InodeKey, name string) error {
	if err := wire.CheckName(name); err != nil {
		return err
	}
	pid, err := s.notifyTarget(ctx, parent, false)
	if err != nil {
		return err
	}
	var cid uint64
	if child != nil {
		if id, ok := s.nodeID(*child); ok {
			if s.busyWith(ctx, id) {
				return ErrWouldDeadlock // a directory child is locked too
			}
			cid = id
		}
	}
	m := notifyPool.Get().(*notifyMsg)
	defer notifyPool.Put(m)
	var n int
	if child != nil && cid != 0 {
		n, err = wire.PutNotifyDelete(m.head[:], pid, cid, name)
	} else {
		n, err = wire.PutNotifyInvalEntry(m.head[:], pid, name, 0)
	}
	if err != nil {
		return err
	}
	// The name goes out of the string's own memory: writev only reads it.
	m.bufs[0], m.bufs[1], m.bufs[2] = m.head[:n], unsafe.Slice(unsafe.StringData(name), len(name)), nul
	return s.writeNotify(m.bufs[:3])
}

// Store puts data in the kernel's page cache of regular file key at off,
// extending the cached size if data ends beyond it, so that readers see it
// without a READ. The kernel fails it with EINVAL for a file that is not
// regular. ctx is as for InvalInode.
func (s *Server) Store(ctx context.Context, key ringfuse.InodeKey, off int64, data []byte) error {
	if off < 0 {
		return syscall.EINVAL
	}
	id, err := s.notifyTarget(ctx, key, false)
	if err != nil {
		return err
	}
	m := notifyPool.Get().(*notifyMsg)
	defer notifyPool.Put(m)
	n, err := wire.PutNotifyStore(m.head[:], id, uint64(off), len(data))
	if err != nil {
		return err
	}
	m.bufs[0], m.bufs[1] = m.head[:n], data
	return s.writeNotify(m.bufs[:2])
}

// Retrieve asks the kernel for the data of regular file key that it holds
// in its page cache from off, up to len(buf) bytes (and at most one
// max_write), and copies it into buf. The kernel sends back the cached
// pages it has from off on, stopping at the first page it lacks, so n
// may be anything from 0 to len(buf). It waits for the kernel's answer
// (a FUSE_NOTIFY_REPLY request) or for ctx, and must not be called with
// the context of a request (ErrWouldDeadlock): on io_uring the answer may
// come to the queue that request holds.
func (s *Server) Retrieve(ctx context.Context, key ringfuse.InodeKey, off int64, buf []byte) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	id, err := s.notifyTarget(ctx, key, true)
	if err != nil {
		return 0, err
	}
	r := &retrieval{buf: buf, done: make(chan struct{})}
	nt := &s.notify
	nt.retrMu.Lock()
	if nt.retrieve == nil {
		nt.retrieve = map[uint64]*retrieval{}
	}
	nt.retrSeq++
	// Bit 63 keeps notify uniques apart from the kernel's own, which
	// count up from zero, so a stray NOTIFY_REPLY cannot match one.
	unique := 1<<63 | nt.retrSeq
	nt.retrieve[unique] = r
	nt.retrMu.Unlock()
	defer func() {
		nt.retrMu.Lock()
		delete(nt.retrieve, unique)
		nt.retrMu.Unlock()
	}()
	var head [wire.MaxNotifyHeader]byte
	size := uint32(min(uint64(len(buf)), math.MaxUint32))
	n, err := wire.PutNotifyRetrieve(head[:], unique, id, uint64(off), size)
	if err != nil {
		return 0, err
	}
	if err := s.writeNotify([][]byte{head[:n]}); err != nil {
		return 0, err
	}
	select {
	case <-r.done:
		return r.n, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.nodes.ended:
		return 0, ErrDisconnected
	}
}

// doNotifyReply takes the kernel's answer to a RETRIEVE. It gets no reply.
func (w *Worker) doNotifyReply(out []byte) (int, syscall.Errno) {
	_, data, err := wire.ParseNotifyReply(&w.req)
	if err != nil {
		w.stats.decodeErrors.Add(1)
		w.s.log.Printf("%s: %v", w.channel, err)
		return 0, 0
	}
	nt := &w.s.notify
	nt.retrMu.Lock()
	r := nt.retrieve[w.req.Header.Unique]
	delete(nt.retrieve, w.req.Header.Unique)
	nt.retrMu.Unlock()
	if r == nil {
		// The Retrieve gave up (its context ended) before the answer.
		return 0, 0
	}
	r.n = copy(r.buf, data)
	close(r.done)
	return 0, 0
}

// notifyTarget resolves key to the kernel's node ID for a notification
// sent with ctx, and checks that it may be sent: after INIT, on a live
// connection, and not from a request that holds the node's lock (any
// request at all, for anyRequest).
func (s *Server) notifyTarget(ctx context.Context, key ringfuse.InodeKey, anyRequest bool) (uint64, error) {
	if s.conn.Load() == nil {
		return 0, ErrNotInitialized
	}
	if s.disconnected.Load() {
		return 0, ErrDisconnected
	}
	id, ok := s.nodeID(key)
	if !ok {
		return 0, syscall.ENOENT
	}
	if anyRequest {
		if s.requestWorker(ctx) != nil {
			return 0, ErrWouldDeadlock
		}
	} else if s.busyWith(ctx, id) {
		return 0, ErrWouldDeadlock
	}
	return id, nil
}

// writeNotify writes one notification and turns the kernel's refusal of
// a dead connection into ErrDisconnected.
func (s *Server) writeNotify(bufs [][]byte) error {
	nt := &s.notify
	nt.mu.RLock()
	defer nt.mu.RUnlock()
	if nt.dev == nil || s.disconnected.Load() {
		return ErrDisconnected
	}
	_, err := nt.dev.Writev(bufs)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EBADF), errors.Is(err, syscall.EPERM):
		// ENODEV and ECONNABORTED: unmounted or aborted; EPERM: the
		// descriptor is no longer attached to the connection.
		return ErrDisconnected
	}
	return err
}

// nodeID returns the kernel node ID the table holds for key.
func (s *Server) nodeID(key ringfuse.InodeKey) (uint64, bool) {
	if key == RootKey {
		return wire.FUSE_ROOT_ID, true
	}
	t := &s.nodes
	h := hashKey(key)
	si := int(h >> (64 - shardBits))
	sh := &t.shards[si]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	for p := sh.index.Find(uint32(h)); ; {
		slot, ok := p.Next()
		if !ok {
			return 0, false
		}
		if r := sh.recs.At(slot); r.key == key && r.lookups > 0 {
			return makeID(r.gen, slot, si), true
		}
	}
}

// requestWorker returns the worker whose request context ctx is, or nil.
func (s *Server) requestWorker(ctx context.Context) *Worker {
	if ctx == nil {
		return nil
	}
	// A filesystem may have wrapped the request's context (WithValue,
	// WithTimeout); Value finds the request's under them.
	c, ok := ctx.(*reqCtx)
	if !ok {
		c, ok = ctx.Value(reqCtxKey{}).(*reqCtx)
	}
	if !ok || c.unique.Load() == 0 {
		return nil
	}
	s.workersMu.Lock()
	defer s.workersMu.Unlock()
	for _, w := range s.workers {
		if &w.ctx == c {
			return w
		}
	}
	return nil
}

// busyWith reports whether ctx is the context of a request that holds a
// lock of node id: the request's own node (the directory of a LOOKUP,
// READDIR, CREATE or UNLINK, the file of a READ, WRITE or SETATTR) or its
// second one (the target directory of a RENAME, the inode of a LINK).
// The caller is that request's handler, so reading its request is safe.
func (s *Server) busyWith(ctx context.Context, id uint64) bool {
	w := s.requestWorker(ctx)
	if w == nil {
		return false
	}
	r := &w.req
	if r.Header.NodeID == id {
		return true
	}
	switch r.Header.Opcode {
	case wire.FUSE_RENAME, wire.FUSE_RENAME2:
		return wire.ArgAs[wire.RenameIn](r).Newdir == id
	case wire.FUSE_LINK:
		return wire.ArgAs[wire.LinkIn](r).Oldnodeid == id
	}
	return false
}
