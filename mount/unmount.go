package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// FusectlDir is where the fusectl file system is mounted. It holds one
// directory per FUSE connection, named by its connection number, with the
// files abort, waiting, max_background and congestion_threshold.
const FusectlDir = "/sys/fs/fuse/connections"

// fusectlDir is FusectlDir; a variable so that tests can redirect it.
var fusectlDir = FusectlDir

// Unmount unmounts the file system at mountpoint with umount2(2) and no
// flags. If a process still uses the mount, it fails with an error wrapping
// [ErrBusy] and unix.EBUSY; if nothing is mounted there, with
// [ErrNotMounted]. Unmounting does not wait for the FUSE server, so it works
// on a hung or aborted connection, and it makes the server's reads of
// /dev/fuse fail with ENODEV.
func Unmount(mountpoint string) error {
	return unmount(mountpoint, 0)
}

// UnmountLazy detaches the file system at mountpoint with MNT_DETACH: it
// disappears from the tree at once, even if busy, and is torn down when
// its last user lets go. Errors are as for [Unmount], except that it is never
// busy.
func UnmountLazy(mountpoint string) error {
	return unmount(mountpoint, mntDetach)
}

func unmount(mountpoint string, flags int) error {
	if mountpoint == "" {
		return fmt.Errorf("mount: unmount: empty mount point: %w", ErrNotMounted)
	}
	err := sysUnmount(mountpoint, flags)
	switch err {
	case nil:
		return nil
	case unix.EBUSY:
		return fmt.Errorf("mount: unmount %s: %w: %w", mountpoint, ErrBusy, err)
	case unix.EINVAL:
		return fmt.Errorf("mount: unmount %s: %w: %w", mountpoint, ErrNotMounted, err)
	case unix.EPERM:
		if os.Geteuid() != 0 {
			// fusermount3 lets the user who mounted unmount.
			if herr := helperUnmount(mountpoint, flags&mntDetach != 0); !errors.Is(herr, ErrNoFusermount) {
				return herr
			}
			return fmt.Errorf("mount: unmount %s: %w: %w", mountpoint, ErrNotRoot, err)
		}
	}
	return fmt.Errorf("mount: unmount %s: %w", mountpoint, err)
}

// fusectlMu serializes EnsureFusectl, so that concurrent callers in this
// process do not stack two fusectl mounts.
var fusectlMu sync.Mutex

// EnsureFusectl mounts the fusectl file system on [FusectlDir] unless it is
// already mounted there, as "mount -t fusectl none /sys/fs/fuse/connections"
// would. It leaves fusectl mounted, as systemd does at boot. [Abort] calls it.
func EnsureFusectl() error {
	fusectlMu.Lock()
	defer fusectlMu.Unlock()
	all, err := Mounts()
	if err != nil {
		return err
	}
	for _, m := range all {
		if m.FSType == "fusectl" && m.Mountpoint == fusectlDir {
			return nil
		}
	}
	err = sysMount("fusectl", fusectlDir, "fusectl", 0, "")
	switch err {
	case nil:
		return nil
	case unix.ENOENT, unix.ENODEV:
		return fmt.Errorf("mount: mount fusectl on %s: %w: %w", fusectlDir, ErrNoDevFuse, err)
	case unix.EPERM, unix.EACCES:
		return fmt.Errorf("mount: mount fusectl on %s: %w: %w", fusectlDir, ErrNotRoot, err)
	}
	return fmt.Errorf("mount: mount fusectl on %s: %w", fusectlDir, err)
}

// connDir is the fusectl directory of a connection.
func connDir(connID uint32) string {
	return filepath.Join(fusectlDir, strconv.FormatUint(uint64(connID), 10))
}

// Abort aborts FUSE connection connID by writing to its fusectl abort file,
// mounting fusectl first if needed ([EnsureFusectl]). Every request waiting
// on the connection fails with ENOTCONN, the server's reads of /dev/fuse fail
// with ENODEV, and the mount stays in place, answering ENOTCONN, until it is
// unmounted. Abort does not block on the server.
//
// It fails with [ErrNoConn] if the connection does not exist. Connection
// numbers are reused once a connection is gone, so pass only the number of
// a connection you know is alive, such as one from your own [Conn.ConnID].
func Abort(connID uint32) error {
	if connID == 0 {
		return fmt.Errorf("mount: abort connection 0: %w", ErrNoConn)
	}
	if err := EnsureFusectl(); err != nil {
		return err
	}
	err := writeCtl(filepath.Join(connDir(connID), "abort"), "1")
	switch err {
	case nil:
		return nil
	case unix.ENOENT:
		return fmt.Errorf("mount: abort connection %d: %w", connID, ErrNoConn)
	case unix.EPERM, unix.EACCES:
		return fmt.Errorf("mount: abort connection %d: %w: %w", connID, ErrNotRoot, err)
	}
	return fmt.Errorf("mount: abort connection %d: %w", connID, err)
}

// ForceUnmount takes down a FUSE mount whatever state its server is in: it
// aborts the connection, then detaches the mount lazily. It is meant for
// tests and for a daemon whose normal [Unmount] failed or hung. It never
// stats the mount point and never waits for the server, so it cannot block
// on a hung connection.
//
// The connection aborted is the one that the mount table shows at
// mountpoint; connID is used only if no mount is there any more (for
// example after an earlier lazy unmount while the connection lingers), and
// may be 0 when unknown. If the mount at mountpoint is not a FUSE mount,
// ForceUnmount touches nothing and fails with [ErrNotMounted]. A connection or
// mount that is already gone is not an error, so ForceUnmount is safe to call
// twice.
func ForceUnmount(mountpoint string, connID uint32) error {
	m, ok, err := LookupMount(mountpoint)
	if err != nil {
		return err
	}
	if ok && !m.IsFUSE() {
		return fmt.Errorf("mount: force unmount %s: %s is mounted there: %w", mountpoint, m.FSType, ErrNotMounted)
	}
	id := connID
	if ok {
		id = m.ConnID()
	}
	var errs []error
	if id != 0 {
		if err := Abort(id); err != nil && !errors.Is(err, ErrNoConn) {
			errs = append(errs, err)
		}
	}
	if ok {
		if err := UnmountLazy(mountpoint); err != nil && !errors.Is(err, ErrNotMounted) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
