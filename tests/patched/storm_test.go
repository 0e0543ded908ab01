package patched

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/fs/hello"
	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
	"github.com/ringfuse/ringfuse/wire"
)

// Bounds of the watchdogs, generous for TCG: an operation that outlives
// them is hung.
const (
	opTimeout    = 90 * time.Second
	pollInterval = 5 * time.Millisecond
)

func needGuest(t testing.TB) {
	t.Helper()
	if !inVM {
		t.Skip("runs in the VM on the patched kernel (TestVM)")
	}
}

// stormInodes is the number of files a storm creates, looks up and evicts.
func stormInodes(t testing.TB) int {
	t.Helper()
	s := os.Getenv(inodesEnv)
	if s == "" {
		return 2000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", inodesEnv, s)
	}
	return n
}

// probeKernelMinor mounts a one-file filesystem over /dev/fuse and returns
// the protocol minor the kernel offered in INIT.
func probeKernelMinor() (uint32, error) {
	dir, err := os.MkdirTemp("", "ringfuse-probe-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(dir)
	s, err := session.Mount(dir, &hello.FS{Name: "greeting", Data: []byte("hi\n")}, &session.Options{})
	if err != nil {
		return 0, err
	}
	info := s.Server().Init()
	if err := s.Unmount(); err != nil {
		return 0, err
	}
	if info == nil {
		return 0, errors.New("no INIT")
	}
	return info.KernelMinor, nil
}

// within is testmount.Within, dumping the blocked tasks on a hang.
func within[T any](t testing.TB, d time.Duration, what string, f func() T) T {
	t.Helper()
	return testmount.Within(t, d, what, func() { dumpBlocked(t) }, f)
}

// dumpBlocked prints the tasks the kernel has blocked (SysRq w) and the end
// of the kernel log, for a test that found something hung.
func dumpBlocked(t testing.TB) {
	t.Helper()
	_ = os.WriteFile("/proc/sysrq-trigger", []byte("w"), 0)
	time.Sleep(100 * time.Millisecond)
	buf := make([]byte, 1<<20)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		t.Logf("kernel log: %v", err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n")
	if len(lines) > 200 {
		lines = lines[len(lines)-200:]
	}
	fmt.Printf("--- kernel log (blocked tasks last) ---\n%s\n--- end of kernel log ---\n", strings.Join(lines, "\n"))
}

// makeTree creates n empty files in src, 1000 per directory, and returns
// how many nodes looking them all up instantiates (files and directories).
func makeTree(t testing.TB, src string, n int) int {
	t.Helper()
	const per = 1000
	nodes := 0
	for i := 0; i < n; i++ {
		d := filepath.Join(src, fmt.Sprintf("d%03d", i/per))
		if i%per == 0 {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			nodes++
		}
		fd, err := unix.Open(filepath.Join(d, fmt.Sprintf("f%06d", i)), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		nodes++
	}
	return nodes
}

// lookupAll stats every file of the tree through the mount, from four
// goroutines, so that the kernel holds one inode (and the server one
// node) per file.
func lookupAll(t testing.TB, mnt string, n int) {
	t.Helper()
	if err := lookupAllErr(t, mnt, n); err != nil {
		t.Fatal(err)
	}
}

// lookupAllErr is lookupAll returning the first error.
func lookupAllErr(t testing.TB, mnt string, n int) error {
	t.Helper()
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st unix.Stat_t
			for i := w; i < n; i += workers {
				p := filepath.Join(mnt, fmt.Sprintf("d%03d/f%06d", i/1000, i))
				if err := unix.Lstat(p, &st); err != nil {
					errs <- fmt.Errorf("lstat %s: %w", p, err)
					return
				}
			}
		}()
	}
	within(t, opTimeout+time.Duration(n)*time.Millisecond, "lookups", func() bool { wg.Wait(); return true })
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}

// dropCaches evicts every unused dentry and inode: the forget storm.
func dropCaches() error {
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("2\n"), 0)
}

// startDrop runs dropCaches on its own goroutine; the channel receives its
// error.
func startDrop() <-chan error {
	c := make(chan error, 1)
	go func() { c <- dropCaches() }()
	return c
}

// waiting returns the kernel's count of requests waiting on connection id
// (fusectl's "waiting": requests sent and not ended, forgets held in ring
// entries included), or -1 once the connection is gone.
func waiting(id uint32) int {
	b, err := os.ReadFile(filepath.Join(mount.FusectlDir, strconv.FormatUint(uint64(id), 10), "waiting"))
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// waitNoWaiting waits until connection id has no request waiting (or is
// gone) and fails the test otherwise.
func waitNoWaiting(t testing.TB, id uint32, what string) {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for {
		n := waiting(id)
		if n <= 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: the kernel still has %d request(s) waiting on connection %d after %v: leaked", what, n, id, opTimeout)
			dumpBlocked(t)
			return
		}
		time.Sleep(pollInterval)
	}
}

// slab reads the active objects and objects per slab of a slab cache from
// /proc/slabinfo, after asking SLUB to flush its per-CPU slabs so that
// the count is close to the objects in use. ok is false if the cache has
// no line of its own (the harness boots with slab_nomerge).
func slab(name string) (active, perSlab int64, ok bool) {
	_ = os.WriteFile("/sys/kernel/slab/"+name+"/shrink", []byte("1\n"), 0)
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[0] == name {
			a, err1 := strconv.ParseInt(f[1], 10, 64)
			p, err2 := strconv.ParseInt(f[3], 10, 64)
			return a, p, err1 == nil && err2 == nil
		}
	}
	return 0, 0, false
}

// slabCheck records the fuse slab caches before a test and, at cleanup,
// after everything was unmounted, fails the test if they hold more
// objects than before, beyond what per-CPU caching explains: a forget
// request or an inode the kernel never freed.
type slabCheck struct {
	before map[string]int64
}

var slabCaches = []string{"fuse_request", "fuse_inode"}

func startSlabCheck(t testing.TB) *slabCheck {
	sc := &slabCheck{before: map[string]int64{}}
	for _, c := range slabCaches {
		if a, _, ok := slab(c); ok {
			sc.before[c] = a
		}
	}
	return sc
}

func (sc *slabCheck) check(t testing.TB) {
	t.Helper()
	for _, c := range slabCaches {
		b, ok := sc.before[c]
		if !ok {
			continue
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			a, per, ok := slab(c)
			if !ok {
				break
			}
			slack := 2 * per * int64(runtime.NumCPU())
			if a <= b+slack {
				t.Logf("slab %s: %d active objects, %d before", c, a, b)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("slab %s: %d active objects after the test, %d before (slack %d): leaked", c, a, b, slack)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// stormMount is a passthrough of a fresh tree, mounted for a storm.
type stormMount struct {
	s     *session.Session
	src   string
	nodes int // nodes a full lookup instantiates
	n     int // files
}

// mountStorm creates a tree of n files and mounts a passthrough of it:
// over /dev/fuse if ro is nil, else over io_uring with ro. It checks that
// INIT negotiated what the patched kernel must give: 7.46 offered, and
// FUSE_OVER_IO_URING for a ring mount.
func mountStorm(t *testing.T, n int, ro *ring.Options) *stormMount {
	t.Helper()
	src := t.TempDir()
	nodes := makeTree(t, src, n)
	fsys, err := passthrough.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := "devfuse"
	if ro != nil {
		tr = "uring"
		testmount.LockUringParam(t, false)
	}
	s := testmount.Mount(t, fsys, testmount.Options{
		Transport: tr,
		Session: func(so *session.Options) {
			if ro != nil {
				r := *ro
				so.Uring = &r
			}
		},
		Cleanup: func() { fsys.Close() },
	})
	checkInit(t, s, ro != nil)
	return &stormMount{s: s, src: src, nodes: nodes, n: n}
}

// checkInit fails the test unless INIT shows the patched kernel.
func checkInit(t testing.TB, s *session.Session, uring bool) {
	t.Helper()
	info := s.Server().Init()
	if info == nil {
		t.Fatal("no INIT")
	}
	if info.KernelMinor != wantMinor {
		t.Fatalf("*** the kernel offered FUSE 7.%d, want 7.%d: not the patched kernel", info.KernelMinor, wantMinor)
	}
	if info.Minor != wantMinor {
		t.Fatalf("INIT agreed 7.%d, want 7.%d (kernel 7.%d, ringfuse 7.%d)", info.Minor, wantMinor, info.KernelMinor, wire.FUSE_KERNEL_MINOR_VERSION)
	}
	if uring && info.Flags&wire.FUSE_OVER_IO_URING == 0 {
		t.Fatal("INIT did not agree FUSE_OVER_IO_URING")
	}
}

// stormResult is what one storm measured; TestVM's log repeats it.
type stormResult struct {
	Variant string `json:"variant"`
	CPUs    int    `json:"cpus"`
	Inodes  int    `json:"inodes"` // nodes instantiated before the storm
	Forgets uint64 `json:"forgets"`
	// /dev/fuse: FORGET and BATCH_FORGET messages and the forgets in them.
	DevMsgs    uint64 `json:"dev_msgs"`
	DevForgets uint64 `json:"dev_forgets"`
	// The ring: forget messages and forgets, and everything the ring did
	// during the storm (the storm is the only traffic).
	RingMsgs    uint64 `json:"ring_msgs"`
	RingForgets uint64 `json:"ring_forgets"`
	RingCQEs    uint64 `json:"ring_cqes"`
	RingCommits uint64 `json:"ring_commits"`
	RingEnters  uint64 `json:"ring_enters"`
	// Per forget and per message.
	DevPerMsg       float64 `json:"dev_forgets_per_msg"`
	RingPerMsg      float64 `json:"ring_forgets_per_msg"`
	CQEsPerForget   float64 `json:"ring_cqes_per_forget"`
	CommitPerForget float64 `json:"ring_commits_per_forget"`
	EnterPerForget  float64 `json:"ring_enters_per_forget"`
	// Per ring queue: commits during the storm (which CPU's queue took it).
	QueueCommits []uint64 `json:"queue_commits,omitempty"`
	EndNodes     int64    `json:"end_nodes"`
	DropCaches   float64  `json:"drop_caches_s"` // TCG time: compare only within a run
	Drain        float64  `json:"drain_s"`
	Params       string   `json:"params,omitempty"`
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// runStorm looks every file up, drops the caches and waits until the
// server holds no node; it returns the counts.
func runStorm(t *testing.T, m *stormMount, variant string) stormResult {
	t.Helper()
	s := m.s
	srv := s.Server()
	lookupAll(t, s.Dir(), m.n)
	if live := srv.NodesAlive(); live < int64(m.nodes) {
		t.Fatalf("%d live nodes after looking up %d files, want at least %d", live, m.n, m.nodes)
	}
	unix.Sync()
	res := stormResult{Variant: variant, CPUs: runtime.NumCPU(), Inodes: int(srv.NodesAlive())}
	st0 := srv.Stats()
	var r0 ring.Stats
	if r := s.Ring(); r != nil {
		r0 = r.Stats()
	}
	t0 := time.Now()
	if err := within(t, opTimeout, "drop_caches", dropCaches); err != nil {
		t.Fatalf("drop_caches: %v", err)
	}
	res.DropCaches = time.Since(t0).Seconds()
	deadline := time.Now().Add(opTimeout + time.Duration(m.n)*time.Millisecond)
	for srv.NodesAlive() > 0 && time.Now().Before(deadline) {
		time.Sleep(pollInterval)
	}
	res.Drain = time.Since(t0).Seconds()
	res.EndNodes = srv.NodesAlive()
	// The channel applies a batch's forgets before the next submit sends
	// their commits: let the counters settle.
	var r1 ring.Stats
	if r := s.Ring(); r != nil {
		r1 = r.Stats()
		for range 100 {
			time.Sleep(20 * time.Millisecond)
			r2 := r.Stats()
			if r2.Commits == r1.Commits && r2.CQEs == r1.CQEs {
				break
			}
			r1 = r2
		}
	}
	st1 := srv.Stats()
	dev0, dev1 := chanStats(st0, "devfuse"), chanStats(st1, "devfuse")
	res.DevMsgs = dev1.Requests[wire.FUSE_FORGET.String()] + dev1.Requests[wire.FUSE_BATCH_FORGET.String()] -
		dev0.Requests[wire.FUSE_FORGET.String()] - dev0.Requests[wire.FUSE_BATCH_FORGET.String()]
	res.DevForgets = dev1.Forgets - dev0.Forgets
	res.RingMsgs = r1.ForgetMsgs - r0.ForgetMsgs
	res.RingForgets = r1.Forgets - r0.Forgets
	res.RingCQEs = r1.CQEs - r0.CQEs
	res.RingCommits = r1.Commits - r0.Commits
	res.RingEnters = r1.Enters - r0.Enters
	for i := range r1.QueueCommits {
		var b uint64
		if i < len(r0.QueueCommits) {
			b = r0.QueueCommits[i]
		}
		res.QueueCommits = append(res.QueueCommits, r1.QueueCommits[i]-b)
	}
	res.Forgets = totalForgets(st1) - totalForgets(st0)
	res.DevPerMsg = ratio(res.DevForgets, res.DevMsgs)
	res.RingPerMsg = ratio(res.RingForgets, res.RingMsgs)
	res.CQEsPerForget = ratio(res.RingCQEs, res.Forgets)
	res.CommitPerForget = ratio(res.RingCommits, res.Forgets)
	res.EnterPerForget = ratio(res.RingEnters, res.Forgets)
	res.Params = fuseParams()
	b, _ := json.Marshal(res)
	fmt.Printf("STORM %s\n", b)
	t.Logf("%s: %d forgets of %d nodes: /dev/fuse %d in %d messages, ring %d in %d messages (%d CQEs, %d commits, %d enters); %d nodes left; drop_caches %.2fs, drain %.2fs (TCG)",
		variant, res.Forgets, res.Inodes, res.DevForgets, res.DevMsgs, res.RingForgets, res.RingMsgs, res.RingCQEs, res.RingCommits, res.RingEnters, res.EndNodes, res.DropCaches, res.Drain)
	if res.EndNodes != 0 {
		t.Errorf("%s: %d nodes still live %v after the storm, want 0", variant, res.EndNodes, opTimeout)
	}
	waitNoWaiting(t, s.ConnID(), variant+" after the storm")
	return res
}

func chanStats(st server.Stats, ch string) *server.ChannelStats {
	if c := st.Channels[ch]; c != nil {
		return c
	}
	return &server.ChannelStats{Requests: map[string]uint64{}}
}

func totalForgets(st server.Stats) uint64 {
	var n uint64
	for _, c := range st.Channels {
		n += c.Forgets
	}
	return n
}

// fuseParams lists the fuse module parameters, for the record.
func fuseParams() string {
	ents, err := os.ReadDir("/sys/module/fuse/parameters")
	if err != nil {
		return ""
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/sys/module/fuse/parameters", e.Name()))
		if err == nil {
			out = append(out, e.Name()+"="+strings.TrimSpace(string(b)))
		}
	}
	return strings.Join(out, ",")
}
