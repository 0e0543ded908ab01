package kmodel_test

// Conformance of the model with the real kernel: the same operations run on
// a real mount (Linux 6.18, over /dev/fuse and over io_uring) and through
// the model, and the channels record what they see. Per request the
// normalized traces must agree on the channel it arrived on, the opcode,
// in.len, the size of the op struct (op_in on the ring), the payload size
// and the names. The real kernel sends more than the model's clients do
// (revalidations, extra GETATTRs, security xattr probes...); those extras
// are logged, not compared. Forgets are compared by channel and count.
//
// TestConformance746 does the same over the ring on a kernel with the 7.46
// FORGET series (kernel/patches; tests/patched runs it in a VM) with the
// daemon's opt-in, against the model's Patched kernel: every forget on
// the ring, in the queue of the CPU the evicting task ran on, as many
// messages and forgets per message as the kernel sent. It skips on a
// kernel that does not offer 7.46.

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/channel/devfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/kmodel"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// rec is one request as a channel saw it, normalized.
type rec struct {
	Channel     string
	Op          wire.Opcode
	Len         uint32
	ArgSize     int
	PayloadSize int
	Name, Name2 string
	Forgets     int // forget_one count of FORGET and BATCH_FORGET
	// Qid is the ring queue a forget message arrived on (ring forgets
	// only: which queue other requests take depends on where the client
	// ran).
	Qid int
}

func (r rec) String() string {
	s := fmt.Sprintf("%s %v len=%d arg=%d payload=%d", r.Channel, r.Op, r.Len, r.ArgSize, r.PayloadSize)
	if r.Name != "" {
		s += fmt.Sprintf(" name=%q", r.Name)
	}
	if r.Name2 != "" {
		s += fmt.Sprintf(" name2=%q", r.Name2)
	}
	if r.Forgets > 0 {
		s += fmt.Sprintf(" forgets=%d", r.Forgets)
	}
	if r.Channel == kmodel.ChannelRing && r.isForget() {
		s += fmt.Sprintf(" queue=%d", r.Qid)
	}
	return s
}

func (r rec) isForget() bool { return r.Op == wire.FUSE_FORGET || r.Op == wire.FUSE_BATCH_FORGET }

// trace collects records from several goroutines.
type trace struct {
	mu   sync.Mutex
	recs []rec
}

func (tr *trace) add(r rec) {
	tr.mu.Lock()
	tr.recs = append(tr.recs, r)
	tr.mu.Unlock()
}

func (tr *trace) snapshot() []rec {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]rec(nil), tr.recs...)
}

func (tr *trace) count(op wire.Opcode) int {
	n := 0
	for _, r := range tr.snapshot() {
		if r.Op == op {
			n++
		}
	}
	return n
}

var traceConn = &wire.Conn{Minor: 45}

// recordDev wraps a /dev/fuse Device and records every message read.
type recordDev struct {
	devfuse.Device
	tr *trace
}

func (d recordDev) Read(p []byte) (int, error) {
	n, err := d.Device.Read(p)
	if err == nil {
		d.tr.add(normalizeDev(p[:n]))
	}
	return n, err
}

func normalizeDev(msg []byte) rec {
	var r wire.Request
	err := wire.ParseDev(msg, traceConn, &r)
	h := r.Header
	out := rec{Channel: kmodel.ChannelDev, Op: h.Opcode, Len: h.Len}
	if err != nil {
		out.Name = "undecodable: " + err.Error()
		return out
	}
	out.ArgSize = len(r.Arg)
	out.PayloadSize = int(h.Len) - wire.SizeofInHeader - len(r.Arg)
	return named(out, &r)
}

func named(out rec, r *wire.Request) rec {
	out.Name, out.Name2 = string(r.Name), string(r.Name2)
	switch r.Header.Opcode {
	case wire.FUSE_FORGET:
		out.Forgets = 1
	case wire.FUSE_BATCH_FORGET:
		out.Forgets = len(r.ForgetOnes())
	}
	return out
}

// recordRing wraps a QueueRing and records every request delivered into an
// entry, before the channel serves it.
type recordRing struct {
	ring.QueueRing
	tr   *trace
	qid  int
	ents map[int]*ring.Entry // only the queue goroutine touches it
}

func newRecordRing(q ring.QueueRing, tr *trace, qid int) *recordRing {
	return &recordRing{QueueRing: q, tr: tr, qid: qid, ents: map[int]*ring.Entry{}}
}

func (r *recordRing) Register(e *ring.Entry, flags uint64) error {
	r.ents[e.Index] = e
	return r.QueueRing.Register(e, flags)
}

func (r *recordRing) Reap(dst []ring.Completion) int {
	n := r.QueueRing.Reap(dst)
	for _, c := range dst[:n] {
		e := r.ents[c.Entry]
		if c.Res != 0 || e == nil {
			continue
		}
		h := e.Header
		psz := min(int(h.RingEnt.PayloadSz), len(e.Payload))
		in := wire.View[wire.InHeader](h.InOut[:])
		out := rec{Channel: kmodel.ChannelRing, Op: in.Opcode, Len: in.Len,
			ArgSize: int(in.Len) - wire.SizeofInHeader - psz, PayloadSize: psz}
		var req wire.Request
		if err := wire.ParseRing(h.InOut[:], h.OpIn[:], e.Payload[:psz], traceConn, &req); err != nil {
			out.Name = "undecodable: " + err.Error()
		} else {
			out = named(out, &req)
		}
		if out.isForget() {
			out.Qid = r.qid
		}
		r.tr.add(out)
	}
	return n
}

// conformanceFS is the filesystem both runs serve: one 4 KiB file, direct
// I/O so that the kernel sends reads and writes of exactly the size asked.
func conformanceFS() *memFS {
	f := newMemFS(4096, "file")
	f.directIO = true
	return f
}

// conformanceServer are the server options of both runs: no attribute
// caching, so that stat(2) reaches the server.
func conformanceServer() server.Options { return server.Options{AttrTimeout: -1} }

// runOpts select the 7.46 path: the daemon's opt-in, and the CPU every
// client call and the eviction run on (-1: wherever).
type runOpts struct {
	forgetCommit bool
	cpu          int
}

var legacyRun = runOpts{cpu: -1}

// realRun performs the operations on a real mount and returns the trace
// and the server's statistics.
func realRun(t *testing.T, transport string, o runOpts) ([]rec, server.Stats) {
	dir := t.TempDir()
	conn, err := mount.Mount(dir, nil)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	connID, _ := conn.ConnID()
	tr := &trace{}
	lw := &logWriter{t: t}
	so := conformanceServer()
	so.ErrorLog = log.New(lw, "server: ", 0)
	var rc *ring.Channel
	if transport == kmodel.ChannelRing {
		rc = ring.New(conn.Fd(), &ring.Options{QueueDepth: 2, ForgetCommit: o.forgetCommit, NewRing: func(cfg ring.RingConfig) (ring.QueueRing, error) {
			q, err := ring.NewKernelRing(cfg)
			if err != nil {
				return nil, err
			}
			return newRecordRing(q, tr, cfg.Qid), nil
		}})
		so.Transport = rc
	}
	srv := server.New(conformanceFS(), &so)
	fd := devfuse.FD(conn.Fd())
	srv.SetBacking(fd.BackingOpen, fd.BackingClose)
	served := make(chan error, 1)
	go func() { served <- devfuse.Serve(srv, recordDev{fd, tr}, nil) }()

	var once sync.Once
	cleanup := func() {
		once.Do(func() {
			if err := mount.Unmount(dir); err != nil && !errors.Is(err, mount.ErrNotMounted) {
				t.Errorf("unmount: %v", err)
				_ = mount.ForceUnmount(dir, connID)
			}
			select {
			case err := <-served:
				if err != nil {
					t.Errorf("devfuse.Serve: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("server did not stop; aborting")
				_ = mount.ForceUnmount(dir, connID)
				<-served
			}
			if rc != nil {
				rc.Stop()
			}
			conn.Close()
			if ok, _ := mount.IsMounted(dir); ok {
				t.Errorf("%s still mounted", dir)
				_ = mount.ForceUnmount(dir, connID)
			}
			lw.mu.Lock()
			lw.done = true
			lw.mu.Unlock()
		})
	}
	t.Cleanup(cleanup)
	select {
	case <-srv.Initialized():
	case err := <-served:
		t.Fatalf("serving ended before INIT: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no INIT from the kernel")
	}
	if rc != nil && rc.Err() != nil {
		t.Fatalf("io_uring not used: %v", rc.Err())
	}
	if o.forgetCommit {
		if info := srv.Init(); info.KernelMinor < 46 {
			t.Skipf("the kernel offers FUSE 7.%d: no 7.46 FORGET series (tests/patched runs this in a VM on it)", info.KernelMinor)
		}
	}
	if o.cpu >= 0 {
		// Every client call, and so every eviction, from one CPU.
		runtime.LockOSThread()
		var all, one unix.CPUSet
		if err := unix.SchedGetaffinity(0, &all); err != nil {
			t.Fatal(err)
		}
		one.Set(o.cpu)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = unix.SchedSetaffinity(0, &all)
			runtime.UnlockOSThread()
		}()
	}

	// Raw system calls only: an os.File on the mount would be registered
	// with Go's poller, and the kernel would send POLL.
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	file, newFile := filepath.Join(dir, "file"), filepath.Join(dir, "new")
	var st unix.Stat_t
	must("stat", unix.Stat(file, &st))
	f, err := unix.Open(file, unix.O_RDWR|unix.O_CLOEXEC, 0)
	must("open", err)
	buf := make([]byte, 4096)
	_, err = unix.Pread(f, buf, 0)
	must("pread", err)
	_, err = unix.Pwrite(f, buf, 0)
	must("pwrite", err)
	must("fstat", unix.Fstat(f, &st))
	must("close", unix.Close(f))
	f, err = unix.Open(newFile, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
	must("create", err)
	must("close new", unix.Close(f))
	must("unlink", unix.Unlink(newFile))
	d, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	must("opendir", err)
	dents := make([]byte, 8192)
	for {
		n, err := unix.Getdents(d, dents)
		must("getdents", err)
		if n == 0 {
			break
		}
	}
	must("closedir", unix.Close(d))
	eventually(t, "both RELEASEs", func() bool { return tr.count(wire.FUSE_RELEASE) == 2 && tr.count(wire.FUSE_RELEASEDIR) == 1 })
	// drop_caches evicts the inodes; their forgets follow.
	eventually(t, "every node forgotten after drop_caches", func() bool {
		if srv.NodesAlive() == 0 {
			return true
		}
		must("drop_caches", os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0))
		time.Sleep(20 * time.Millisecond)
		return srv.NodesAlive() == 0
	})
	stats := srv.Stats()
	cleanup()
	return tr.snapshot(), stats
}

// modelRun performs the same operations through the model, as the kernel
// turns them into requests, and returns the trace.
func modelRun(t *testing.T, transport string, ro runOpts) ([]rec, server.Stats) {
	tr := &trace{}
	o := rigOptions{
		fs:     conformanceFS(),
		server: conformanceServer(),
		dev:    func(d devfuse.Device) devfuse.Device { return recordDev{d, tr} },
		model:  kmodel.Config{Patched: ro.forgetCommit},
	}
	if transport == kmodel.ChannelRing {
		o.ring = &ring.Options{QueueDepth: 2, ForgetCommit: ro.forgetCommit}
		o.wrap = func(q ring.QueueRing, cfg ring.RingConfig) ring.QueueRing { return newRecordRing(q, tr, cfg.Qid) }
	}
	cpu := max(ro.cpu, 0)
	r := startRig(t, o)
	m := r.m
	do := func(req kmodel.Request) kmodel.Reply {
		t.Helper()
		rep, err := m.Do(cpu, req)
		if err != nil {
			t.Fatalf("%v: %v", req.Op, err)
		}
		return rep
	}
	const root = wire.FUSE_ROOT_ID
	// stat
	id := do(kmodel.Lookup(root, "file")).Entry().NodeID
	do(kmodel.Getattr(id))
	// open, pread, pwrite, fstat, close
	fh := do(kmodel.Open(id, syscall.O_RDWR)).Open().Fh
	do(kmodel.Read(id, fh, 0, 4096))
	do(kmodel.Write(id, fh, 0, make([]byte, 4096)))
	do(kmodel.GetattrFh(id, fh))
	do(kmodel.Flush(id, fh))
	do(kmodel.Release(id, fh))
	// creat, close, unlink: the inode goes with its last link
	if _, err := m.Do(cpu, kmodel.Lookup(root, "new")); err != syscall.ENOENT {
		t.Fatalf("lookup new: %v", err)
	}
	rep := do(kmodel.Create(root, "new", syscall.O_CREAT|syscall.O_EXCL|syscall.O_RDWR, syscall.S_IFREG|0o644))
	nid, nfh := rep.Entry().NodeID, rep.Open().Fh
	do(kmodel.Flush(nid, nfh))
	do(kmodel.Release(nid, nfh))
	do(kmodel.Unlink(root, "new"))
	m.Evict(cpu, nid)
	// opendir, getdents, closedir
	dfh := do(kmodel.Opendir(root)).Open().Fh
	n := len(do(kmodel.Readdir(root, dfh, 0, 4096, true)).Out)
	if n == 0 {
		t.Fatal("empty listing")
	}
	// The next getdents resumes after the last entry ("." "..", "file"):
	// READDIRPLUS_AUTO makes it a plain READDIR.
	do(kmodel.Readdir(root, dfh, 3, 4096, false))
	do(kmodel.Releasedir(root, dfh))
	// drop_caches
	m.EvictAll(cpu)
	if !waitForgets(m) {
		t.Fatal("forgets did not drain")
	}
	eventually(t, "every node forgotten", func() bool { return r.srv.NodesAlive() == 0 })
	return tr.snapshot(), r.srv.Stats()
}

func TestConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts with mount(2)")
	}
	for _, transport := range []string{kmodel.ChannelDev, kmodel.ChannelRing} {
		t.Run(transport, func(t *testing.T) {
			if transport == kmodel.ChannelRing {
				if on, err := mount.UringEnabled(); err != nil || !on {
					t.Skipf("needs FUSE_OVER_IO_URING: %s is not Y (%v)", mount.EnableUringParam, err)
				}
			}
			real, realStats := realRun(t, transport, legacyRun)
			model, modelStats := modelRun(t, transport, legacyRun)
			compareTraces(t, transport, real, model, kmodel.ChannelDev)
			// Forgets: all on /dev/fuse, the same number, the node
			// tables empty.
			for name, st := range map[string]server.Stats{"real": realStats, "model": modelStats} {
				if u := st.Channels["uring"]; u != nil && u.Forgets != 0 {
					t.Errorf("%s: %d forgets on the ring", name, u.Forgets)
				}
				if st.NodesAlive != 0 {
					t.Errorf("%s: %d nodes alive", name, st.NodesAlive)
				}
			}
			if r, m := realStats.Channels["devfuse"].Forgets, modelStats.Channels["devfuse"].Forgets; r != m {
				t.Errorf("forgets on /dev/fuse: real %d, model %d", r, m)
			}
		})
	}
}

// compareTraces matches every model record with a real one of the same
// opcode and names, in order, and compares the rest.
func compareTraces(t *testing.T, transport string, real, model []rec, forgetCh string) {
	t.Helper()
	var log strings.Builder
	fmt.Fprintf(&log, "real kernel (%s):\n", transport)
	for _, r := range real {
		fmt.Fprintf(&log, "  %v\n", r)
	}
	fmt.Fprintf(&log, "model:\n")
	for _, r := range model {
		fmt.Fprintf(&log, "  %v\n", r)
	}
	t.Log(log.String())

	used := make([]bool, len(real))
	var realForgets, modelForgets int
	for _, r := range real {
		if r.isForget() {
			realForgets += r.Forgets
			if r.Channel != forgetCh {
				t.Errorf("real: forget on %s: %v", r.Channel, r)
			}
		}
	}
	for _, m := range model {
		if m.isForget() {
			modelForgets += m.Forgets
			if m.Channel != forgetCh {
				t.Errorf("model: forget on %s: %v", m.Channel, m)
			}
			continue
		}
		found := false
		for i, r := range real {
			if used[i] || r.Op != m.Op || r.Name != m.Name || r.Name2 != m.Name2 {
				continue
			}
			used[i], found = true, true
			r.Forgets, m.Forgets = 0, 0
			if r != m {
				t.Errorf("model %v\n      real %v", m, r)
			}
			break
		}
		if !found {
			t.Errorf("model sent %v; the real kernel sent no such request", m)
		}
	}
	if realForgets != modelForgets {
		t.Errorf("forgets: real %d, model %d", realForgets, modelForgets)
	}
	for i, r := range real {
		if !used[i] && !r.isForget() {
			t.Logf("real kernel only: %v", r)
		}
	}
}

// TestConformance746 compares the model's Patched kernel with a kernel
// that has the 7.46 FORGET series, over the ring with the daemon's opt-in
// and every client call (and so every eviction) on one CPU: the requests
// as in TestConformance, and the forgets all on the ring, in that CPU's
// queue, one FORGET per message (patch 0001, the series' default), as many
// as the kernel sent. It skips unless the kernel offers protocol 7.46.
func TestConformance746(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts with mount(2)")
	}
	if on, err := mount.UringEnabled(); err != nil || !on {
		t.Skipf("needs FUSE_OVER_IO_URING: %s is not Y (%v)", mount.EnableUringParam, err)
	}
	// The last CPU, so that the queue is not 0 by accident.
	o := runOpts{forgetCommit: true, cpu: runtime.NumCPU() - 1}
	real, realStats := realRun(t, kmodel.ChannelRing, o)
	model, modelStats := modelRun(t, kmodel.ChannelRing, o)
	compareTraces(t, kmodel.ChannelRing, real, model, kmodel.ChannelRing)
	shape := func(recs []rec) (msgs, forgets int, perMsg, queues map[int]int) {
		perMsg, queues = map[int]int{}, map[int]int{}
		for _, r := range recs {
			if r.isForget() {
				msgs++
				forgets += r.Forgets
				perMsg[r.Forgets]++
				queues[r.Qid]++
			}
		}
		return
	}
	rm, rf, rp, rq := shape(real)
	mm, mf, mp, mq := shape(model)
	t.Logf("forgets on the ring: real %d in %d messages (sizes %v, queues %v), model %d in %d (sizes %v, queues %v)", rf, rm, rp, rq, mf, mm, mp, mq)
	if rm != mm || rf != mf || fmt.Sprint(rp) != fmt.Sprint(mp) {
		t.Errorf("forget messages: real %d with %d forgets (sizes %v), model %d with %d (sizes %v)", rm, rf, rp, mm, mf, mp)
	}
	if fmt.Sprint(rq) != fmt.Sprint(map[int]int{o.cpu: rm}) || fmt.Sprint(mq) != fmt.Sprint(map[int]int{o.cpu: mm}) {
		t.Errorf("queues of the forget messages: real %v, model %v; want all on queue %d (the evicting CPU's)", rq, mq, o.cpu)
	}
	for name, st := range map[string]server.Stats{"real": realStats, "model": modelStats} {
		if d := st.Channels["devfuse"]; d != nil && d.Forgets != 0 {
			t.Errorf("%s: %d forgets on /dev/fuse with the opt-in", name, d.Forgets)
		}
		if st.NodesAlive != 0 {
			t.Errorf("%s: %d nodes alive", name, st.NodesAlive)
		}
	}
}
