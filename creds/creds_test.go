package creds

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
)

// callerCtx is a request context that names a caller.
type callerCtx struct {
	context.Context
	c ringfuse.Caller
}

func (c callerCtx) Caller() ringfuse.Caller { return c.c }

func asCaller(c ringfuse.Caller) context.Context {
	return callerCtx{Context: context.Background(), c: c}
}

func needRoot(t testing.TB) {
	t.Helper()
	if !Supported() {
		t.Fatalf("creds: switching not supported (euid %d): the tests run as root", os.Geteuid())
	}
}

const nobody = 65534

// openDir makes a directory that every user can reach (t.TempDir's parent
// is private to root).
func openDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "creds")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// sleeper starts a process of nobody with supplementary group 1234 and
// returns its process ID.
func sleeper(t testing.TB) uint32 {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{1234}}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return uint32(cmd.Process.Pid)
}

// fixture makes a directory anybody may write to and a file only root may
// read, and returns their paths.
func fixture(t *testing.T) (pub, secret string) {
	d := openDir(t)
	pub = filepath.Join(d, "pub")
	if err := os.Mkdir(pub, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(pub, 0o777)
	secret = filepath.Join(d, "secret")
	if err := os.WriteFile(secret, []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, secret
}

func TestRunActsAsCaller(t *testing.T) {
	needRoot(t)
	pub, secret := fixture(t)
	ctx := asCaller(ringfuse.Caller{UID: nobody, GID: nobody + 1})
	var readErr error
	e := Run(ctx, func() syscall.Errno {
		_, readErr = os.ReadFile(secret)
		fd, err := unix.Open(filepath.Join(pub, "new"), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err.(syscall.Errno)
		}
		unix.Close(fd)
		// chown to root is what a caller must never get through.
		if err := unix.Chown(filepath.Join(pub, "new"), 0, 0); err != syscall.EPERM {
			t.Errorf("chown to root as the caller: %v, want EPERM", err)
		}
		return 0
	})
	if e != 0 {
		t.Fatalf("Run: %v", e)
	}
	if !os.IsPermission(readErr) {
		t.Errorf("reading a 0600 root file as the caller: %v, want EACCES", readErr)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(pub, "new"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != nobody || st.Gid != nobody+1 {
		t.Errorf("new file owned by %d:%d, want %d:%d", st.Uid, st.Gid, nobody, nobody+1)
	}
	// The thread is the daemon's again.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if got := currentFsuid(); got != 0 {
		t.Errorf("fsuid after Run: %d", got)
	}
	if _, err := os.ReadFile(secret); err != nil {
		t.Errorf("root after Run: %v", err)
	}
}

// TestRunGroups checks that a caller's supplementary groups apply: a
// process of nobody in group 1234 reads a file of that group, and the same
// request from a thread ID without that group does not.
func TestRunGroups(t *testing.T) {
	needRoot(t)
	d := openDir(t)
	f := filepath.Join(d, "grp")
	if err := os.WriteFile(f, []byte("g"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f, 0, 1234); err != nil {
		t.Fatal(err)
	}
	pid := sleeper(t)
	read := func(pid uint32) error {
		var err error
		Run(asCaller(ringfuse.Caller{UID: nobody, GID: nobody, PID: pid}), func() syscall.Errno {
			_, err = os.ReadFile(f)
			return 0
		})
		return err
	}
	if err := read(pid); err != nil {
		t.Errorf("member of group 1234: %v", err)
	}
	// This test's own thread has fsuid 0, not nobody: its groups are not
	// taken.
	if err := read(uint32(os.Getpid())); !os.IsPermission(err) {
		t.Errorf("a thread whose IDs do not match the request: %v, want EACCES", err)
	}
}

func TestRunSelfAndForeignContexts(t *testing.T) {
	needRoot(t)
	for _, ctx := range []context.Context{context.Background(), asCaller(ringfuse.Caller{})} {
		ran := false
		Run(ctx, func() syscall.Errno {
			ran = true
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if got := currentFsuid(); got != 0 {
				t.Errorf("fsuid %d for a root or unknown caller", got)
			}
			return 0
		})
		if !ran {
			t.Error("f did not run")
		}
	}
}

func TestRunRestoresAfterPanic(t *testing.T) {
	needRoot(t)
	func() {
		defer func() { recover() }()
		Run(asCaller(ringfuse.Caller{UID: nobody, GID: nobody}), func() syscall.Errno { panic("boom") })
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if got := currentFsuid(); got != 0 {
		t.Errorf("fsuid after a panic: %d", got)
	}
}

func TestRunAllocs(t *testing.T) {
	needRoot(t)
	ctx := asCaller(ringfuse.Caller{UID: nobody, GID: nobody, PID: sleeper(t)})
	f := func() syscall.Errno { return 0 }
	Run(ctx, f)
	if n := testing.AllocsPerRun(100, func() { Run(ctx, f) }); n != 0 {
		t.Errorf("Run allocates %v times", n)
	}
}

func TestParseStatus(t *testing.T) {
	const status = "Name:\tbash\nUmask:\t0022\nUid:\t1000\t1001\t1002\t1003\nGid:\t20\t21\t22\t23\nFDSize:\t256\nGroups:\t4 24 27 \nNStgid:\t1\n"
	e, ok := parseStatus([]byte(status))
	if !ok || e.uid != 1003 || e.gid != 23 || len(e.groups) != 3 || e.groups[2] != 27 {
		t.Fatalf("parseStatus = %+v, %v", e, ok)
	}
	e, ok = parseStatus([]byte("Uid:\t1\t1\t1\t1\nGid:\t1\t1\t1\t1\nGroups:\t\n"))
	if !ok || len(e.groups) != 0 {
		t.Errorf("no groups: %+v, %v", e, ok)
	}
	for _, bad := range []string{"", "Uid:\t1\t1\t1\nGid:\t1\t1\t1\t1\nGroups:\n", "Uid:\t1\t1\t1\t1\nGid:\t1\t1\t1\t1\nGroups:\tx\n", "Uid:\t1\t1\t1\t1\nGid:\t1\t1\t1\t1\n"} {
		if _, ok := parseStatus([]byte(bad)); ok {
			t.Errorf("parseStatus(%q) accepted", bad)
		}
	}
}

func BenchmarkRun(b *testing.B) {
	needRoot(b)
	ctx := asCaller(ringfuse.Caller{UID: nobody, GID: nobody, PID: sleeper(b)})
	f := func() syscall.Errno { return 0 }
	b.ReportAllocs()
	for b.Loop() {
		Run(ctx, f)
	}
}

// threadCtx names a Thread record, as the server's contexts do.
type threadCtx struct {
	callerCtx
	t *Thread
}

func (c threadCtx) CredThread() *Thread { return c.t }

// TestThreadTransitions walks one owned thread through callers whose IDs
// and groups differ in one part at a time (become changes only what
// differs) and checks the thread's real credentials after each.
func TestThreadTransitions(t *testing.T) {
	needRoot(t)
	member := sleeper(t) // nobody with group 1234
	var th Thread
	steps := []struct {
		c      ringfuse.Caller
		groups string // the Groups: line's fields
	}{
		{ringfuse.Caller{UID: nobody, GID: nobody, PID: member}, "1234"},
		{ringfuse.Caller{UID: nobody, GID: nobody}, ""},                  // groups go
		{ringfuse.Caller{UID: nobody - 1, GID: nobody}, ""},              // only the uid changes
		{ringfuse.Caller{UID: nobody - 1, GID: nobody - 1}, ""},          // only the gid changes
		{ringfuse.Caller{UID: nobody, GID: nobody, PID: member}, "1234"}, // all of them
		{ringfuse.Caller{}, ""},                                          // root: the daemon's own
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // for good, like a worker
		for i, s := range steps {
			var st groupEntry
			var ok bool
			Run(threadCtx{callerCtx{context.Background(), s.c}, &th}, func() syscall.Errno {
				b, err := os.ReadFile("/proc/thread-self/status")
				if err != nil {
					t.Error(err)
					return 0
				}
				st, ok = parseStatus(b)
				return 0
			})
			if s.c.UID == 0 {
				continue // checked below, outside Run
			}
			want := groupEntry{uid: s.c.UID, gid: s.c.GID}
			got := fmt.Sprint(st.groups)
			if !ok || st.uid != want.uid || st.gid != want.gid || got != "["+s.groups+"]" {
				t.Errorf("step %d: thread has fsuid %d fsgid %d groups %s, want %d %d [%s]", i, st.uid, st.gid, got, want.uid, want.gid, s.groups)
			}
		}
		if got := currentFsuid(); got != self.uid || th.switched {
			t.Errorf("after a root request: fsuid %d, record switched %v", got, th.switched)
		}
	}()
	<-done
}
