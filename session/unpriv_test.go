package session_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/fs/hello"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/session"
	"github.com/ringfuse/ringfuse/wire"
)

// Tests of mounting without root: the test binary runs itself as uid 65534
// (TestMain's child mode), which mounts through fusermount3.

const childEnv = "RINGFUSE_SESSION_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(unprivChild(spec))
	}
	os.Exit(m.Run())
}

// unprivChild mounts the hello filesystem as spec says
// ("TRANSPORT,MODE,MOUNTPOINT"; MODE "unmount" or "hold"), reads its file,
// and reports on standard output: "ready", the transport that serves, and
// the ring's error if it was refused. With "unmount" it then unmounts and
// exits; with "hold" it serves until killed, with auto_unmount.
func unprivChild(spec string) int {
	parts := strings.SplitN(spec, ",", 3)
	tr, mode, mnt := parts[0], parts[1], parts[2]
	if mode == "foreign" {
		// Another user's mount: unmounting must fail, and not as if
		// nothing were mounted.
		err := mount.Unmount(mnt)
		fmt.Println("unmount of a foreign mount:", err)
		if err == nil || errors.Is(err, mount.ErrNotMounted) {
			return 1
		}
		return 0
	}
	o := &session.Options{}
	o.Mount.AutoUnmount = mode == "hold"
	if tr == "uring" {
		o.Uring = &ring.Options{}
	}
	s, err := session.Mount(mnt, &hello.FS{Name: "greeting", Data: []byte("hi\n")}, o)
	if err != nil {
		fmt.Println("mount error:", err)
		return 1
	}
	b, err := os.ReadFile(filepath.Join(mnt, "greeting"))
	if err != nil || string(b) != "hi\n" {
		fmt.Printf("read: %q, %v\n", b, err)
		s.Unmount()
		return 1
	}
	served := "devfuse"
	if info := s.Server().Init(); info != nil && info.Flags&wire.FUSE_OVER_IO_URING != 0 {
		served = "uring"
	}
	fmt.Println("ready", served)
	if r := s.Ring(); r != nil && r.Err() != nil {
		fmt.Println("ring refused:", r.Err())
	}
	if mode == "hold" {
		select {}
	}
	if err := s.Unmount(); err != nil {
		fmt.Println("unmount error:", err)
		return 1
	}
	if ok, err := mount.IsMounted(mnt); ok || err != nil {
		fmt.Println("still mounted after Unmount:", err)
		return 1
	}
	fmt.Println("unmounted")
	return 0
}

// nobodyCmd returns a command running a copy of this test binary as uid
// 65534 in child mode, and a mount point that user owns.
func nobodyCmd(t *testing.T, tr, mode string) (*exec.Cmd, string) {
	t.Helper()
	return childCmd(t, tr, mode, 65534)
}

// childCmd is nobodyCmd for any user; uid 0 runs the child as root.
func childCmd(t *testing.T, tr, mode string, uid uint32) (*exec.Cmd, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to become uid 65534 (the test itself mounts as that user)")
	}
	if _, err := exec.LookPath(mount.FusermountName); err != nil {
		t.Fatalf("%s is missing (apt-get install fuse3): %v", mount.FusermountName, err)
	}
	testmount.DevFuseForAll(t)
	// The test binary's own directory is private: run a copy.
	dir := t.TempDir()
	testmount.Traversable(t, dir)
	bin := filepath.Join(dir, "session.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(mnt, int(uid), int(uid)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+tr+","+mode+","+mnt)
	cmd.Dir = "/"
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
	}
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if ok, _ := mount.IsMounted(mnt); ok {
			t.Errorf("%s left mounted", mnt)
			mount.ForceUnmount(mnt, 0)
		}
	})
	return cmd, mnt
}

// TestUnprivilegedMount mounts as uid 65534 over each transport: the mount
// goes through fusermount3, belongs to that user, serves, and the user
// unmounts it again (fusermount3 -u).
func TestUnprivilegedMount(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			if tr == "uring" {
				testmount.LockUringParam(t, false)
			}
			cmd, _ := nobodyCmd(t, tr, "unmount")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child as uid 65534: %v\n%s", err, out)
			}
			if want := "ready " + tr + "\n"; !strings.Contains(string(out), want) {
				t.Errorf("child did not serve over %s:\n%s", tr, out)
			}
			if strings.Contains(string(out), "ring refused") || !strings.Contains(string(out), "unmounted") {
				t.Errorf("child output:\n%s", out)
			}
		})
	}
}

// holdChild starts a child that mounts with auto_unmount and serves until
// killed, and waits for it to be ready.
func holdChild(t *testing.T, tr string, uid uint32) (*exec.Cmd, string, *bufio.Reader) {
	t.Helper()
	cmd, mnt := childCmd(t, tr, "hold", uid)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if !strings.HasPrefix(line, "ready") {
		rest, _ := io.ReadAll(r)
		t.Fatalf("child: %q %v\n%s", line, err, rest)
	}
	return cmd, mnt, r
}

// TestAutoUnmount kills the daemon with SIGKILL: the mount must go away,
// for a user's mount (made by fusermount3) and for root's (mount(2)).
func TestAutoUnmount(t *testing.T) {
	for _, who := range []struct {
		name string
		uid  uint32
	}{{"nobody", 65534}, {"root", 0}} {
		for _, tr := range testmount.Transports {
			t.Run(who.name+"/"+tr, func(t *testing.T) {
				if tr == "uring" {
					testmount.LockUringParam(t, false)
				}
				cmd, mnt, _ := holdChild(t, tr, who.uid)
				m, ok, err := mount.LookupMount(mnt)
				if err != nil || !ok {
					t.Fatalf("not mounted while the child serves: %v", err)
				}
				if want := fmt.Sprintf("user_id=%d,", who.uid); !strings.Contains(m.SuperOptions, want) {
					t.Errorf("mount options %q, want %s", m.SuperOptions, want)
				}
				cmd.Process.Kill()
				cmd.Wait()
				deadline := time.Now().Add(10 * time.Second)
				for {
					ok, err := mount.IsMounted(mnt)
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("still mounted 10 s after the daemon was killed: auto_unmount not honoured")
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
		}
	}
}

// TestUnprivilegedUringRefused makes the kernel refuse io_uring to
// unprivileged users (kernel.io_uring_disabled=1, which root still passes):
// the child must serve over /dev/fuse and say why in one line.
func TestUnprivilegedUringRefused(t *testing.T) {
	const sysctl = "/proc/sys/kernel/io_uring_disabled"
	testmount.LockUringParam(t, true)
	old, err := os.ReadFile(sysctl)
	if err != nil {
		t.Fatalf("%s: %v (kernel without io_uring?)", sysctl, err)
	}
	if err := os.WriteFile(sysctl, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(sysctl, old, 0o644); err != nil {
			t.Error(err)
		}
	})
	cmd, _ := nobodyCmd(t, "uring", "unmount")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as uid 65534: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ready devfuse\n") {
		t.Errorf("child did not fall back to /dev/fuse:\n%s", out)
	}
	var reason string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "ring refused: ") {
			if reason != "" {
				t.Errorf("reason spans lines:\n%s", out)
			}
			reason = l
		}
	}
	t.Logf("child:\n%s", out)
	if strings.Contains(string(out), "\nring: queue") {
		t.Errorf("reason spans lines:\n%s", out)
	}
	if !strings.Contains(reason, "io_uring_disabled") {
		t.Errorf("refusal does not name kernel.io_uring_disabled: %q\n%s", reason, out)
	}
}

// TestUnprivilegedUnmountForeign has uid 65534 unmount root's mount:
// umount2 refuses, fusermount3 -u refuses too, and the error must say so
// rather than claim nothing is mounted.
func TestUnprivilegedUnmountForeign(t *testing.T) {
	cmd, _ := nobodyCmd(t, "devfuse", "foreign")
	s := testmount.Mount(t, &hello.FS{Name: "greeting", Data: []byte("hi\n")}, testmount.Options{Transport: "devfuse"})
	cmd.Env = append(cmd.Env, childEnv+"=devfuse,foreign,"+s.Dir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if ok, _ := mount.IsMounted(s.Dir()); !ok {
		t.Fatal("uid 65534 unmounted root's mount")
	}
	t.Logf("%s", out)
}
