package server

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// Unit tests of the notification API against a recording device. The
// real-mount tests over both transports are in package session.

// recDevice records each notification written, as one message.
type recDevice struct {
	mu   sync.Mutex
	msgs [][]byte
	err  error         // returned instead of writing, when set
	sent chan struct{} // signaled after each write, if not nil
	buf  []byte        // reused by quiet (allocation tests)
	// quiet writes into buf only, so that writing allocates nothing.
	quiet bool
}

func (d *recDevice) Writev(bufs [][]byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return 0, d.err
	}
	n := 0
	if d.quiet {
		for _, b := range bufs {
			n += copy(d.buf[n:], b)
		}
		return n, nil
	}
	var m []byte
	for _, b := range bufs {
		m = append(m, b...)
	}
	d.msgs = append(d.msgs, m)
	if d.sent != nil {
		d.sent <- struct{}{}
	}
	return len(m), nil
}

// last returns the last message's header and body.
func (d *recDevice) last(t *testing.T) (wire.OutHeader, []byte) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.msgs) == 0 {
		t.Fatal("no notification written")
	}
	m := d.msgs[len(d.msgs)-1]
	h := *wire.View[wire.OutHeader](m)
	if int(h.Len) != len(m) || h.Unique != 0 {
		t.Fatalf("header %+v for a %d-byte message", h, len(m))
	}
	return h, m[wire.SizeofOutHeader:]
}

func (d *recDevice) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.msgs)
}

func TestNotifyBeforeInit(t *testing.T) {
	s := newServer(t, newUnitFS(), nil)
	s.SetNotifyDevice(&recDevice{})
	err := s.InvalInode(context.Background(), RootKey, 0, 0)
	if !errors.Is(err, ErrNotInitialized) || !errors.Is(err, syscall.ENOSYS) {
		t.Errorf("before INIT: %v, want ErrNotInitialized matching ENOSYS", err)
	}
}

func TestNotifyMessages(t *testing.T) {
	fs := newUnitFS()
	fs.add("a", 2, "data")
	fs.add("b", 3, "more")
	h := newHarness(t, fs, nil)
	dev := &recDevice{}
	h.srv.SetNotifyDevice(dev)
	ctx := context.Background()
	a := h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID
	keyA, keyB := ringfuse.InodeKey{Ino: 2}, ringfuse.InodeKey{Ino: 3}

	if err := h.srv.InvalInode(ctx, keyA, 10, 20); err != nil {
		t.Fatal(err)
	}
	hd, body := dev.last(t)
	if ii := wire.View[wire.NotifyInvalInodeOut](body); wire.NotifyCode(hd.Error) != wire.FUSE_NOTIFY_INVAL_INODE ||
		ii.Ino != a || ii.Off != 10 || ii.Len != 20 {
		t.Errorf("INVAL_INODE: code %d %+v, want node %d", hd.Error, *ii, a)
	}

	if err := h.srv.InvalEntry(ctx, RootKey, "a"); err != nil {
		t.Fatal(err)
	}
	hd, body = dev.last(t)
	if ie := wire.View[wire.NotifyInvalEntryOut](body); wire.NotifyCode(hd.Error) != wire.FUSE_NOTIFY_INVAL_ENTRY ||
		ie.Parent != wire.FUSE_ROOT_ID || string(body[wire.SizeofNotifyInvalEntryOut:]) != "a\x00" {
		t.Errorf("INVAL_ENTRY: code %d %+v %q", hd.Error, *ie, body[wire.SizeofNotifyInvalEntryOut:])
	}

	if err := h.srv.Delete(ctx, RootKey, keyA, "a"); err != nil {
		t.Fatal(err)
	}
	hd, body = dev.last(t)
	if de := wire.View[wire.NotifyDeleteOut](body); wire.NotifyCode(hd.Error) != wire.FUSE_NOTIFY_DELETE ||
		de.Parent != wire.FUSE_ROOT_ID || de.Child != a || string(body[wire.SizeofNotifyDeleteOut:]) != "a\x00" {
		t.Errorf("DELETE: code %d %+v", hd.Error, *de)
	}
	// b was never looked up: the kernel cannot hold it, so only the
	// name goes.
	if err := h.srv.Delete(ctx, RootKey, keyB, "b"); err != nil {
		t.Fatal(err)
	}
	if hd, _ = dev.last(t); wire.NotifyCode(hd.Error) != wire.FUSE_NOTIFY_INVAL_ENTRY {
		t.Errorf("DELETE of an unknown child: code %d, want INVAL_ENTRY", hd.Error)
	}

	if err := h.srv.Store(ctx, keyA, 4096, []byte("stored")); err != nil {
		t.Fatal(err)
	}
	hd, body = dev.last(t)
	if so := wire.View[wire.NotifyStoreOut](body); wire.NotifyCode(hd.Error) != wire.FUSE_NOTIFY_STORE ||
		so.NodeID != a || so.Offset != 4096 || so.Size != 6 || string(body[wire.SizeofNotifyStoreOut:]) != "stored" {
		t.Errorf("STORE: code %d %+v", hd.Error, *so)
	}

	n := dev.count()
	for what, err := range map[string]error{
		"InvalInode b": h.srv.InvalInode(ctx, keyB, 0, 0),
		"InvalEntry b": h.srv.InvalEntry(ctx, keyB, "x"),
		"Store b":      h.srv.Store(ctx, keyB, 0, nil),
	} {
		if !errors.Is(err, syscall.ENOENT) {
			t.Errorf("%s (never looked up): %v, want ENOENT", what, err)
		}
	}
	if dev.count() != n {
		t.Error("a notification for an unknown node was written")
	}
	// Once the kernel forgets a, it is unknown again.
	h.forget(a, 1)
	if err := h.srv.InvalInode(ctx, keyA, 0, 0); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("InvalInode after FORGET: %v, want ENOENT", err)
	}
}

func TestNotifyDeviceErrors(t *testing.T) {
	h := newHarness(t, newUnitFS(), nil)
	ctx := context.Background()
	if err := h.srv.InvalInode(ctx, RootKey, 0, 0); !errors.Is(err, ErrDisconnected) {
		t.Errorf("without a device: %v, want ErrDisconnected", err)
	}
	dev := &recDevice{err: syscall.ENOENT}
	h.srv.SetNotifyDevice(dev)
	if err := h.srv.InvalInode(ctx, RootKey, 0, 0); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("kernel ENOENT: %v", err)
	}
	dev.err = syscall.ENODEV
	if err := h.srv.InvalInode(ctx, RootKey, 0, 0); !errors.Is(err, ErrDisconnected) {
		t.Errorf("kernel ENODEV: %v, want ErrDisconnected", err)
	}
	dev.err = nil
	h.srv.Disconnect()
	if err := h.srv.InvalEntry(ctx, RootKey, "x"); !errors.Is(err, ErrDisconnected) {
		t.Errorf("after Disconnect: %v, want ErrDisconnected", err)
	}
	if dev.count() != 0 {
		t.Error("a notification was written after Disconnect")
	}
}

// retrieveOut waits for the RETRIEVE the device receives.
func retrieveOut(t *testing.T, dev *recDevice) wire.NotifyRetrieveOut {
	t.Helper()
	select {
	case <-dev.sent:
	case <-time.After(10 * time.Second):
		t.Fatal("no RETRIEVE written")
	}
	hd, body := dev.last(t)
	if wire.NotifyCode(hd.Error) != wire.FUSE_NOTIFY_RETRIEVE {
		t.Fatalf("code %d, want RETRIEVE", hd.Error)
	}
	return *wire.View[wire.NotifyRetrieveOut](body)
}

// notifyReplyMsg is the kernel's FUSE_NOTIFY_REPLY carrying data.
func notifyReplyMsg(unique, node, off uint64, size uint32, data []byte) []byte {
	in := wire.NotifyRetrieveIn{Offset: off, Size: size}
	return reqMsg(nil, wire.FUSE_NOTIFY_REPLY, unique, node, wire.AsBytes(&in), data)
}

func TestNotifyRetrieve(t *testing.T) {
	fs := newUnitFS()
	fs.add("a", 2, "data")
	h := newHarness(t, fs, nil)
	dev := &recDevice{sent: make(chan struct{}, 4)}
	h.srv.SetNotifyDevice(dev)
	a := h.mustLookup(wire.FUSE_ROOT_ID, "a").NodeID
	key := ringfuse.InodeKey{Ino: 2}

	type result struct {
		n   int
		err error
	}
	buf := make([]byte, 64)
	done := make(chan result, 1)
	go func() {
		n, err := h.srv.Retrieve(context.Background(), key, 100, buf)
		done <- result{n, err}
	}()
	ro := retrieveOut(t, dev)
	if ro.NodeID != a || ro.Offset != 100 || ro.Size != 64 || ro.NotifyUnique>>63 != 1 {
		t.Fatalf("RETRIEVE %+v", ro)
	}
	// A reply to nobody and a malformed one are dropped.
	for _, msg := range [][]byte{
		notifyReplyMsg(ro.NotifyUnique+1, a, 100, 3, []byte("xyz")),
		notifyReplyMsg(ro.NotifyUnique, a, 100, 9, []byte("xyz")),
	} {
		if rep := h.w.HandleDev(msg, h.out); !rep.None {
			t.Errorf("NOTIFY_REPLY answered: %+v", rep)
		}
	}
	select {
	case r := <-done:
		t.Fatalf("Retrieve returned %+v on a wrong reply", r)
	default:
	}
	if rep := h.w.HandleDev(notifyReplyMsg(ro.NotifyUnique, a, 100, 5, []byte("hello")), h.out); !rep.None || rep.Error != 0 {
		t.Errorf("NOTIFY_REPLY: %+v", rep)
	}
	if r := <-done; r.err != nil || string(buf[:r.n]) != "hello" {
		t.Errorf("Retrieve: %d bytes %q, %v", r.n, buf[:r.n], r.err)
	}
	if n := h.channel().DecodeErrors; n != 1 {
		t.Errorf("%d decode errors, want 1 (the malformed reply)", n)
	}

	// A Retrieve whose context ends gives up; a late reply is dropped.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.srv.Retrieve(ctx, key, 0, buf); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Retrieve without a reply: %v", err)
	}
	ro = retrieveOut(t, dev)
	h.w.HandleDev(notifyReplyMsg(ro.NotifyUnique, a, 0, 1, []byte("z")), h.out)

	// Disconnect ends a waiting Retrieve.
	go func() {
		n, err := h.srv.Retrieve(context.Background(), key, 0, buf)
		done <- result{n, err}
	}()
	retrieveOut(t, dev)
	h.srv.Disconnect()
	if r := <-done; !errors.Is(r.err, ErrDisconnected) {
		t.Errorf("Retrieve at Disconnect: %v, want ErrDisconnected", r.err)
	}
	h.srv.notify.retrMu.Lock()
	if n := len(h.srv.notify.retrieve); n != 0 {
		t.Errorf("%d retrievals left waiting", n)
	}
	h.srv.notify.retrMu.Unlock()
}

// The notifications a filesystem sends often cost no allocation.
func TestNotifyAllocs(t *testing.T) {
	fs := newUnitFS()
	fs.add("a", 2, "data")
	h := newHarness(t, fs, nil)
	dev := &recDevice{quiet: true, buf: make([]byte, 1<<16)}
	h.srv.SetNotifyDevice(dev)
	h.mustLookup(wire.FUSE_ROOT_ID, "a")
	ctx := context.Background()
	key := ringfuse.InodeKey{Ino: 2}
	data := bytes.Repeat([]byte{'s'}, 4096)
	for name, f := range map[string]func() error{
		"InvalInode": func() error { return h.srv.InvalInode(ctx, key, 0, 0) },
		"InvalEntry": func() error { return h.srv.InvalEntry(ctx, RootKey, "a") },
		"Delete":     func() error { return h.srv.Delete(ctx, RootKey, key, "a") },
		"Store":      func() error { return h.srv.Store(ctx, key, 0, data) },
	} {
		var err error
		if n := testing.AllocsPerRun(100, func() { err = f() }); n != 0 || err != nil {
			t.Errorf("%s: %v allocations, error %v", name, n, err)
		}
	}
}
