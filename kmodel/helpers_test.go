package kmodel_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/channel/devfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/kmodel"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// memFS is a small in-memory filesystem: one root directory of regular
// files, enough for lookups, reads, writes, creates, unlinks and listings.
type memFS struct {
	directIO bool // OPEN and CREATE answer FOPEN_DIRECT_IO

	mu       sync.Mutex
	root     *mnode
	nextIno  uint64
	forgets  atomic.Int64
	releases atomic.Int64 // RELEASE of files (and handles given back)
}

type mnode struct {
	ino      uint64
	dir      bool
	data     []byte
	children map[string]*mnode
}

var (
	_ ringfuse.Lookuper    = (*memFS)(nil)
	_ ringfuse.GetAttrer   = (*memFS)(nil)
	_ ringfuse.Opener      = (*memFS)(nil)
	_ ringfuse.Reader      = (*memFS)(nil)
	_ ringfuse.Writer      = (*memFS)(nil)
	_ ringfuse.Creater     = (*memFS)(nil)
	_ ringfuse.Unlinker    = (*memFS)(nil)
	_ ringfuse.DirReader   = (*memFS)(nil)
	_ ringfuse.Forgetter   = (*memFS)(nil)
	_ ringfuse.Flusher     = (*memFS)(nil)
	_ ringfuse.Releaser    = (*memFS)(nil)
	_ ringfuse.DirReleaser = (*memFS)(nil)
)

// newMemFS returns a filesystem with files named by names, each holding
// size bytes.
func newMemFS(size int, names ...string) *memFS {
	f := &memFS{root: &mnode{ino: 1, dir: true, children: map[string]*mnode{}}, nextIno: 1}
	for _, n := range names {
		f.nextIno++
		f.root.children[n] = &mnode{ino: f.nextIno, data: make([]byte, size)}
	}
	return f
}

func fileNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("f%05d", i)
	}
	return names
}

func (f *memFS) Root() ringfuse.Node { return f.root }

func (f *memFS) attr(n *mnode, a *wire.Attr) {
	a.Ino = n.ino
	a.Nlink = 1
	if n.dir {
		a.Mode = syscall.S_IFDIR | 0o755
		a.Nlink = 2
		return
	}
	a.Mode = syscall.S_IFREG | 0o644
	a.Size = uint64(len(n.data))
}

func (f *memFS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := parent.(*mnode).children[name]
	if n == nil {
		return syscall.ENOENT
	}
	out.Node = n
	f.attr(n, &out.Attr)
	return 0
}

func (f *memFS) Forget(ringfuse.Node) { f.forgets.Add(1) }

func (f *memFS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attr(n.(*mnode), &out.Attr)
	return 0
}

func (f *memFS) Open(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	out.Fh = n.(*mnode).ino
	if f.directIO {
		out.Flags = wire.FOPEN_DIRECT_IO
	}
	return 0
}

func (f *memFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := n.(*mnode).data
	if off >= int64(len(d)) {
		return 0, 0
	}
	return copy(buf, d[off:]), 0
}

func (f *memFS) Write(ctx context.Context, n ringfuse.Node, fh uint64, off int64, data []byte, flags uint32) (int, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := n.(*mnode)
	if end := int(off) + len(data); end > len(m.data) {
		m.data = append(m.data, make([]byte, end-len(m.data))...)
	}
	copy(m.data[off:], data)
	return len(data), 0
}

func (f *memFS) Create(ctx context.Context, parent ringfuse.Node, name string, flags, mode, umask uint32, out *ringfuse.Entry, open *ringfuse.OpenOut) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := parent.(*mnode)
	if !p.dir {
		return syscall.ENOTDIR // a file has no children map to add to
	}
	if p.children[name] != nil {
		return syscall.EEXIST
	}
	f.nextIno++
	n := &mnode{ino: f.nextIno}
	p.children[name] = n
	out.Node = n
	f.attr(n, &out.Attr)
	open.Fh = n.ino
	if f.directIO {
		open.Flags = wire.FOPEN_DIRECT_IO
	}
	return 0
}

func (f *memFS) Unlink(ctx context.Context, parent ringfuse.Node, name string) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := parent.(*mnode)
	if p.children[name] == nil {
		return syscall.ENOENT
	}
	delete(p.children, name)
	return 0
}

func (f *memFS) ReadDir(ctx context.Context, n ringfuse.Node, fh uint64, off uint64, w ringfuse.DirWriter) syscall.Errno {
	f.mu.Lock()
	d := n.(*mnode)
	names := make([]string, 0, len(d.children))
	for name := range d.children {
		names = append(names, name)
	}
	f.mu.Unlock()
	sort.Strings(names)
	all := append([]string{".", ".."}, names...)
	for i := int(off); i < len(all); i++ {
		name := all[i]
		f.mu.Lock()
		c := d.children[name]
		f.mu.Unlock()
		var ok bool
		switch {
		case c == nil:
			ok = w.Add(name, d.ino, syscall.S_IFDIR, uint64(i+1))
		case w.Plus():
			var e ringfuse.Entry
			e.Node = c
			f.mu.Lock()
			f.attr(c, &e.Attr)
			f.mu.Unlock()
			ok = w.AddEntry(name, &e, uint64(i+1))
		default:
			ok = w.Add(name, c.ino, syscall.S_IFREG, uint64(i+1))
		}
		if !ok {
			break
		}
	}
	return 0
}

func (f *memFS) Flush(ctx context.Context, n ringfuse.Node, fh uint64, lockOwner uint64) syscall.Errno {
	return 0
}
func (f *memFS) Release(ctx context.Context, n ringfuse.Node, fh uint64, flags uint32) {
	f.releases.Add(1)
}
func (f *memFS) ReleaseDir(ctx context.Context, n ringfuse.Node, fh uint64) {}

// logWriter sends a server's log to the test log and remembers panics.
type logWriter struct {
	t      testing.TB
	mu     sync.Mutex
	done   bool
	panics atomic.Int64
}

func (w *logWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "panic") {
		w.panics.Add(1)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// rig is the real server, /dev/fuse channel and (optionally) ring channel
// running against a model connection.
type rig struct {
	t     testing.TB
	m     *kmodel.Conn
	fs    *memFS
	srv   *server.Server
	ch    *ring.Channel // nil: /dev/fuse only
	log   *logWriter
	serve chan error // devfuse.Serve's result

	serveErr error
	served   bool
	stopOnce sync.Once
	baseline int
}

type rigOptions struct {
	model  kmodel.Config
	ring   *ring.Options // nil: serve over /dev/fuse alone
	server server.Options
	fs     *memFS
	// wrap, if set, wraps every QueueRing the model makes.
	wrap func(ring.QueueRing, ring.RingConfig) ring.QueueRing
	// dev, if set, wraps the model's /dev/fuse.
	dev func(devfuse.Device) devfuse.Device
}

// startRig starts a server for o.fs against a new model connection and
// waits for INIT (and the ring, if any). Cleanup unmounts, waits for every
// goroutine to end and fails the test on a leak or a handler panic.
func startRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	r := &rig{t: t, fs: o.fs, serve: make(chan error, 1), baseline: runtime.NumGoroutine()}
	if r.fs == nil {
		r.fs = newMemFS(4096, fileNames(64)...)
	}
	m, err := kmodel.New(o.model)
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	r.log = &logWriter{t: t}
	so := o.server
	so.ErrorLog = log.New(r.log, "server: ", 0)
	if o.ring != nil {
		ro := *o.ring
		ro.Host = m.Host() // as many queues as the model has
		ro.NewRing = func(cfg ring.RingConfig) (ring.QueueRing, error) {
			q, err := m.NewRing(cfg)
			if err != nil || o.wrap == nil {
				return q, err
			}
			return o.wrap(q, cfg), nil
		}
		r.ch = ring.New(-1, &ro)
		so.Transport = r.ch
	}
	r.srv = server.New(r.fs, &so)
	dev := m.Dev()
	if o.dev != nil {
		dev = o.dev(dev)
	}
	go func() { r.serve <- devfuse.Serve(r.srv, dev, &devfuse.Options{Readers: 2}) }()
	t.Cleanup(r.stop)
	select {
	case <-r.srv.Initialized():
	case <-time.After(10 * time.Second):
		t.Fatal("no INIT")
	}
	if r.ch != nil {
		select {
		case <-m.Ready():
		case <-time.After(10 * time.Second):
			t.Fatalf("ring not ready: %+v, channel %+v, err %v", m.Stats(), r.ch.Stats(), r.ch.Err())
		}
	}
	return r
}

// wait waits for devfuse.Serve to return and returns its result.
func (r *rig) wait() error {
	r.t.Helper()
	if !r.served {
		select {
		case r.serveErr = <-r.serve:
		case <-time.After(10 * time.Second):
			r.t.Fatal("devfuse.Serve did not return")
		}
		r.served = true
	}
	return r.serveErr
}

// stop unmounts and checks that everything ended.
func (r *rig) stop() {
	r.stopOnce.Do(func() {
		t := r.t
		r.m.Unmount()
		if err := r.wait(); err != nil && !errors.Is(err, devfuse.ErrAborted) {
			t.Errorf("devfuse.Serve: %v", err)
		}
		if r.ch != nil {
			r.ch.Stop()
		}
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > r.baseline && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > r.baseline {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines after stop, %d before:\n%s", n, r.baseline, buf[:runtime.Stack(buf, true)])
		}
		if p := r.log.panics.Load(); p > 0 {
			t.Errorf("%d handler panics logged", p)
		}
		r.log.mu.Lock()
		r.log.done = true
		r.log.mu.Unlock()
	})
}

// lookup looks name up in the root from cpu and returns the node ID.
func (r *rig) lookup(cpu int, name string) uint64 {
	r.t.Helper()
	rep, err := r.m.Do(cpu, kmodel.Lookup(wire.FUSE_ROOT_ID, name))
	if err != nil {
		r.t.Fatalf("lookup %q on CPU %d: %v", name, cpu, err)
	}
	return rep.Entry().NodeID
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkAccounting compares the server's node table with the model's
// record of what the server should hold.
func checkAccounting(t *testing.T, m *kmodel.Conn, srv *server.Server) {
	t.Helper()
	var live int64
	for _, id := range m.Nodes() {
		want := m.ServerLookups(id)
		if want > 0 {
			live++
		}
		if got := srv.Lookups(id); got != want {
			t.Errorf("node %d: server holds %d lookups, the kernel told it of %d", id, got, want)
		}
	}
	if got := srv.NodesAlive(); got != live {
		t.Errorf("server holds %d nodes, the model %d", got, live)
	}
}

// checkEndedAccounting is checkAccounting for a connection that has
// ended: the server also holds the lookups of ring replies whose commit
// came too late, which it cannot tell from replies the kernel took (it
// gives back those of commits refused in a way it can tell).
func checkEndedAccounting(t *testing.T, m *kmodel.Conn, srv *server.Server) {
	t.Helper()
	var live int64
	for _, id := range m.Nodes() {
		want := m.ServerLookups(id) + m.UnsettledLookups(id)
		if want > 0 {
			live++
		}
		if got := srv.Lookups(id); got != want {
			t.Errorf("node %d: server holds %d lookups, the kernel told it of %d and %d unsettled", id, got, m.ServerLookups(id), m.UnsettledLookups(id))
		}
	}
	if got := srv.NodesAlive(); got != live {
		t.Errorf("server holds %d nodes, the model %d", got, live)
	}
}

// waitForgets waits up to 10 s for every queued forget to drain.
func waitForgets(m *kmodel.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return m.WaitForgets(ctx) == nil
}
