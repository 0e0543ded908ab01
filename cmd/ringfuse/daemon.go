package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/wire"
)

// Going to the background. Go cannot fork a running process, so the
// command starts itself again, detached (a session of its own), with the
// write end of a pipe in readyEnv. The child mounts and serves; once the
// mount is ready it points its standard streams at /dev/null and writes
// one byte to the pipe, and the parent exits 0. If the child fails first,
// it says why on the standard error it shares with the parent, exits, and
// the parent exits with its status.

// readyEnv names the descriptor the background child reports readiness on.
const readyEnv = "_RINGFUSE_READY_FD"

// exitCode makes main exit with that status without a message.
type exitCode int

func (e exitCode) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// errUsage marks command-line mistakes: main prints the usage after them.
var errUsage = errors.New("usage")

// background starts this command again with args as a detached child and
// waits until it reports the mount ready or exits.
func background(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), readyEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return err
	}
	var b [1]byte
	n, _ := r.Read(b[:])
	r.Close()
	if n == 1 {
		return nil // serving; the child lives on without us
	}
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return exitCode(ee.ExitCode())
		}
		return fmt.Errorf("background daemon: %w", err)
	}
	return exitCode(1) // exited 0 without reporting: cannot happen
}

// readyFD returns the descriptor of a background child's pipe, or -1 in the
// foreground. It marks the descriptor close-on-exec and forgets the
// variable, so that the helpers the daemon runs (fusermount3, the
// auto_unmount watcher) do not hold the pipe open.
func readyFD() int {
	v, ok := os.LookupEnv(readyEnv)
	if !ok {
		return -1
	}
	os.Unsetenv(readyEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return -1
	}
	unix.CloseOnExec(fd)
	return fd
}

// detach finishes going to the background once the mount is ready: standard
// input, output and error become /dev/null, the working directory /, and
// the parent is told. Errors after this point go nowhere, as with libfuse.
func detach(fd int) error {
	null, err := unix.Open("/dev/null", unix.O_RDWR, 0)
	if err != nil {
		return err
	}
	for std := range 3 {
		if err := unix.Dup3(null, std, 0); err != nil {
			return err
		}
	}
	unix.Close(null)
	_ = os.Chdir("/")
	_, err = unix.Write(fd, []byte{1})
	unix.Close(fd)
	return err
}

// printVersion prints the build's version, as "ringfuse --version" does.
func printVersion() {
	version, rev := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " " + s.Value[:12]
			}
		}
	}
	fmt.Printf("ringfuse version %s%s (%s)\n", version, rev, runtime.Version())
	fmt.Printf("FUSE kernel interface version %d.%d, over /dev/fuse and io_uring\n",
		wire.FUSE_KERNEL_VERSION, wire.FUSE_KERNEL_MINOR_VERSION)
}
