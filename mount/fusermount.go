package mount

import (
	"bytes"
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

// FusermountName is the setuid helper that mounts FUSE file systems for
// users who may not call mount(2): fusermount3, from libfuse 3 (Debian
// package fuse3).
const FusermountName = "fusermount3"

// fusermountPath finds the helper: on $PATH first, as libfuse does, then in
// /usr/bin and /bin for daemons started with an empty environment. A
// variable so that tests can make it missing.
var fusermountPath = func() (string, error) {
	if p, err := exec.LookPath(FusermountName); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/" + FusermountName, "/bin/" + FusermountName} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("mount: %s not found (install the fuse3 package): %w", FusermountName, ErrNoFusermount)
}

// commFDEnv names the environment variable through which fusermount3 learns
// the number of the socket it sends the /dev/fuse descriptor over.
const commFDEnv = "_FUSE_COMMFD"

// useHelper reports whether Mount goes through fusermount3.
func (o *Options) useHelper() bool {
	return o.UseFusermount || os.Geteuid() != 0
}

// helperOpts builds the -o argument of fusermount3. The helper adds fd=,
// rootmode=, user_id= and group_id= itself, from the descriptor it opens,
// the mount point and its caller's real IDs.
func (o *Options) helperOpts() (string, error) {
	root := os.Getuid() == 0
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	switch {
	case o.UserID != nil && *o.UserID != uid, o.GroupID != nil && *o.GroupID != gid:
		return "", fmt.Errorf("mount: user_id= and group_id= of another user need mount(2) as root, not %s: %w", FusermountName, ErrBadOption)
	case !root && (o.AllowSuid || o.AllowDev):
		return "", fmt.Errorf("mount: options suid and dev need root: %w", ErrBadOption)
	case strings.ContainsAny(o.FSName, ",\\"):
		// fusermount3 splits its options at commas.
		return "", fmt.Errorf("mount: option fsname=%q: ',' or '\\' cannot pass through %s: %w", o.FSName, FusermountName, ErrBadOption)
	}
	words := []string{"fsname=" + o.source()}
	if !o.PlainFSType {
		words = append(words, "subtype="+strings.TrimPrefix(o.fstype(), "fuse."))
	}
	add := func(on bool, w string) {
		if on {
			words = append(words, w)
		}
	}
	add(!o.AllowSuid, "nosuid")
	add(!o.AllowDev, "nodev")
	add(o.AllowSuid, "suid")
	add(o.AllowDev, "dev")
	add(o.ReadOnly, "ro")
	add(o.NoExec, "noexec")
	add(o.NoAtime, "noatime")
	add(o.AllowOther, "allow_other")
	add(o.DefaultPermissions, "default_permissions")
	add(o.MaxRead != 0, fmt.Sprintf("max_read=%d", o.MaxRead))
	extra, err := o.extraWords()
	if err != nil {
		return "", err
	}
	return strings.Join(append(words, extra...), ","), nil
}

// mountHelper mounts on target through fusermount3: it hands the helper one
// end of a socket pair (the number in _FUSE_COMMFD), and the helper opens
// /dev/fuse, mounts, sends the descriptor back with SCM_RIGHTS, and exits.
//
// fusermount3's own auto_unmount is not used: before libfuse 3.15 (Debian 12
// has 3.14) it checks that the mount is dead by opening it as root, which
// the kernel refuses on another user's mount without allow_other (libfuse
// issue 586), and over io_uring the open may still see ECONNABORTED rather
// than ENOTCONN; either way it leaves the mount. A [watcher] does the job.
func mountHelper(target string, o *Options) (*Conn, error) {
	path, err := fusermountPath()
	if err != nil {
		return nil, err
	}
	opts, err := o.helperOpts()
	if err != nil {
		return nil, err
	}
	pair, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("mount: socketpair: %w", err)
	}
	sock, theirs := pair[0], os.NewFile(uintptr(pair[1]), "fusermount-socket")
	defer closeFD(sock)
	var stderr bytes.Buffer
	cmd := exec.Command(path, "-o", opts, "--", target)
	cmd.ExtraFiles = []*os.File{theirs} // descriptor 3 in the helper
	cmd.Env = append(os.Environ(), commFDEnv+"=3")
	cmd.Stderr = &stderr
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		return nil, fmt.Errorf("mount: run %s: %w: %w", path, ErrNoFusermount, err)
	}
	fd, rerr := recvFD(sock)
	werr := cmd.Wait()
	if rerr != nil {
		return nil, helperErr(path, target, stderr.Bytes(), werr, rerr)
	}
	if stderr.Len() > 0 {
		os.Stderr.Write(stderr.Bytes()) // warnings, such as an ignored option
	}
	return &Conn{mountpoint: target, fd: fd}, nil
}

// helperErr explains a fusermount3 that did not send a descriptor, quoting
// the last line it wrote to standard error.
func helperErr(path, target string, msg []byte, werr, rerr error) error {
	lines := strings.Split(strings.TrimSpace(string(msg)), "\n")
	last := lines[len(lines)-1]
	if last == "" {
		last = fmt.Sprint(rerr)
		if werr != nil {
			last = werr.Error()
		}
	}
	return fmt.Errorf("mount: %s on %s: %w: %s", path, target, ErrFusermount, last)
}

// recvFD receives one descriptor over the socket sock, close-on-exec. It
// fails with io.ErrUnexpectedEOF if the peer closed the socket without
// sending one.
func recvFD(sock int) (int, error) {
	var b [1]byte
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	err := ignoringEINTR(func() error {
		var err error
		n, oobn, _, _, err = unix.Recvmsg(sock, b[:], oob, msgCmsgCloexec)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("recvmsg: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return -1, err
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil || len(fds) == 0 {
			continue
		}
		for _, extra := range fds[1:] {
			closeFD(extra)
		}
		return fds[0], nil
	}
	if n == 0 {
		return -1, io.ErrUnexpectedEOF
	}
	return -1, errors.New("no descriptor in the helper's message")
}

// helperUnmount unmounts through fusermount3 -u (-z for lazy), for a user
// whom umount2(2) refuses: the helper lets the user who mounted unmount.
func helperUnmount(mountpoint string, lazy bool) error {
	path, err := fusermountPath()
	if err != nil {
		return err
	}
	args := []string{"-u"}
	if lazy {
		args = append(args, "-z")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(path, append(args, "--", mountpoint)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		// fusermount3 says "not found" also for another user's mount:
		// the mount table decides.
		mounted, merr := IsMounted(mountpoint)
		switch {
		case merr == nil && !mounted:
			return fmt.Errorf("mount: unmount %s: %w: %s", mountpoint, ErrNotMounted, msg)
		case strings.Contains(msg, "busy"):
			return fmt.Errorf("mount: unmount %s: %w: %w: %s", mountpoint, ErrBusy, unix.EBUSY, msg)
		}
		return fmt.Errorf("mount: unmount %s: %w: %s", mountpoint, ErrFusermount, msg)
	}
	return nil
}

// watcher unmounts a mount of this process's after the process dies: a
// shell, in a session of its own so that terminal signals pass it by, reads
// a pipe whose other end only this process holds. At a clean shutdown the
// process writes a line first and the shell exits; if the process dies, the
// kernel closes the pipe, the read sees end of file, and the shell unmounts
// lazily: with "umount -l" for root, and otherwise with "fusermount3 -u -z",
// which lets the user who mounted unmount.
type watcher struct {
	w    *os.File
	done chan struct{}
}

// watchScript is the watcher's shell program; its arguments are the
// unmount command, ending with the mount point.
const watchScript = `read line || exec "$@"`

// startWatcher starts the watcher of mountpoint ([Options.AutoUnmount]).
func startWatcher(mountpoint string) (*watcher, error) {
	umount := []string{"umount", "-l", "--", mountpoint}
	if os.Geteuid() != 0 {
		path, err := fusermountPath()
		if err != nil {
			return nil, err
		}
		umount = []string{path, "-u", "-z", "--", mountpoint}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", watchScript, "ringfuse-auto-unmount"}, umount...)...)
	// Standard output and error are /dev/null: the watcher outlives this
	// process, and must not hold its caller's pipes open.
	cmd.Stdin = r
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("mount: auto_unmount: start the watcher: %w", err)
	}
	wa := &watcher{w: w, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(wa.done)
	}()
	return wa, nil
}

// stop ends the watcher: quietly if the mount is gone, and otherwise by
// letting it unmount, as fusermount3's auto_unmount does when its socket
// closes.
func (wa *watcher) stop(mountpoint string) {
	if ok, err := IsMounted(mountpoint); err == nil && !ok {
		wa.w.WriteString("done\n")
	}
	wa.w.Close()
	select {
	case <-wa.done:
	case <-time.After(5 * time.Second):
	}
}
