package mount

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultName is the default source (fsname) and subtype of a ringfuse mount,
// which therefore shows up as "ringfuse on /mnt type fuse.ringfuse".
const DefaultName = "ringfuse"

// Options are the kernel-level mount options of a FUSE mount: what goes into
// mount(2)'s source, file system type, flags and data string. Options that
// the server negotiates in FUSE_INIT (max_write, timeouts, io_uring) are not
// here; see [ParseOptions] for how the two kinds are told apart.
//
// The zero value is a sane private mount: source and subtype "ringfuse",
// owned by the calling user, not readable by others, read-write, nosuid and
// nodev. [Mount] copies the Options, so changing them afterwards has no
// effect on the mount.
type Options struct {
	// FSName is the mount source shown in /proc/mounts and by df (the
	// fsname= option). Empty means "ringfuse"; passthrough file systems
	// usually set it to the directory they mirror.
	FSName string

	// Subtype is the part after "fuse." in the file system type, so the
	// mount shows as type "fuse.<Subtype>". Empty means "ringfuse". It is
	// ignored when PlainFSType is set.
	Subtype string

	// PlainFSType mounts with the bare file system type "fuse", without a
	// subtype, for tools that match the type exactly.
	PlainFSType bool

	// AllowOther lets users other than UserID access the mount
	// (allow_other). Without it, the kernel refuses everyone else,
	// including root.
	AllowOther bool

	// DefaultPermissions makes the kernel check file modes itself before
	// calling the server (default_permissions). Without it, access control
	// is up to the file system.
	DefaultPermissions bool

	// ReadOnly mounts read-only (msRdonly, option ro).
	ReadOnly bool

	// MaxRead caps the size of a single READ request in bytes (max_read=).
	// Zero leaves the kernel's default, which is no extra limit.
	MaxRead uint32

	// RootMode is the mode of the root inode before the first GETATTR
	// (rootmode=, octal). Only its file type bits matter to the kernel.
	// Zero means 040000 (a directory); if only permission bits are given,
	// S_IFDIR is added. Any type other than a directory is rejected, because
	// [Mount] only mounts on directories.
	RootMode uint32

	// UserID and GroupID own the mount (user_id=, group_id=): without
	// AllowOther, only this user may use it. Nil means the calling
	// process's real uid or gid, as in libfuse. Set them with, for
	// example, new(uint32(1000)).
	UserID  *uint32
	GroupID *uint32

	// AllowSuid honours set-user-ID and set-group-ID bits inside the mount
	// (option suid). By default the mount is nosuid, as libfuse mounts it
	// even for root: a user-space file system should not hand out
	// privileges unless asked to.
	AllowSuid bool

	// AllowDev allows device special files inside the mount to be opened
	// (option dev). By default the mount is nodev, as in libfuse.
	AllowDev bool

	// NoExec forbids executing files from the mount (msNoexec).
	NoExec bool

	// NoAtime stops access time updates (msNoatime). By default the
	// kernel's relatime applies.
	NoAtime bool

	// AutoUnmount (auto_unmount) has the file system unmounted as soon as
	// this process exits, even when it is killed: [Mount] starts a small
	// watcher process that unmounts lazily once the kernel closes this
	// process's end of a pipe. [Conn.Close] unmounts too.
	AutoUnmount bool

	// UseFusermount mounts through the setuid helper fusermount3 (Debian
	// package fuse3) even when running as root. Without root, [Mount]
	// always uses it.
	UseFusermount bool

	// Extra holds raw options appended to the kernel's data string, for
	// kernel options this type does not know. Elements may contain commas.
	// They are passed through unchecked except that fd, rootmode, user_id
	// and group_id are refused (set by Mount) and NUL bytes are refused. The
	// kernel rejects unknown options with EINVAL.
	Extra []string
}

// ParseOptions parses libfuse-style -o option words into kernel options.
//
// Each element of opts may hold one word or several separated by commas
// ("ro,allow_other"); empty words are skipped. The words it owns set fields of
// the returned Options:
//
//	allow_other, default_permissions, ro, rw, fsname=S, subtype=S,
//	max_read=N, rootmode=OCTAL, user_id=N, group_id=N,
//	suid, nosuid, dev, nodev, exec, noexec, atime, noatime, auto_unmount
//
// A later word overrides an earlier one (ro then rw gives a read-write
// mount). Every other word is returned unchanged, in order, for the caller to
// handle: server options such as entry_timeout=, attr_timeout=, max_write=,
// io_uring, io_uring_q_depth= and passthrough. A malformed word the parser
// owns returns an error wrapping [ErrBadOption] that quotes the word.
func ParseOptions(opts []string) (Options, []string, error) {
	var o Options
	var rest []string
	for _, elem := range opts {
		for word := range strings.SplitSeq(elem, ",") {
			if word == "" {
				continue
			}
			owned, err := o.set(word)
			if err != nil {
				return Options{}, nil, err
			}
			if !owned {
				rest = append(rest, word)
			}
		}
	}
	if err := o.validate(); err != nil {
		return Options{}, nil, err
	}
	return o, rest, nil
}

// set applies one option word and reports whether the word belongs to the
// kernel options.
func (o *Options) set(word string) (bool, error) {
	key, val, hasVal := strings.Cut(word, "=")
	flag := func(p *bool, v bool) (bool, error) {
		if hasVal {
			return true, optErr(word, "takes no value")
		}
		*p = v
		return true, nil
	}
	str := func(p *string) (bool, error) {
		if val == "" {
			return true, optErr(word, "needs a value")
		}
		if strings.IndexByte(val, 0) >= 0 {
			return true, optErr(word, "contains a NUL byte")
		}
		*p = val
		return true, nil
	}
	num := func(base int) (uint32, error) {
		if val == "" {
			return 0, optErr(word, "needs a value")
		}
		n, err := strconv.ParseUint(val, base, 32)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return 0, optErr(word, "out of range")
			}
			if base == 8 {
				return 0, optErr(word, "not an octal number")
			}
			return 0, optErr(word, "not a number")
		}
		return uint32(n), nil
	}
	switch key {
	case "allow_other":
		return flag(&o.AllowOther, true)
	case "default_permissions":
		return flag(&o.DefaultPermissions, true)
	case "ro":
		return flag(&o.ReadOnly, true)
	case "rw":
		return flag(&o.ReadOnly, false)
	case "suid":
		return flag(&o.AllowSuid, true)
	case "nosuid":
		return flag(&o.AllowSuid, false)
	case "dev":
		return flag(&o.AllowDev, true)
	case "nodev":
		return flag(&o.AllowDev, false)
	case "exec":
		return flag(&o.NoExec, false)
	case "noexec":
		return flag(&o.NoExec, true)
	case "atime":
		return flag(&o.NoAtime, false)
	case "noatime":
		return flag(&o.NoAtime, true)
	case "auto_unmount":
		return flag(&o.AutoUnmount, true)
	case "fsname":
		return str(&o.FSName)
	case "subtype":
		return str(&o.Subtype)
	case "max_read":
		n, err := num(10)
		o.MaxRead = n
		return true, err
	case "rootmode":
		n, err := num(8)
		if err == nil {
			o.RootMode = n
			_, err = o.rootMode()
		}
		return true, err
	case "user_id":
		n, err := num(10)
		o.UserID = &n
		return true, err
	case "group_id":
		n, err := num(10)
		o.GroupID = &n
		return true, err
	}
	return false, nil
}

func optErr(word, why string) error {
	return fmt.Errorf("mount: option %s: %s: %w", word, why, ErrBadOption)
}

// source is the mount(2) source argument.
func (o *Options) source() string {
	if o.FSName == "" {
		return DefaultName
	}
	return o.FSName
}

// fstype is the mount(2) file system type argument.
func (o *Options) fstype() string {
	switch {
	case o.PlainFSType:
		return "fuse"
	case o.Subtype == "":
		return "fuse." + DefaultName
	}
	return "fuse." + o.Subtype
}

// flags are the mount(2) MS_* flags.
func (o *Options) flags() uintptr {
	var f uintptr
	if !o.AllowSuid {
		f |= msNosuid
	}
	if !o.AllowDev {
		f |= msNodev
	}
	if o.ReadOnly {
		f |= msRdonly
	}
	if o.NoExec {
		f |= msNoexec
	}
	if o.NoAtime {
		f |= msNoatime
	}
	return f
}

// modeBits are the bits of a mode: file type and permissions.
const modeBits = 0o177777

// rootMode returns the rootmode= value, defaulted and checked.
func (o *Options) rootMode() (uint32, error) {
	m := o.RootMode
	if m&^modeBits != 0 {
		// The kernel keeps the root's mode in a 16-bit umode_t: higher
		// bits would be cut off silently.
		return 0, fmt.Errorf("mount: option rootmode=%o: bits beyond %o: %w", o.RootMode, modeBits, ErrBadOption)
	}
	if m&unix.S_IFMT == 0 {
		m |= unix.S_IFDIR
	}
	if m&unix.S_IFMT != unix.S_IFDIR {
		return 0, fmt.Errorf("mount: option rootmode=%o: the root must be a directory (type 040000): %w", o.RootMode, ErrBadOption)
	}
	return m, nil
}

// data builds the data string of mount(2) for the descriptor fd.
func (o *Options) data(fd int) (string, error) {
	mode, err := o.rootMode()
	if err != nil {
		return "", err
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	if o.UserID != nil {
		uid = *o.UserID
	}
	if o.GroupID != nil {
		gid = *o.GroupID
	}
	var b strings.Builder
	fmt.Fprintf(&b, "fd=%d,rootmode=%o,user_id=%d,group_id=%d", fd, mode, uid, gid)
	if o.AllowOther {
		b.WriteString(",allow_other")
	}
	if o.DefaultPermissions {
		b.WriteString(",default_permissions")
	}
	if o.MaxRead != 0 {
		fmt.Fprintf(&b, ",max_read=%d", o.MaxRead)
	}
	extra, err := o.extraWords()
	if err != nil {
		return "", err
	}
	for _, word := range extra {
		b.WriteByte(',')
		b.WriteString(word)
	}
	return b.String(), nil
}

// extraWords returns the words of Extra, checked.
func (o *Options) extraWords() ([]string, error) {
	var words []string
	for _, e := range o.Extra {
		for word := range strings.SplitSeq(e, ",") {
			if word == "" {
				continue
			}
			key, _, _ := strings.Cut(word, "=")
			switch key {
			case "fd", "rootmode", "user_id", "group_id":
				return nil, fmt.Errorf("mount: extra option %s: set by Mount, use the Options field: %w", word, ErrBadOption)
			}
			if strings.IndexByte(word, 0) >= 0 {
				return nil, fmt.Errorf("mount: extra option %q: contains a NUL byte: %w", word, ErrBadOption)
			}
			words = append(words, word)
		}
	}
	return words, nil
}

// validate checks the string fields that go to mount(2) unchanged.
func (o *Options) validate() error {
	for _, f := range []struct{ name, val string }{{"fsname", o.FSName}, {"subtype", o.Subtype}} {
		if strings.IndexByte(f.val, 0) >= 0 {
			return fmt.Errorf("mount: option %s=%q: contains a NUL byte: %w", f.name, f.val, ErrBadOption)
		}
	}
	if strings.ContainsAny(o.Subtype, "/ \t\n") {
		return fmt.Errorf("mount: option subtype=%q: contains '/' or white space: %w", o.Subtype, ErrBadOption)
	}
	return nil
}
