package kmodel_test

// Unit tests of the model's /dev/fuse side, with the test playing the
// server by hand: read(2) and writev(2) on Conn.Dev().

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/kmodel"
	"github.com/ringfuse/ringfuse/wire"
)

// manual is a model connection served by the test itself.
type manual struct {
	t   *testing.T
	m   *kmodel.Conn
	buf []byte
}

// newManual makes a connection and answers INIT with maxWrite and the
// given extra flags (FUSE_OVER_IO_URING to take the ring).
func newManual(t *testing.T, cfg kmodel.Config, maxWrite uint32, flags uint64) *manual {
	t.Helper()
	m, err := kmodel.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Unmount)
	mc := &manual{t: t, m: m, buf: make([]byte, 4<<20)}
	msg := mc.read()
	h := wire.View[wire.InHeader](msg)
	if h.Opcode != wire.FUSE_INIT || h.Len != 104 || h.Unique != 2 {
		t.Fatalf("first message: %+v", *h)
	}
	in := wire.View[wire.InitIn](msg[wire.SizeofInHeader:])
	want := kmodel.DefaultKernelFlags
	if cfg.DisableUring {
		want &^= wire.FUSE_OVER_IO_URING
	}
	if in.Minor != 45 || uint64(in.Flags)|uint64(in.Flags2)<<32 != want {
		t.Errorf("INIT offers minor %d flags %#x", in.Minor, uint64(in.Flags)|uint64(in.Flags2)<<32)
	}
	out := wire.InitOut{Major: 7, Minor: 45, MaxWrite: maxWrite, MaxPages: uint16(maxWrite / 4096),
		Flags: wire.FUSE_INIT_EXT | wire.FUSE_MAX_PAGES | uint32(flags), Flags2: uint32(flags >> 32)}
	mc.reply(h.Unique, 0, wire.AsBytes(&out))
	select {
	case <-m.Initialized():
	default:
		t.Fatal("INIT reply not processed")
	}
	return mc
}

// read reads one message with the full buffer.
func (mc *manual) read() []byte { return mc.readN(len(mc.buf)) }

// readN reads one message into a buffer of n bytes.
func (mc *manual) readN(n int) []byte {
	mc.t.Helper()
	k, err := mc.m.Dev().Read(mc.buf[:n])
	if err != nil {
		mc.t.Fatalf("read: %v", err)
	}
	if h := wire.View[wire.InHeader](mc.buf); int(h.Len) != k {
		mc.t.Fatalf("read %d bytes, header says %d", k, h.Len)
	}
	return mc.buf[:k]
}

// reply writes a reply.
func (mc *manual) reply(unique uint64, errno int32, payload []byte) {
	mc.t.Helper()
	if err := mc.write(unique, errno, payload); err != nil {
		mc.t.Fatalf("reply to %d: %v", unique, err)
	}
}

func (mc *manual) write(unique uint64, errno int32, payload []byte) error {
	oh := wire.OutHeader{Len: uint32(wire.SizeofOutHeader + len(payload)), Error: errno, Unique: unique}
	_, err := mc.m.Dev().Writev([][]byte{wire.AsBytes(&oh), payload})
	return err
}

// describe names a message: "GETATTR", "FORGET", or "BATCH_FORGET/n".
func describe(msg []byte) string {
	h := wire.View[wire.InHeader](msg)
	if h.Opcode == wire.FUSE_BATCH_FORGET {
		return fmt.Sprintf("BATCH_FORGET/%d", wire.View[wire.BatchForgetIn](msg[wire.SizeofInHeader:]).Count)
	}
	return h.Opcode.String()
}

// The 16:8 fairness of fuse_dev_do_read: with ordinary requests and
// forgets both queued, 8 ordinary reads, then 16 forget reads, and so on;
// a forget read takes (read size - 48) / 16 forgets.
func TestDevForgetFairness(t *testing.T) {
	mc := newManual(t, kmodel.Config{}, 4096, 0) // smallest reads: 8192 bytes
	const ordinary, forgets = 40, 20000
	for range ordinary {
		mc.m.Start(0, kmodel.Getattr(wire.FUSE_ROOT_ID))
	}
	for i := range forgets {
		mc.m.Forget(0, uint64(i+2), 1)
	}
	rep := func(s string, n int) []string {
		r := make([]string, n)
		for i := range r {
			r[i] = s
		}
		return r
	}
	const batch = (8192 - 48) / 16 // 509
	var want []string
	want = append(want, rep("GETATTR", 8)...)
	want = append(want, rep(fmt.Sprintf("BATCH_FORGET/%d", batch), 16)...)
	want = append(want, rep("GETATTR", 8)...)
	want = append(want, rep(fmt.Sprintf("BATCH_FORGET/%d", batch), 16)...)
	want = append(want, rep("GETATTR", 8)...)
	left := forgets - 32*batch
	want = append(want, rep(fmt.Sprintf("BATCH_FORGET/%d", batch), left/batch)...)
	want = append(want, fmt.Sprintf("BATCH_FORGET/%d", left%batch))
	want = append(want, rep("GETATTR", ordinary-24)...)
	var got []string
	for range want {
		got = append(got, describe(mc.readN(8192)))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("read order:\n got %v\nwant %v", got, want)
	}
	if st := mc.m.Stats(); st.Dev.Forgets != forgets || st.ForgetsOutstanding != 0 {
		t.Errorf("stats: %+v", st)
	}
}

// One queued forget is a FUSE_FORGET; more are a FUSE_BATCH_FORGET sized
// by the read.
func TestDevForgetSingleAndBatch(t *testing.T) {
	mc := newManual(t, kmodel.Config{}, 1<<20, 0)
	minRead := 80 + 1<<20

	mc.m.Forget(1, 7, 3)
	msg := mc.readN(minRead)
	h := wire.View[wire.InHeader](msg)
	if h.Opcode != wire.FUSE_FORGET || h.Len != 48 || h.NodeID != 7 || h.Unique == 0 || h.Unique%2 != 0 {
		t.Errorf("single forget: %+v", *h)
	}
	if n := wire.View[wire.ForgetIn](msg[wire.SizeofInHeader:]).Nlookup; n != 3 {
		t.Errorf("nlookup %d", n)
	}

	mc.m.Forget(0, 8, 1)
	mc.m.Forget(1, 9, 2)
	msg = mc.readN(minRead)
	h = wire.View[wire.InHeader](msg)
	if h.Opcode != wire.FUSE_BATCH_FORGET || h.Len != 48+2*16 || h.NodeID != 0 {
		t.Errorf("batch of 2: %+v", *h)
	}
	var r wire.Request
	if err := wire.ParseDev(msg, &wire.Conn{Minor: 45}, &r); err != nil {
		t.Fatal(err)
	}
	if ones := r.ForgetOnes(); len(ones) != 2 || ones[0].NodeID != 8 || ones[1].Nlookup != 2 {
		t.Errorf("batch: %+v", ones)
	}

	// The batch size follows the read size: (nbytes - 48) / 16.
	const queued = 400000
	for i := range queued {
		mc.m.Forget(0, uint64(i+2), 1)
	}
	for _, size := range []int{minRead, minRead + 4096, 2 * minRead} {
		msg := mc.readN(size)
		want := (size - 48) / 16
		if got := wire.View[wire.BatchForgetIn](msg[wire.SizeofInHeader:]).Count; int(got) != want {
			t.Errorf("read of %d bytes: batch of %d, want %d", size, got, want)
		}
	}
}

// Read refuses short buffers, returns ENODEV after unmount and
// ECONNABORTED after abort, and wakes blocked readers.
func TestDevReadErrors(t *testing.T) {
	mc := newManual(t, kmodel.Config{}, 1<<20, 0)
	for _, n := range []int{8192, 80 + 1<<20 - 1} {
		if _, err := mc.m.Dev().Read(make([]byte, n)); err != syscall.EINVAL {
			t.Errorf("read of %d bytes: %v, want EINVAL", n, err)
		}
	}
	errc := make(chan error, 1)
	go func() {
		_, err := mc.m.Dev().Read(make([]byte, 80+1<<20))
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	mc.m.Unmount()
	select {
	case err := <-errc:
		if err != syscall.ENODEV {
			t.Errorf("blocked read at unmount: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked reader not woken by unmount")
	}
	mc.m.Abort() // too late: stays unmounted
	if _, err := mc.m.Dev().Read(mc.buf); err != syscall.ENODEV {
		t.Errorf("read after unmount: %v", err)
	}

	mc = newManual(t, kmodel.Config{}, 1<<20, 0)
	call := mc.m.Start(0, kmodel.Getattr(wire.FUSE_ROOT_ID))
	mc.read()
	mc.m.Abort()
	if _, err := mc.m.Dev().Read(mc.buf); err != syscall.ECONNABORTED {
		t.Errorf("read after abort: %v", err)
	}
	if _, err := call.Wait(); err != syscall.ECONNABORTED {
		t.Errorf("request in flight at abort: %v", err)
	}
	if _, err := mc.m.Do(0, kmodel.Getattr(wire.FUSE_ROOT_ID)); err != syscall.ENOTCONN {
		t.Errorf("request after abort: %v", err)
	}
}

// Writev checks the out header as fuse_dev_do_write does.
func TestDevWriteErrors(t *testing.T) {
	mc := newManual(t, kmodel.Config{}, 1<<20, 0)
	call := mc.m.Start(0, kmodel.Getattr(wire.FUSE_ROOT_ID))
	u := wire.View[wire.InHeader](mc.read()).Unique
	var attr wire.AttrOut
	dev := mc.m.Dev()
	oh := wire.OutHeader{Len: 16 + 104 + 1, Unique: u}
	if _, err := dev.Writev([][]byte{wire.AsBytes(&oh), wire.AsBytes(&attr)}); err != syscall.EINVAL {
		t.Errorf("len mismatch: %v", err)
	}
	if err := mc.write(u, 1, nil); err != syscall.EINVAL {
		t.Errorf("positive error: %v", err)
	}
	if err := mc.write(u, -512, nil); err != syscall.EINVAL {
		t.Errorf("error -512: %v", err)
	}
	if err := mc.write(u+2, 0, wire.AsBytes(&attr)); err != syscall.ENOENT {
		t.Errorf("unknown unique: %v", err)
	}
	if _, err := dev.Writev([][]byte{make([]byte, 8)}); err != syscall.EINVAL {
		t.Errorf("short write: %v", err)
	}
	select {
	case <-call.Done():
		t.Fatal("a rejected write ended the request")
	default:
	}
	// A reply whose payload does not fit the out-args: the write fails
	// with EINVAL and the client sees EIO.
	if err := mc.write(u, 0, make([]byte, 100)); err != syscall.EINVAL {
		t.Errorf("short GETATTR reply: %v", err)
	}
	if _, err := call.Wait(); err != syscall.EIO {
		t.Errorf("client after a bad reply: %v", err)
	}
	// A good one.
	call = mc.m.Start(0, kmodel.Getattr(wire.FUSE_ROOT_ID))
	u = wire.View[wire.InHeader](mc.read()).Unique
	attr.Attr.Ino = 1
	mc.reply(u, 0, wire.AsBytes(&attr))
	if rep, err := call.Wait(); err != nil || rep.Attr().Attr.Ino != 1 || rep.Channel != kmodel.ChannelDev {
		t.Errorf("GETATTR: %+v %v", rep, err)
	}
	if err := mc.write(u, 0, wire.AsBytes(&attr)); err != syscall.ENOENT {
		t.Errorf("second reply: %v", err)
	}
}

// INTERRUPT comes before everything else, names the request with the
// low bit set, and comes again after -EAGAIN.
func TestDevInterrupt(t *testing.T) {
	mc := newManual(t, kmodel.Config{}, 1<<20, 0)
	call := mc.m.Start(0, kmodel.Getattr(wire.FUSE_ROOT_ID))
	u := wire.View[wire.InHeader](mc.read()).Unique
	mc.m.Start(0, kmodel.Getattr(wire.FUSE_ROOT_ID)) // queued behind the interrupt
	mc.m.Forget(0, 5, 1)
	mc.m.Interrupt(call)
	msg := mc.read()
	h := wire.View[wire.InHeader](msg)
	if h.Opcode != wire.FUSE_INTERRUPT || h.Unique != u|1 || h.Len != 48 {
		t.Fatalf("interrupt: %+v", *h)
	}
	if got := wire.View[wire.InterruptIn](msg[wire.SizeofInHeader:]).Unique; got != u {
		t.Errorf("interrupt names %d, want %d", got, u)
	}
	mc.reply(u|1, -int32(syscall.EAGAIN), nil)
	if h := wire.View[wire.InHeader](mc.read()); h.Opcode != wire.FUSE_INTERRUPT {
		t.Errorf("after EAGAIN: %v", h.Opcode)
	}
	mc.reply(u, -int32(syscall.EINTR), nil)
	if _, err := call.Wait(); err != syscall.EINTR {
		t.Errorf("interrupted call: %v", err)
	}
	// An interrupt for a request not yet read goes out once it is.
	call = mc.m.Start(0, kmodel.Getattr(wire.FUSE_ROOT_ID))
	mc.m.Interrupt(call)
	// Both GETATTRs before the forget (forget_batch went negative), and
	// the interrupt as soon as its request has been read.
	for _, want := range []wire.Opcode{wire.FUSE_GETATTR, wire.FUSE_GETATTR, wire.FUSE_INTERRUPT, wire.FUSE_FORGET} {
		if h := wire.View[wire.InHeader](mc.read()); h.Opcode != want {
			t.Errorf("read %v, want %v", h.Opcode, want)
		}
	}
}

// Before the INIT reply is processed, client requests wait.
func TestDevRequestsWaitForInit(t *testing.T) {
	m, err := kmodel.New(kmodel.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmount()
	call := m.Start(0, kmodel.Getattr(wire.FUSE_ROOT_ID))
	select {
	case <-call.Done():
		t.Fatal("request before INIT completed")
	case <-time.After(20 * time.Millisecond):
	}
	if st := m.Stats(); st.Dev.Requests != 0 {
		t.Errorf("%+v", st)
	}
	m.Unmount()
	if _, err := call.Wait(); err != syscall.ENOTCONN {
		t.Errorf("request blocked at unmount: %v", err)
	}
}
