package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Errors from starting and stopping a daemon.
var (
	// ErrAlreadyMounted means something is mounted at the mountpoint before
	// the daemon started.
	ErrAlreadyMounted = errors.New("mountpoint already mounted")
	// ErrMountTimeout means the mount did not appear in time.
	ErrMountTimeout = errors.New("mount did not appear")
	// ErrDaemonExited means the daemon exited before its mount appeared.
	ErrDaemonExited = errors.New("daemon exited before mounting")
	// ErrLeftMounted means the daemon exited but left its mount behind; the
	// harness removed it with a lazy unmount and a fusectl abort.
	ErrLeftMounted = errors.New("daemon left its mount behind (cleaned up)")
	// ErrMountStuck means a mount could not be removed. The harness stops
	// when it sees this error.
	ErrMountStuck = errors.New("mount could not be removed")
)

// Daemon is a running mount command.
type Daemon struct {
	cmd     *exec.Cmd
	mnt     string
	logPath string
	logFile *os.File
	done    chan struct{}
	waitErr error
}

// StartDaemon runs argv with its output appended to logPath and waits until
// a FUSE mount appears at mnt (absolute, symlinks resolved) in
// /proc/self/mountinfo. On any error the daemon is stopped and its mount
// removed before StartDaemon returns. The daemon gets its own process group,
// so a terminal's SIGINT reaches only the harness, and SIGTERM if the
// harness dies.
func StartDaemon(ctx context.Context, argv []string, mnt, logPath string, timeout time.Duration) (*Daemon, error) {
	if len(argv) == 0 {
		return nil, errors.New("start daemon: empty command")
	}
	if e, ok, err := FindMount(mnt); err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	} else if ok {
		return nil, fmt.Errorf("start daemon: %s (%s): %w", mnt, e.FSType, ErrAlreadyMounted)
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	fmt.Fprintf(logFile, "# %s %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start daemon %s: %w", argv[0], err)
	}
	d := &Daemon{cmd: cmd, mnt: mnt, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.done)
	}()

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		e, ok, err := FindMount(mnt)
		if err != nil {
			return nil, d.abandon(fmt.Errorf("start daemon: %w", err))
		}
		if ok && e.IsFUSE() {
			return d, nil
		}
		select {
		case <-d.done:
			return nil, d.abandon(fmt.Errorf("%w (%v); log %s:\n%s", ErrDaemonExited, d.waitErr, logPath, d.logTail()))
		case <-deadline.C:
			return nil, d.abandon(fmt.Errorf("%w at %s within %v; log %s:\n%s", ErrMountTimeout, mnt, timeout, logPath, d.logTail()))
		case <-ctx.Done():
			return nil, d.abandon(ctx.Err())
		case <-tick.C:
		}
	}
}

// abandon stops a daemon that failed to start and returns err, joined with
// ErrMountStuck if its mount could not be removed.
func (d *Daemon) abandon(err error) error {
	if serr := d.Stop(10 * time.Second); errors.Is(serr, ErrMountStuck) {
		return errors.Join(err, serr)
	}
	return err
}

// PID returns the daemon's process id.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// LogPath returns the file holding the daemon's output.
func (d *Daemon) LogPath() string { return d.logPath }

// Stop sends SIGTERM and waits up to timeout for the daemon to exit (then
// sends SIGKILL). If the mount is still there afterwards, it is removed with
// [ForceUnmount] and the error matches [ErrLeftMounted], or [ErrMountStuck]
// if that failed too. A non-zero exit status is reported as an error too.
// Stop may be called more than once.
func (d *Daemon) Stop(timeout time.Duration) error {
	var errs []error
	select {
	case <-d.done:
	default:
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(timeout):
			errs = append(errs, fmt.Errorf("daemon %d ignored SIGTERM for %v; killed", d.PID(), timeout))
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	if d.logFile != nil {
		d.logFile.Close()
		d.logFile = nil
	}
	if d.waitErr != nil {
		errs = append(errs, fmt.Errorf("daemon exit: %w", d.waitErr))
		d.waitErr = nil
	}
	if _, ok, err := FindMount(d.mnt); err != nil {
		errs = append(errs, err)
	} else if ok {
		if err := ForceUnmount(d.mnt); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, ErrLeftMounted)
		}
	}
	return errors.Join(errs...)
}

func (d *Daemon) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	return tail(b, 20)
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

// head returns the first n lines of b.
func head(b []byte, n int) string {
	for i, c := range b {
		if c == '\n' {
			n--
			if n == 0 {
				return string(b[:i+1])
			}
		}
	}
	return string(b)
}

// ForceUnmount removes the mount at mnt: it aborts the FUSE connection
// through /sys/fs/fuse/connections/N/abort, so that no process stays blocked
// on it, then detaches the mount with umount2(MNT_DETACH). The error matches
// [ErrMountStuck] if the mount is still there afterwards.
func ForceUnmount(mnt string) error {
	e, ok, err := FindMount(mnt)
	if err != nil || !ok {
		return err
	}
	var errs []error
	if e.IsFUSE() {
		abort := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", e.ConnectionID())
		if err := os.WriteFile(abort, []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
		errs = append(errs, fmt.Errorf("umount -l %s: %w", mnt, err))
	}
	if _, ok, err := FindMount(mnt); err != nil || ok {
		errs = append(errs, fmt.Errorf("%w: %s", ErrMountStuck, mnt))
	}
	return errors.Join(errs...)
}

// runCommand runs argv in dir and returns its standard output. Standard
// error is appended to log and, on failure, quoted in the error.
func runCommand(ctx context.Context, dir string, log io.Writer, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if log != nil {
		cmd.Stderr = io.MultiWriter(&stderr, log)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s interrupted: %w", argv[0], ctx.Err())
		}
		out := strings.TrimSpace(head(stderr.Bytes(), 10) + head(stdout.Bytes(), 5))
		if out == "" {
			return nil, fmt.Errorf("%s: %w", argv[0], err)
		}
		return nil, fmt.Errorf("%s: %w: %s", argv[0], err, out)
	}
	return stdout.Bytes(), nil
}
