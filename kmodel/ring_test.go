package kmodel_test

// Unit tests of the model's ring side, with the test playing the ring
// channel by hand: Register, Commit, SubmitAndWait and Reap on QueueRings
// from Conn.NewRing.

import (
	"bytes"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/kmodel"
	"github.com/ringfuse/ringfuse/wire"
)

// mring is one QueueRing driven by the test, with its entries.
type mring struct {
	t    *testing.T
	m    *kmodel.Conn
	r    ring.QueueRing
	ents []ring.Entry
	cqes []ring.Completion
}

// newRing makes a ring for queue qid with depth entries on the Go heap.
func newRing(t *testing.T, m *kmodel.Conn, qid, depth int) *mring {
	t.Helper()
	r, err := m.NewRing(ring.RingConfig{Fd: -1, Qid: qid, Depth: depth})
	if err != nil {
		t.Fatal(err)
	}
	mr := &mring{t: t, m: m, r: r, ents: make([]ring.Entry, depth), cqes: make([]ring.Completion, 4*depth)}
	for i := range mr.ents {
		e := &mr.ents[i]
		e.Qid, e.Index = uint16(qid), i
		e.Header = new(wire.UringReqHeader)
		e.Payload = make([]byte, m.MaxPayload())
	}
	return mr
}

func (mr *mring) register(i int, flags uint64) {
	mr.t.Helper()
	if err := mr.r.Register(&mr.ents[i], flags); err != nil {
		mr.t.Fatal(err)
	}
}

func (mr *mring) commit(i int, id uint64) {
	mr.t.Helper()
	if err := mr.r.Commit(&mr.ents[i], id); err != nil {
		mr.t.Fatal(err)
	}
}

// flush submits what is queued, runs the ring's task work and reaps, without
// blocking.
func (mr *mring) flush() []ring.Completion {
	mr.t.Helper()
	if err := mr.r.Wake(); err != nil {
		mr.t.Fatal(err)
	}
	if err := mr.r.SubmitAndWait(); err != nil {
		mr.t.Fatal(err)
	}
	return mr.cqes[:mr.r.Reap(mr.cqes)]
}

// expect flushes and checks the completions, in entry order (the order
// across entries is not part of the contract).
func (mr *mring) expect(want ...ring.Completion) {
	mr.t.Helper()
	got := mr.flush()
	sort.Slice(got, func(i, j int) bool { return got[i].Entry < got[j].Entry })
	if len(got) != len(want) {
		mr.t.Fatalf("completions %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			mr.t.Fatalf("completions %+v, want %+v", got, want)
		}
	}
}

func cqe(entry int, errno syscall.Errno) ring.Completion {
	return ring.Completion{Entry: entry, Res: -int32(errno)}
}

// in returns the fuse_in_header delivered into entry i.
func (mr *mring) in(i int) wire.InHeader {
	return *wire.View[wire.InHeader](mr.ents[i].Header.InOut[:])
}

// answer writes a reply into entry i: error, unique and payload.
func (mr *mring) answer(i int, errno int32, unique uint64, payload []byte) {
	e := &mr.ents[i]
	*wire.View[wire.OutHeader](e.Header.InOut[:]) = wire.OutHeader{Len: uint32(16 + len(payload)), Error: errno, Unique: unique}
	copy(e.Payload, payload)
	e.Header.RingEnt.PayloadSz = uint32(len(payload))
}

// uringConn makes a two-queue connection whose server accepted the ring.
func uringConn(t *testing.T, cfg kmodel.Config) *manual {
	cfg.NrQueues = 2
	return newManual(t, cfg, 1<<20, wire.FUSE_OVER_IO_URING)
}

func TestRingRegisterErrors(t *testing.T) {
	t.Run("before INIT processed", func(t *testing.T) {
		m, err := kmodel.New(kmodel.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Unmount()
		mr := newRing(t, m, 0, 1)
		mr.register(0, 0)
		mr.expect(cqe(0, syscall.EAGAIN))
	})
	t.Run("enable_uring=N", func(t *testing.T) {
		mc := newManual(t, kmodel.Config{DisableUring: true}, 1<<20, wire.FUSE_OVER_IO_URING)
		if flags, _, _, _ := mc.m.Negotiated(); flags&wire.FUSE_OVER_IO_URING != 0 {
			t.Error("FUSE_OVER_IO_URING agreed though not offered")
		}
		mr := newRing(t, mc.m, 0, 1)
		mr.register(0, 0)
		mr.expect(cqe(0, syscall.EOPNOTSUPP))
	})
	t.Run("qid out of range", func(t *testing.T) {
		mc := uringConn(t, kmodel.Config{})
		mr := newRing(t, mc.m, 2, 1)
		mr.register(0, 0)
		mr.expect(cqe(0, syscall.EINVAL))
	})
	t.Run("short payload buffer", func(t *testing.T) {
		mc := uringConn(t, kmodel.Config{})
		if got := mc.m.MaxPayload(); got != 1<<20 {
			t.Errorf("max_payload_sz %d, want 1 MiB", got)
		}
		mr := newRing(t, mc.m, 0, 1)
		mr.ents[0].Payload = mr.ents[0].Payload[:8192]
		mr.register(0, 0)
		mr.expect(cqe(0, syscall.EINVAL))
	})
	t.Run("refused", func(t *testing.T) {
		mc := uringConn(t, kmodel.Config{Faults: kmodel.Faults{RefuseRegister: syscall.ENOMEM}})
		// With FUSE_OVER_IO_URING agreed, requests wait for the ring...
		call := mc.m.Start(1, kmodel.Getattr(wire.FUSE_ROOT_ID))
		if st := mc.m.Stats(); st.Dev.Requests != 1 {
			t.Fatalf("a request left before the ring was ready: %+v", st.Dev)
		}
		mr := newRing(t, mc.m, 0, 1)
		mr.register(0, 0)
		mr.expect(cqe(0, syscall.ENOMEM))
		// ...until a REGISTER fails: then they go to /dev/fuse.
		msg := mc.read()
		h := wire.View[wire.InHeader](msg)
		if h.Opcode != wire.FUSE_GETATTR {
			t.Fatalf("read %v", h.Opcode)
		}
		var attr wire.AttrOut
		mc.reply(h.Unique, 0, wire.AsBytes(&attr))
		if rep, err := call.Wait(); err != nil || rep.Channel != kmodel.ChannelDev {
			t.Errorf("%+v %v", rep, err)
		}
	})
}

func TestRingReadinessRoutingAndLayout(t *testing.T) {
	mc := uringConn(t, kmodel.Config{})
	r0, r1 := newRing(t, mc.m, 0, 2), newRing(t, mc.m, 1, 1)
	r0.register(0, 0)
	r0.register(1, 0)
	r0.expect() // parked: no completion while idle
	call := mc.m.Start(1, kmodel.Lookup(wire.FUSE_ROOT_ID, "name"))
	select {
	case <-mc.m.Ready():
		t.Fatal("ready with queue 1 empty")
	default:
	}
	if st := mc.m.Stats(); st.Dev.Requests != 1 || st.Queues[0].Backlog != 0 {
		t.Fatalf("request went somewhere before ready: %+v", st)
	}
	for i := range r1.ents[0].Header.OpIn {
		r1.ents[0].Header.OpIn[i] = 0xAA
	}
	r1.register(0, 0)
	r1.expect(cqe(0, 0)) // ready: the waiting request goes to its CPU's queue
	r0.expect()
	select {
	case <-mc.m.Ready():
	default:
		t.Fatal("not ready")
	}

	// LOOKUP: op_in untouched (empty arg0), the name in the payload.
	in := r1.in(0)
	e := &r1.ents[0]
	if in.Opcode != wire.FUSE_LOOKUP || in.NodeID != 1 || in.Len != 40+5 || in.Unique%2 != 0 ||
		e.Header.RingEnt.CommitID != in.Unique || e.Header.RingEnt.PayloadSz != 5 {
		t.Errorf("delivered %+v, ring_ent %+v", in, e.Header.RingEnt)
	}
	if string(e.Payload[:5]) != "name\x00" || !bytes.Equal(e.Header.OpIn[:], bytes.Repeat([]byte{0xAA}, 128)) {
		t.Errorf("payload %q, op_in %x", e.Payload[:5], e.Header.OpIn[:8])
	}
	var r wire.Request
	if err := wire.ParseRing(e.Header.InOut[:], e.Header.OpIn[:], e.Payload[:5], &wire.Conn{Minor: 45}, &r); err != nil || string(r.Name) != "name" {
		t.Errorf("ParseRing: %v %q", err, r.Name)
	}
	eo := wire.EntryOut{NodeID: 42}
	r1.answer(0, 0, in.Unique, wire.AsBytes(&eo))
	r1.commit(0, in.Unique)
	r1.expect() // the commit completes only with the next request
	rep, err := call.Wait()
	if err != nil || rep.Entry().NodeID != 42 || rep.Channel != kmodel.ChannelRing || rep.Queue != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	if mc.m.Lookups(42) != 1 || mc.m.ServerLookups(42) != 1 {
		t.Errorf("lookups of 42: kernel %d, server %d", mc.m.Lookups(42), mc.m.ServerLookups(42))
	}

	// WRITE: fuse_write_in in op_in, the data in the payload.
	data := bytes.Repeat([]byte("x"), 4096)
	call = mc.m.Start(1, kmodel.Write(42, 7, 0, data))
	r1.expect(cqe(0, 0))
	in = r1.in(0)
	if in.Opcode != wire.FUSE_WRITE || in.Len != 40+40+4096 || e.Header.RingEnt.PayloadSz != 4096 ||
		wire.View[wire.WriteIn](e.Header.OpIn[:]).Size != 4096 || !bytes.Equal(e.Payload[:4096], data) {
		t.Errorf("WRITE delivered as %+v, payload_sz %d", in, e.Header.RingEnt.PayloadSz)
	}
	wo := wire.WriteOut{Size: 4096}
	r1.answer(0, 0, in.Unique, wire.AsBytes(&wo))
	r1.commit(0, in.Unique)
	r1.expect()
	if _, err := call.Wait(); err != nil {
		t.Fatal(err)
	}

	// No stealing: with queue 1's only entry held by the server, a
	// request from CPU 1 waits although queue 0 has two free entries.
	held := mc.m.Start(1, kmodel.Getattr(2))
	r1.expect(cqe(0, 0))
	waiting := mc.m.Start(1, kmodel.Getattr(3))
	r0.expect()
	r1.expect()
	if st := mc.m.Stats(); st.Queues[1].Backlog != 1 || st.Queues[0].States[kmodel.FRRS_AVAILABLE] != 2 {
		t.Fatalf("%+v", st.Queues)
	}
	// A request from CPU 5 (beyond the queues) goes to queue 0.
	if rep := mc.m.Start(5, kmodel.Getattr(4)); rep == nil {
		t.Fatal()
	}
	if got := r0.flush(); len(got) != 1 || got[0].Res != 0 {
		t.Fatalf("queue 0: %+v", got)
	}
	// Committing the held entry delivers the waiting request into it at
	// once: the COMMIT_AND_FETCH completes with it.
	var attr wire.AttrOut
	r1.answer(0, 0, r1.in(0).Unique, wire.AsBytes(&attr))
	r1.commit(0, r1.in(0).Unique)
	r1.expect(cqe(0, 0))
	if r1.in(0).NodeID != 3 {
		t.Errorf("delivered node %d, want 3", r1.in(0).NodeID)
	}
	if _, err := held.Wait(); err != nil {
		t.Fatal(err)
	}
	_ = waiting
}

func TestRingCommitErrors(t *testing.T) {
	mc := uringConn(t, kmodel.Config{})
	r0, r1 := newRing(t, mc.m, 0, 1), newRing(t, mc.m, 1, 1)
	r0.register(0, 0)
	r1.register(0, 0)
	r0.expect()
	r1.expect()
	var attr wire.AttrOut
	attrBytes := wire.AsBytes(&attr)

	// An unknown commit id: -ENOENT, and the entry stays with its request.
	call := mc.m.Start(0, kmodel.Getattr(1))
	r0.expect(cqe(0, 0))
	u := r0.in(0).Unique
	r0.answer(0, 0, u, attrBytes)
	r0.commit(0, u+1000)
	r0.expect(cqe(0, syscall.ENOENT))
	if st := mc.m.Stats().Queues[0]; st.CommitErrors != 1 || st.States[kmodel.FRRS_USERSPACE] != 1 {
		t.Errorf("after a bad commit id: %+v", st)
	}
	// The same commit id on the wrong queue is unknown there too.
	r1.commit(0, u)
	r1.expect(cqe(0, syscall.ENOENT))
	// Fixed, it goes through.
	r0.commit(0, u)
	r0.expect()
	if _, err := call.Wait(); err != nil {
		t.Fatal(err)
	}

	// Reply errors go to the client; the entry is re-armed and the
	// commit completes only with the next request.
	for _, tc := range []struct {
		name    string
		errno   int32
		unique  func(u uint64) uint64
		payload []byte
		want    syscall.Errno
	}{
		{"unique 0", 0, func(uint64) uint64 { return 0 }, attrBytes, syscall.EINVAL},
		{"error > 0", 5, func(u uint64) uint64 { return u }, nil, syscall.EINVAL},
		{"error -512", -512, func(u uint64) uint64 { return u }, nil, syscall.EINVAL},
		{"unique mismatch", 0, func(u uint64) uint64 { return u + 2 }, attrBytes, syscall.ENOENT},
		{"short payload", 0, func(u uint64) uint64 { return u }, attrBytes[:100], syscall.EINVAL},
		{"long payload", 0, func(u uint64) uint64 { return u }, append(attrBytes, 0), syscall.EINVAL},
		{"error reply", -int32(syscall.ESTALE), func(u uint64) uint64 { return u }, attrBytes, syscall.ESTALE},
	} {
		call := mc.m.Start(0, kmodel.Getattr(1))
		r0.expect(cqe(0, 0))
		u := r0.in(0).Unique
		r0.answer(0, tc.errno, tc.unique(u), tc.payload)
		r0.commit(0, u)
		r0.expect()
		if _, err := call.Wait(); err != tc.want {
			t.Errorf("%s: client got %v, want %v", tc.name, err, tc.want)
		}
		if st := mc.m.Stats().Queues[0]; st.States[kmodel.FRRS_AVAILABLE] != 1 {
			t.Errorf("%s: entry not re-armed: %+v", tc.name, st)
		}
	}
	// READ may answer short; not long.
	call = mc.m.Start(0, kmodel.Read(1, 0, 0, 4096))
	r0.expect(cqe(0, 0))
	r0.answer(0, 0, r0.in(0).Unique, make([]byte, 100))
	r0.commit(0, r0.in(0).Unique)
	r0.expect()
	if rep, err := call.Wait(); err != nil || len(rep.Out) != 100 {
		t.Errorf("short read: %d bytes, %v", len(rep.Out), err)
	}
	// A ring request answered on /dev/fuse is unknown there.
	call = mc.m.Start(0, kmodel.Getattr(1))
	r0.expect(cqe(0, 0))
	if err := mc.write(r0.in(0).Unique, 0, attrBytes); err != syscall.ENOENT {
		t.Errorf("ring request answered on /dev/fuse: %v", err)
	}
	_ = call
}

func TestRingTeardown(t *testing.T) {
	for _, abort := range []bool{false, true} {
		name := "unmount"
		after := syscall.ENOTCONN
		if abort {
			name, after = "abort", syscall.ECONNABORTED
		}
		t.Run(name, func(t *testing.T) {
			mc := uringConn(t, kmodel.Config{})
			r0, r1 := newRing(t, mc.m, 0, 2), newRing(t, mc.m, 1, 1)
			r0.register(0, 0)
			r0.register(1, 0)
			r1.register(0, 0)
			r0.expect()
			r1.expect()
			held := mc.m.Start(1, kmodel.Getattr(1))
			r1.expect(cqe(0, 0))
			queued := mc.m.Start(1, kmodel.Getattr(1))
			if abort {
				mc.m.Abort()
			} else {
				mc.m.Unmount()
			}
			r0.expect(cqe(0, syscall.ENOTCONN), cqe(1, syscall.ENOTCONN)) // parked commands
			r1.expect()                                                   // held by the server: no completion
			for _, k := range []*kmodel.Call{held, queued} {
				if _, err := k.Wait(); err != syscall.ECONNABORTED {
					t.Errorf("request at teardown: %v", err)
				}
			}
			r1.commit(0, r1.in(0).Unique)
			r1.expect(cqe(0, after))
			r0.register(0, 0)
			r0.expect(cqe(0, after))
			if st := mc.m.Stats(); st.Queues[0].States[kmodel.FRRS_RELEASED] != 2 || st.Queues[1].States[kmodel.FRRS_RELEASED] != 1 {
				t.Errorf("%+v", st.Queues)
			}
		})
	}
}

// Closing a ring cancels its parked commands: a request from that CPU then
// waits until the connection ends.
func TestRingClose(t *testing.T) {
	mc := uringConn(t, kmodel.Config{})
	r0, r1 := newRing(t, mc.m, 0, 1), newRing(t, mc.m, 1, 1)
	r0.register(0, 0)
	r1.register(0, 0)
	r0.expect()
	r1.expect()
	if err := r1.r.Close(); err != nil {
		t.Fatal(err)
	}
	call := mc.m.Start(1, kmodel.Getattr(1))
	select {
	case <-call.Done():
		t.Fatal("completed")
	case <-time.After(20 * time.Millisecond):
	}
	if err := r1.r.Commit(&r1.ents[0], 2); err == nil {
		t.Error("commit on a closed ring accepted")
	}
	mc.m.Unmount()
	if _, err := call.Wait(); err != syscall.ECONNABORTED {
		t.Errorf("%v", err)
	}
}

// The 7.46 patch (model only): forgets stay on /dev/fuse until a REGISTER
// carries FUSE_IO_URING_REGISTER_FORGET_COMMIT; then each is a single
// FUSE_FORGET in an entry of the evicting CPU's queue, held until
// committed.
func TestPatchedForgetRouting(t *testing.T) {
	for _, patched := range []bool{false, true} {
		name := "6.18"
		if patched {
			name = "Patched"
		}
		t.Run(name, func(t *testing.T) {
			mc := uringConn(t, kmodel.Config{Patched: patched})
			r0, r1 := newRing(t, mc.m, 0, 1), newRing(t, mc.m, 1, 2)
			r0.register(0, 0)
			r1.register(0, 0)
			r0.expect()
			r1.expect()
			mc.m.Forget(1, 10, 2)
			if h := wire.View[wire.InHeader](mc.read()); h.Opcode != wire.FUSE_FORGET || h.NodeID != 10 {
				t.Fatalf("before the opt-in: %+v", *h)
			}
			r1.register(1, wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT)
			r1.expect()
			mc.m.Forget(1, 11, 3)
			if !patched {
				if h := wire.View[wire.InHeader](mc.read()); h.Opcode != wire.FUSE_FORGET || h.NodeID != 11 {
					t.Fatalf("6.18 ignores the flag: %+v", *h)
				}
				return
			}
			got := r1.flush()
			if len(got) != 1 || got[0].Res != 0 {
				t.Fatalf("completions %+v", got)
			}
			i := got[0].Entry
			in, e := r1.in(i), &r1.ents[i]
			if in.Opcode != wire.FUSE_FORGET || in.Len != 48 || in.NodeID != 11 || e.Header.RingEnt.PayloadSz != 0 ||
				e.Header.RingEnt.CommitID != in.Unique || wire.View[wire.ForgetIn](e.Header.OpIn[:]).Nlookup != 3 {
				t.Errorf("FORGET on the ring: %+v %+v", in, e.Header.RingEnt)
			}
			st := mc.m.Stats()
			if q := st.Queues[1]; q.ForgetHeld != 1 || q.ForgetMsgs != 1 || st.ForgetsToRing != 1 || st.ForgetsOutstanding != 1 {
				t.Errorf("held: %+v %+v", q, st)
			}
			r1.answer(i, 0, in.Unique, nil)
			r1.commit(i, in.Unique)
			r1.expect()
			st = mc.m.Stats()
			if q := st.Queues[1]; q.ForgetHeld != 0 || q.ForgetCommits != 1 || q.ForgetBadCommits != 0 || st.ForgetsOutstanding != 0 {
				t.Errorf("after commit: %+v %+v", q, st)
			}
			// A non-empty reply is ignored (noreply), but counted.
			mc.m.Forget(0, 12, 1)
			r0.expect(cqe(0, 0))
			r0.answer(0, 0, r0.in(0).Unique, make([]byte, 8))
			r0.commit(0, r0.in(0).Unique)
			r0.expect()
			if q := mc.m.Stats().Queues[0]; q.ForgetBadCommits != 1 || q.ForgetHeld != 0 {
				t.Errorf("bad forget commit: %+v", q)
			}
		})
	}
}

// The series' policies (kernel/SERIES.md, patches 0002-0004): forgets on
// a list of the evicting task's queue, taken by one request per queue that
// waits among the ordinary requests.
func TestPatchedForgetPolicies(t *testing.T) {
	// commitNext commits entry 0 of r with an empty reply and expects it
	// to take the next request.
	commitNext := func(r *mring) wire.InHeader {
		t.Helper()
		r.answer(0, 0, r.in(0).Unique, nil)
		r.commit(0, r.in(0).Unique)
		r.expect(cqe(0, 0))
		return r.in(0)
	}
	t.Run("batch", func(t *testing.T) {
		mc := uringConn(t, kmodel.Config{Patched: true, UringForgetBatch: true})
		r0, r1 := newRing(t, mc.m, 0, 1), newRing(t, mc.m, 1, 1)
		r0.register(0, wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT)
		r1.register(0, 0)
		r0.expect()
		r1.expect()
		held := mc.m.Start(0, kmodel.Getattr(1)) // the only entry is busy
		r0.expect(cqe(0, 0))
		for i := range 10 {
			mc.m.Forget(0, uint64(100+i), 1)
		}
		late := mc.m.Start(0, kmodel.Getattr(1)) // behind the forget request
		if q := mc.m.Stats().Queues[0]; q.ForgetBacklog != 10 || q.Backlog != 2 {
			t.Fatalf("%+v", q)
		}
		var attr wire.AttrOut
		r0.answer(0, 0, r0.in(0).Unique, wire.AsBytes(&attr))
		r0.commit(0, r0.in(0).Unique)
		r0.expect(cqe(0, 0))
		if _, err := held.Wait(); err != nil {
			t.Fatal(err)
		}
		// The entry takes all ten: its payload holds max_payload_sz/16.
		in, e := r0.in(0), &r0.ents[0]
		if in.Opcode != wire.FUSE_BATCH_FORGET || in.Len != 48+10*16 || e.Header.RingEnt.PayloadSz != 160 ||
			wire.View[wire.BatchForgetIn](e.Header.OpIn[:]).Count != 10 {
			t.Errorf("batch on the ring: %+v, payload_sz %d", in, e.Header.RingEnt.PayloadSz)
		}
		var r wire.Request
		if err := wire.ParseRing(e.Header.InOut[:], e.Header.OpIn[:], e.Payload[:160], &wire.Conn{Minor: 45}, &r); err != nil {
			t.Fatal(err)
		}
		if ones := r.ForgetOnes(); len(ones) != 10 || ones[0].NodeID != 100 || ones[9].NodeID != 109 {
			t.Errorf("%+v", ones)
		}
		// A forget now needs a new request, queued behind the GETATTR.
		mc.m.Forget(0, 200, 1)
		if in := commitNext(r0); in.Opcode != wire.FUSE_GETATTR {
			t.Fatalf("after the batch: %v, want the GETATTR queued before the next forget", in.Opcode)
		}
		r0.answer(0, 0, r0.in(0).Unique, wire.AsBytes(&attr))
		r0.commit(0, r0.in(0).Unique)
		r0.expect(cqe(0, 0))
		if _, err := late.Wait(); err != nil {
			t.Fatal(err)
		}
		if in := r0.in(0); in.Opcode != wire.FUSE_FORGET || in.NodeID != 200 {
			t.Fatalf("single forget: %+v", in)
		}
		r0.answer(0, 0, r0.in(0).Unique, nil)
		r0.commit(0, r0.in(0).Unique)
		r0.expect()
		if st := mc.m.Stats(); st.Queues[0].Forgets != 11 || st.Queues[0].ForgetMsgs != 2 || st.ForgetsOutstanding != 0 || st.Queues[0].Backlog != 0 {
			t.Errorf("%+v", st)
		}
	})
	t.Run("cap", func(t *testing.T) {
		mc := uringConn(t, kmodel.Config{Patched: true, UringForgetCap: 1})
		r0, r1 := newRing(t, mc.m, 0, 3), newRing(t, mc.m, 1, 1)
		for i := range 3 {
			r0.register(i, wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT)
		}
		r1.register(0, 0)
		r0.expect()
		r1.expect()
		for i := range 3 {
			mc.m.Forget(0, uint64(100+i), 1)
		}
		got := r0.flush()
		if len(got) != 1 {
			t.Fatalf("%d entries took forgets, cap 1", len(got))
		}
		fe := got[0].Entry
		st := mc.m.Stats()
		if q := st.Queues[0]; st.ForgetListLen != 0 || q.ForgetHeld != 1 || q.ForgetBacklog != 2 || q.Backlog != 1 {
			t.Errorf("cap reached: forgets must wait on the queue's list, none on /dev/fuse: %+v", st)
		}
		// The forget request lets a GETATTR pass to a free entry.
		call := mc.m.Start(0, kmodel.Getattr(1))
		got = r0.flush()
		if len(got) != 1 || got[0].Entry == fe || r0.in(got[0].Entry).Opcode != wire.FUSE_GETATTR {
			t.Fatalf("GETATTR behind a capped forget request: %+v", got)
		}
		ge := got[0].Entry
		var attr wire.AttrOut
		r0.answer(ge, 0, r0.in(ge).Unique, wire.AsBytes(&attr))
		r0.commit(ge, r0.in(ge).Unique)
		r0.expect()
		if _, err := call.Wait(); err != nil {
			t.Fatal(err)
		}
		// Committing the forget frees the cap: the same entry takes the next.
		r0.answer(fe, 0, r0.in(fe).Unique, nil)
		r0.commit(fe, r0.in(fe).Unique)
		got = r0.flush()
		if len(got) != 1 || got[0].Entry != fe || r0.in(fe).Opcode != wire.FUSE_FORGET || r0.in(fe).NodeID != 101 {
			t.Fatalf("after the commit: %+v %+v", got, r0.in(fe))
		}
		if q := mc.m.Stats().Queues[0]; q.ForgetHeldMax != 1 || q.ForgetBacklog != 1 {
			t.Errorf("%+v", q)
		}
	})
	t.Run("threshold", func(t *testing.T) {
		mc := uringConn(t, kmodel.Config{Patched: true, UringForgetBatch: true, UringForgetThreshold: 3})
		r0, r1 := newRing(t, mc.m, 0, 2), newRing(t, mc.m, 1, 1)
		r0.register(0, wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT)
		r0.register(1, wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT)
		r1.register(0, 0)
		r0.expect()
		r1.expect()
		mc.m.Forget(0, 100, 1)
		mc.m.Forget(0, 101, 1)
		if got := r0.flush(); len(got) != 0 {
			t.Fatalf("below the threshold: %+v", got)
		}
		mc.m.Forget(0, 102, 1)
		got := r0.flush()
		if len(got) != 1 {
			t.Fatalf("at the threshold: %+v", got)
		}
		if n := wire.View[wire.BatchForgetIn](r0.ents[got[0].Entry].Header.OpIn[:]).Count; r0.in(got[0].Entry).Opcode != wire.FUSE_BATCH_FORGET || n != 3 {
			t.Errorf("at the threshold: %v of %d", r0.in(got[0].Entry).Opcode, n)
		}
	})
	t.Run("delay", func(t *testing.T) {
		mc := uringConn(t, kmodel.Config{Patched: true, UringForgetDelay: 200 * time.Millisecond})
		r0, r1 := newRing(t, mc.m, 0, 1), newRing(t, mc.m, 1, 1)
		r0.register(0, wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT)
		r1.register(0, 0)
		r0.expect()
		r1.expect()
		mc.m.Forget(0, 100, 1)
		if got := r0.flush(); len(got) != 0 {
			t.Fatalf("before the delay: %+v", got)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if got := r0.flush(); len(got) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the delay never sent the forget")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if in := r0.in(0); in.Opcode != wire.FUSE_FORGET || in.NodeID != 100 {
			t.Errorf("%+v", in)
		}
		// A delay pending at unmount is cancelled and its forgets dropped.
		mc.m.Forget(0, 101, 1)
		mc.m.Unmount()
		if st := mc.m.Stats(); st.ForgetsDropped != 1 || st.ForgetsOutstanding != 0 {
			t.Errorf("after unmount: %+v", st)
		}
	})
}

// The rings count io_uring_enter calls, not commands: a call submits every
// queued commit and returns every completion there is, and those that
// carried forget work are counted apart; a call that has to wait counts as
// a sleep.
func TestRingEnters(t *testing.T) {
	mc := uringConn(t, kmodel.Config{Patched: true})
	r0, r1 := newRing(t, mc.m, 0, 3), newRing(t, mc.m, 1, 1)
	for i := range 3 {
		r0.register(i, wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT)
	}
	r1.register(0, 0)
	r0.expect()
	r1.expect()
	before := mc.m.Stats().Queues[0]
	for i := range 3 {
		mc.m.Forget(0, uint64(100+i), 1)
	}
	if got := r0.flush(); len(got) != 3 {
		t.Fatalf("one enter returns the three forgets: %+v", got)
	}
	for i := range 3 {
		r0.answer(i, 0, r0.in(i).Unique, nil)
		r0.commit(i, r0.in(i).Unique)
	}
	r0.expect()
	q := mc.m.Stats().Queues[0]
	if d := q.Enters - before.Enters; d != 2 || q.ForgetEnters-before.ForgetEnters != 2 {
		t.Errorf("3 forgets: %d enters (%d with forget work), want 2 and 2", d, q.ForgetEnters-before.ForgetEnters)
	}
	if q.CQEs-before.CQEs != 3 || q.ForgetCommits-before.ForgetCommits != 3 {
		t.Errorf("3 forgets: %d CQEs, %d commits, want 3 and 3", q.CQEs-before.CQEs, q.ForgetCommits-before.ForgetCommits)
	}
	// A call with nothing to return sleeps until a request arrives.
	done := make(chan error, 1)
	go func() { done <- r0.r.SubmitAndWait() }()
	eventually(t, "the enter sleeps", func() bool { return mc.m.Stats().Queues[0].Sleeps > q.Sleeps })
	call := mc.m.Start(0, kmodel.Getattr(1))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := r0.cqes[:r0.r.Reap(r0.cqes)]
	if len(got) != 1 || r0.in(got[0].Entry).Opcode != wire.FUSE_GETATTR {
		t.Fatalf("%+v", got)
	}
	e := got[0].Entry
	var attr wire.AttrOut
	r0.answer(e, 0, r0.in(e).Unique, wire.AsBytes(&attr))
	r0.commit(e, r0.in(e).Unique)
	r0.expect()
	if _, err := call.Wait(); err != nil {
		t.Fatal(err)
	}
	q2 := mc.m.Stats().Queues[0]
	if q2.Enters-q.Enters != 2 || q2.ForgetEnters != q.ForgetEnters || q2.Sleeps-q.Sleeps != 1 {
		t.Errorf("GETATTR: %d enters, %d with forget work, %d sleeps; want 2, 0, 1", q2.Enters-q.Enters, q2.ForgetEnters-q.ForgetEnters, q2.Sleeps-q.Sleeps)
	}
}

// uring_small_ents (0006): small entries take forgets and the requests
// they fit; large requests wait for a large entry; the ring is ready only
// when every queue has a large one.
func TestPatchedSmallEntries(t *testing.T) {
	small := func(r *mring, i int) { r.ents[i].Payload = r.ents[i].Payload[:wire.FUSE_MIN_READ_BUFFER] }
	t.Run("refused", func(t *testing.T) {
		mc := uringConn(t, kmodel.Config{Patched: true})
		r0 := newRing(t, mc.m, 0, 1)
		small(r0, 0)
		r0.register(0, 0)
		r0.expect(cqe(0, syscall.EINVAL))
	})
	mc := uringConn(t, kmodel.Config{Patched: true, UringSmallEnts: true, UringForgetBatch: true})
	r0, r1 := newRing(t, mc.m, 0, 3), newRing(t, mc.m, 1, 1)
	small(r0, 1)
	small(r0, 2)
	r0.register(1, wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT)
	r0.register(2, wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT)
	r1.register(0, 0)
	r0.expect()
	r1.expect()
	if st := mc.m.Stats(); st.Ready || st.Queues[0].SmallEntries != 2 {
		t.Fatalf("ready without a large entry on queue 0: %+v", st)
	}
	r0.register(0, wire.FUSE_IO_URING_REGISTER_FORGET_COMMIT)
	r0.expect()
	if !mc.m.Stats().Ready {
		t.Fatal("not ready with a large entry on every queue")
	}
	// A 64 KiB READ fits only the large entry, even though a small one
	// was freed last.
	read := mc.m.Start(0, kmodel.Read(5, 1, 0, 64<<10))
	got := r0.flush()
	if len(got) != 1 || got[0].Entry != 0 || r0.in(0).Opcode != wire.FUSE_READ {
		t.Fatalf("READ went to %+v", got)
	}
	// Forgets go to small entries only: one each as they arrive, and
	// then the rest wait for one in a batch.
	for i := range 5 {
		mc.m.Forget(0, uint64(100+i), 1)
	}
	got = r0.flush()
	if len(got) != 2 || got[0].Entry == 0 || got[1].Entry == 0 {
		t.Fatalf("forgets went to %+v", got)
	}
	// Queued: the forget request (3 forgets), a GETATTR, a 64 KiB READ.
	ga := mc.m.Start(0, kmodel.Getattr(1))
	read2 := mc.m.Start(0, kmodel.Read(5, 1, 0, 64<<10))
	commitNext := func(i int) wire.InHeader {
		t.Helper()
		r0.answer(i, 0, r0.in(i).Unique, nil)
		r0.commit(i, r0.in(i).Unique)
		r0.expect(cqe(i, 0))
		return r0.in(i)
	}
	if in := commitNext(1); in.Opcode != wire.FUSE_BATCH_FORGET || wire.View[wire.BatchForgetIn](r0.ents[1].Header.OpIn[:]).Count != 3 {
		t.Fatalf("entry 1 took %v", in.Opcode)
	}
	if in := commitNext(2); in.Opcode != wire.FUSE_GETATTR {
		t.Fatalf("entry 2 took %v, want the GETATTR (the READ does not fit)", in.Opcode)
	}
	r0.answer(1, 0, r0.in(1).Unique, nil)
	r0.commit(1, r0.in(1).Unique)
	r0.expect()
	if q := mc.m.Stats().Queues[0]; q.Backlog != 1 || q.States[kmodel.FRRS_AVAILABLE] != 1 {
		t.Fatalf("the second READ must wait for the large entry: %+v", q)
	}
	r0.answer(0, 0, r0.in(0).Unique, make([]byte, 100))
	r0.commit(0, r0.in(0).Unique)
	r0.expect(cqe(0, 0))
	if in := r0.in(0); in.Opcode != wire.FUSE_READ {
		t.Fatalf("the large entry took %v, want the waiting READ", in.Opcode)
	}
	if _, err := read.Wait(); err != nil {
		t.Fatal(err)
	}
	mc.m.Unmount()
	for _, k := range []*kmodel.Call{ga, read2} {
		if _, err := k.Wait(); err == nil {
			t.Error("a request in flight at unmount succeeded")
		}
	}
}
