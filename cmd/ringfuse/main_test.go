package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
)

// The test binary doubles as the ringfuse command: with RINGFUSE_MAIN set
// it runs main, so the tests drive a real daemon process.
func TestMain(m *testing.M) {
	if os.Getenv("RINGFUSE_MAIN") == "1" {
		os.Args = append([]string{"ringfuse"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RINGFUSE_MAIN=1")
	return cmd
}

// daemon starts "ringfuse mount" and waits until the mount is up.
func daemon(t *testing.T, opts ...string) (src, mnt string, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	src, mnt = t.TempDir(), t.TempDir()
	args := append([]string{"mount", "--stats"}, opts...)
	cmd = command(append(args, src, mnt)...)
	stderr = &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if ok, _ := mount.IsMounted(mnt); ok {
			mount.ForceUnmount(mnt, 0)
			t.Errorf("%s left mounted", mnt)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, _ := mount.IsMounted(mnt); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mounted after 10 s: %s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return src, mnt, cmd, stderr
}

func transportOpts(tr string) []string {
	if tr == "uring" {
		return []string{"-o", "io_uring"}
	}
	return nil
}

// TestMountSignal mounts, uses the mount, and checks that SIGTERM unmounts
// cleanly and prints statistics.
func TestMountSignal(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src, mnt, cmd, stderr := daemon(t, transportOpts(tr)...)
			if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("data"), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(src, "f")); err != nil || string(b) != "data" {
				t.Fatalf("backing file: %q, %v", b, err)
			}
			cmd.Process.Signal(syscall.SIGUSR1)
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("daemon exit: %v\n%s", err, stderr)
			}
			if ok, _ := mount.IsMounted(mnt); ok {
				t.Fatal("still mounted after SIGTERM")
			}
			if !strings.Contains(stderr.String(), "nodes alive") {
				t.Errorf("no statistics printed:\n%s", stderr)
			}
		})
	}
}

// TestKilledDaemon SIGKILLs the daemon during I/O: clients must get
// ENOTCONN, nothing may hang, and the mount must be removable.
func TestKilledDaemon(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			_, mnt, cmd, _ := daemon(t, transportOpts(tr)...)
			done := make(chan error, 1)
			go func() {
				// A client in its own process, so a stuck request
				// cannot block this test's threads.
				c := exec.Command("sh", "-c", `i=0; while [ $i -lt 100000 ]; do echo x > "$1/f$i" || exit 3; cat "$1/f$i" >/dev/null || exit 4; i=$((i+1)); done`, "sh", mnt)
				done <- c.Run()
			}()
			time.Sleep(300 * time.Millisecond)
			cmd.Process.Kill()
			cmd.Wait()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("client: %v, want a failure", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("client hung after the daemon was killed")
			}
			// With io_uring the kernel releases the connection from the
			// ring's exit work, after the process is gone: until then a
			// request is aborted (ECONNABORTED), then ENOTCONN.
			var st syscall.Stat_t
			deadline := time.Now().Add(10 * time.Second)
			for {
				err := syscall.Stat(mnt, &st)
				if err == syscall.ENOTCONN {
					break
				}
				if err != syscall.ECONNABORTED || time.Now().After(deadline) {
					t.Fatalf("stat of the dead mount: %v, want ENOTCONN", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := mount.Unmount(mnt); err != nil {
				t.Fatalf("unmount of the dead mount: %v", err)
			}
		})
	}
}

func TestHelpAndErrors(t *testing.T) {
	out, err := command("mount", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "io_uring_q_depth") {
		t.Errorf("mount --help: %v\n%s", err, out)
	}
	out, err = command("mount", "-o", "bogus", t.TempDir(), t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown option "bogus"`) {
		t.Errorf("bad option: %v\n%s", err, out)
	}
	out, err = command("mount", "/nonexistent-source", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "source") {
		t.Errorf("missing source: %v\n%s", err, out)
	}
	// An unprivileged user mounts through fusermount3, which refuses a
	// mount point the user may not write to; the command must say so.
	// The test binary's own directory is private, so run a copy.
	bin := filepath.Join(t.TempDir(), "ringfuse.test")
	testmount.Traversable(t, filepath.Dir(bin))
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	testmount.Traversable(t, mnt)
	testmount.DevFuseForAll(t)
	cmd := exec.Command(bin, "mount", "/tmp", mnt)
	cmd.Env = append(os.Environ(), "RINGFUSE_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "fusermount3") || !strings.Contains(string(out), "write access") {
		t.Errorf("as nobody: %v\n%s", err, out)
	}
}
