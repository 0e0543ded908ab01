package patched

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/channel/devfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
)

// Faults during a forget storm on the ring (the daemon opted in): a
// SIGKILL of the daemon, a fusectl abort, and an unmount, each while the
// kernel holds forgets in ring entries. None may leave a hung mount, a
// request the kernel still counts as waiting, or fuse slab objects.

// faultMode is a forget routing the fault tests run under: patch 0001's
// one request per forget, or one of the series' per-queue forget lists,
// including lists that hold forgets back (a threshold never reached, a
// delay still pending) when the fault comes.
type faultMode struct {
	name   string
	params map[string]string
}

var faultModes = []faultMode{
	{"0001", nil},
	{"batch", map[string]string{"uring_forget_batch": "Y"}},
	{"batch-cap1", map[string]string{"uring_forget_batch": "Y", "uring_forget_cap": "1"}},
	{"threshold-held", map[string]string{"uring_forget_batch": "Y", "uring_forget_threshold": "1000000"}},
	{"delay-pending", map[string]string{"uring_forget_batch": "Y", "uring_forget_delay_ms": "5000"}},
}

// eachFaultMode runs f as a subtest per fault mode, with the mode's fuse
// parameters set and the slab check around it.
func eachFaultMode(t *testing.T, f func(t *testing.T)) {
	needGuest(t)
	for _, fm := range faultModes {
		t.Run(fm.name, func(t *testing.T) {
			setParams(t, fm.params)
			sc := startSlabCheck(t)
			t.Cleanup(func() { sc.check(t) })
			f(t)
		})
	}
}

// stormFaultInodes is the storm's size for the fault tests: big enough
// that the fault lands while forgets are in flight.
func stormFaultInodes(t testing.TB) int { return max(stormInodes(t), 2000) }

// waitInFlight waits until the storm has forgets in flight (inFlight
// true) or drop_caches ended, and says which.
func waitInFlight(t testing.TB, drop <-chan error, inFlight func() bool) (midStorm bool) {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for time.Now().Before(deadline) {
		if inFlight() {
			return true
		}
		select {
		case err := <-drop:
			if err != nil {
				t.Fatalf("drop_caches: %v", err)
			}
			t.Log("drop_caches ended before a forget was seen in flight")
			return false
		default:
		}
		time.Sleep(time.Millisecond)
	}
	dumpBlocked(t)
	t.Fatal("no forget in flight and drop_caches still running")
	return false
}

// finishDrop waits for the storm's drop_caches to end.
func finishDrop(t testing.TB, drop <-chan error, midStorm bool) {
	t.Helper()
	if !midStorm {
		return
	}
	select {
	case err := <-drop:
		if err != nil {
			t.Errorf("drop_caches: %v", err)
		}
	case <-time.After(opTimeout):
		dumpBlocked(t)
		t.Fatalf("drop_caches still running %v after the fault: hung", opTimeout)
	}
}

// checkGone fails the test if dir is still a mount point.
func checkGone(t testing.TB, dir string) {
	t.Helper()
	if ok, err := mount.IsMounted(dir); err != nil || ok {
		t.Errorf("%s: still mounted (%v)", dir, err)
	}
}

// TestStormAbort aborts the connection through fusectl while forgets
// arrive on the ring (or wait on the kernel's per-queue lists), in each
// fault mode: drop_caches ends, the session ends with
// devfuse.ErrAborted, the kernel drops every request it held, and the
// dead mount unmounts.
func TestStormAbort(t *testing.T) { eachFaultMode(t, testStormAbort) }

func testStormAbort(t *testing.T) {
	m := mountStorm(t, stormFaultInodes(t), &ring.Options{ForgetCommit: true})
	s := m.s
	lookupAll(t, s.Dir(), m.n)
	id := s.ConnID()
	drop := startDrop()
	mid := waitInFlight(t, drop, func() bool { return s.Ring().Stats().Forgets > 0 })
	held := waiting(id)
	if err := mount.Abort(id); err != nil {
		t.Fatal(err)
	}
	t.Logf("aborted with %d forgets served on the ring, %d requests waiting", s.Ring().Stats().Forgets, held)
	finishDrop(t, drop, mid)
	select {
	case <-s.Done():
	case <-time.After(opTimeout):
		dumpBlocked(t)
		t.Fatal("session still running after the abort")
	}
	if !errors.Is(s.Err(), devfuse.ErrAborted) {
		t.Errorf("session ended with %v, want %v", s.Err(), devfuse.ErrAborted)
	}
	waitNoWaiting(t, id, "after the abort")
	var st unix.Stat_t
	if err := within(t, opTimeout, "stat after the abort", func() error { return unix.Stat(s.Dir(), &st) }); err != unix.ENOTCONN {
		t.Errorf("stat of the aborted mount: %v, want ENOTCONN", err)
	}
	if err := within(t, opTimeout, "unmount after the abort", s.Unmount); err != nil {
		t.Errorf("unmount: %v", err)
	}
	checkGone(t, s.Dir())
}

// TestStormUnmount unmounts while forgets arrive on the ring (or wait on
// the kernel's lists), in each fault mode: the unmount
// completes, the session ends cleanly, no forget names a node the server
// no longer holds (none arrives twice), and the slab check finds no forget
// request left behind. The server still holds nodes at the end: the kernel
// sends no forget for the inodes an unmount evicts, and the ring's
// teardown ends the forgets its entries held (the log says how many).
func TestStormUnmount(t *testing.T) { eachFaultMode(t, testStormUnmount) }

func testStormUnmount(t *testing.T) {
	m := mountStorm(t, stormFaultInodes(t), &ring.Options{ForgetCommit: true})
	s := m.s
	lookupAll(t, s.Dir(), m.n)
	st0 := s.Server().Stats()
	live0, f0 := s.Server().NodesAlive(), totalForgets(st0)
	drop := startDrop()
	mid := waitInFlight(t, drop, func() bool { return s.Ring().Stats().Forgets > 0 })
	t0 := time.Now()
	err := within(t, opTimeout, "unmount during the storm", s.Unmount)
	t.Logf("unmount took %.2fs (TCG); %d forgets served on the ring, %d nodes live at the end", time.Since(t0).Seconds(), s.Ring().Stats().Forgets, s.Server().NodesAlive())
	if err != nil {
		t.Errorf("unmount during the storm: %v", err)
	}
	finishDrop(t, drop, mid)
	checkGone(t, s.Dir())
	if err := s.Err(); err != nil {
		t.Errorf("session ended with %v after an unmount", err)
	}
	st := s.Server().Stats()
	// Forgets counts all forget entries, ForgetUnknown those for nodes
	// outside the table (the session's poll-hack file, or a forget that
	// came twice).
	unknown := st.ForgetUnknown - st0.ForgetUnknown
	forgot := totalForgets(st) - f0 - unknown
	live := s.Server().NodesAlive()
	t.Logf("%d nodes before the storm; %d forgets of them arrived, %d for unknown nodes; %d nodes held at the end (%d evicted without a forget)",
		live0, forgot, unknown, live, live+int64(forgot)-live0)
	if unknown > 1 {
		t.Errorf("%d forgets for nodes the server did not hold (at most 1, the poll-hack file's): a forget came twice", unknown)
	}
	if live+int64(forgot) < live0 {
		t.Errorf("%d nodes before, %d forgotten, %d held: nodes vanished without a forget", live0, forgot, live)
	}
}

// TestStormKill SIGKILLs a ringfuse daemon (a separate process) while
// forgets are held in its ring entries (or on the kernel's lists), in each
// fault mode: drop_caches ends, the kernel ends
// every request it held, the dead mount answers ENOTCONN and unmounts.
func TestStormKill(t *testing.T) { eachFaultMode(t, testStormKill) }

func testStormKill(t *testing.T) {
	bin := os.Getenv(binEnv)
	if bin == "" {
		t.Fatalf("%s unset: TestVM passes the static ringfuse command", binEnv)
	}
	testmount.LockUringParam(t, false)
	n := stormFaultInodes(t)
	src, mnt := t.TempDir(), t.TempDir()
	nodes := makeTree(t, src, n)
	out := &testmount.LogBuffer{}
	cmd := exec.Command(bin, "mount", "--stats", "-o", "io_uring,io_uring_forget", src, mnt)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once the daemon is reaped
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			if t.Failed() {
				t.Logf("the daemon had exited: %v", waitErr)
			}
		default:
			cmd.Process.Kill()
			select {
			case <-exited:
			case <-time.After(opTimeout):
				t.Errorf("the daemon survived SIGKILL for %v", opTimeout)
				dumpBlocked(t)
			}
		}
		if ok, _ := mount.IsMounted(mnt); ok {
			_ = mount.ForceUnmount(mnt, 0)
		}
		if t.Failed() {
			t.Logf("daemon output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(opTimeout)
	for {
		if ok, _ := mount.IsMounted(mnt); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not mount:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	mi, _, err := mount.LookupMount(mnt)
	if err != nil {
		t.Fatal(err)
	}
	id := mi.ConnID()
	t.Logf("daemon pid %d, connection %d", cmd.Process.Pid, id)
	t0 := time.Now()
	if err := lookupAllErr(t, mnt, n); err != nil {
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
		t.Errorf("after %.1fs: %v; the kernel has %d requests waiting on connection %d; daemon: %s", time.Since(t0).Seconds(), err, waiting(id), id, st)
		cmd.Process.Signal(syscall.SIGUSR1)
		time.Sleep(time.Second)
		t.Logf("daemon output after SIGUSR1:\n%s", out.String())
		dumpBlocked(t)
		t.FailNow()
	}
	drop := startDrop()
	// Forgets on the ring count as waiting until the daemon commits them.
	mid := waitInFlight(t, drop, func() bool { return waiting(id) > 0 })
	held := waiting(id)
	cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(opTimeout):
		dumpBlocked(t)
		t.Fatal("the SIGKILLed daemon did not exit")
	}
	t.Logf("killed the daemon with %d requests waiting (%d nodes looked up)", held, nodes)
	finishDrop(t, drop, mid)
	waitNoWaiting(t, id, "after the daemon's death")
	deadline = time.Now().Add(opTimeout)
	for {
		var st unix.Stat_t
		err := within(t, opTimeout, "stat of the dead mount", func() error { return unix.Stat(mnt, &st) })
		if err == unix.ENOTCONN {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stat of the dead mount: %v, want ENOTCONN", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := within(t, opTimeout, "unmount of the dead mount", func() error { return mount.Unmount(mnt) }); err != nil {
		t.Errorf("unmount of the dead mount: %v", err)
	}
	checkGone(t, mnt)
	if _, err := os.Stat(filepath.Join(mount.FusectlDir, strconv.FormatUint(uint64(id), 10))); err == nil {
		t.Errorf("connection %d still in fusectl after the unmount", id)
	}
}
