package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
)

// Tests of the operator's interface: libfuse's command line, going to the
// background, mount(8) and fstab through mount.fuse3, signals, and
// mounting as an unprivileged user.

// waitFor polls cond every 20 ms until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// daemonPID finds the live process serving mnt: the one whose command line
// names it. A zombie (a background daemon that exited but whose new parent
// has not reaped it) does not count.
func daemonPID(t *testing.T, mnt string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !alive(pid) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for _, a := range args[1:] {
			if a == mnt && !strings.HasPrefix(filepath.Base(args[0]), "sh") {
				return pid
			}
		}
	}
	return 0
}

// alive reports whether pid exists and has not exited.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	return ok && !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// background runs "ringfuse SRC MNT args..." and checks that it returns 0
// with the mount already up; it returns the daemon's pid.
func backgroundMount(t *testing.T, cmd *exec.Cmd, mnt string) int {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ringfuse %v: %v\n%s", cmd.Args[1:], err, &out)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("ringfuse %v did not return within 20 s\n%s", cmd.Args[1:], &out)
	}
	// Returning means ready: no waiting for the mount here.
	if ok, err := mount.IsMounted(mnt); !ok || err != nil {
		t.Fatalf("ringfuse returned 0 but %s is not mounted (%v)\n%s", mnt, err, &out)
	}
	pid := daemonPID(t, mnt)
	if pid == 0 || pid == cmd.Process.Pid {
		t.Fatalf("no background daemon serving %s (pid %d, command %d)", mnt, pid, cmd.Process.Pid)
	}
	t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if ok, _ := mount.IsMounted(mnt); ok {
			mount.ForceUnmount(mnt, 0)
			t.Errorf("%s left mounted", mnt)
		}
	})
	return pid
}

// TestBackground starts the daemon the way mount.fuse3 does, "ringfuse SRC
// MNT -o OPTIONS": it must return 0 once the mount is ready, keep serving
// in the background, and unmount cleanly on SIGHUP.
func TestBackground(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			if tr == "uring" {
				testmount.LockUringParam(t, false)
			}
			src, mnt := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644); err != nil {
				t.Fatal(err)
			}
			args := append([]string{src, mnt}, transportOpts(tr)...)
			pid := backgroundMount(t, command(args...), mnt)
			if b, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(b) != "data" {
				t.Fatalf("read through the mount: %q, %v", b, err)
			}
			if err := os.WriteFile(filepath.Join(mnt, "g"), []byte("new"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "daemon still running after SIGHUP", func() bool { return !alive(pid) })
			if ok, _ := mount.IsMounted(mnt); ok {
				t.Fatal("still mounted after SIGHUP")
			}
			if b, err := os.ReadFile(filepath.Join(src, "g")); err != nil || string(b) != "new" {
				t.Errorf("backing file: %q, %v", b, err)
			}
		})
	}
}

// TestBackgroundFails checks that a daemon that cannot mount makes the
// command fail at once with the reason, rather than return 0.
func TestBackgroundFails(t *testing.T) {
	src := t.TempDir()
	out, err := command(src, filepath.Join(t.TempDir(), "missing")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing") {
		t.Errorf("mount on a missing directory: %v\n%s", err, out)
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() != 1 {
		t.Errorf("exit status %d, want 1", ee.ExitCode())
	}
	out, err = command(src).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "want SOURCE and MOUNTPOINT") {
		t.Errorf("one argument: %v\n%s", err, out)
	}
}

// foreground starts the daemon with args and waits for its mount; the
// process must stay the one that serves.
func foreground(t *testing.T, args ...string) (src, mnt string, cmd *exec.Cmd, stderr *testmount.LogBuffer) {
	t.Helper()
	src, mnt = t.TempDir(), t.TempDir()
	cmd = command(append([]string{src, mnt}, args...)...)
	stderr = &testmount.LogBuffer{}
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
	waitFor(t, "not mounted", func() bool { ok, _ := mount.IsMounted(mnt); return ok })
	if pid := daemonPID(t, mnt); pid != cmd.Process.Pid {
		t.Fatalf("serving process %d, want the command itself (%d)", pid, cmd.Process.Pid)
	}
	return src, mnt, cmd, stderr
}

// stop sends sig to a foreground daemon and checks a clean exit.
func stop(t *testing.T, cmd *exec.Cmd, mnt string, sig syscall.Signal, stderr *testmount.LogBuffer) {
	t.Helper()
	cmd.Process.Signal(sig)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit after %v: %v\n%s", sig, err, stderr)
	}
	if ok, _ := mount.IsMounted(mnt); ok {
		t.Fatalf("still mounted after %v", sig)
	}
}

// TestForegroundFlags mounts with -f, -d and -s over each transport: -f
// serves in the process itself, -d logs requests, -s serves with one
// /dev/fuse reader or io_uring queues of depth 1; SIGHUP unmounts.
func TestForegroundFlags(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			if tr == "uring" {
				testmount.LockUringParam(t, false)
			}
			_, mnt, cmd, stderr := foreground(t, append(transportOpts(tr), "-f")...)
			if _, err := os.ReadDir(mnt); err != nil {
				t.Fatal(err)
			}
			stop(t, cmd, mnt, syscall.SIGHUP, stderr)
			if stderr.String() != "" {
				t.Errorf("-f printed:\n%s", stderr)
			}

			_, mnt, cmd, stderr = foreground(t, append(transportOpts(tr), "-d", "-s")...)
			if _, err := os.Stat(filepath.Join(mnt, "nosuchfile")); !os.IsNotExist(err) {
				t.Fatalf("stat: %v", err)
			}
			stop(t, cmd, mnt, syscall.SIGTERM, stderr)
			log := stderr.String()
			want := "over /dev/fuse (1 readers)"
			if tr == "uring" {
				want = "of depth 1)"
			}
			if !strings.Contains(log, "serving ") || !strings.Contains(log, want) {
				t.Errorf("-d -s over %s: no %q in\n%s", tr, want, log)
			}
			if !strings.Contains(log, "LOOKUP node 1: error -2") {
				t.Errorf("-d logged no LOOKUP of nosuchfile:\n%s", log)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, flag := range []string{"--version", "-V"} {
		out, err := command(flag).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "ringfuse version ") || !strings.Contains(string(out), "FUSE kernel interface version 7.") {
			t.Errorf("%s: %v\n%s", flag, err, out)
		}
	}
	out, err := command("--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "fuse.ringfuse") || strings.Contains(string(out), "forget-study") {
		t.Errorf("--help: %v\n%s", err, out)
	}
}

// TestMountHelper mounts with mount(8), as an administrator and fstab do:
// "mount -t fuse.ringfuse", a line of an fstab, and the old "ringfuse#SRC"
// form. mount(8) runs Debian's mount.fuse3, which runs "ringfuse SRC MNT -o
// OPTIONS" through /bin/sh with the standard PATH, so the test puts the
// command in /usr/local/bin inside a private mount namespace of its own
// (unshare), where the mounts happen too, and checks them there.
func TestMountHelper(t *testing.T) {
	testmount.LockUringParam(t, false)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/sbin/mount.fuse3"); err != nil {
		t.Fatalf("mount(8)'s FUSE helper is missing (apt-get install fuse3): %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nRINGFUSE_MAIN=1 exec %q \"$@\"\n", os.Args[0])
	if err := os.WriteFile(filepath.Join(bin, "ringfuse"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	src, mnt := filepath.Join(dir, "src"), filepath.Join(dir, "mnt")
	for _, d := range []string{src, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fstab := filepath.Join(dir, "fstab")
	if err := os.WriteFile(fstab, []byte(src+" "+mnt+" fuse.ringfuse defaults,io_uring,nofail,x-systemd.requires=network.target 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each mount must be up when mount(8) returns, serve, show as
	// fuse.ringfuse, and go away with umount.
	script := `set -e
mount --bind "$BIN" /usr/local/bin
check() {
	grep -q " $MNT .* - fuse.ringfuse $SRC " /proc/self/mountinfo || { echo "$1: not in mountinfo"; cat /proc/self/mountinfo; exit 1; }
	grep -q " $MNT .*$2" /proc/self/mountinfo || { echo "$1: options: no $2"; grep " $MNT " /proc/self/mountinfo; exit 1; }
	[ "$(cat "$MNT/f")" = hello ] || { echo "$1: read failed"; exit 1; }
	umount "$MNT"
	echo "$1 ok"
}
mount -t fuse.ringfuse "$SRC" "$MNT" -o io_uring,noexec; check "mount -t" noexec
mount -T "$FSTAB" "$MNT"; check fstab " rw,"
mount -t fuse "ringfuse#$SRC" "$MNT" -o ro; check "ringfuse#" " ro,"
`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "BIN="+bin, "SRC="+src, "MNT="+mnt, "FSTAB="+fstab)
	err := testmount.Within(t, 60*time.Second, "mount(8) script", nil, func() error {
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		t.Logf("%s", out)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every daemon ended with its umount.
	waitFor(t, "a daemon outlived its umount", func() bool { return daemonPID(t, mnt) == 0 })
}

// TestUnprivilegedDaemon runs the command as uid 65534 over each transport:
// it mounts through fusermount3, serves that user, unmounts on SIGHUP
// (fusermount3 -u), and with -o auto_unmount its mount goes away when it is
// killed.
func TestUnprivilegedDaemon(t *testing.T) {
	testmount.DevFuseForAll(t)
	// The test binary's own directory is private: run a copy.
	dir := t.TempDir()
	testmount.Traversable(t, dir)
	bin := filepath.Join(dir, "ringfuse.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	mkdir := func(name string) string {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			if tr == "uring" {
				testmount.LockUringParam(t, false)
			}
			src := mkdir("src-" + tr)
			if err := os.WriteFile(filepath.Join(src, "f"), []byte("mine\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, end := range []string{"sighup", "kill"} {
				mnt := mkdir("mnt-" + tr + "-" + end)
				args := append([]string{src, mnt}, transportOpts(tr)...)
				if end == "kill" {
					args = append(args, "-o", "auto_unmount")
				}
				cmd := exec.Command(bin, args...)
				cmd.Env = append(os.Environ(), "RINGFUSE_MAIN=1")
				cmd.SysProcAttr = nobody
				pid := backgroundMount(t, cmd, mnt)
				m, _, err := mount.LookupMount(mnt)
				if err != nil || !strings.Contains(m.SuperOptions, "user_id=65534,") {
					t.Errorf("mount %+v, %v: want user_id=65534", m, err)
				}
				// The daemon runs without CAP_DAC_READ_SEARCH: the
				// passthrough pins its nodes.
				use := exec.Command("sh", "-c", `cd "$1" && mkdir d && echo new > d/g && ls && cat f d/g`, "sh", mnt)
				use.SysProcAttr = nobody
				if out, err := use.CombinedOutput(); err != nil || string(out) != "d\nf\nmine\nnew\n" {
					t.Errorf("uid 65534 using its mount: %q, %v", out, err)
				}
				os.RemoveAll(filepath.Join(src, "d"))
				sig := syscall.SIGHUP
				if end == "kill" {
					sig = syscall.SIGKILL
				}
				syscall.Kill(pid, sig)
				waitFor(t, fmt.Sprintf("%s still mounted after %v", mnt, sig), func() bool {
					ok, err := mount.IsMounted(mnt)
					return err == nil && !ok
				})
				waitFor(t, "daemon alive", func() bool { return !alive(pid) })
			}
		})
	}
}
