package faults

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
	"github.com/ringfuse/ringfuse/wire"
)

// roleEnv, when set, makes the test binary play a helper process instead
// of running the tests (see TestMain).
const roleEnv = "RINGFUSE_FAULTS_ROLE"

// roleWriter is the role of a writer child of TestKilledDaemonRestart.
const roleWriter = "writer"

func TestMain(m *testing.M) {
	switch role := os.Getenv(roleEnv); role {
	case "":
	case roleWriter:
		os.Exit(writerMain(os.Args[1:]))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", roleEnv, role)
		os.Exit(2)
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Bounds of the watchdogs. They are not performance assertions: an
// operation that outlives them is hung, and the test fails instead of
// hanging with it.
const (
	// opTimeout bounds one client operation, or a batch of them, on a
	// mount whose server is alive, dead or aborted.
	opTimeout = 20 * time.Second
	// mountTimeout bounds the wait for a daemon's mount to appear.
	mountTimeout = 10 * time.Second
	// exitTimeout bounds the wait for a daemon to exit after SIGTERM or
	// after its connection ended.
	exitTimeout = 20 * time.Second
	// pollInterval is the sleep between two polls of a condition.
	pollInterval = 10 * time.Millisecond
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: ringfuse mounts with mount(2)")
	}
}

// within is testmount.Within without a dump.
func within[T any](t testing.TB, d time.Duration, what string, f func() T) T {
	t.Helper()
	return testmount.Within(t, d, what, nil, f)
}

// waitClosed waits up to d for c to be closed and fails the test if it is
// not.
func waitClosed(t testing.TB, c <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(d):
		t.Fatalf("%s: not done after %v", what, d)
	}
}

// errnoOf returns the errno inside err, or 0.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// isConnGone says whether e is what a client gets from a connection that
// ended under it: ECONNABORTED for a request the abort caught in flight,
// ENOTCONN for one sent afterwards.
func isConnGone(e syscall.Errno) bool {
	return e == syscall.ENOTCONN || e == syscall.ECONNABORTED
}

// isDaemonGone says whether e is what a client gets when the daemon died
// (not an abort) under transport tr. Over io_uring there are two more
// answers, both for a request the kernel was handing to a ring entry of
// the dying daemon (observed on Linux 6.18): ECANCELED when io_uring
// cancels the task work that would have copied it into the ring, and
// EINTR when that task work runs in the daemon's thread with SIGKILL
// already pending: as we read fs/fuse, pinning the entry's payload pages
// (iov_iter_get_pages2 in fuse_copy_fill) fails with EINTR and
// fuse_uring_prepare_send ends the request with it. About one writer in
// a hundred saw EINTR in this test.
func isDaemonGone(tr string, e syscall.Errno) bool {
	return isConnGone(e) || tr == "uring" && (e == syscall.ECANCELED || e == syscall.EINTR)
}

// crashMarkers are what the Go runtime, the race detector and the server's
// handler recovery print when something went badly wrong.
var crashMarkers = []string{"panic:", "fatal error:", "panic serving", "WARNING: DATA RACE", "SIGSEGV"}

// checkNoCrash fails the test if log shows a panic, a runtime fatal error
// or a data race.
func checkNoCrash(t testing.TB, who, log string) {
	t.Helper()
	for _, m := range crashMarkers {
		if strings.Contains(log, m) {
			t.Errorf("%s printed %q:\n%s", who, m, log)
			return
		}
	}
}

// waitConnGone polls stat of dir until it fails with ENOTCONN: with
// io_uring the kernel releases a dead connection from the ring's exit
// work, after the process is gone, and until then a request is aborted
// (ECONNABORTED).
func waitConnGone(t testing.TB, dir string) {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for {
		var st unix.Stat_t
		err := within(t, opTimeout, "stat of the dead mount", func() error { return unix.Stat(dir, &st) })
		if err == unix.ENOTCONN {
			return
		}
		if err != unix.ECONNABORTED || time.Now().After(deadline) {
			t.Fatalf("stat of the dead mount: %v, want ENOTCONN", err)
		}
		time.Sleep(pollInterval)
	}
}

// checkUnmounted fails the test if dir is still a mount point.
func checkUnmounted(t testing.TB, dir string) {
	t.Helper()
	if ok, err := mount.IsMounted(dir); err != nil || ok {
		t.Errorf("%s: mounted %v (%v), want no mount", dir, ok, err)
	}
}

// ---- the daemon as a separate process ----

var (
	buildOnce sync.Once
	binDir    string // holds the daemon binary; removed by TestMain
	binPath   string
	buildErr  error
)

// daemonBinary builds cmd/ringfuse once per test binary, with the race
// detector when the tests run with it.
func daemonBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ringfuse-faults-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "ringfuse")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/ringfuse/ringfuse/cmd/ringfuse")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// daemon is a "ringfuse mount" process serving src at mnt.
type daemon struct {
	cmd     *exec.Cmd
	mnt     string
	out     *testmount.LogBuffer // standard output and error
	exited  chan struct{}        // closed once the process is reaped
	waitErr error                // valid once exited is closed
}

// transportOpts are the daemon's options for transport tr.
func transportOpts(tr string) []string {
	if tr == "uring" {
		return []string{"-o", "io_uring"}
	}
	return nil
}

// startDaemon runs "ringfuse mount --stats [opts] src mnt" over transport
// tr, waits until the mount is up and, for io_uring, checks that the ring
// was negotiated. Its cleanup kills a daemon still running, fails the test
// if the mount is left behind, and scans the daemon's output for crashes.
func startDaemon(t *testing.T, tr, src, mnt string, opts ...string) *daemon {
	t.Helper()
	needRoot(t)
	bin := daemonBinary(t)
	if tr == "uring" {
		testmount.LockUringParam(t, false)
		if on, err := mount.UringEnabled(); err != nil || !on {
			t.Fatalf("FUSE over io_uring is off (%v, %v): echo Y > %s", on, err, mount.EnableUringParam)
		}
	}
	args := append([]string{"mount", "--stats"}, transportOpts(tr)...)
	args = append(args, opts...)
	args = append(args, src, mnt)
	d := &daemon{cmd: exec.Command(bin, args...), mnt: mnt, out: &testmount.LogBuffer{}, exited: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		killed := false
		select {
		case <-d.exited:
		default:
			// The test failed before stopping the daemon; its dead mount
			// is then expected and removed below.
			killed = true
			d.cmd.Process.Kill()
			select {
			case <-d.exited:
			case <-time.After(exitTimeout):
				t.Errorf("daemon %d not reaped %v after SIGKILL", d.cmd.Process.Pid, exitTimeout)
			}
		}
		if ok, _ := mount.IsMounted(mnt); ok {
			if !killed {
				t.Errorf("%s left mounted after the daemon exited", mnt)
			}
			_ = mount.ForceUnmount(mnt, 0)
		}
		checkNoCrash(t, "daemon", d.out.String())
		if t.Failed() {
			t.Logf("daemon output:\n%s", d.out.String())
		}
	})
	deadline := time.Now().Add(mountTimeout)
	for {
		if ok, _ := mount.IsMounted(mnt); ok {
			break
		}
		select {
		case <-d.exited:
			t.Fatalf("daemon exited before mounting: %v\n%s", d.waitErr, d.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mounted after %v:\n%s", mountTimeout, d.out.String())
		}
		time.Sleep(pollInterval)
	}
	if tr == "uring" {
		d.checkUring(t)
	}
	return d
}

// uringCarried matches the statistics line of a ring that served requests.
var uringCarried = regexp.MustCompile(`channel uring: [1-9][0-9]* requests`)

// probeSeq numbers the names checkUring looks up, so that no lookup is
// answered from the kernel's cache.
var probeSeq atomic.Int64

// checkUring sends a LOOKUP through the mount and asks the daemon for its
// statistics (SIGUSR1): the ring must have carried requests, or the
// daemon fell back to /dev/fuse and the test would not test the ring.
func (d *daemon) checkUring(t *testing.T) {
	t.Helper()
	name := fmt.Sprintf(".uring-probe-%d", probeSeq.Add(1))
	within(t, opTimeout, "probe lookup", func() error {
		_, err := os.Lstat(filepath.Join(d.mnt, name))
		return err
	})
	d.cmd.Process.Signal(syscall.SIGUSR1)
	deadline := time.Now().Add(opTimeout)
	for !uringCarried.MatchString(d.out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not serve over io_uring:\n%s", d.out.String())
		}
		time.Sleep(pollInterval)
	}
}

// stop sends SIGTERM and checks that the daemon unmounts and exits
// cleanly, without a crash.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	err := d.wait(t)
	if err != nil {
		t.Errorf("daemon exit after SIGTERM: %v\n%s", err, d.out.String())
	}
	checkUnmounted(t, d.mnt)
	checkNoCrash(t, "daemon", d.out.String())
}

// wait waits for the daemon to exit and returns how it exited.
func (d *daemon) wait(t *testing.T) error {
	t.Helper()
	waitClosed(t, d.exited, exitTimeout, "daemon exit")
	return d.waitErr
}

// connID returns the fusectl connection number of the daemon's mount.
func (d *daemon) connID(t *testing.T) uint32 {
	t.Helper()
	m, ok, err := mount.LookupMount(d.mnt)
	if err != nil || !ok || m.ConnID() == 0 {
		t.Fatalf("mount of %s: %+v, %v, %v", d.mnt, m, ok, err)
	}
	return m.ConnID()
}

// clockTicks is the unit of the CPU times in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTicks = 100

// cpuTime returns the user plus system CPU time the process has used.
func cpuTime(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14 and stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	const utime, stime = 14 - 3, 15 - 3
	u, err1 := strconv.ParseUint(f[utime], 10, 64)
	k, err2 := strconv.ParseUint(f[stime], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("parse %s: %v %v", b, err1, err2)
	}
	return time.Duration(u+k) * time.Second / clockTicks
}

// idleWindow is how long checkNotSpinning watches an idle daemon.
const idleWindow = time.Second

// checkNotSpinning fails the test if the daemon, left alone, burns CPU: a
// spinning loop would use a whole CPU for the window; an idle daemon uses
// almost nothing. Half the window separates the two by far.
func (d *daemon) checkNotSpinning(t *testing.T) {
	t.Helper()
	before := cpuTime(t, d.cmd.Process.Pid)
	time.Sleep(idleWindow)
	if used := cpuTime(t, d.cmd.Process.Pid) - before; used > idleWindow/2 {
		t.Errorf("idle daemon used %v of CPU in %v: spinning", used, idleWindow)
	}
}

// ---- in-process mounts ----

// selfUnmounted holds the sessions whose Unmount the test called itself,
// expecting an error (a busy mount that had to be forced): the cleanup
// then does not report that error again.
var selfUnmounted sync.Map

// unmountSession calls s.Unmount, which the test expects may fail, and
// returns its error.
func unmountSession(s *session.Session) error {
	selfUnmounted.Store(s, true)
	return s.Unmount()
}

// mountInProcess mounts fsys under a temporary directory over transport
// tr, as testmount does, with the server's log in a buffer that is printed
// if the test fails and scanned for recovered panics. Its cleanup
// unmounts, runs closeFS, and fails the test if the mount, a goroutine or
// a descriptor outlives the session.
func mountInProcess(t *testing.T, tr string, fsys ringfuse.FileSystem, closeFS func(), so server.Options) *session.Session {
	t.Helper()
	needRoot(t)
	lb := &testmount.LogBuffer{}
	so.ErrorLog = log.New(lb, "", 0)
	opts := &session.Options{Server: so}
	if tr == "uring" {
		testmount.LockUringParam(t, false)
		opts.Uring = &ring.Options{}
	}
	dir := t.TempDir()
	goroutines, fds := runtime.NumGoroutine(), testmount.CountFDs(t)
	s, err := session.Mount(dir, fsys, opts)
	if err != nil {
		t.Fatalf("mount %s over %s: %v", dir, tr, err)
	}
	if tr == "uring" {
		if info := s.Server().Init(); info == nil || info.Flags&wire.FUSE_OVER_IO_URING == 0 {
			s.Unmount()
			t.Fatalf("io_uring was not negotiated (is %s Y?)", mount.EnableUringParam)
		}
	}
	t.Cleanup(func() {
		_, self := selfUnmounted.LoadAndDelete(s)
		if err := s.Unmount(); err != nil && !self {
			t.Errorf("unmount: %v", err)
		}
		if ok, _ := mount.IsMounted(dir); ok {
			t.Errorf("%s is still mounted", dir)
			_ = mount.ForceUnmount(dir, 0)
		}
		if closeFS != nil {
			closeFS()
		}
		deadline := time.Now().Add(leakWait)
		for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
			time.Sleep(pollInterval)
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines after unmount, %d before:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
		}
		if n := testmount.CountFDs(t); n > fds {
			t.Errorf("%d descriptors open after unmount, %d before", n, fds)
		}
		checkNoCrash(t, "server", lb.String())
		if t.Failed() {
			t.Logf("server log:\n%s", lb.String())
		}
	})
	return s
}

// leakWait bounds the wait for the session's goroutines to end after the
// unmount.
const leakWait = 5 * time.Second

// dirFD is a descriptor of a mount's root, which clients use to reach
// files inside the mount with *at calls: once the mount is detached, a
// path would silently reach the directory underneath instead.
type dirFD struct {
	fd   int
	once sync.Once
}

// openDir opens dir; the test's cleanup closes the descriptor if the test
// did not.
func openDir(t testing.TB, dir string) *dirFD {
	t.Helper()
	var err error
	d := &dirFD{}
	within(t, opTimeout, "open the mount root", func() error {
		d.fd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(d.Close)
	return d
}

// Close closes the descriptor once; its error does not matter (a dead
// connection's RELEASE cannot be answered).
func (d *dirFD) Close() { d.once.Do(func() { unix.Close(d.fd) }) }

// clientErr is the first error one client loop met.
type clientErr struct {
	op  string
	err error
}

func (c clientErr) String() string { return fmt.Sprintf("%s: %v", c.op, c.err) }

// exitCode returns a process's exit status from exec's Wait error: 0 for
// nil, -1 if it did not exit normally.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// timeAfterOp returns a channel that receives after opTimeout.
func timeAfterOp() <-chan time.Time { return time.After(opTimeout) }

// itoa formats n in decimal.
func itoa(n int) string { return strconv.Itoa(n) }
