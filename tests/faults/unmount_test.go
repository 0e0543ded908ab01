package faults

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/session"
)

// heldFS is the passthrough filesystem with every READ held in the server
// until the test releases it (or the request is interrupted): a request
// in flight for as long as the test wants.
type heldFS struct {
	*passthrough.FS
	entered  chan struct{} // receives a value when a READ starts waiting
	release  chan struct{} // closed to let the READs go on
	canceled atomic.Bool   // a held READ saw its context cancelled
}

func (f *heldFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	select {
	case f.entered <- struct{}{}:
	default:
	}
	select {
	case <-f.release:
	case <-ctx.Done():
		f.canceled.Store(true)
		return 0, syscall.EINTR
	}
	return f.FS.Read(ctx, n, fh, off, buf)
}

// unmountBound bounds Session.Unmount when a handler does not return by
// itself: the session waits up to 5 s for the server after unmounting and
// 5 s more after aborting; a few seconds of margin on top.
const unmountBound = 15 * time.Second

// heldReadSize is what the client of a held READ reads.
const heldReadSize = 4096

// readResult is what the client of a held READ got.
type readResult struct {
	n   int
	err error
	buf []byte
}

// mountHeld serves a backing directory holding dataName through heldFS.
// The release channel is closed at cleanup at the latest, before the
// unmount, so that no handler outlives the test.
func mountHeld(t *testing.T, tr string) (*session.Session, *heldFS) {
	t.Helper()
	src := t.TempDir()
	makeData(t, src)
	pfs, err := passthrough.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &heldFS{FS: pfs, entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := mountInProcess(t, tr, f, func() { pfs.Close() }, noCache)
	t.Cleanup(func() {
		select {
		case <-f.release:
		default:
			close(f.release)
		}
	})
	return s, f
}

// startHeldRead opens dataName in dir and reads from it on its own
// goroutine; the READ is held in the server. The result arrives on the
// returned channel once the read returns and the file is closed.
func startHeldRead(t *testing.T, dir string, f *heldFS) <-chan readResult {
	t.Helper()
	res := make(chan readResult, 1)
	go func() {
		fd, err := unix.Open(filepath.Join(dir, dataName), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			res <- readResult{err: err}
			return
		}
		buf := make([]byte, heldReadSize)
		n, err := unix.Pread(fd, buf, 0)
		unix.Close(fd)
		res <- readResult{n, err, buf}
	}()
	select {
	case <-f.entered:
	case r := <-res:
		t.Fatalf("read returned before reaching the server: %d, %v", r.n, r.err)
	case <-timeAfterOp():
		t.Fatal("READ never reached the server")
	}
	return res
}

// TestUnmountInFlight unmounts while requests are in flight, over each
// transport:
//
//   - lazy-held-read: a lazy unmount (MNT_DETACH) while a READ is held in
//     the server returns at once; the read then completes normally with
//     the right data, and the session ends, without error, when the
//     client closes the last file of the detached mount.
//   - plain-held-read: a plain unmount is refused with EBUSY (the reader
//     has the file open); Session.Unmount then aborts the connection, the
//     reader fails at once although the server still holds its READ, and
//     once the handler returns the session ends.
//   - plain-held-forever: as plain-held-read, but the handler is never
//     released: it returns only when its request's context is cancelled
//     (as the API promises for INTERRUPT). Session.Unmount must still
//     return, so the server has to cancel the requests in flight once the
//     connection is gone.
//   - plain-load, lazy-load: the same with writers, readers, statters and
//     creators working through a descriptor of the mount root. A plain
//     unmount makes them fail with ENOTCONN or ECONNABORTED; a lazy one
//     lets them go on (the detached mount still serves them), and the
//     session ends once they close their descriptors.
func TestUnmountInFlight(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr+"/lazy-held-read", func(t *testing.T) {
			s, f := mountHeld(t, tr)
			res := startHeldRead(t, s.Dir(), f)
			if err := within(t, opTimeout, "lazy unmount", func() error { return mount.UnmountLazy(s.Dir()) }); err != nil {
				t.Fatalf("lazy unmount: %v", err)
			}
			checkUnmounted(t, s.Dir())
			select {
			case <-s.Done():
				t.Fatal("session ended while a file of the detached mount is open")
			default:
			}
			close(f.release)
			r := receive(t, res, "held read after the lazy unmount")
			if r.err != nil || r.n != heldReadSize || !bytes.Equal(r.buf, bytes.Repeat([]byte("d"), heldReadSize)) {
				t.Errorf("held read after the lazy unmount: %d bytes, %v; want %d bytes of data", r.n, r.err, heldReadSize)
			}
			waitClosed(t, s.Done(), opTimeout, "session after the last file of the detached mount was closed")
			if err := s.Err(); err != nil {
				t.Errorf("session after a lazy unmount: %v, want nil", err)
			}
		})
		t.Run(tr+"/plain-held-read", func(t *testing.T) {
			s, f := mountHeld(t, tr)
			res := startHeldRead(t, s.Dir(), f)
			err := within(t, opTimeout, "plain unmount", func() error { return mount.Unmount(s.Dir()) })
			if !errors.Is(err, mount.ErrBusy) {
				t.Fatalf("plain unmount with a file open: %v, want %v", err, mount.ErrBusy)
			}
			uerr := make(chan error, 1)
			go func() { uerr <- unmountSession(s) }()
			r := receive(t, res, "held read after Session.Unmount")
			if !isConnGone(errnoOf(r.err)) {
				t.Errorf("held read after Session.Unmount: %d bytes, %v; want ENOTCONN or ECONNABORTED", r.n, r.err)
			}
			t.Logf("held read after Session.Unmount: %v; handler context cancelled: %v", r.err, f.canceled.Load())
			close(f.release)
			if err := receive(t, uerr, "Session.Unmount"); !errors.Is(err, mount.ErrBusy) {
				t.Errorf("Session.Unmount: %v, want an error saying the mount was busy and was forced", err)
			}
			waitClosed(t, s.Done(), opTimeout, "session after Session.Unmount")
			checkUnmounted(t, s.Dir())
		})
		t.Run(tr+"/plain-held-forever", func(t *testing.T) {
			s, f := mountHeld(t, tr)
			res := startHeldRead(t, s.Dir(), f)
			uerr := make(chan error, 1)
			go func() { uerr <- unmountSession(s) }()
			if r := receive(t, res, "held read after Session.Unmount"); !isConnGone(errnoOf(r.err)) {
				t.Errorf("held read after Session.Unmount: %d bytes, %v; want ENOTCONN or ECONNABORTED", r.n, r.err)
			}
			select {
			case <-uerr:
			case <-time.After(unmountBound):
				t.Errorf("Session.Unmount still blocked %v after the connection was aborted, because a READ handler waits on its request's context: the server does not cancel the requests in flight when the connection ends", unmountBound)
				close(f.release)
				receive(t, uerr, "Session.Unmount after the handler was released")
			}
			waitClosed(t, s.Done(), opTimeout, "session after Session.Unmount")
			checkUnmounted(t, s.Dir())
		})
		t.Run(tr+"/plain-load", func(t *testing.T) {
			s := mountLoaded(t, tr)
			root := openDir(t, s.Dir())
			l := startLoad(t, s.Dir(), root.fd)
			l.waitBusy(t)
			err := within(t, opTimeout, "Session.Unmount under load", func() error { return unmountSession(s) })
			if err != nil && !errors.Is(err, mount.ErrBusy) {
				t.Errorf("Session.Unmount under load: %v", err)
			}
			checkConnErrs(t, l.waitFailed(t))
			root.Close()
			waitClosed(t, s.Done(), opTimeout, "session after Session.Unmount")
			checkUnmounted(t, s.Dir())
		})
		t.Run(tr+"/lazy-load", func(t *testing.T) {
			s := mountLoaded(t, tr)
			root := openDir(t, s.Dir())
			l := startLoad(t, s.Dir(), root.fd)
			l.waitBusy(t)
			if err := within(t, opTimeout, "lazy unmount under load", func() error { return mount.UnmountLazy(s.Dir()) }); err != nil {
				t.Fatalf("lazy unmount under load: %v", err)
			}
			checkUnmounted(t, s.Dir())
			before := l.totalOps()
			for l.totalOps() < before+minLoadOps*int64(len(clientKinds)) {
				if errs := l.firstErrs(); len(errs) > 0 {
					t.Fatalf("clients of the detached mount failed: %v", errs)
				}
				select {
				case <-timeAfterOp():
					t.Fatal("clients of the detached mount made no progress")
				default:
				}
			}
			if errs := l.halt(t); len(errs) > 0 {
				t.Errorf("clients of the detached mount failed: %v", errs)
			}
			select {
			case <-s.Done():
				t.Fatal("session ended while the detached mount was in use")
			default:
			}
			root.Close()
			waitClosed(t, s.Done(), opTimeout, "session after the last user of the detached mount left")
			if err := s.Err(); err != nil {
				t.Errorf("session after a lazy unmount: %v, want nil", err)
			}
		})
	}
}

// mountLoaded serves a backing directory holding dataName through the
// passthrough filesystem, for the load.
func mountLoaded(t *testing.T, tr string) *session.Session {
	t.Helper()
	src := t.TempDir()
	makeData(t, src)
	fsys, err := passthrough.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mountInProcess(t, tr, fsys, func() { fsys.Close() }, noCache)
}

// receive waits up to opTimeout for a value on c.
func receive[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-timeAfterOp():
		t.Fatalf("%s: still blocked after %v (hung)", what, opTimeout)
		panic("unreachable")
	}
}
