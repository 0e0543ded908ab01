package mount

import "errors"

// Errors returned by this package. They are wrapped with the step that failed
// and, where there is one, the kernel's errno, so match them with
// [errors.Is]: errors.Is(err, mount.ErrBusy) and errors.Is(err, unix.EBUSY)
// both hold for a busy unmount.
var (
	// ErrNotRoot means the kernel refused with EPERM or EACCES: calling
	// mount(2) or umount2(2) directly, or mounting fusectl, needs root or
	// CAP_SYS_ADMIN. Without root, [Mount] goes through fusermount3.
	ErrNotRoot = errors.New("mount(2) needs root or CAP_SYS_ADMIN")

	// ErrNoFusermount means the process is not root and the setuid helper
	// fusermount3 (Debian package fuse3) could not be found or run.
	ErrNoFusermount = errors.New("not root, and no fusermount3 to mount with (install fuse3)")

	// ErrFusermount means fusermount3 refused; the wrapping error quotes
	// its reason, such as a mount point the user may not write to, or
	// allow_other without user_allow_other in /etc/fuse.conf.
	ErrFusermount = errors.New("fusermount3 failed")

	// ErrNoDevFuse means /dev/fuse is missing or the kernel has no fuse file
	// system type (ENOENT, ENODEV or ENXIO). Loading the module with
	// "modprobe fuse" usually fixes it; in a container, pass /dev/fuse in.
	ErrNoDevFuse = errors.New("/dev/fuse or the fuse file system is unavailable (try: modprobe fuse)")

	// ErrNotDir means the mount point is not a directory.
	ErrNotDir = errors.New("mount point is not a directory")

	// ErrBadOption means a mount option is malformed, or an [Options] field
	// holds a value the kernel cannot accept.
	ErrBadOption = errors.New("bad mount option")

	// ErrBusy means a normal unmount failed with EBUSY: a process still has
	// a file open, or its working directory, inside the mount. Use
	// [UnmountLazy] or [ForceUnmount] to detach it anyway.
	ErrBusy = errors.New("mount is busy")

	// ErrNotMounted means there is no mount at the given path (EINVAL from
	// umount2) or no FUSE mount where one was expected.
	ErrNotMounted = errors.New("not mounted")

	// ErrNoConn means the fusectl directory of a connection does not
	// exist: the connection is gone, or the id was never valid.
	ErrNoConn = errors.New("no such FUSE connection")

	// ErrLinuxOnly is what mounting returns on any system but Linux: the
	// packages compile everywhere, but serve only Linux's FUSE.
	ErrLinuxOnly = errors.New("ringfuse: Linux only")

	// ErrNotSupported means the running kernel lacks a feature; the wrapping
	// error names it (for example enable_uring, which needs
	// CONFIG_FUSE_IO_URING).
	ErrNotSupported = errors.New("not supported by this kernel")
)
