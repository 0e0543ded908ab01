// Command nodecost measures what one kernel-held inode costs a FUSE daemon
// in memory, for ringfuse (over /dev/fuse and over io_uring) and for
// go-fuse's loopback filesystem.
//
// It creates N empty files natively in a backing directory (spread over
// directories of -per-dir files; the tree is kept and reused), then for
// each configuration: starts the daemon on a fresh mount, stats a few
// files and waits, reads the daemon's VmRSS ("before"), stats all N files
// through the mount with parallel goroutines, reads VmRSS again ("peak"),
// drops the kernel's dentry and inode caches so that the kernel forgets
// every node, and watches VmRSS fall for up to -settle ("after"). The
// per-node cost is (peak - before) / N. Both daemons are Go programs: they
// run with GODEBUG=gctrace=1, and the live heap after the last garbage
// collection before each reading is quoted as well (an approximation: the
// collection may have run before the last few nodes were created).
//
// Example (as root, from the bench module; without -ringfuse and -gofuse
// it builds both daemons into the work directory):
//
//	go run ./cmd/nodecost -files 1000000
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/bench/harness"
)

const (
	// mountTimeout bounds the wait for a daemon's mount to appear.
	mountTimeout = 20 * time.Second
	// stopTimeout bounds the wait for a daemon to exit after SIGTERM.
	stopTimeout = 20 * time.Second
	// warmupFiles are stat'ed through a fresh mount before "before" is
	// read, so that the daemon's request paths have run once.
	warmupFiles = 100
	// quiet is how long the daemon is left alone before a reading, so that
	// its worker goroutines have settled.
	quiet = time.Second
	// pollEvery is the RSS polling period after the drop.
	pollEvery = 250 * time.Millisecond
	// maxTries bounds the measurements of one configuration that another
	// process's drop_caches disturbed.
	maxTries = 5
	// statsWait bounds the wait for ringfuse's SIGUSR1 statistics.
	statsWait = 5 * time.Second
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("nodecost: ")
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// config is one daemon under test.
type config struct {
	name string
	argv func(src, mnt string) []string
	// stats says the daemon prints ringfuse statistics on SIGUSR1.
	stats bool
}

// result is what was measured for one configuration.
type result struct {
	name                    string
	files                   int
	before, peak, hwm       int64 // bytes of VmRSS / VmHWM
	heapBefore, heapPeak    int64 // live heap after the last GC, bytes; -1 if unknown
	after                   int64 // lowest VmRSS seen within the settle window
	afterAt                 time.Duration
	nodesBefore, nodesPeak  int64 // ringfuse only; -1 otherwise
	nodesAfter              int64
	statTime, drainNodeTime time.Duration
}

func run() error {
	var (
		files    = flag.Int("files", 1_000_000, "files to create and stat")
		perDir   = flag.Int("per-dir", 1000, "files per directory")
		work     = flag.String("dir", filepath.Join(os.TempDir(), "nodecost"), "work directory (the backing tree is kept there and reused)")
		ringfuse = flag.String("ringfuse", "", "ringfuse binary (default: build ../cmd/ringfuse of the main module)")
		gofuse   = flag.String("gofuse", "", "gofuse-loopback binary (default: build ./cmd/gofuse-loopback)")
		configs  = flag.String("configs", "ringfuse-devfuse,ringfuse-uring,gofuse", "configurations to measure, comma separated")
		settle   = flag.Duration("settle", 60*time.Second, "how long to watch VmRSS fall after the drop")
		workers  = flag.Int("workers", 4*runtime.GOMAXPROCS(0), "goroutines that stat through the mount")
		gogc     = flag.String("gogc", "", "GOGC for the daemons (default: theirs)")
	)
	flag.Parse()
	if os.Geteuid() != 0 {
		return errors.New("needs root (mounts, drop_caches)")
	}
	if *files <= 0 || *perDir <= 0 {
		return errors.New("-files and -per-dir must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	src := filepath.Join(*work, "src")
	mnt := filepath.Join(*work, "mnt")
	for _, d := range []string{src, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	mnt, err := filepath.EvalSymlinks(mnt)
	if err != nil {
		return err
	}
	bin := filepath.Join(*work, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	mod, err := harness.FindModuleDir(".")
	if err != nil {
		return err
	}
	if *ringfuse == "" {
		*ringfuse = filepath.Join(bin, "ringfuse")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", *ringfuse, "./cmd/ringfuse")
		cmd.Dir = filepath.Dir(mod)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build ringfuse: %w\n%s", err, out)
		}
	}
	if *gofuse == "" {
		if *gofuse, err = harness.BuildGofuse(ctx, mod, bin); err != nil {
			return err
		}
	}

	all := map[string]config{
		"ringfuse-devfuse": {name: "ringfuse-devfuse", stats: true, argv: func(s, m string) []string {
			return []string{*ringfuse, "mount", s, m}
		}},
		"ringfuse-uring": {name: "ringfuse-uring", stats: true, argv: func(s, m string) []string {
			return []string{*ringfuse, "mount", "-o", "io_uring", s, m}
		}},
		"gofuse": {name: "gofuse", argv: func(s, m string) []string {
			return []string{*gofuse, s, m}
		}},
	}
	var chosen []config
	for _, name := range strings.Split(*configs, ",") {
		c, ok := all[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown configuration %q", name)
		}
		chosen = append(chosen, c)
	}

	start := time.Now()
	if err := ensureTree(src, *files, *perDir, *workers); err != nil {
		return err
	}
	log.Printf("tree of %d files ready in %v", *files, time.Since(start).Round(time.Millisecond))

	var results []result
	for _, c := range chosen {
		if err := ctx.Err(); err != nil {
			return err
		}
		var r result
		for try := 1; ; try++ {
			r, err = measure(ctx, c, src, mnt, filepath.Join(*work, c.name+".log"), *files, *perDir, *workers, *settle, *gogc)
			if !errors.Is(err, errDisturbed) || try == maxTries {
				break
			}
			log.Printf("%s: %v; again", c.name, err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		results = append(results, r)
	}
	printResults(os.Stdout, results)
	return nil
}

// filePath returns the path of file i of the tree below root.
func filePath(root string, i, perDir int) string {
	return root + "/d" + strconv.Itoa(i/perDir) + "/f" + strconv.Itoa(i%perDir)
}

// ensureTree creates n empty files below src, unless a stamp says an
// earlier run did.
func ensureTree(src string, n, perDir, workers int) error {
	stamp := filepath.Join(src, ".nodecost-files")
	want := fmt.Sprintf("%d/%d", n, perDir)
	if b, err := os.ReadFile(stamp); err == nil && string(b) == want {
		return nil
	}
	dirs := (n + perDir - 1) / perDir
	for d := range dirs {
		if err := os.Mkdir(filepath.Join(src, "d"+strconv.Itoa(d)), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	err := parallel(n, workers, func(i int) error {
		err := unix.Mknod(filePath(src, i, perDir), unix.S_IFREG|0o644, 0)
		if err == unix.EEXIST {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create tree: %w", err)
	}
	return os.WriteFile(stamp, []byte(want), 0o644)
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first
// error.
func parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}

// measure runs one configuration.
func measure(ctx context.Context, c config, src, mnt, logPath string, n, perDir, workers int, settle time.Duration, gogc string) (result, error) {
	r := result{name: c.name, files: n, heapBefore: -1, heapPeak: -1, nodesBefore: -1, nodesPeak: -1, nodesAfter: -1}
	if err := harness.DropCaches(2); err != nil {
		return r, err
	}
	os.Remove(logPath)
	env := []string{"GODEBUG=gctrace=1"}
	if gogc != "" {
		env = append(env, "GOGC="+gogc)
	}
	argv := append([]string{"env"}, env...)
	argv = append(argv, c.argv(src, mnt)...)
	d, err := harness.StartDaemon(ctx, argv, mnt, logPath, mountTimeout)
	if err != nil {
		return r, err
	}
	defer func() {
		if err := d.Stop(stopTimeout); err != nil {
			log.Printf("%s: stop: %v", c.name, err)
		}
	}()
	pid := d.PID() // env(1) execs the daemon: same process
	var st unix.Stat_t
	for i := range min(warmupFiles, n) {
		if err := unix.Lstat(filePath(mnt, i, perDir), &st); err != nil {
			return r, err
		}
	}
	time.Sleep(quiet)
	if r.before, _, err = rss(pid); err != nil {
		return r, err
	}
	r.heapBefore = lastHeap(logPath)
	if c.stats {
		if r.nodesBefore, err = nodesAlive(pid, logPath); err != nil {
			return r, err
		}
	}

	drops := dropSlabCount()
	start := time.Now()
	err = parallel(n, workers, func(i int) error {
		var st unix.Stat_t
		return unix.Lstat(filePath(mnt, i, perDir), &st)
	})
	r.statTime = time.Since(start)
	if err != nil {
		return r, fmt.Errorf("stat through the mount: %w", err)
	}
	time.Sleep(quiet)
	if dropSlabCount() != drops {
		return r, errDisturbed
	}
	if r.peak, r.hwm, err = rss(pid); err != nil {
		return r, err
	}
	r.heapPeak = lastHeap(logPath)
	if c.stats {
		if r.nodesPeak, err = nodesAlive(pid, logPath); err != nil {
			return r, err
		}
	}
	log.Printf("%s: %d files stat'ed in %v; VmRSS %d MiB -> %d MiB", c.name, n, r.statTime.Round(time.Millisecond), r.before>>20, r.peak>>20)

	// Drop the kernel's caches until the daemon holds no more nodes than
	// before (ringfuse), or once (go-fuse, which does not say), then
	// watch VmRSS.
	dropped := time.Now()
	r.after = r.peak
	for {
		if err := harness.DropCaches(2); err != nil {
			return r, err
		}
		if !c.stats {
			break
		}
		live, err := nodesAlive(pid, logPath)
		if err != nil {
			return r, err
		}
		r.nodesAfter = live
		if live <= r.nodesBefore || time.Since(dropped) > settle {
			r.drainNodeTime = time.Since(dropped)
			break
		}
		time.Sleep(pollEvery)
	}
	for time.Since(dropped) < settle {
		cur, _, err := rss(pid)
		if err != nil {
			return r, err
		}
		if cur < r.after {
			r.after, r.afterAt = cur, time.Since(dropped)
		}
		if float64(r.after) <= float64(r.before)*1.05 {
			break // back where it started: nothing more to watch
		}
		time.Sleep(pollEvery)
	}
	if c.stats {
		log.Printf("%s: %d nodes alive %v after the first drop", c.name, r.nodesAfter, r.drainNodeTime.Round(time.Millisecond))
	}
	log.Printf("%s: VmRSS %d MiB %v after the drop", c.name, r.after>>20, r.afterAt.Round(time.Millisecond))
	return r, nil
}

// errDisturbed says another process dropped the kernel's caches while
// the nodes were being created or counted, so the reading is wrong.
var errDisturbed = errors.New("another process dropped the caches during the measurement")

// dropSlabCount returns how many times the kernel's dentry and inode
// caches have been dropped (drop_slab in /proc/vmstat), or -1.
func dropSlabCount() int64 {
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "drop_slab "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// rss returns VmRSS and VmHWM of pid in bytes.
func rss(pid int) (cur, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("status of %d: %s: %q", pid, key, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if key == "VmRSS" {
			cur = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if cur == 0 {
		return 0, 0, fmt.Errorf("status of %d: no VmRSS", pid)
	}
	return cur, hwm, nil
}

// gctraceHeap matches the heap sizes of a GODEBUG=gctrace=1 line:
// "... 4->4->1 MB, 4 MB goal ...": at the start, the end of marking, and
// live after marking.
var gctraceHeap = regexp.MustCompile(`(\d+)->(\d+)->(\d+) MB`)

// lastHeap returns the live heap after the last collection the daemon's
// log reports, in bytes, or -1.
func lastHeap(logPath string) int64 {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return -1
	}
	m := gctraceHeap.FindAll(b, -1)
	if len(m) == 0 {
		return -1
	}
	sub := gctraceHeap.FindSubmatch(m[len(m)-1])
	mb, err := strconv.ParseInt(string(sub[3]), 10, 64)
	if err != nil {
		return -1
	}
	return mb << 20
}

// nodesAliveLine matches ringfuse's statistics.
var nodesAliveLine = regexp.MustCompile(`nodes alive: (\d+)`)

// nodesAlive sends SIGUSR1 to a ringfuse daemon and returns the live node
// count it prints.
func nodesAlive(pid int, logPath string) (int64, error) {
	count := func() (int, []byte) {
		b, _ := os.ReadFile(logPath)
		return len(nodesAliveLine.FindAllIndex(b, -1)), b
	}
	seen, _ := count()
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(statsWait)
	for time.Now().Before(deadline) {
		if n, b := count(); n > seen {
			m := nodesAliveLine.FindAllSubmatch(b, -1)
			return strconv.ParseInt(string(m[len(m)-1][1]), 10, 64)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("no statistics from %d within %v", pid, statsWait)
}

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// printResults writes the results as a Markdown table.
func printResults(w io.Writer, rs []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| daemon\t files\t VmRSS before MiB\t VmRSS peak MiB\t VmHWM MiB\t RSS bytes/node\t heap before→peak MiB\t heap bytes/node\t VmRSS after drop MiB\t stat time\t nodes before/peak/after\t |")
	for _, r := range rs {
		heap, perHeap := "n/a", "n/a"
		switch {
		case r.heapPeak < 0:
		case r.heapBefore < 0:
			// No collection before the storm: the heap was below the
			// runtime's first goal (4 MiB).
			heap = "<4→" + mib(r.heapPeak)
		default:
			heap = mib(r.heapBefore) + "→" + mib(r.heapPeak)
			perHeap = strconv.FormatInt((r.heapPeak-r.heapBefore)/int64(r.files), 10)
		}
		nodes := "n/a"
		if r.nodesBefore >= 0 {
			nodes = fmt.Sprintf("%d/%d/%d", r.nodesBefore, r.nodesPeak, r.nodesAfter)
		}
		fmt.Fprintf(tw, "| %s\t %d\t %s\t %s\t %s\t %d\t %s\t %s\t %s (%v)\t %v\t %s\t |\n",
			r.name, r.files, mib(r.before), mib(r.peak), mib(r.hwm), (r.peak-r.before)/int64(r.files),
			heap, perHeap, mib(r.after), r.afterAt.Round(time.Millisecond), r.statTime.Round(time.Millisecond), nodes)
	}
	tw.Flush()
}
