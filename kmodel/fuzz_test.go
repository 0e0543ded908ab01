package kmodel_test

// FuzzSequence: a fuzzed sequence of kernel-side events (client requests
// of many opcodes, well-formed or raw, forgets, evictions, interrupts,
// truncated deliveries, aborts and unmounts) driven through the model
// against the real server, /dev/fuse channel and ring channel.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/channel/devfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/kmodel"
	"github.com/ringfuse/ringfuse/wire"
)

// seqWait bounds how long any wait of a FuzzSequence run may take: past
// it the run is deadlocked.
const seqWait = 10 * time.Second

// Events of a FuzzSequence program: the event byte modulo seqEvents. An
// event byte with the high bit set issues its request without waiting
// for the reply (the call stays pending until a seqWaitCall event or the
// end).
const (
	seqLookup = iota
	seqGetattr
	seqOpen
	seqRead
	seqWrite
	seqCreate
	seqUnlink
	seqReaddir
	seqRelease
	seqForget
	seqEvict
	seqEvictAll
	seqInterrupt
	seqWaitCall
	seqTruncate
	seqRaw
	seqEnd
	seqEvents
)

// seqAsync marks an event byte whose request is not waited for.
const seqAsync = 0x80

// Program encoding. A CPU or node selector byte at or above seqRawSel
// picks an out-of-range value; a node selector that is a multiple of
// seqRootEvery (and any, before a node is known) picks the root; an open
// handle selector that is a multiple of seqRootEvery picks a made-up one.
// Offsets count seqOffUnit bytes and sizes seqSizeUnit bytes per unit of
// their byte; a raw request's fixed struct is 0 to 7 seqArgUnit bytes.
const (
	seqRawSel    = 0xf0
	seqRootEvery = 8
	seqOffUnit   = 64
	seqSizeUnit  = 32
	seqArgUnit   = 16
)

// seqBadNodes are the node IDs an out-of-range selector picks.
var seqBadNodes = []uint64{0, 1000, 1 << 63, ^uint64(0)}

// seqMaxPending bounds the calls a program keeps in flight.
const seqMaxPending = 16

// Names the programs look up and create: some exist, some do not.
var seqNames = []string{"f00000", "f00001", "f00002", "f00003", "new0", "new1", "missing", ".", ""}

// Opcodes of raw requests: every opcode whose reply does not change what
// the model counts as open, with arbitrary arguments.
var seqRawOps = []wire.Opcode{
	wire.FUSE_LOOKUP, wire.FUSE_GETATTR, wire.FUSE_SETATTR, wire.FUSE_READLINK, wire.FUSE_SYMLINK,
	wire.FUSE_MKNOD, wire.FUSE_MKDIR, wire.FUSE_UNLINK, wire.FUSE_RMDIR, wire.FUSE_RENAME,
	wire.FUSE_LINK, wire.FUSE_READ, wire.FUSE_WRITE, wire.FUSE_STATFS, wire.FUSE_FSYNC,
	wire.FUSE_SETXATTR, wire.FUSE_GETXATTR, wire.FUSE_LISTXATTR, wire.FUSE_REMOVEXATTR, wire.FUSE_FLUSH,
	wire.FUSE_READDIR, wire.FUSE_READDIRPLUS, wire.FUSE_FSYNCDIR, wire.FUSE_GETLK, wire.FUSE_SETLK,
	wire.FUSE_ACCESS, wire.FUSE_BMAP, wire.FUSE_DESTROY, wire.FUSE_IOCTL, wire.FUSE_POLL,
	wire.FUSE_FALLOCATE, wire.FUSE_RENAME2, wire.FUSE_LSEEK, wire.FUSE_COPY_FILE_RANGE,
	wire.FUSE_SETUPMAPPING, wire.FUSE_REMOVEMAPPING, wire.FUSE_SYNCFS, wire.FUSE_TMPFILE,
	wire.FUSE_STATX, wire.FUSE_COPY_FILE_RANGE_64, 7, 99,
}

// Model configurations a program picks with its first byte.
var seqConfigs = []struct {
	name  string
	model kmodel.Config
	ring  bool
	optIn bool
}{
	{"devfuse", kmodel.Config{}, false, false},
	{"uring", kmodel.Config{}, true, false},
	{"Patched", kmodel.Config{Patched: true}, true, true},
	{"Patched/batch4", kmodel.Config{Patched: true, UringForgetBatch: true}, true, true},
	{"Patched/cap1", kmodel.Config{Patched: true, UringForgetCap: 1}, true, true},
	{"Patched/batch4/cap1", kmodel.Config{Patched: true, UringForgetBatch: true, UringForgetCap: 1}, true, true},
	{"Patched/no-opt-in", kmodel.Config{Patched: true}, true, false},
}

type seqProg struct {
	b []byte
	i int
}

func (p *seqProg) more() bool { return p.i < len(p.b) }

func (p *seqProg) u8() byte {
	if p.i >= len(p.b) {
		return 0
	}
	v := p.b[p.i]
	p.i++
	return v
}

func (p *seqProg) bytes(n int) []byte {
	out := make([]byte, n)
	p.i += copy(out, p.b[min(p.i, len(p.b)):])
	return out
}

// seqCall is a request in flight.
type seqCall struct {
	call *kmodel.Call
	op   wire.Opcode
	node uint64
}

type seqHandle struct{ node, fh uint64 }

// seqRun is the state of one program run.
type seqRun struct {
	t       *testing.T
	r       *rig
	nq      int
	known   []uint64 // node IDs seen in entry replies
	opens   []seqHandle
	pending []seqCall
	ended   bool // Unmount or Abort happened
	buf     []byte

	// A seqTruncate event arms truncArm bytes for the next request whose
	// body is at least that long (so that /dev/fuse still delivers its
	// header: the kernel never returns less, and a request without one
	// cannot be answered). truncUnique and truncBy tell the model's
	// fault hook which request to cut; one delivered before its unique
	// is known escapes the cut.
	truncArm    int
	truncUnique atomic.Uint64
	truncBy     atomic.Int32
}

func (s *seqRun) cpu(p *seqProg) int {
	c := int(p.u8())
	if c >= seqRawSel {
		return c // a CPU beyond the queues: the kernel uses queue 0
	}
	return c % s.nq
}

func (s *seqRun) node(p *seqProg) uint64 {
	v := p.u8()
	switch {
	case v >= seqRawSel:
		return seqBadNodes[int(v)%len(seqBadNodes)]
	case len(s.known) == 0 || v%seqRootEvery == 0:
		return wire.FUSE_ROOT_ID
	}
	return s.known[int(v)%len(s.known)]
}

func (s *seqRun) name(p *seqProg) string { return seqNames[int(p.u8())%len(seqNames)] }

// finish records what a completed call handed out.
func (s *seqRun) finish(c seqCall, rep kmodel.Reply, err error) {
	if err != nil {
		if s.ended {
			return
		}
		switch err {
		case syscall.ENOTCONN, syscall.ECONNABORTED, syscall.ECONNREFUSED:
			s.t.Fatalf("%v on node %d: %v while connected", c.op, c.node, err)
		}
		return
	}
	switch c.op {
	case wire.FUSE_LOOKUP, wire.FUSE_CREATE, wire.FUSE_MKNOD, wire.FUSE_MKDIR, wire.FUSE_SYMLINK, wire.FUSE_LINK:
		if e := rep.Entry(); e != nil && e.NodeID > wire.FUSE_ROOT_ID && !slices.Contains(s.known, e.NodeID) {
			s.known = append(s.known, e.NodeID)
		}
	}
	switch c.op {
	case wire.FUSE_OPEN, wire.FUSE_CREATE:
		node := c.node
		if c.op == wire.FUSE_CREATE {
			node = rep.Entry().NodeID
		}
		s.opens = append(s.opens, seqHandle{node, rep.Open().Fh})
	}
}

// wait waits for a call, failing the run if it does not end within
// seqWait.
func (s *seqRun) wait(c seqCall) {
	s.t.Helper()
	select {
	case <-c.call.Done():
	case <-time.After(seqWait):
		s.t.Fatalf("deadlock: %v on node %d unanswered after %v; model %+v, channel %+v",
			c.op, c.node, seqWait, s.r.m.Stats(), s.ringStats())
	}
	rep, err := c.call.Wait()
	s.finish(c, rep, err)
}

func (s *seqRun) ringStats() any {
	if s.r.ch == nil {
		return nil
	}
	return s.r.ch.Stats()
}

// issue starts req on cpu and waits for it unless async.
func (s *seqRun) issue(cpu int, req kmodel.Request, async bool) {
	c := seqCall{call: s.r.m.Start(cpu, req), op: req.Op, node: req.NodeID}
	if k := s.truncArm; k > 0 && len(req.Arg)+len(req.Payload) >= k {
		s.truncArm = 0
		s.truncBy.Store(int32(k))
		s.truncUnique.Store(c.call.Unique())
	}
	if async && len(s.pending) < seqMaxPending {
		s.pending = append(s.pending, c)
		return
	}
	s.wait(c)
}

// step decodes and runs one event.
func (s *seqRun) step(p *seqProg) {
	ev := p.u8()
	async := ev&seqAsync != 0
	m := s.r.m
	kind := int(ev&^seqAsync) % seqEvents
	switch kind {
	case seqLookup:
		cpu := s.cpu(p)
		s.issue(cpu, kmodel.Lookup(s.node(p), s.name(p)), async)
	case seqGetattr:
		cpu := s.cpu(p)
		s.issue(cpu, kmodel.Getattr(s.node(p)), async)
	case seqOpen:
		cpu := s.cpu(p)
		s.issue(cpu, kmodel.Open(s.node(p), uint32(p.u8()%3)), async)
	case seqRead, seqWrite:
		cpu, o := s.cpu(p), s.openSel(p)
		off := uint64(p.u8()) * seqOffUnit
		size := uint32(p.u8()) * seqSizeUnit
		if kind == seqRead {
			s.issue(cpu, kmodel.Read(o.node, o.fh, off, size), async)
		} else {
			s.issue(cpu, kmodel.Write(o.node, o.fh, off, s.buf[:size]), async)
		}
	case seqCreate:
		cpu := s.cpu(p)
		s.issue(cpu, kmodel.Create(s.node(p), s.name(p), syscall.O_RDWR, 0o644), async)
	case seqUnlink:
		cpu := s.cpu(p)
		s.issue(cpu, kmodel.Unlink(s.node(p), s.name(p)), async)
	case seqReaddir:
		// opendir, one listing, releasedir: as ls does.
		cpu, plus := s.cpu(p), p.u8()&1 != 0
		size, off := uint32(p.u8())*seqOffUnit, uint64(p.u8()%seqRootEvery) // off: a cookie
		node := s.node(p)
		c := seqCall{call: m.Start(cpu, kmodel.Opendir(node)), op: wire.FUSE_OPENDIR, node: node}
		s.wait(c)
		rep, err := c.call.Wait()
		if err != nil {
			return
		}
		fh := rep.Open().Fh
		s.issue(cpu, kmodel.Readdir(node, fh, off, size, plus), false)
		s.issue(cpu, kmodel.Releasedir(node, fh), false)
	case seqRelease:
		if len(s.opens) == 0 {
			return
		}
		i := int(p.u8()) % len(s.opens)
		o := s.opens[i]
		s.opens = slices.Delete(s.opens, i, i+1)
		cpu := s.cpu(p)
		s.issue(cpu, kmodel.Flush(o.node, o.fh), async)
		s.issue(cpu, kmodel.Release(o.node, o.fh), async)
	case seqForget:
		// A forget of part of what the kernel holds. Never more: the
		// kernel forgets exactly the lookups it counted, and only that
		// makes forgets commute with the lookups racing them (a channel
		// may apply a forget after a later lookup of the node).
		cpu, node := s.cpu(p), s.node(p)
		held := m.Lookups(node)
		n := min(uint64(p.u8()%3)+1, held)
		if n == 0 || s.isOpen(node) {
			return // nothing held, or open: the kernel never forgets an open inode
		}
		m.Forget(cpu, node, n)
	case seqEvict:
		cpu := s.cpu(p)
		m.Evict(cpu, s.node(p))
	case seqEvictAll:
		m.EvictAll(0)
	case seqInterrupt:
		if len(s.pending) > 0 {
			m.Interrupt(s.pending[int(p.u8())%len(s.pending)].call)
		}
	case seqWaitCall:
		if len(s.pending) > 0 {
			i := int(p.u8()) % len(s.pending)
			c := s.pending[i]
			s.pending = slices.Delete(s.pending, i, i+1)
			s.wait(c)
		}
	case seqTruncate:
		// The next request long enough is delivered 1 to 4 bytes short.
		s.truncArm = int(p.u8()%4 + 1)
	case seqRaw:
		op := seqRawOps[int(p.u8())%len(seqRawOps)]
		cpu, node := s.cpu(p), s.node(p)
		arg := p.bytes(int(p.u8()%8) * seqArgUnit)
		payload := p.bytes(int(p.u8()))
		s.issue(cpu, kmodel.Request{Op: op, NodeID: node, UID: 1000, GID: 100, PID: 4242, Arg: arg, Payload: payload}, async)
	case seqEnd:
		s.ended = true
		if p.u8()&1 != 0 {
			m.Abort()
		} else {
			m.Unmount()
		}
	}
}

func (s *seqRun) openSel(p *seqProg) seqHandle {
	if len(s.opens) == 0 || p.u8()%seqRootEvery == 0 {
		return seqHandle{node: s.node(p), fh: uint64(p.u8())}
	}
	return s.opens[int(p.u8())%len(s.opens)]
}

func (s *seqRun) isOpen(node uint64) bool {
	for _, o := range s.opens {
		if o.node == node {
			return true
		}
	}
	return false
}

// FuzzSequence decodes its input into a model configuration and a
// sequence of events, runs them against a real server over the model, and
// checks: no call waits forever (deadlock), every request gets exactly
// one valid reply (no /dev/fuse write or ring commit refused, no reply
// failing the kernel's checks), no handler panics, the server's lookup
// counts equal what the kernel told it, and, once every handle is closed
// and everything evicted, no node stays alive and no ring entry is
// stranded or held. After an unmount or abort, every call ends, the
// channels stop, and the lookup counts still agree.
func FuzzSequence(f *testing.F) {
	for _, s := range sequenceSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		p := &seqProg{b: prog}
		c0 := p.u8()
		cfg := seqConfigs[int(c0)%len(seqConfigs)]
		o := rigOptions{model: cfg.model, fs: newMemFS(4096, seqNames[:4]...)}
		if cfg.ring {
			o.ring = &ring.Options{QueueDepth: 1 + int(c0>>4)%3, ForgetCommit: cfg.optIn}
		}
		r := startRig(t, o)
		s := &seqRun{t: t, r: r, nq: r.m.Config().NrQueues, buf: make([]byte, 256*seqSizeUnit)}
		r.m.SetFaults(kmodel.Faults{Truncate: func(op wire.Opcode, unique uint64) int {
			if unique == 0 || !s.truncUnique.CompareAndSwap(unique, 0) {
				return 0
			}
			return int(s.truncBy.Load())
		}})
		for steps := 0; p.more(); steps++ {
			s.step(p)
		}
		for _, c := range s.pending {
			s.wait(c)
		}
		s.pending = nil
		s.truncUnique.Store(0)
		if s.ended {
			checkEnded(t, r)
			return
		}
		checkQuiet(t, r)
		settle(t, r)
		// Close everything, evict everything: nothing may stay.
		for _, o := range s.opens {
			s.issue(0, kmodel.Flush(o.node, o.fh), false)
			s.issue(0, kmodel.Release(o.node, o.fh), false)
		}
		s.opens = nil
		r.m.EvictAll(0)
		ctx, cancel := context.WithTimeout(context.Background(), seqWait)
		defer cancel()
		if err := r.m.WaitForgets(ctx); err != nil {
			t.Fatalf("forgets did not drain: %v; model %+v", err, r.m.Stats())
		}
		waitFor(t, "no live nodes", func() bool { return r.srv.NodesAlive() == 0 }, func() string {
			return fmt.Sprintf("%d nodes alive, model %+v", r.srv.NodesAlive(), r.m.Stats())
		})
		settle(t, r)
		waitFor(t, "idle ring", func() bool { return ringIdle(r) }, func() string {
			return fmt.Sprintf("model %+v", r.m.Stats())
		})
		checkQuiet(t, r)
	})
}

// checkQuiet checks the model's error counters while connected: no reply
// refused on /dev/fuse, no commit refused, no ring reply failing
// validation, no stranded entry.
func checkQuiet(t *testing.T, r *rig) {
	t.Helper()
	st := r.m.Stats()
	if st.Dev.WriteErrors != 0 {
		t.Fatalf("%d /dev/fuse replies refused: %+v", st.Dev.WriteErrors, st)
	}
	for _, q := range st.Queues {
		if q.CommitErrors != 0 || q.ReplyErrors != 0 || q.ForgetBadCommits != 0 {
			t.Fatalf("queue %d: %d commits refused, %d replies invalid, %d bad forget commits: %+v",
				q.Qid, q.CommitErrors, q.ReplyErrors, q.ForgetBadCommits, q)
		}
	}
	if r.ch != nil {
		if cs := r.ch.Stats(); cs.Stranded != 0 || cs.ForgetErrors != 0 || cs.RegisterFailures != 0 {
			t.Fatalf("ring channel: %+v", cs)
		}
	}
}

// ringIdle reports whether every registered ring entry is available again
// and nothing waits or holds a forget.
func ringIdle(r *rig) bool {
	st := r.m.Stats()
	for _, q := range st.Queues {
		if q.States[kmodel.FRRS_AVAILABLE] != q.Entries || q.Backlog != 0 || q.ForgetBacklog != 0 || q.ForgetHeld != 0 {
			return false
		}
	}
	return st.ForgetsOutstanding == 0 && st.ForgetListLen == 0
}

// checkEnded checks a run that ended with an unmount or abort: the
// channels stop on their own and the server holds what it was told.
func checkEnded(t *testing.T, r *rig) {
	t.Helper()
	if err := r.wait(); err != nil && !errors.Is(err, devfuse.ErrAborted) {
		t.Fatalf("devfuse.Serve: %v", err)
	}
	if r.ch != nil {
		select {
		case <-r.ch.Done():
		case <-time.After(seqWait):
			t.Fatalf("ring channel did not stop after the connection ended: %+v", r.ch.Stats())
		}
	}
	st := r.m.Stats()
	if st.ForgetsOutstanding != 0 || st.ForgetsQueued != st.ForgetsDelivered+st.ForgetsDropped {
		t.Fatalf("forgets after the end: %+v", st)
	}
	checkEndedAccounting(t, r.m, r.srv)
}

// settle waits until every forget queued has drained and the server has
// applied the ones it received (it applies a forget a little after the
// model hands it over), then compares the lookup counts.
func settle(t *testing.T, r *rig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), seqWait)
	defer cancel()
	if err := r.m.WaitForgets(ctx); err != nil {
		t.Fatalf("forgets did not drain: %v; model %+v", err, r.m.Stats())
	}
	deadline := time.Now().Add(seqWait)
	for !accountsAgree(r) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	checkAccounting(t, r.m, r.srv)
}

// accountsAgree reports whether the server holds exactly the lookups the
// model told it of.
func accountsAgree(r *rig) bool {
	var live int64
	for _, id := range r.m.Nodes() {
		want := r.m.ServerLookups(id)
		if want > 0 {
			live++
		}
		if r.srv.Lookups(id) != want {
			return false
		}
	}
	return r.srv.NodesAlive() == live
}

// waitFor polls cond until it holds or seqWait passes.
func waitFor(t *testing.T, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(seqWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, state())
		}
		time.Sleep(time.Millisecond)
	}
}

// sequenceSeeds are small programs over every configuration: lookups and
// opens from both CPUs, reads and writes, listings, forgets and
// evictions, interrupted and truncated requests, raw requests, and each
// way a connection ends.
func sequenceSeeds() [][]byte {
	const async = seqAsync
	body := []byte{
		seqLookup, 0, 0, 0, // f00000 from CPU 0
		seqLookup, 1, 0, 1, // f00001 from CPU 1
		seqOpen, 0, 1, 2,
		seqWrite, 0, 1, 0, 1, 8,
		seqRead, 1, 1, 0, 1, 8,
		seqReaddir, 1, 1, 16, 0, 0,
		seqCreate, 0, 0, 4,
		async | seqLookup, 1, 0, 2,
		async | seqGetattr, 0, 1,
		seqInterrupt, 0,
		seqWaitCall, 0,
		seqTruncate, 2,
		seqLookup, 0, 0, 3,
		seqForget, 0, 2, 1,
		seqEvict, 1, 3,
		seqRelease, 0, 0,
		seqEvictAll,
		seqLookup, 0, 0, 1,
		seqRaw, 0, 0, 0, 0, 3, 'x', 'y', 0, // LOOKUP "xy"
		seqRaw, 11, 1, 1, 0, 0, // READ without its fuse_read_in
		seqRaw, 40, 0, 0, 2, 1, 0xff, // STATX with a 32-byte fuse_statx_in
	}
	var seeds [][]byte
	for i := range seqConfigs {
		seeds = append(seeds, append([]byte{byte(i)}, body...))
	}
	// Connections that end with requests in flight.
	for _, end := range []byte{0, 1} {
		for _, c := range []byte{0, 2, 3} {
			s := append([]byte{c}, body[:16]...)
			s = append(s, async|seqLookup, 0, 0, 2, async|seqRead, 1, 1, 0, 1, 8, seqEnd, end, seqLookup, 0, 0, 1)
			seeds = append(seeds, s)
		}
	}
	return seeds
}
