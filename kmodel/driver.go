package kmodel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/ringfuse/ringfuse/wire"
)

// DriverConfig configures [Conn.Drive]. Zero fields take the defaults
// noted.
type DriverConfig struct {
	// Clients is the number of simulated client tasks; client i runs on
	// CPU i % NrQueues. Zero means NrQueues.
	Clients int
	// Duration is how long the clients issue requests. Zero means one
	// second, unless Ops is set.
	Duration time.Duration
	// Ops, if positive, ends each client after this many operations.
	Ops int
	// Dir is the node ID of the directory holding the files. Zero means
	// the root.
	Dir uint64
	// Names are the regular files in Dir the clients look up. Required.
	Names []string
	// OpenFiles is how many of Names (the first ones) every client opens
	// read-write at the start, for its reads, writes and getattrs. Zero
	// means one. Open files are never evicted; they are released at the
	// end.
	OpenFiles int
	// Mix weighs the operations. The zero value means {Lookup: 4,
	// Getattr: 2, Read: 1, Write: 1}.
	Mix Mix
	// IOSize is the size of each read and write in bytes. Zero means 4096.
	IOSize int
	// StormEvery, if positive, runs an eviction storm at this period while
	// the clients run: every node the kernel holds a lookup of and that is
	// not open is forgotten with its whole lookup count
	// ([Conn.EvictStorm]). Whatever the setting, a final storm runs after
	// the clients stopped and released their files.
	StormEvery time.Duration
	// Storm gives each storm's evicting tasks (their CPUs) and pacing. The
	// zero value is drop_caches: one task on CPU 0 at [DefaultEvictRate].
	Storm Storm
	// Seed seeds the clients' random choices.
	Seed uint64
}

// Mix weighs the driver's operations; an operation of weight 0 is never
// chosen.
type Mix struct {
	Lookup  int // LOOKUP of a random name
	Getattr int // GETATTR (fstat) of an open file
	Read    int // READ of IOSize bytes at offset 0 of an open file
	Write   int // WRITE of IOSize bytes at offset 0 of an open file
}

// DriverStats are the results of [Conn.Drive].
type DriverStats struct {
	// Elapsed is the length of the client phase.
	Elapsed time.Duration
	// Ops counts the client operations of that phase, Errors those that
	// failed.
	Ops, Errors uint64
	// Latency covers every operation of the client phase, ByOp each
	// opcode ("LOOKUP", "GETATTR", "READ", "WRITE").
	Latency LatencyStats
	ByOp    map[string]LatencyStats
	// Storms lists the eviction storms in order, the final one last.
	Storms []StormStats
	// ForgetHeldMean is, per ring queue, the time-weighted mean number of
	// entries holding forgets during the client phase.
	ForgetHeldMean []float64
	// Model is the model's statistics at the end.
	Model Stats
}

// LatencyStats summarize request latencies: from the client's system call
// to its reply.
type LatencyStats struct {
	Count          uint64
	Mean, P50, P99 time.Duration
	Max            time.Duration
}

// StormStats describe one eviction storm.
type StormStats struct {
	// Start is when the storm ran, from the start of the client phase.
	Start time.Duration
	// Nodes counts the nodes evicted (one forget each).
	Nodes int
	// Drain is the time from the storm until no forget was left
	// outstanding (read from /dev/fuse, or delivered on the ring and
	// committed). Forgets queued meanwhile by other evictions count too.
	Drain time.Duration
	// Drained is false if the run ended first.
	Drained bool
	// Final marks the storm after the client phase.
	Final bool
}

// Drive runs simulated clients against the server on the other side of
// the connection: Clients tasks, one per CPU in turn, issuing lookups,
// getattrs, reads and writes on Names, with eviction storms, recording
// every request's latency and each storm's drain time. The server must be
// serving (INIT answered) and must not be wedged: a client request waits
// for its reply as in the kernel, so a request stuck in a queue ends only
// when the connection does (Unmount or Abort). Drive returns when the
// client phase is over (Duration, Ops or ctx) and the final storm has
// drained, or when ctx is done. A failed setup (a missing name, an open
// refused) or a connection ending early is an error.
func (c *Conn) Drive(ctx context.Context, cfg DriverConfig) (DriverStats, error) {
	var st DriverStats
	if len(cfg.Names) == 0 {
		return st, errors.New("kmodel: Drive: no names")
	}
	if cfg.Clients == 0 {
		cfg.Clients = c.cfg.NrQueues
	}
	if cfg.OpenFiles == 0 {
		cfg.OpenFiles = 1
	}
	cfg.OpenFiles = min(cfg.OpenFiles, len(cfg.Names))
	if cfg.Dir == 0 {
		cfg.Dir = wire.FUSE_ROOT_ID
	}
	if cfg.Mix == (Mix{}) {
		cfg.Mix = Mix{Lookup: 4, Getattr: 2, Read: 1, Write: 1}
	}
	if cfg.IOSize == 0 {
		cfg.IOSize = 4096
	}
	if cfg.Duration == 0 && cfg.Ops == 0 {
		cfg.Duration = time.Second
	}
	if cfg.Clients < 0 || cfg.IOSize < 0 || cfg.Mix.Lookup < 0 || cfg.Mix.Getattr < 0 || cfg.Mix.Read < 0 || cfg.Mix.Write < 0 {
		return st, errors.New("kmodel: Drive: negative setting")
	}
	select {
	case <-c.Initialized():
	case <-ctx.Done():
		return st, ctx.Err()
	}

	clients := make([]*client, cfg.Clients)
	for i := range clients {
		cl := &client{
			c:   c,
			cfg: &cfg,
			cpu: i % c.cfg.NrQueues,
			rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
			out: make([]byte, cfg.IOSize+4096),
			buf: make([]byte, cfg.IOSize),
		}
		if err := cl.open(); err != nil {
			for _, o := range clients[:i] {
				o.release()
			}
			return st, err
		}
		clients[i] = cl
	}

	var runCtx context.Context
	var cancel context.CancelFunc
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	} else {
		runCtx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	before := c.Stats()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cl.run(runCtx)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	stormsDone := make(chan []StormStats, 1)
	go func() { stormsDone <- c.storms(runCtx, &cfg, start) }()
	wg.Wait()
	cancel()
	st.Elapsed = time.Since(start)
	after := c.Stats()
	st.Storms = <-stormsDone
	for i, q := range after.Queues {
		area := q.ForgetHeldSeconds
		if i < len(before.Queues) {
			area -= before.Queues[i].ForgetHeldSeconds
		}
		st.ForgetHeldMean = append(st.ForgetHeldMean, area/st.Elapsed.Seconds())
	}

	for _, cl := range clients {
		cl.release()
	}
	final := StormStats{Start: time.Since(start), Final: true}
	final.Nodes = c.EvictStorm(ctx, cfg.Storm)
	t0 := time.Now()
	err := c.WaitForgets(ctx)
	final.Drain, final.Drained = time.Since(t0), err == nil
	st.Storms = append(st.Storms, final)

	var all []time.Duration
	byOp := map[wire.Opcode][]time.Duration{}
	for _, cl := range clients {
		st.Ops += cl.ops
		st.Errors += cl.errors
		for op, l := range cl.lat {
			byOp[op] = append(byOp[op], l...)
			all = append(all, l...)
		}
	}
	st.Latency = summarize(all)
	st.ByOp = make(map[string]LatencyStats, len(byOp))
	for op, l := range byOp {
		st.ByOp[op.String()] = summarize(l)
	}
	st.Model = c.Stats()
	if e := errors.Join(errs...); e != nil {
		return st, e
	}
	return st, err
}

// storms runs the periodic eviction storms until ctx is done.
func (c *Conn) storms(ctx context.Context, cfg *DriverConfig, start time.Time) []StormStats {
	var out []StormStats
	if cfg.StormEvery <= 0 {
		return out
	}
	tick := time.NewTicker(cfg.StormEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		s := StormStats{Start: time.Since(start)}
		s.Nodes = c.EvictStorm(ctx, cfg.Storm)
		t0 := time.Now()
		err := c.WaitForgets(ctx)
		s.Drain, s.Drained = time.Since(t0), err == nil
		out = append(out, s)
	}
}

// client is one simulated task.
type client struct {
	c      *Conn
	cfg    *DriverConfig
	cpu    int
	rng    *rand.Rand
	files  []openFile
	out    []byte
	buf    []byte
	ops    uint64
	errors uint64
	lat    map[wire.Opcode][]time.Duration
}

type openFile struct{ node, fh uint64 }

// open looks up and opens the client's files.
func (cl *client) open() error {
	for _, name := range cl.cfg.Names[:cl.cfg.OpenFiles] {
		rep, err := cl.c.Do(cl.cpu, Lookup(cl.cfg.Dir, name))
		if err != nil {
			return fmt.Errorf("kmodel: Drive: lookup %q: %w", name, err)
		}
		node := rep.Entry().NodeID
		rep, err = cl.c.Do(cl.cpu, Open(node, syscall.O_RDWR))
		if err != nil {
			cl.c.Forget(cl.cpu, node, 1)
			return fmt.Errorf("kmodel: Drive: open %q: %w", name, err)
		}
		cl.files = append(cl.files, openFile{node, rep.Open().Fh})
	}
	return nil
}

// release closes the client's files: FLUSH and RELEASE, as close(2).
func (cl *client) release() {
	for _, f := range cl.files {
		cl.c.Do(cl.cpu, Flush(f.node, f.fh))
		cl.c.Do(cl.cpu, Release(f.node, f.fh))
	}
	cl.files = nil
}

// run issues operations until ctx is done or Ops are done.
func (cl *client) run(ctx context.Context) error {
	m := cl.cfg.Mix
	total := m.Lookup + m.Getattr + m.Read + m.Write
	if total == 0 {
		return nil
	}
	cl.lat = make(map[wire.Opcode][]time.Duration, 4)
	lookups := make([]Request, len(cl.cfg.Names))
	for i, n := range cl.cfg.Names {
		lookups[i] = Lookup(cl.cfg.Dir, n)
	}
	for n := 0; cl.cfg.Ops <= 0 || n < cl.cfg.Ops; n++ {
		if ctx.Err() != nil {
			return nil
		}
		var req Request
		f := cl.files[cl.rng.IntN(len(cl.files))]
		switch k := cl.rng.IntN(total); {
		case k < m.Lookup:
			req = lookups[cl.rng.IntN(len(lookups))]
		case k < m.Lookup+m.Getattr:
			req = GetattrFh(f.node, f.fh)
		case k < m.Lookup+m.Getattr+m.Read:
			req = Read(f.node, f.fh, 0, uint32(cl.cfg.IOSize))
		default:
			req = Write(f.node, f.fh, 0, cl.buf)
		}
		req.Out = cl.out
		t0 := time.Now()
		_, err := cl.c.Do(cl.cpu, req)
		cl.lat[req.Op] = append(cl.lat[req.Op], time.Since(t0))
		cl.ops++
		if err != nil {
			cl.errors++
			if err == syscall.ENOTCONN || err == syscall.ECONNABORTED || err == syscall.ECONNREFUSED {
				return fmt.Errorf("kmodel: Drive: CPU %d: %v: %w", cl.cpu, req.Op, err)
			}
		}
	}
	return nil
}

// summarize computes latency statistics; it sorts l.
func summarize(l []time.Duration) LatencyStats {
	if len(l) == 0 {
		return LatencyStats{}
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	pct := func(p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))] }
	return LatencyStats{
		Count: uint64(len(l)),
		Mean:  sum / time.Duration(len(l)),
		P50:   pct(0.50),
		P99:   pct(0.99),
		Max:   l[len(l)-1],
	}
}
