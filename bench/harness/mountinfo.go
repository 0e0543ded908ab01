package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// MountEntry is one line of /proc/self/mountinfo.
type MountEntry struct {
	ID           int
	Major, Minor uint32
	Root         string
	MountPoint   string
	FSType       string
	Source       string
}

// ConnectionID returns the name of the mount's directory under
// /sys/fs/fuse/connections: the kernel's dev_t (MKDEV(major, minor)) in
// decimal, as fs/fuse/control.c prints it.
func (e MountEntry) ConnectionID() uint64 {
	return uint64(e.Major)<<20 | uint64(e.Minor)
}

// IsFUSE reports whether the entry is a FUSE mount.
func (e MountEntry) IsFUSE() bool {
	return e.FSType == "fuse" || strings.HasPrefix(e.FSType, "fuse.")
}

// ParseMountinfo parses the /proc/PID/mountinfo format (proc(5)).
func ParseMountinfo(r io.Reader) ([]MountEntry, error) {
	var out []MountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		e, err := parseMountinfoLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

func parseMountinfoLine(line string) (MountEntry, error) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return MountEntry{}, errors.New("no ' - ' separator")
	}
	// Fields are separated by single spaces; the kernel escapes space,
	// tab, newline and backslash in paths but not other white space, so
	// strings.Fields would split a path such as "a\rb".
	f := strings.Split(pre, " ")
	g := strings.Split(post, " ")
	if len(f) < 6 || len(g) < 2 {
		return MountEntry{}, errors.New("too few fields")
	}
	var e MountEntry
	var err error
	if e.ID, err = strconv.Atoi(f[0]); err != nil {
		return MountEntry{}, fmt.Errorf("mount id: %w", err)
	}
	ma, mi, ok := strings.Cut(f[2], ":")
	if !ok {
		return MountEntry{}, fmt.Errorf("bad major:minor %q", f[2])
	}
	maj, err1 := strconv.ParseUint(ma, 10, 32)
	min, err2 := strconv.ParseUint(mi, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return MountEntry{}, fmt.Errorf("major:minor: %w", err)
	}
	e.Major, e.Minor = uint32(maj), uint32(min)
	e.Root = unescapeMountinfo(f[3])
	e.MountPoint = unescapeMountinfo(f[4])
	e.FSType = g[0]
	e.Source = unescapeMountinfo(g[1])
	return e, nil
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// FindMount returns the topmost mount at mountpoint mnt (an absolute path
// with symlinks resolved) in /proc/self/mountinfo.
func FindMount(mnt string) (MountEntry, bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return MountEntry{}, false, err
	}
	defer f.Close()
	all, err := ParseMountinfo(f)
	if err != nil {
		return MountEntry{}, false, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].MountPoint == mnt {
			return all[i], true, nil
		}
	}
	return MountEntry{}, false, nil
}
