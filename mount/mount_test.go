//go:build linux

package mount

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testRoot is the private parent of every t.TempDir of this package's tests,
// so that TestMain can find a mount a test left behind.
var testRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ringfuse-mount-test-")
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	testRoot = dir
	os.Setenv("TMPDIR", dir)
	code := m.Run()
	all, err := Mounts()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	for i := len(all) - 1; i >= 0; i-- {
		if mp := all[i].Mountpoint; strings.HasPrefix(mp, dir+"/") {
			fmt.Fprintf(os.Stderr, "FAIL: mount left behind at %s (%s); force-unmounting\n", mp, all[i].FSType)
			if err := ForceUnmount(mp, 0); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// testTimeout bounds every step that could hang on a broken kernel or
// library, so that the cleanup still runs and no mount is left behind.
const testTimeout = 20 * time.Second

// needMount skips tests that mount when the process cannot.
func needMount(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: ringfuse mounts with mount(2)")
	}
	if _, err := os.Stat(devFusePath); err != nil {
		t.Skipf("needs %s: %v", devFusePath, err)
	}
}

// mountAt mounts on mp and registers a cleanup that force-unmounts it,
// closes the descriptor, and fails the test if the mount is still there.
func mountAt(t *testing.T, mp string, opts *Options) *Conn {
	t.Helper()
	needMount(t)
	c, err := Mount(mp, opts)
	if err != nil {
		t.Fatalf("Mount(%s): %v", mp, err)
	}
	t.Cleanup(func() {
		// connID 0: abort whatever is mounted there (ours), never a
		// connection number that may have been reused since.
		within(t, "cleanup ForceUnmount", func() error { return ForceUnmount(c.Mountpoint(), 0) })
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if ok, err := IsMounted(c.Mountpoint()); ok || err != nil {
			t.Errorf("mount left at %s after cleanup (err %v)", c.Mountpoint(), err)
		}
	})
	return c
}

func mountT(t *testing.T, opts *Options) *Conn {
	t.Helper()
	return mountAt(t, t.TempDir(), opts)
}

// within runs fn and fails the test if it returns an error or does not
// return within testTimeout. A call that hangs is left running: the test's
// cleanup aborts the connection, which releases it.
func within(t *testing.T, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	case <-time.After(testTimeout):
		t.Errorf("%s: still blocked after %v", what, testTimeout)
	}
}

// eventually polls cond until it holds or testTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("%s: not after %v", what, testTimeout)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readRequest waits for and reads one request from the FUSE descriptor.
func readRequest(t *testing.T, fd int) ([]byte, error) {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	var n int
	err := ignoringEINTR(func() error {
		var err error
		n, err = unix.Poll(fds, int(testTimeout/time.Millisecond))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("poll: no request after %v", testTimeout)
	}
	buf := make([]byte, 1<<20+4096) // the kernel refuses smaller reads
	err = ignoringEINTR(func() error {
		var err error
		n, err = unix.Read(fd, buf)
		return err
	})
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

const (
	sizeofInHeader = 40 // struct fuse_in_header
	opInit         = 26 // FUSE_INIT
)

func connDirExists(id uint32) bool {
	_, err := os.Stat(connDir(id))
	return err == nil
}

func TestMountInit(t *testing.T) {
	c := mountT(t, nil)
	mp := c.Mountpoint()

	msg, err := readRequest(t, c.Fd())
	if err != nil {
		t.Fatalf("read INIT: %v", err)
	}
	if len(msg) < sizeofInHeader {
		t.Fatalf("read %d bytes, shorter than fuse_in_header", len(msg))
	}
	le := binary.LittleEndian
	if l := le.Uint32(msg[0:]); int(l) != len(msg) {
		t.Errorf("header len %d, read %d bytes", l, len(msg))
	}
	if op := le.Uint32(msg[4:]); op != opInit {
		t.Errorf("first request has opcode %d, want FUSE_INIT (%d)", op, opInit)
	}
	if u := le.Uint64(msg[8:]); u == 0 {
		t.Errorf("INIT unique is 0")
	}

	m, ok, err := LookupMount(mp)
	if !ok || err != nil {
		t.Fatalf("LookupMount(%s) = %v, %v; want mounted", mp, ok, err)
	}
	if m.FSType != "fuse.ringfuse" || m.Source != "ringfuse" {
		t.Errorf("mounted as %s from %s, want fuse.ringfuse from ringfuse", m.FSType, m.Source)
	}
	for _, o := range []string{"nosuid", "nodev", "rw"} {
		if !hasOpt(m.Options, o) {
			t.Errorf("mount options %q lack %s", m.Options, o)
		}
	}
	for _, o := range []string{fmt.Sprintf("user_id=%d", os.Getuid()), fmt.Sprintf("group_id=%d", os.Getgid())} {
		if !hasOpt(m.SuperOptions, o) {
			t.Errorf("super options %q lack %s", m.SuperOptions, o)
		}
	}
	if ok, err := IsMounted(mp); !ok || err != nil {
		t.Errorf("IsMounted = %v, %v; want true", ok, err)
	}

	id, err := c.ConnID()
	if err != nil {
		t.Fatalf("ConnID: %v", err)
	}
	if id != m.Minor || m.Major != 0 {
		t.Errorf("ConnID = %d, mount device %d:%d", id, m.Major, m.Minor)
	}
	if err := EnsureFusectl(); err != nil {
		t.Fatalf("EnsureFusectl: %v", err)
	}
	if !connDirExists(id) {
		t.Fatalf("%s does not exist", connDir(id))
	}

	// Abort: the server's reads fail with ENODEV, the mount stays.
	if err := Abort(id); err != nil {
		t.Fatalf("Abort(%d): %v", id, err)
	}
	if _, err := readRequest(t, c.Fd()); !errors.Is(err, unix.ENODEV) {
		t.Errorf("read after Abort: %v, want ENODEV", err)
	}
	if ok, _ := IsMounted(mp); !ok {
		t.Errorf("Abort unmounted the file system")
	}
	if _, err := os.Stat(mp); !errors.Is(err, unix.ENOTCONN) {
		t.Errorf("stat of an aborted mount: %v, want ENOTCONN", err)
	}

	within(t, "UnmountLazy", func() error { return UnmountLazy(mp) })
	if ok, err := IsMounted(mp); ok || err != nil {
		t.Errorf("IsMounted after UnmountLazy = %v, %v; want false", ok, err)
	}
	eventually(t, "fusectl directory "+connDir(id)+" removed", func() bool { return !connDirExists(id) })
	if err := Abort(id); !errors.Is(err, ErrNoConn) {
		t.Errorf("Abort of a removed connection: %v, want ErrNoConn", err)
	}
}

func hasOpt(list, opt string) bool {
	for o := range strings.SplitSeq(list, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

func TestMountOptions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dir with space")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	opts := &Options{
		FSName: "src with space", Subtype: "rftest", AllowOther: true, DefaultPermissions: true,
		ReadOnly: true, MaxRead: 65536, UserID: u32(1234), GroupID: u32(5678),
		AllowSuid: true, NoExec: true, NoAtime: true,
	}
	c := mountAt(t, link, opts)
	if c.Mountpoint() != dir {
		t.Errorf("Mountpoint() = %q, want the resolved %q", c.Mountpoint(), dir)
	}
	for _, p := range []string{dir, link} {
		m, ok, err := LookupMount(p)
		if !ok || err != nil {
			t.Fatalf("LookupMount(%s) = %v, %v", p, ok, err)
		}
		if m.Mountpoint != dir || m.FSType != "fuse.rftest" || m.Source != "src with space" {
			t.Errorf("LookupMount(%s) = %+v", p, m)
		}
		for _, o := range []string{"ro", "nodev", "noexec", "noatime"} {
			if !hasOpt(m.Options, o) {
				t.Errorf("mount options %q lack %s", m.Options, o)
			}
		}
		if hasOpt(m.Options, "nosuid") {
			t.Errorf("mount options %q have nosuid despite AllowSuid", m.Options)
		}
		for _, o := range []string{"user_id=1234", "group_id=5678", "allow_other", "default_permissions", "max_read=65536"} {
			if !hasOpt(m.SuperOptions, o) {
				t.Errorf("super options %q lack %s", m.SuperOptions, o)
			}
		}
	}

	// A second connection gets its own number.
	c2 := mountT(t, &Options{PlainFSType: true})
	id1, err1 := c.ConnID()
	id2, err2 := c2.ConnID()
	if err1 != nil || err2 != nil || id1 == id2 {
		t.Errorf("two mounts: ConnID %d (%v) and %d (%v)", id1, err1, id2, err2)
	}
	if m, _, _ := LookupMount(c2.Mountpoint()); m.FSType != "fuse" {
		t.Errorf("PlainFSType mounted as %q", m.FSType)
	}
}

// TestForceUnmountHung leaves FUSE_INIT unanswered while a process waits on
// the mount, and checks that ForceUnmount releases both without blocking.
func TestForceUnmountHung(t *testing.T) {
	c := mountT(t, nil)
	mp := c.Mountpoint()
	id, err := c.ConnID()
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureFusectl(); err != nil {
		t.Fatal(err)
	}

	// The queued INIT already counts as waiting; the stat's GETATTR adds one.
	waiting := filepath.Join(connDir(id), "waiting")
	readWaiting := func() int {
		b, err := os.ReadFile(waiting)
		if err != nil {
			t.Errorf("read %s: %v", waiting, err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	base := readWaiting()
	statDone := make(chan error, 1)
	go func() {
		_, err := os.Stat(mp) // blocks until INIT is answered or the connection dies
		statDone <- err
	}()
	eventually(t, "the stat waiting on the connection", func() bool { return readWaiting() > base })
	if ok, err := IsMounted(mp); !ok || err != nil { // must not block either
		t.Errorf("IsMounted on a hung mount = %v, %v", ok, err)
	}
	if err := Unmount(mp); !errors.Is(err, ErrBusy) || !errors.Is(err, unix.EBUSY) {
		t.Errorf("Unmount while a stat is waiting: %v, want ErrBusy and EBUSY", err)
	}

	within(t, "ForceUnmount", func() error { return ForceUnmount(mp, id) })
	select {
	case err := <-statDone:
		if !errors.Is(err, unix.ENOTCONN) {
			t.Errorf("blocked stat returned %v, want ENOTCONN", err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("stat still blocked %v after ForceUnmount", testTimeout)
	}
	if ok, err := IsMounted(mp); ok || err != nil {
		t.Errorf("IsMounted after ForceUnmount = %v, %v", ok, err)
	}
	eventually(t, "fusectl directory removed", func() bool { return !connDirExists(id) })
	if _, err := readRequest(t, c.Fd()); !errors.Is(err, unix.ENODEV) {
		t.Errorf("read after ForceUnmount: %v, want ENODEV", err)
	}
	// Twice is fine.
	within(t, "second ForceUnmount", func() error { return ForceUnmount(mp, 0) })
}

// TestUnmount unmounts a connection whose INIT was never answered.
func TestUnmount(t *testing.T) {
	c := mountT(t, nil)
	mp := c.Mountpoint()
	id, err := c.ConnID()
	if err != nil {
		t.Fatal(err)
	}
	within(t, "Unmount", func() error { return Unmount(mp) })
	if ok, err := IsMounted(mp); ok || err != nil {
		t.Errorf("IsMounted after Unmount = %v, %v", ok, err)
	}
	if _, err := readRequest(t, c.Fd()); !errors.Is(err, unix.ENODEV) {
		// The INIT queued at mount time is dropped with the connection.
		t.Errorf("read after Unmount: %v, want ENODEV", err)
	}
	if err := EnsureFusectl(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "fusectl directory removed", func() bool { return !connDirExists(id) })
	if err := Unmount(mp); !errors.Is(err, ErrNotMounted) {
		t.Errorf("second Unmount: %v, want ErrNotMounted", err)
	}
	if err := UnmountLazy(mp); !errors.Is(err, ErrNotMounted) {
		t.Errorf("UnmountLazy of nothing: %v, want ErrNotMounted", err)
	}
	if got, err := c.ConnID(); got != id || err != nil {
		t.Errorf("ConnID after unmount = %d, %v; want the recorded %d", got, err, id)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if fd := c.Fd(); fd != -1 {
		t.Errorf("Fd after Close = %d, want -1", fd)
	}
}

func TestForceUnmountNotFUSE(t *testing.T) {
	needMount(t)
	// Never detach a mount that is not FUSE, even when asked to. A tmpfs
	// stands in for "/" so that a regression cannot detach anything real.
	dir := t.TempDir()
	if err := sysMount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := Unmount(dir); err != nil {
			t.Errorf("unmount tmpfs: %v", err)
		}
	})
	if err := ForceUnmount(dir, 0); !errors.Is(err, ErrNotMounted) {
		t.Errorf("ForceUnmount of a tmpfs: %v, want ErrNotMounted", err)
	}
	if ok, _ := IsMounted(dir); !ok {
		t.Errorf("ForceUnmount detached a tmpfs")
	}
	if err := ForceUnmount(t.TempDir(), 0); err != nil {
		t.Errorf("ForceUnmount of a plain directory: %v", err)
	}
}

func TestAbortUnknown(t *testing.T) {
	if err := Abort(0); !errors.Is(err, ErrNoConn) {
		t.Errorf("Abort(0): %v, want ErrNoConn", err)
	}
	needMount(t)
	const id = 1<<20 - 1 // the largest anonymous minor; never in use here
	if connDirExists(id) {
		t.Skipf("connection %d exists", id)
	}
	if err := Abort(id); !errors.Is(err, ErrNoConn) {
		t.Errorf("Abort(%d): %v, want ErrNoConn", id, err)
	}
}

func TestMountBadMountpoint(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Mount(file, nil); !errors.Is(err, ErrNotDir) {
		t.Errorf("Mount on a file: %v, want ErrNotDir", err)
	}
	if _, err := Mount(filepath.Join(dir, "missing"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Mount on a missing path: %v, want ErrNotExist", err)
	}
	if _, err := Mount("", nil); err == nil {
		t.Errorf("Mount on \"\": no error")
	}
	if _, err := Mount(dir, &Options{Extra: []string{"fd=3"}}); !errors.Is(err, ErrBadOption) {
		t.Errorf("Mount with Extra fd=3: %v, want ErrBadOption", err)
	}
	if ok, _ := IsMounted(dir); ok {
		t.Errorf("a failed Mount left a mount")
	}
}

func TestMountNoDevFuse(t *testing.T) {
	old := devFusePath
	devFusePath = filepath.Join(t.TempDir(), "no-such-fuse")
	t.Cleanup(func() { devFusePath = old })
	dir := t.TempDir()
	_, err := Mount(dir, nil)
	if !errors.Is(err, ErrNoDevFuse) || !errors.Is(err, unix.ENOENT) {
		t.Errorf("Mount without /dev/fuse: %v, want ErrNoDevFuse and ENOENT", err)
	}
	if err != nil && !strings.Contains(err.Error(), "modprobe fuse") {
		t.Errorf("error %q does not suggest modprobe fuse", err)
	}
}

func TestErrorMapping(t *testing.T) {
	for _, tt := range []struct {
		err  error
		euid int
		want error
	}{
		{unix.EPERM, 1000, ErrNotRoot},
		{unix.ENODEV, 0, ErrNoDevFuse},
		{unix.ENOTDIR, 0, ErrNotDir},
	} {
		got := mountErr("/mnt", "fuse.ringfuse", "fd=3", tt.err, tt.euid)
		if !errors.Is(got, tt.want) || !errors.Is(got, tt.err) {
			t.Errorf("mountErr(%v, euid %d) = %v, want %v wrapping the errno", tt.err, tt.euid, got, tt.want)
		}
	}
	if got := mountErr("/mnt", "fuse", "", unix.EPERM, 0); errors.Is(got, ErrNotRoot) {
		t.Errorf("EPERM as root reported as %v", got)
	}
	if got := mountErr("/mnt", "fuse", "fd=3,bogus", unix.EINVAL, 0); !strings.Contains(got.Error(), "fd=3,bogus") {
		t.Errorf("EINVAL error %q does not quote the options", got)
	}
	if got := mountErr("/mnt", "fuse", "", unix.EPERM, 1000); !strings.Contains(got.Error(), "needs root or CAP_SYS_ADMIN") {
		t.Errorf("EPERM error %q does not explain", got)
	}
	for _, e := range []error{unix.ENOENT, unix.ENODEV, unix.ENXIO} {
		if got := openErr(e); !errors.Is(got, ErrNoDevFuse) {
			t.Errorf("openErr(%v) = %v, want ErrNoDevFuse", e, got)
		}
	}
	if got := openErr(unix.EACCES); !errors.Is(got, ErrNotRoot) {
		t.Errorf("openErr(EACCES) = %v, want ErrNotRoot", got)
	}
}
