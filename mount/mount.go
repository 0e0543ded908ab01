package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// devFusePath is the FUSE device; a variable so that tests can make it
// missing.
var devFusePath = "/dev/fuse"

// Conn is a mounted FUSE connection: it owns the /dev/fuse descriptor that
// the server reads requests from and writes replies to.
//
// The kernel queues FUSE_INIT on the descriptor as soon as [Mount] returns;
// until the server answers it, any access to the mount blocks. Closing the
// descriptor does not unmount: the kernel aborts the connection, and the
// mount answers ENOTCONN until it is unmounted. The methods are safe for
// concurrent use.
type Conn struct {
	mountpoint string

	mu     sync.Mutex
	fd     int      // -1 once closed
	connID uint32   // 0 until known; the kernel never uses 0
	watch  *watcher // unmounts after this process dies (AutoUnmount), or nil
}

// Mount opens /dev/fuse and mounts a FUSE file system on mountpoint, which
// must be an existing directory. A nil opts means the zero [Options].
//
// As root it calls mount(2) itself. Otherwise, or with
// [Options.UseFusermount], it runs the setuid helper
// fusermount3, which checks that the user may mount there (write access to
// the mount point; allow_other only with user_allow_other in
// /etc/fuse.conf), mounts, and passes the /dev/fuse descriptor back over a
// socket.
//
// The descriptor is a raw blocking descriptor, not an *os.File: reads block
// in the kernel until a request arrives, so the server reads it from its own
// threads. The caller must serve FUSE_INIT, and must eventually unmount
// ([Unmount], or [ForceUnmount] if the server is stuck) and [Conn.Close].
//
// Mount stats mountpoint before mounting, which blocks if mountpoint is
// itself a hung FUSE mount. Errors wrap [ErrNotRoot], [ErrNoDevFuse],
// [ErrNotDir] or [ErrBadOption] where they apply, and the errno otherwise.
func Mount(mountpoint string, opts *Options) (*Conn, error) {
	var o Options
	if opts != nil {
		o = *opts
		o.Extra = append([]string(nil), opts.Extra...)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := linuxOnly(); err != nil {
		return nil, err
	}
	if _, err := o.data(0); err != nil { // check before opening anything
		return nil, err
	}
	target, err := checkMountpoint(mountpoint)
	if err != nil {
		return nil, err
	}
	var c *Conn
	if o.useHelper() {
		c, err = mountHelper(target, &o)
	} else {
		c, err = mountSys(target, &o)
	}
	if err != nil {
		return nil, err
	}
	if o.AutoUnmount {
		if c.watch, err = startWatcher(target); err != nil {
			_ = UnmountLazy(target)
			closeFD(c.fd)
			return nil, err
		}
	}
	// Record the connection number now, from the mount table: stat'ing the
	// mount would block until FUSE_INIT is answered. A failure here is not
	// fatal; ConnID retries.
	_ = c.lookupConnID(o.fstype(), o.source())
	return c, nil
}

// mountSys opens /dev/fuse and calls mount(2).
func mountSys(target string, o *Options) (*Conn, error) {
	fd, err := openDev(devFusePath)
	if err != nil {
		return nil, openErr(err)
	}
	data, err := o.data(fd)
	if err != nil {
		closeFD(fd)
		return nil, err
	}
	if err := sysMount(o.source(), target, o.fstype(), o.flags(), data); err != nil {
		closeFD(fd)
		return nil, mountErr(target, o.fstype(), data, err, os.Geteuid())
	}
	return &Conn{mountpoint: target, fd: fd}, nil
}

// checkMountpoint resolves mountpoint to the absolute, symlink-free path
// that mount(2) and mountinfo will use, and checks that it is a directory.
func checkMountpoint(mountpoint string) (string, error) {
	if mountpoint == "" {
		return "", fmt.Errorf("mount: empty mount point: %w", unix.ENOENT)
	}
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", fmt.Errorf("mount: mount point %s: %w", mountpoint, err)
	}
	target, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("mount: mount point %s: %w", mountpoint, err)
	}
	st, err := os.Stat(target)
	if err != nil {
		return "", fmt.Errorf("mount: mount point %s: %w", mountpoint, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("mount: mount point %s: %w", mountpoint, ErrNotDir)
	}
	return target, nil
}

// openErr explains a failure to open /dev/fuse.
func openErr(err error) error {
	switch err {
	case unix.ENOENT, unix.ENODEV, unix.ENXIO:
		return fmt.Errorf("mount: open %s: %w: %w", devFusePath, ErrNoDevFuse, err)
	case unix.EACCES, unix.EPERM:
		return fmt.Errorf("mount: open %s: %w: %w", devFusePath, ErrNotRoot, err)
	}
	return fmt.Errorf("mount: open %s: %w", devFusePath, err)
}

// mountErr explains a failure of mount(2) by a process with effective uid
// euid.
func mountErr(target, fstype, data string, err error, euid int) error {
	prefix := fmt.Sprintf("mount: mount %s on %s", fstype, target)
	switch err {
	case unix.EPERM, unix.EACCES:
		if euid != 0 {
			return fmt.Errorf("%s: %w (running as uid %d): %w", prefix, ErrNotRoot, euid, err)
		}
		return fmt.Errorf("%s: %w", prefix, err)
	case unix.ENODEV:
		return fmt.Errorf("%s: %w: %w", prefix, ErrNoDevFuse, err)
	case unix.ENOTDIR:
		return fmt.Errorf("%s: %w: %w", prefix, ErrNotDir, err)
	case unix.EINVAL:
		return fmt.Errorf("%s: kernel rejected options %q: %w", prefix, data, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// lookupConnID finds the connection number in the mount table. Called with
// c.mu held or before c is shared.
func (c *Conn) lookupConnID(fstype, source string) error {
	all, err := Mounts()
	if err != nil {
		return err
	}
	var found *MountInfo
	for i := range all {
		m := &all[i]
		if m.Mountpoint != c.mountpoint || !m.IsFUSE() {
			continue
		}
		if fstype != "" && (m.FSType != fstype || m.Source != source) {
			continue
		}
		found = m // the last one is on top
	}
	if found == nil {
		return fmt.Errorf("mount: no FUSE mount at %s in the mount table: %w", c.mountpoint, ErrNotMounted)
	}
	c.connID = found.ConnID()
	return nil
}

// Fd returns the /dev/fuse descriptor, or -1 after Close. The Conn keeps
// ownership: do not close it yourself.
func (c *Conn) Fd() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fd
}

// Mountpoint returns the absolute path the file system is mounted on, with
// symbolic links resolved; it may differ from the path given to [Mount].
func (c *Conn) Mountpoint() string {
	return c.mountpoint
}

// ConnID returns the FUSE connection number: the name of the connection's
// directory under /sys/fs/fuse/connections, which is the minor device
// number of the mount, and the argument of [Abort] and [ForceUnmount]. Mount
// reads it from /proc/self/mountinfo, never by stat'ing the mount, so it is
// available before FUSE_INIT is answered. If the mount table did not show the
// mount then, ConnID looks again, and fails with [ErrNotMounted] if the mount
// is gone.
func (c *Conn) ConnID() (uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connID == 0 {
		if err := c.lookupConnID("", ""); err != nil {
			return 0, err
		}
	}
	return c.connID, nil
}

// Close closes the /dev/fuse descriptor. It does not unmount; the kernel
// aborts the connection once no descriptor refers to it. With
// [Options.AutoUnmount] it also lets the watcher go, which unmounts
// (lazily) if the file system is still mounted. Close is idempotent: later
// calls return nil.
//
// Close does not wake a thread blocked reading the descriptor. Stop readers
// first by unmounting or aborting the connection, which makes their reads
// fail with ENODEV, and only then Close, so that the descriptor number is
// not reused under them.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	err := closeFD(c.fd)
	c.fd = -1
	if c.watch != nil {
		c.watch.stop(c.mountpoint)
	}
	if err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("mount: close %s: %w", devFusePath, err)
	}
	return nil
}
