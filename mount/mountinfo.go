package mount

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mountinfoPath is read instead of stat'ing mount points; a variable so that
// tests can point it at a fixture.
var mountinfoPath = "/proc/self/mountinfo"

// MountInfo is one line of /proc/self/mountinfo (see proc(5)), with escaped
// characters in paths decoded.
type MountInfo struct {
	ID     int // unique mount id (may be reused after unmount)
	Parent int // id of the parent mount

	// Major and Minor are the st_dev of files in the mount. For a FUSE
	// mount the device is anonymous (Major 0) and [MountInfo.ConnID] names
	// its fusectl directory.
	Major, Minor uint32

	Root         string // root of the mount within its file system
	Mountpoint   string // absolute path, relative to the process's root
	Options      string // per-mount options, such as "rw,nosuid,nodev,relatime"
	FSType       string // such as "fuse.ringfuse"
	Source       string // mount source (fsname)
	SuperOptions string // per-superblock options, such as "rw,user_id=0,group_id=0"
}

// IsFUSE reports whether the mount is a FUSE mount (fuse, fuse.*, fuseblk or
// fuseblk.*).
func (m MountInfo) IsFUSE() bool {
	base, _, _ := strings.Cut(m.FSType, ".")
	return base == "fuse" || base == "fuseblk"
}

// ConnID is the FUSE connection number of the mount: the name of its
// directory under /sys/fs/fuse/connections. The kernel names that directory
// after the superblock's device number in its internal encoding
// (major<<20 | minor), which for an ordinary FUSE mount, on an anonymous
// device, is just the minor number. It is meaningful only if IsFUSE.
func (m MountInfo) ConnID() uint32 {
	return m.Major<<20 | m.Minor
}

// Mounts returns every mount of the calling process's mount namespace, in
// the order of /proc/self/mountinfo (a mount comes after the mounts it covers).
func Mounts() ([]MountInfo, error) {
	b, err := os.ReadFile(mountinfoPath)
	if err != nil {
		return nil, fmt.Errorf("mount: read mount table: %w", err)
	}
	return parseMountinfo(string(b))
}

// parseMountinfo parses the text of a mountinfo file.
func parseMountinfo(text string) ([]MountInfo, error) {
	var out []MountInfo
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			continue
		}
		m, err := parseMountinfoLine(line)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// parseMountinfoLine parses one line:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Zero or more optional fields come before the "-" separator.
func parseMountinfoLine(line string) (MountInfo, error) {
	bad := func(why string) (MountInfo, error) {
		return MountInfo{}, fmt.Errorf("mount: malformed mountinfo line %q: %s", line, why)
	}
	f := strings.Split(line, " ")
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 10 || sep < 0 || len(f) < sep+4 {
		return bad("too few fields")
	}
	var m MountInfo
	var err error
	if m.ID, err = strconv.Atoi(f[0]); err != nil {
		return bad("mount id")
	}
	if m.Parent, err = strconv.Atoi(f[1]); err != nil {
		return bad("parent id")
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return bad("device")
	}
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return bad("device")
	}
	m.Major, m.Minor = uint32(ma), uint32(mi)
	m.Root = unescape(f[3])
	m.Mountpoint = unescape(f[4])
	m.Options = f[5]
	m.FSType = unescape(f[sep+1])
	m.Source = unescape(f[sep+2])
	m.SuperOptions = strings.Join(f[sep+3:], " ")
	return m, nil
}

// unescape decodes the \ooo octal escapes the kernel uses for space, tab,
// newline, backslash and '#' in mountinfo fields.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// canonical turns a mount point into the form mountinfo shows: absolute,
// clean, with symbolic links resolved. It never stats the last component,
// which would block on a FUSE mount whose server does not answer: symbolic
// links there are resolved with readlink(2), which on a mount root fails
// with EINVAL without calling into the mounted file system.
func canonical(mountpoint string) (string, error) {
	if mountpoint == "" {
		return "", fmt.Errorf("mount: empty mount point")
	}
	p, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", fmt.Errorf("mount: %s: %w", mountpoint, err)
	}
	for range 40 { // the kernel's limit on nested symbolic links
		dir, base := filepath.Split(p)
		if base == "" {
			return p, nil
		}
		if rdir, err := filepath.EvalSymlinks(dir); err == nil {
			dir = rdir
		}
		p = filepath.Join(dir, base)
		target, err := os.Readlink(p)
		if err != nil {
			return p, nil // not a symbolic link, or missing
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		p = filepath.Clean(target)
	}
	return "", fmt.Errorf("mount: %s: %w", mountpoint, unix.ELOOP)
}

// LookupMount returns the topmost mount at mountpoint, read from
// /proc/self/mountinfo. It never stats the mount point, so it is safe on a
// hung FUSE mount. ok is false if nothing is mounted there.
func LookupMount(mountpoint string) (m MountInfo, ok bool, err error) {
	mp, err := canonical(mountpoint)
	if err != nil {
		return MountInfo{}, false, err
	}
	all, err := Mounts()
	if err != nil {
		return MountInfo{}, false, err
	}
	for _, e := range all {
		if e.Mountpoint == mp {
			m, ok = e, true // keep going: a later line covers an earlier one
		}
	}
	return m, ok, nil
}

// IsMounted reports whether anything is mounted at mountpoint. It reads
// /proc/self/mountinfo and never stats the mount point.
func IsMounted(mountpoint string) (bool, error) {
	_, ok, err := LookupMount(mountpoint)
	return ok, err
}

// pollInterval is how often WaitMounted rereads the mount table.
const pollInterval = 5 * time.Millisecond

// WaitMounted waits until a mount appears at mountpoint, for example one made
// by a child process, or until ctx is done. It polls /proc/self/mountinfo and
// returns the mount found. A mount is usable only after its server has
// answered FUSE_INIT, which this does not wait for.
func WaitMounted(ctx context.Context, mountpoint string) (MountInfo, error) {
	return waitFor(ctx, mountpoint, true)
}

// WaitUnmounted waits until nothing is mounted at mountpoint, or until ctx
// is done. It polls /proc/self/mountinfo.
func WaitUnmounted(ctx context.Context, mountpoint string) error {
	_, err := waitFor(ctx, mountpoint, false)
	return err
}

func waitFor(ctx context.Context, mountpoint string, mounted bool) (MountInfo, error) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		m, ok, err := LookupMount(mountpoint)
		if err != nil {
			return MountInfo{}, err
		}
		if ok == mounted {
			return m, nil
		}
		select {
		case <-ctx.Done():
			state := "mounted"
			if !mounted {
				state = "unmounted"
			}
			return MountInfo{}, fmt.Errorf("mount: wait for %s to be %s: %w", mountpoint, state, ctx.Err())
		case <-t.C:
		}
	}
}
