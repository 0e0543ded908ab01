package stress

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
)

var (
	duration = flag.Duration("stress.duration", 8*time.Second, "how long the clients run per transport")
	children = flag.Int("stress.children", 2, "child processes running clients next to the in-process ones")
	limit    = flag.Duration("stress.watchdog", 0, "abort the mount if a transport's run takes longer (default: the duration plus 45 s)")
)

const (
	// childEnv carries a child process's job (JSON) from the test.
	childEnv = "RINGFUSE_STRESS_CHILD"
	// goroutinesPerChild is the clients each child process runs.
	goroutinesPerChild = 2
	// dropEvery is the pause between two writes to drop_caches.
	dropEvery = 20 * time.Millisecond
	// nativeRun is how long the clients run on a native directory first,
	// to check that allowedErrnos covers what a local filesystem says.
	nativeRun = time.Second
	// drainWait bounds the wait for the node table to drain at the end.
	drainWait = 30 * time.Second
	// watchdogSlack is added to the clients' run time for everything
	// else the test does (the comparison, the drain).
	watchdogSlack = 45 * time.Second
)

// childJob is what a child process is told to do.
type childJob struct {
	Root     string
	Seed     uint64
	Clients  int
	Duration time.Duration
}

func TestMain(m *testing.M) {
	if job := os.Getenv(childEnv); job != "" {
		os.Exit(runChild(job))
	}
	os.Exit(m.Run())
}

// runChild runs a child process's clients and prints their tally as JSON.
func runChild(jobText string) int {
	var job childJob
	if err := json.Unmarshal([]byte(jobText), &job); err != nil {
		fmt.Fprintln(os.Stderr, "stress child:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), job.Duration)
	defer cancel()
	total := runClients(ctx, job.Root, job.Seed, job.Clients)
	if err := json.NewEncoder(os.Stdout).Encode(total); err != nil {
		fmt.Fprintln(os.Stderr, "stress child:", err)
		return 2
	}
	return 0
}

// runClients runs n clients below root until ctx is done and returns
// their combined tally.
func runClients(ctx context.Context, root string, seed uint64, n int) *tally {
	tallies := make([]*tally, n)
	var wg sync.WaitGroup
	for i := range n {
		tallies[i] = newTally()
		wg.Add(1)
		go func() {
			defer wg.Done()
			newClient(root, seed+uint64(i), tallies[i]).run(ctx)
		}()
	}
	wg.Wait()
	total := newTally()
	for _, t := range tallies {
		total.add(t)
	}
	return total
}

// inProcess is the number of client goroutines in the test process: twice
// GOMAXPROCS, so that clients outnumber the CPUs, and at least four.
func inProcess() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// TestNativeErrnos runs the clients on a local directory: any error
// outside allowedErrnos there means the allowed set, not ringfuse, is
// wrong.
func TestNativeErrnos(t *testing.T) {
	root := t.TempDir()
	if err := layout(root); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), nativeRun)
	defer cancel()
	total := runClients(ctx, root, 1, inProcess())
	logTally(t, "native", total)
	if total.NBad > 0 {
		t.Errorf("a local filesystem gave %d errors outside allowedErrnos:\n%s", total.NBad, strings.Join(total.Bad, "\n"))
	}
}

// TestStress is the stress test, over each transport.
func TestStress(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts and drop_caches")
	}
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) { stress(t, tr) })
	}
}

func stress(t *testing.T, transport string) {
	src := t.TempDir()
	fsys, err := passthrough.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	var serverLog testmount.LogBuffer
	s := testmount.Mount(t, fsys, testmount.Options{
		Transport: transport,
		Server:    server.Options{ErrorLog: newLogger(&serverLog), Debug: os.Getenv("STRESS_DEBUG") != ""},
		Cleanup:   func() { fsys.Close() },
	})
	root := s.Dir()
	if err := layout(root); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	deadline := *limit
	if deadline == 0 {
		deadline = *duration + watchdogSlack
	}
	wd := startWatchdog(s, deadline, cancel)
	defer wd.stop()

	// drop_caches in a loop, so that the kernel forgets nodes while
	// clients look them up.
	var drops atomic.Int64
	dropDone := make(chan struct{})
	defer func() {
		cancel()
		<-dropDone
	}()
	go func() {
		defer close(dropDone)
		for ctx.Err() == nil {
			if err := dropCaches(); err != nil {
				t.Errorf("drop_caches: %v", err)
				return
			}
			drops.Add(1)
			time.Sleep(dropEvery)
		}
	}()

	// Child processes.
	type childOut struct {
		tally *tally
		err   error
	}
	outs := make([]childOut, *children)
	var cwg sync.WaitGroup
	defer func() {
		// On an early return: no child may outlive the test.
		wd.killChildren()
		cwg.Wait()
	}()
	for i := range *children {
		job, _ := json.Marshal(childJob{Root: root, Seed: uint64(1000 * (i + 1)), Clients: goroutinesPerChild, Duration: *duration})
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(job))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wd.addChild(cmd.Process)
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if err := cmd.Wait(); err != nil {
				outs[i].err = fmt.Errorf("child %d: %v; stderr:\n%s", i, err, stderr.Bytes())
				return
			}
			outs[i].tally = newTally()
			if err := json.Unmarshal(stdout.Bytes(), outs[i].tally); err != nil {
				outs[i].err = fmt.Errorf("child %d: %v; stdout:\n%s", i, err, stdout.Bytes())
			}
		}()
	}

	total := runClients(ctx, root, 1, inProcess())
	cwg.Wait()
	cancel()
	<-dropDone
	if wd.fired() {
		t.Fatalf("watchdog: the test was stuck after %v; the connection was aborted.\n%s", deadline, wd.report())
	}
	for _, o := range outs {
		if o.err != nil {
			t.Error(o.err)
			continue
		}
		total.add(o.tally)
	}
	logTally(t, transport, total)
	t.Logf("%d clients in this process, %d in %d children; %d drop_caches", inProcess(), *children*goroutinesPerChild, *children, drops.Load())
	if total.NBad > 0 {
		t.Errorf("%d errors a local filesystem would not give, the first:\n%s", total.NBad, strings.Join(total.Bad, "\n"))
	}

	compareTrees(t, root, src)

	// Drain: with every client gone, dropping the caches must make the
	// kernel forget every node but the root.
	start := time.Now()
	for {
		if err := dropCaches(); err != nil {
			t.Fatal(err)
		}
		if s.Server().NodesAlive() == 0 {
			break
		}
		if time.Since(start) > drainWait {
			t.Fatalf("%d nodes alive %v after the clients stopped, want 0 (the root only)", s.Server().NodesAlive(), drainWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("node table drained in %v", time.Since(start).Round(time.Millisecond))
	st := s.Server().Stats()
	var b strings.Builder
	st.WriteTo(&b)
	t.Log(b.String())
	if fst := fsys.Stats(); fst.Nodes != 0 || fst.OpenFiles != 0 {
		t.Errorf("the filesystem holds %d nodes and %d open files after the drain, want none", fst.Nodes, fst.OpenFiles)
	}
	if st.ForgetUnknown != 0 {
		t.Errorf("%d forgets for node IDs the server did not hold", st.ForgetUnknown)
	}
	for ch, cs := range st.Channels {
		if cs.DecodeErrors != 0 || cs.Unknown != 0 {
			t.Errorf("channel %s: %d undecodable requests, %d unknown opcodes", ch, cs.DecodeErrors, cs.Unknown)
		}
	}
	if os.Getenv("STRESS_DEBUG") != "" {
		os.WriteFile("/tmp/stress-debug-"+transport+".log", []byte(serverLog.String()), 0o644)
	} else if l := serverLog.String(); l != "" {
		t.Logf("server log:\n%s", l)
		if strings.Contains(l, "panic") || strings.Contains(l, "undecodable") {
			t.Errorf("the server log reports a panic or an undecodable request")
		}
	}
	if wd.fired() {
		t.Fatalf("watchdog: the test was stuck; the connection was aborted.\n%s", wd.report())
	}
}

func newLogger(w io.Writer) *log.Logger { return log.New(w, "", log.LstdFlags) }

// dropCaches asks the kernel to drop its dentry and inode caches.
func dropCaches() error {
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0)
}

// entry is what compareTrees compares of a name.
type entry struct {
	Type  uint32
	Nlink uint64
	Size  int64
}

// snapshot walks root and describes every name below it.
func snapshot(root string) (map[string]entry, error) {
	m := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("lstat %s: %w", p, err)
		}
		e := entry{Type: st.Mode & unix.S_IFMT, Nlink: st.Nlink}
		if e.Type == unix.S_IFREG {
			e.Size = st.Size
		} else {
			e.Nlink = 0 // a directory's link count is not comparable over FUSE
		}
		rel, _ := filepath.Rel(root, p)
		m[rel] = e
		return nil
	})
	return m, err
}

// compareTrees checks that the mount and the backing directory agree.
func compareTrees(t *testing.T, mnt, src string) {
	t.Helper()
	a, err := snapshot(mnt)
	if err != nil {
		t.Fatalf("walk the mount: %v", err)
	}
	b, err := snapshot(src)
	if err != nil {
		t.Fatalf("walk the backing directory: %v", err)
	}
	var diffs []string
	for p, e := range b {
		if got, ok := a[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing from the mount (backing: %+v)", p, e))
		} else if got != e {
			diffs = append(diffs, fmt.Sprintf("%s: mount %+v, backing %+v", p, got, e))
		}
	}
	for p, e := range a {
		if _, ok := b[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: in the mount (%+v) but not in the backing directory", p, e))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("the mount and the backing directory differ in %d names:\n%s", len(diffs), strings.Join(diffs[:min(len(diffs), maxBad)], "\n"))
	}
	t.Logf("%d names at the end", len(b))
}

// logTally logs the operation counts and the allowed errors seen.
func logTally(t *testing.T, what string, tl *tally) {
	t.Helper()
	var b strings.Builder
	var sum uint64
	for o := range nOps {
		n := tl.Ops[o.String()]
		sum += n
		fmt.Fprintf(&b, "\n  %-7s %7d", o, n)
		var errs []string
		for k, v := range tl.Errs {
			if name, ok := strings.CutPrefix(k, o.String()+" "); ok {
				errs = append(errs, name+":"+strconv.FormatUint(v, 10))
			}
		}
		sort.Strings(errs)
		fmt.Fprintf(&b, "  %s", strings.Join(errs, " "))
	}
	t.Logf("%s: %d operations, %d EINTR retries:%s", what, sum, tl.EINTRs, b.String())
}

// watchdog aborts a stuck test: when its time is up it records the
// goroutines of this process and the kernel stacks of every thread of this
// process and its children, aborts the FUSE connection (so that every
// blocked request fails with ENOTCONN), cancels the clients and kills the
// children.
type watchdog struct {
	timer  *time.Timer
	s      *session.Session
	cancel context.CancelFunc

	mu     sync.Mutex
	procs  []*os.Process
	dump   string
	wasSet atomic.Bool
}

func startWatchdog(s *session.Session, limit time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{s: s, cancel: cancel}
	w.timer = time.AfterFunc(limit, w.fire)
	return w
}

func (w *watchdog) addChild(p *os.Process) {
	w.mu.Lock()
	w.procs = append(w.procs, p)
	w.mu.Unlock()
}

func (w *watchdog) stop() { w.timer.Stop() }

func (w *watchdog) fired() bool { return w.wasSet.Load() }

func (w *watchdog) report() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dump
}

func (w *watchdog) fire() {
	var b strings.Builder
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	fmt.Fprintf(&b, "goroutines:\n%s\n", buf)
	w.mu.Lock()
	pids := []int{os.Getpid()}
	for _, p := range w.procs {
		pids = append(pids, p.Pid)
	}
	w.mu.Unlock()
	for _, pid := range pids {
		b.WriteString(kernelStacks(pid))
	}
	if err := mount.Abort(w.s.ConnID()); err != nil {
		fmt.Fprintf(&b, "abort connection %d: %v\n", w.s.ConnID(), err)
	}
	w.cancel()
	w.killChildren()
	w.mu.Lock()
	w.dump = b.String()
	w.mu.Unlock()
	w.wasSet.Store(true)
}

// killChildren kills the child processes that are still running.
func (w *watchdog) killChildren() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.procs {
		p.Kill() // fails harmlessly for a child that has exited
	}
}

// kernelStacks returns the kernel stacks of pid's threads.
func kernelStacks(pid int) string {
	var b strings.Builder
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stack", pid, task.Name()))
		if err != nil || len(st) == 0 {
			continue
		}
		fmt.Fprintf(&b, "kernel stack of %d/%s:\n%s", pid, task.Name(), st)
	}
	return b.String()
}
