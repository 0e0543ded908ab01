// Package examples_test runs each example command as a user would: build
// it, start it on a mountpoint, use the mount, stop it with SIGTERM.
package examples_test

import (
	"archive/zip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/mount"
)

// start builds the example name and runs it with args, waiting until mnt
// is mounted. Cleanup stops it and checks that it unmounted.
func start(t *testing.T, name, mnt string, args ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: ringfuse mounts with mount(2)")
	}
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, "./"+name).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s exited: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%s did not exit within 10 s of SIGTERM", name)
		}
		if ok, _ := mount.IsMounted(mnt); ok {
			t.Errorf("%s left %s mounted", name, mnt)
			mount.ForceUnmount(mnt, 0)
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ok, _ := mount.IsMounted(mnt); ok {
			return
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("%s exited before mounting: %v", name, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not mount %s within 20 s", name, mnt)
		}
	}
}

func TestHello(t *testing.T) {
	mnt := t.TempDir()
	start(t, "hello", mnt, mnt)
	if b, err := os.ReadFile(filepath.Join(mnt, "hello.txt")); err != nil || string(b) != "hello, world\n" {
		t.Errorf("read: %q, %v", b, err)
	}
}

func TestMemfs(t *testing.T) {
	mnt := t.TempDir()
	start(t, "memfs", mnt, mnt)
	p := filepath.Join(mnt, "f")
	if err := os.WriteFile(p, []byte("kept in memory"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "kept in memory" {
		t.Errorf("read: %q, %v", b, err)
	}
}

func TestZipfs(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "a.zip")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	w, _ := zw.Create("dir/member.txt")
	w.Write([]byte("zipped"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mnt := t.TempDir()
	start(t, "zipfs", mnt, archive, mnt)
	if b, err := os.ReadFile(filepath.Join(mnt, "dir", "member.txt")); err != nil || string(b) != "zipped" {
		t.Errorf("read: %q, %v", b, err)
	}
}
