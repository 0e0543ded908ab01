package patched

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/wire"
)

// Environment of the two sides.
const (
	// inVMEnv marks the guest: the test binary runs inside kernel/vm.
	inVMEnv = "RINGFUSE_IN_VM"
	// binEnv is the path of the static ringfuse command in the guest.
	binEnv = "RINGFUSE_BIN"
	// inodesEnv sets the storm's size.
	inodesEnv = "RINGFUSE_STORM_INODES"
)

// inVM says whether this test binary runs in the guest.
var inVM = os.Getenv(inVMEnv) == "1"

// wantMinor is the protocol minor of the patched kernel.
const wantMinor = 46

func TestMain(m *testing.M) {
	if inVM {
		if err := guestSetup(); err != nil {
			fmt.Fprintf(os.Stderr, "\n*** tests/patched: %v\n*** the guest's tests did not run\n\n", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// guestScratch is the guest's tmpfs for the tests' directories.
const guestScratch = "/tmp/.ringfuse-guest"

// guestSetup enables FUSE-over-io_uring and checks that the kernel is the
// patched one: it offers protocol 7.46. It mounts nothing: the first
// mount of each test checks what INIT negotiated (mountStorm).
func guestSetup() error {
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	release := utsString(uts.Release[:])
	fmt.Printf("guest: Linux %s, %d CPUs\n", release, runtime.NumCPU())
	if err := os.WriteFile(mount.EnableUringParam, []byte("Y\n"), 0); err != nil {
		return fmt.Errorf("enable FUSE-over-io_uring: %v (kernel without CONFIG_FUSE_IO_URING?)", err)
	}
	// The guest's /tmp is an overlay (host /tmp below, tmpfs above), which
	// has no file handles: the passthrough would pin a descriptor per
	// node. A tmpfs of its own instead, for t.TempDir, beside /tmp rather
	// than over it: the checkout, and the binaries built into it, may be
	// under the host's /tmp.
	if err := os.MkdirAll(guestScratch, 0o1777); err != nil {
		return fmt.Errorf("scratch directory: %v", err)
	}
	if err := syscall.Mount("tmpfs", guestScratch, "tmpfs", 0, "mode=1777"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %v", guestScratch, err)
	}
	os.Setenv("TMPDIR", guestScratch)
	// virtme-init allows a million descriptors per process (nr_open).
	lim := syscall.Rlimit{Cur: 1 << 20, Max: 1 << 20}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Printf("guest: RLIMIT_NOFILE: %v\n", err)
	}
	// Report tasks blocked for 30 s on the console (TestVM shows it).
	_ = os.WriteFile("/proc/sys/kernel/hung_task_timeout_secs", []byte("30\n"), 0)
	if err := mount.EnsureFusectl(); err != nil {
		return err
	}
	minor, err := probeKernelMinor()
	if err != nil {
		return fmt.Errorf("probing the kernel's FUSE protocol: %v", err)
	}
	if minor != wantMinor {
		return fmt.Errorf("the kernel (Linux %s) offers FUSE protocol 7.%d, not 7.%d: it is not the patched kernel (kernel/patches empty or not applied?)", release, minor, wantMinor)
	}
	fmt.Printf("guest: the kernel offers FUSE protocol 7.%d; ringfuse speaks up to 7.%d\n", minor, wire.FUSE_KERNEL_MINOR_VERSION)
	return nil
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// TestVM runs this package's tests in a VM on the patched kernel.
func TestVM(t *testing.T) {
	if inVM {
		t.Skip("in the guest")
	}
	if testing.Short() {
		t.Skip("-short: the VM tests boot a kernel under emulation")
	}
	if os.Getenv("RINGFUSE_VM_TESTS") == "0" {
		t.Skip("RINGFUSE_VM_TESTS=0")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: kernel/build installs packages and kernel/vm runs QEMU")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	image := os.Getenv("RINGFUSE_KERNEL_IMAGE")
	if image == "" {
		t.Log("RINGFUSE_KERNEL_IMAGE unset: running kernel/build (cached if nothing changed)")
		cmd := exec.Command(filepath.Join(repo, "kernel/build"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kernel/build: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		image = lines[len(lines)-1]
	}
	if _, err := os.Stat(image); err != nil {
		t.Fatalf("kernel image: %v", err)
	}

	// The binaries go to a directory the guest sees as the host does:
	// the checkout (the guest's /tmp is an overlay of the host's).
	dir, err := os.MkdirTemp(".", ".vm-")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ = filepath.Abs(dir)
	t.Cleanup(func() { os.RemoveAll(dir) })
	testBin, daemonBin := filepath.Join(dir, "patched.test"), filepath.Join(dir, "ringfuse")
	kmodelBin := filepath.Join(dir, "kmodel.test")
	t0 := time.Now()
	for _, args := range [][]string{
		{"test", "-c", "-o", testBin, "."},
		{"test", "-c", "-o", kmodelBin, "github.com/ringfuse/ringfuse/kmodel"},
		{"build", "-o", daemonBin, "github.com/ringfuse/ringfuse/cmd/ringfuse"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Logf("built the static test binaries and ringfuse in %.1fs", time.Since(t0).Seconds())

	// Time: the VM gets what the test has left, less a margin for the
	// guest's own -test.timeout to fire first and print its goroutines.
	vmTimeout := 40 * time.Minute
	if d, ok := t.Deadline(); ok {
		vmTimeout = time.Until(d) - 30*time.Second
	}
	if vmTimeout < 2*time.Minute {
		t.Fatalf("only %v left for the VM", vmTimeout)
	}
	guestTimeout := vmTimeout - time.Minute
	cpus := envOr("RINGFUSE_VM_CPUS", "2")
	memory := envOr("RINGFUSE_VM_MEMORY", "2G")
	guestEnv := []string{inVMEnv + "=1", binEnv + "=" + daemonBin}
	for _, k := range []string{inodesEnv, "RINGFUSE_STORM_VARIANTS"} {
		if v := os.Getenv(k); v != "" {
			guestEnv = append(guestEnv, k+"="+v)
		}
	}
	// The guest runs this package's tests, then kmodel's conformance
	// tests (TestConformance746 compares the model with the patched
	// kernel), each in its package directory; it exits non-zero if either
	// failed.
	to := "-test.timeout=" + (guestTimeout / 2).Round(time.Second).String()
	run := ""
	if r := os.Getenv("RINGFUSE_VM_RUN"); r != "" {
		run = " -test.run=" + shQuote(r)
	}
	kmodelRun := envOr("RINGFUSE_VM_KMODEL_RUN", "^TestConformance")
	script := "cd " + shQuote(filepath.Join(repo, "tests/patched")) + " && " + shQuote(testBin) + " -test.v -test.count=1 " + to + run + "; a=$?; "
	if kmodelRun != "-" {
		script += "cd " + shQuote(filepath.Join(repo, "kmodel")) + " && " + shQuote(kmodelBin) + " -test.v -test.count=1 " + to + " -test.run=" + shQuote(kmodelRun) + "; b=$?; "
	} else {
		script += "b=0; "
	}
	script += `echo "guest: tests/patched exit $a, kmodel exit $b"; [ $a = 0 ] && [ $b = 0 ]`
	guestArgs := []string{"sh", "-c", script}
	// --verbose: the guest kernel's console comes on standard error, kept
	// apart from the tests' output (standard output).
	args := []string{"--verbose", "--image", image, "--cpus", cpus, "--memory", memory,
		"--timeout", strconv.Itoa(int(vmTimeout.Seconds())),
		// Every slab cache its own line in /proc/slabinfo, for the
		// leak checks.
		"--append", "slab_nomerge",
		"--", "env"}
	args = append(append(args, guestEnv...), guestArgs...)
	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repo, "kernel/vm"), args...)
	// On our timeout, SIGTERM: kernel/vm then kills the whole VM.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	pr, pw := io.Pipe()
	cr, cw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, cw
	var tail lineTail
	var storms []string
	var firstLine time.Time
	scanned := make(chan struct{}, 2)
	go func() {
		defer func() { scanned <- struct{}{} }()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if firstLine.IsZero() {
				firstLine = time.Now()
			}
			fmt.Printf("vm| %s\n", line)
			tail.add(line)
			if strings.HasPrefix(line, "STORM ") {
				storms = append(storms, line)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	// The console: every line to a log file, trouble also to our output
	// at once, and its end to the failure message.
	consoleLog := filepath.Join(os.TempDir(), "ringfuse-vm-console.log")
	var console lineTail
	go func() {
		defer func() { scanned <- struct{}{} }()
		f, _ := os.Create(consoleLog)
		defer f.Close()
		sc := bufio.NewScanner(cr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if f != nil {
				fmt.Fprintln(f, line)
			}
			console.add(line)
			if consoleTrouble(line) {
				fmt.Printf("vm-console| %s\n", line)
			}
		}
		io.Copy(io.Discard, cr)
	}()
	t.Logf("kernel/vm %s", strings.Join(args, " "))
	t1 := time.Now()
	err = cmd.Run()
	pw.Close()
	cw.Close()
	<-scanned
	<-scanned
	if !firstLine.IsZero() {
		t.Logf("the guest's first line came %.1fs after kernel/vm started (boot, TCG)", firstLine.Sub(t1).Seconds())
	}
	t.Logf("the VM ran for %.1fs; its console is in %s", time.Since(t1).Seconds(), consoleLog)
	for _, s := range storms {
		t.Log(s)
	}
	if err != nil {
		t.Fatalf("the guest's tests failed (%v); the end of their output:\n%s\nthe end of the guest's console (all of it in %s):\n%s", err, tail.String(), consoleLog, console.String())
	}
}

// consoleTrouble says whether a console line reports a kernel problem, or
// is the guest test binary's own standard error (a panic, a timeout).
func consoleTrouble(s string) bool {
	for _, m := range []string{"BUG", "WARNING", "Oops", "INFO: task", "blocked for more than", "soft lockup",
		"hung_task", "Call Trace", "RIP:", "general protection", "Kernel panic", "watchdog:",
		"panic:", "goroutine ", "fatal error", "test timed out", "sysrq: Show Blocked State"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// shQuote quotes s for sh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// lineTail keeps the last lines of the guest's output, and its failures.
type lineTail struct {
	lines []string
	fails []string
}

func (l *lineTail) add(s string) {
	if strings.Contains(s, "--- FAIL") || strings.HasPrefix(s, "panic:") || strings.Contains(s, "***") {
		l.fails = append(l.fails, s)
	}
	l.lines = append(l.lines, s)
	if len(l.lines) > 80 {
		l.lines = l.lines[1:]
	}
}

func (l *lineTail) String() string {
	var b bytes.Buffer
	for _, s := range l.lines {
		b.WriteString(s + "\n")
	}
	if len(l.fails) > 0 {
		b.WriteString("failures:\n")
		for _, s := range l.fails {
			b.WriteString("  " + s + "\n")
		}
	}
	return b.String()
}
