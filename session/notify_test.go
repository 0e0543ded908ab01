package session_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// Notifications on real mounts, over each transport. The filesystem lets
// the kernel cache names and attributes for an hour and keeps the page
// cache across opens, so a change made behind the kernel's back stays
// invisible until a notification makes it visible: each test first checks
// that the kernel still shows the old state, then notifies and checks
// that the new state shows at once.

// nfile is one inode of notifyFS.
type nfile struct {
	ino   uint64
	data  []byte
	nlink uint32
}

// notifyFS is a root directory of files that a test changes behind the
// kernel's back.
type notifyFS struct {
	mu    sync.Mutex
	names map[string]*nfile
	reads atomic.Int64 // READ requests served
	// onLookup, when set, runs inside LOOKUP, with the request's context
	// (under mu).
	onLookup func(ctx context.Context, name string)
}

var (
	_ ringfuse.FileSystem = (*notifyFS)(nil)
	_ ringfuse.Lookuper   = (*notifyFS)(nil)
	_ ringfuse.GetAttrer  = (*notifyFS)(nil)
	_ ringfuse.Opener     = (*notifyFS)(nil)
	_ ringfuse.Reader     = (*notifyFS)(nil)
)

func newNotifyFS() *notifyFS { return &notifyFS{names: map[string]*nfile{}} }

// set makes name the file ino holding data, and returns its key.
func (f *notifyFS) set(name string, ino uint64, data string) ringfuse.InodeKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names[name] = &nfile{ino: ino, data: []byte(data), nlink: 1}
	return ringfuse.InodeKey{Ino: ino}
}

// rewrite changes the content of the file name.
func (f *notifyFS) rewrite(name, data string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names[name].data = []byte(data)
}

// remove unlinks name.
func (f *notifyFS) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names[name].nlink = 0
	delete(f.names, name)
}

func (f *notifyFS) Root() ringfuse.Node { return (*nfile)(nil) }

func (f *notifyFS) attr(n *nfile, a *wire.Attr) {
	if n == nil {
		*a = wire.Attr{Ino: 1, Mode: syscall.S_IFDIR | 0o755, Nlink: 2}
		return
	}
	*a = wire.Attr{Ino: n.ino, Mode: syscall.S_IFREG | 0o644, Nlink: n.nlink, Size: uint64(len(n.data))}
}

func (f *notifyFS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	f.mu.Lock()
	hook := f.onLookup
	f.mu.Unlock()
	if hook != nil {
		hook(ctx, name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.names[name]
	if n == nil || parent.(*nfile) != nil {
		return syscall.ENOENT
	}
	out.Node = n
	f.attr(n, &out.Attr)
	return 0
}

func (f *notifyFS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attr(n.(*nfile), &out.Attr)
	return 0
}

func (f *notifyFS) Open(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	out.Flags = wire.FOPEN_KEEP_CACHE // the page cache survives opens
	return 0
}

func (f *notifyFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	d := n.(*nfile).data
	if off >= int64(len(d)) {
		return 0, 0
	}
	return copy(buf, d[off:]), 0
}

// mountNotify mounts fsys over tr with hour-long cache timeouts.
func mountNotify(t *testing.T, tr string, fsys *notifyFS) (*server.Server, string) {
	t.Helper()
	if tr == "uring" {
		testmount.LockUringParam(t, false)
	}
	s := testmount.Mount(t, fsys, testmount.Options{Transport: tr,
		Server: server.Options{EntryTimeout: time.Hour, AttrTimeout: time.Hour}})
	return s.Server(), s.Dir()
}

// readFile reads a whole file with raw system calls.
func readFile(t *testing.T, path string) string {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1<<16)
	n, err := unix.Read(fd, buf)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(buf[:n])
}

func statIno(t *testing.T, path string) (uint64, error) {
	t.Helper()
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	return st.Ino, err
}

// within runs a notification with a hang guard: one that blocks forever
// in the kernel would otherwise hang the whole test binary.
func within[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	return testmount.Within(t, 30*time.Second, what, nil, f)
}

func TestNotifyInvalInode(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys := newNotifyFS()
			key := fsys.set("f", 10, "one")
			srv, dir := mountNotify(t, tr, fsys)
			path := filepath.Join(dir, "f")
			if got := readFile(t, path); got != "one" {
				t.Fatalf("read %q, want one", got)
			}
			fsys.rewrite("f", "two!")
			if got := readFile(t, path); got != "one" {
				t.Fatalf("before the notification: read %q; the kernel did not cache, so this test proves nothing", got)
			}
			if err := within(t, "InvalInode", func() error { return srv.InvalInode(context.Background(), key, 0, 0) }); err != nil {
				t.Fatalf("InvalInode: %v", err)
			}
			if got := readFile(t, path); got != "two!" {
				t.Errorf("after INVAL_INODE: read %q, want two!", got)
			}
		})
	}
}

func TestNotifyInvalEntry(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys := newNotifyFS()
			fsys.set("e", 20, "x")
			srv, dir := mountNotify(t, tr, fsys)
			path := filepath.Join(dir, "e")
			if ino, err := statIno(t, path); err != nil || ino != 20 {
				t.Fatalf("stat: ino %d, %v; want 20", ino, err)
			}
			fsys.set("e", 21, "yy") // the name now names another inode
			if ino, _ := statIno(t, path); ino != 20 {
				t.Fatalf("before the notification: ino %d; the kernel did not cache, so this test proves nothing", ino)
			}
			if err := within(t, "InvalEntry", func() error { return srv.InvalEntry(context.Background(), server.RootKey, "e") }); err != nil {
				t.Fatalf("InvalEntry: %v", err)
			}
			if ino, err := statIno(t, path); err != nil || ino != 21 {
				t.Errorf("after INVAL_ENTRY: ino %d, %v; want 21", ino, err)
			}
		})
	}
}

func TestNotifyDelete(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys := newNotifyFS()
			key := fsys.set("d", 30, "gone soon")
			srv, dir := mountNotify(t, tr, fsys)
			path := filepath.Join(dir, "d")
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			fsys.remove("d")
			if _, err := statIno(t, path); err != nil {
				t.Fatalf("before the notification: stat: %v; the kernel did not cache, so this test proves nothing", err)
			}
			if err := within(t, "Delete", func() error { return srv.Delete(context.Background(), server.RootKey, key, "d") }); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := statIno(t, path); !errors.Is(err, unix.ENOENT) {
				t.Errorf("after DELETE: stat: %v, want ENOENT", err)
			}
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil || st.Nlink != 0 {
				t.Errorf("after DELETE: fstat of the open file: nlink %d, %v; want 0", st.Nlink, err)
			}
		})
	}
}

func TestNotifyStore(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys := newNotifyFS()
			key := fsys.set("s", 40, "aaaa")
			srv, dir := mountNotify(t, tr, fsys)
			path := filepath.Join(dir, "s")
			if got := readFile(t, path); got != "aaaa" {
				t.Fatalf("read %q, want aaaa", got)
			}
			reads := fsys.reads.Load()
			if got := readFile(t, path); got != "aaaa" || fsys.reads.Load() != reads {
				t.Fatalf("second read %q with %d READs; the kernel did not cache, so this test proves nothing", got, fsys.reads.Load()-reads)
			}
			fsys.rewrite("s", "bbbbbbbb")
			if err := within(t, "Store", func() error { return srv.Store(context.Background(), key, 0, []byte("bbbbbbbb")) }); err != nil {
				t.Fatalf("Store: %v", err)
			}
			if got := readFile(t, path); got != "bbbbbbbb" {
				t.Errorf("after STORE: read %q, want bbbbbbbb", got)
			}
			if n := fsys.reads.Load() - reads; n != 0 {
				t.Errorf("after STORE: %d READ requests, want 0 (served from the stored pages)", n)
			}
			// A directory has no page cache: the kernel refuses.
			if err := srv.Store(context.Background(), server.RootKey, 0, []byte("x")); !errors.Is(err, syscall.EINVAL) {
				t.Errorf("Store on the root: %v, want EINVAL", err)
			}
		})
	}
}

func TestNotifyRetrieve(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys := newNotifyFS()
			content := strings.Repeat("retrieve me ", 500) // 6000 bytes: two pages
			key := fsys.set("r", 50, content)
			srv, dir := mountNotify(t, tr, fsys)
			if got := readFile(t, filepath.Join(dir, "r")); got != content {
				t.Fatalf("read %d bytes, want %d", len(got), len(content))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			buf := make([]byte, 8192)
			n, err := srv.Retrieve(ctx, key, 100, buf)
			if err != nil {
				t.Fatalf("Retrieve: %v", err)
			}
			if !bytes.Equal(buf[:n], []byte(content[100:])) {
				t.Errorf("Retrieve from 100: %d bytes %.20q..., want %d bytes %.20q...", n, buf[:n], len(content)-100, content[100:])
			}
			// Beyond the end of the file, the kernel sends nothing.
			if n, err := srv.Retrieve(ctx, key, 1<<20, buf); err != nil || n != 0 {
				t.Errorf("Retrieve beyond the end: %d bytes, %v; want 0, nil", n, err)
			}
			// Each RETRIEVE got one NOTIFY_REPLY. Linux 6.18 queues it
			// like any request: on the ring, once the ring is ready.
			var replies uint64
			for ch, cs := range srv.Stats().Channels {
				if c := cs.Requests["NOTIFY_REPLY"]; c > 0 {
					t.Logf("%d NOTIFY_REPLY on channel %s", c, ch)
					replies += c
				}
			}
			if replies != 2 {
				t.Errorf("%d NOTIFY_REPLY requests, want 2", replies)
			}
			if _, err := srv.Retrieve(ctx, server.RootKey, 0, buf); !errors.Is(err, syscall.EINVAL) {
				t.Errorf("Retrieve on the root: %v, want EINVAL", err)
			}
		})
	}
}

// TestNotifyErrors: what each notification returns for an unknown node,
// bad arguments, from inside a request that holds the lock it needs, and
// after the unmount.
func TestNotifyErrors(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys := newNotifyFS()
			key := fsys.set("f", 60, "data")
			other := fsys.set("other", 61, "more")
			if tr == "uring" {
				testmount.LockUringParam(t, false)
			}
			s := testmount.Mount(t, fsys, testmount.Options{Transport: tr,
				Server: server.Options{EntryTimeout: time.Hour, AttrTimeout: time.Hour}})
			srv, dir := s.Server(), s.Dir()
			ctx := context.Background()
			for _, name := range []string{"f", "other"} {
				if _, err := statIno(t, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, 16)
			each := func(k ringfuse.InodeKey) map[string]error {
				_, rerr := srv.Retrieve(ctx, k, 0, buf)
				return map[string]error{
					"InvalInode": srv.InvalInode(ctx, k, 0, 0),
					"InvalEntry": srv.InvalEntry(ctx, k, "x"),
					"Delete":     srv.Delete(ctx, k, key, "x"),
					"Store":      srv.Store(ctx, k, 0, []byte("x")),
					"Retrieve":   rerr,
				}
			}
			for op, err := range each(ringfuse.InodeKey{Ino: 999}) {
				if !errors.Is(err, syscall.ENOENT) {
					t.Errorf("%s of an unknown node: %v, want ENOENT", op, err)
				}
			}
			for name, want := range map[string]error{"": wire.ErrBadName, "a/b": wire.ErrBadName,
				"a\x00b": wire.ErrBadName, strings.Repeat("n", wire.FUSE_NAME_MAX+1): wire.ErrNameTooLong} {
				if err := srv.InvalEntry(ctx, server.RootKey, name); !errors.Is(err, want) {
					t.Errorf("InvalEntry %.10q: %v, want %v", name, err, want)
				}
				if err := srv.Delete(ctx, server.RootKey, key, name); !errors.Is(err, want) {
					t.Errorf("Delete %.10q: %v, want %v", name, err, want)
				}
			}
			// The kernel's own refusals come back as its errno.
			if err := srv.InvalEntry(ctx, key, "x"); !errors.Is(err, syscall.ENOTDIR) {
				t.Errorf("InvalEntry in a regular file: %v, want ENOTDIR", err)
			}
			if err := srv.Store(ctx, key, -1, []byte("x")); !errors.Is(err, syscall.EINVAL) {
				t.Errorf("Store at -1: %v, want EINVAL", err)
			}
			if _, err := srv.Retrieve(ctx, key, -1, buf); !errors.Is(err, syscall.EINVAL) {
				t.Errorf("Retrieve at -1: %v, want EINVAL", err)
			}

			// From inside LOOKUP in the root: INVAL_ENTRY of the root
			// would wait for the root's lock the LOOKUP holds, and
			// RETRIEVE for an answer the request may block; other
			// nodes are fine.
			results := make(chan map[string]error, 1)
			fsys.mu.Lock()
			fsys.onLookup = func(rctx context.Context, name string) {
				if name != "probe" {
					return
				}
				wrapped, cancel := context.WithCancel(rctx)
				defer cancel()
				_, rerr := srv.Retrieve(wrapped, other, 0, buf)
				results <- map[string]error{
					"InvalEntry root":        srv.InvalEntry(rctx, server.RootKey, "f"),
					"Delete root":            srv.Delete(wrapped, server.RootKey, other, "other"),
					"Retrieve":               rerr,
					"InvalInode other":       srv.InvalInode(rctx, other, 0, 0),
					"InvalInode root, plain": srv.InvalInode(rctx, server.RootKey, -1, 0),
				}
			}
			fsys.mu.Unlock()
			if _, err := statIno(t, filepath.Join(dir, "probe")); !errors.Is(err, unix.ENOENT) {
				t.Errorf("stat probe: %v, want ENOENT", err)
			}
			var inside map[string]error
			select {
			case inside = <-results:
			default:
				t.Fatal("LOOKUP of probe never reached the filesystem")
			}
			for op, want := range map[string]error{"InvalEntry root": server.ErrWouldDeadlock,
				"Delete root": server.ErrWouldDeadlock, "Retrieve": server.ErrWouldDeadlock,
				"InvalInode other": nil} {
				if err := inside[op]; !errors.Is(err, want) {
					t.Errorf("inside LOOKUP: %s: %v, want %v", op, err, want)
				}
			}
			// The root is the LOOKUP's node: refused even for attributes.
			if err := inside["InvalInode root, plain"]; !errors.Is(err, server.ErrWouldDeadlock) {
				t.Errorf("inside LOOKUP: InvalInode of the root: %v, want ErrWouldDeadlock", err)
			}

			if err := s.Unmount(); err != nil {
				t.Fatal(err)
			}
			for op, err := range each(key) {
				if !errors.Is(err, server.ErrDisconnected) {
					t.Errorf("%s after unmount: %v, want ErrDisconnected", op, err)
				}
			}
		})
	}
}

// TestNotifyAfterOperation: the way to notify about the directory an
// operation holds is from another goroutine, which the kernel lets through
// once the operation has returned.
func TestNotifyAfterOperation(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys := newNotifyFS()
			fsys.set("e", 70, "x")
			srv, dir := mountNotify(t, tr, fsys)
			path := filepath.Join(dir, "e")
			if ino, err := statIno(t, path); err != nil || ino != 70 {
				t.Fatalf("stat: ino %d, %v", ino, err)
			}
			fsys.set("e", 71, "y")
			sent := make(chan error, 1)
			fsys.mu.Lock()
			fsys.onLookup = func(ctx context.Context, name string) {
				if name == "probe" {
					go func() { sent <- srv.InvalEntry(context.Background(), server.RootKey, "e") }()
				}
			}
			fsys.mu.Unlock()
			statIno(t, filepath.Join(dir, "probe"))
			if err := within(t, "InvalEntry after the LOOKUP", func() error { return <-sent }); err != nil {
				t.Fatalf("InvalEntry: %v", err)
			}
			if ino, err := statIno(t, path); err != nil || ino != 71 {
				t.Errorf("after INVAL_ENTRY: ino %d, %v; want 71", ino, err)
			}
		})
	}
}

// TestNotifyConcurrent sends notifications from several goroutines while a
// client reads: none may fail, and the client always sees whole contents.
func TestNotifyConcurrent(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys := newNotifyFS()
			key := fsys.set("c", 80, "0000")
			srv, dir := mountNotify(t, tr, fsys)
			path := filepath.Join(dir, "c")
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := context.Background()
					for i := range 200 {
						var err error
						switch (g + i) % 3 {
						case 0:
							err = srv.Store(ctx, key, 0, []byte("1111"))
						case 1:
							err = srv.InvalInode(ctx, key, 0, 0)
						case 2:
							err = srv.InvalEntry(ctx, server.RootKey, "c")
						}
						// The kernel may forget c between reads.
						if err != nil && !errors.Is(err, syscall.ENOENT) {
							errs <- err
							return
						}
					}
				}()
			}
			fsys.rewrite("c", "1111")
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			for reading := true; reading; {
				select {
				case <-done:
					reading = false
				default:
				}
				if got := readFile(t, path); got != "0000" && got != "1111" {
					t.Fatalf("read %q", got)
				}
			}
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
