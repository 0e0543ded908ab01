package mount

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// maxUmode is the largest mode the kernel's 16-bit umode_t holds.
const maxUmode = 0o177777

// kernelDataKeys are the words ringfuse may put in mount(2)'s data string
// for the fuse file system (fs/fuse/inode.c fuse_fs_parameters).
var kernelDataKeys = map[string]bool{
	"fd": true, "rootmode": true, "user_id": true, "group_id": true,
	"allow_other": true, "default_permissions": true, "max_read": true,
}

// ownedKeys are the keys ParseOptions keeps for itself.
var ownedKeys = map[string]bool{
	"allow_other": true, "default_permissions": true, "ro": true, "rw": true, "suid": true, "nosuid": true,
	"dev": true, "nodev": true, "exec": true, "noexec": true, "atime": true, "noatime": true,
	"fsname": true, "subtype": true, "max_read": true, "rootmode": true, "user_id": true, "group_id": true,
}

// optionWords formats o as the words ParseOptions owns, so that parsing
// them gives o back.
func optionWords(o *Options) []string {
	w := []string{"rw", "nosuid", "nodev", "exec", "atime"}
	on := func(b bool, word string) {
		if b {
			w = append(w, word)
		}
	}
	on(o.AllowOther, "allow_other")
	on(o.DefaultPermissions, "default_permissions")
	on(o.ReadOnly, "ro")
	on(o.AllowSuid, "suid")
	on(o.AllowDev, "dev")
	on(o.NoExec, "noexec")
	on(o.NoAtime, "noatime")
	if o.FSName != "" {
		w = append(w, "fsname="+o.FSName)
	}
	if o.Subtype != "" {
		w = append(w, "subtype="+o.Subtype)
	}
	if o.MaxRead != 0 {
		w = append(w, "max_read="+strconv.FormatUint(uint64(o.MaxRead), 10))
	}
	if o.RootMode != 0 {
		w = append(w, "rootmode="+strconv.FormatUint(uint64(o.RootMode), 8))
	}
	if o.UserID != nil {
		w = append(w, "user_id="+strconv.FormatUint(uint64(*o.UserID), 10))
	}
	if o.GroupID != nil {
		w = append(w, "group_id="+strconv.FormatUint(uint64(*o.GroupID), 10))
	}
	return w
}

// FuzzParseOptions parses -o option lists (elements separated by
// newlines in the input): an error must wrap ErrBadOption and return
// nothing; a success must give back every word it does not own, in order
// and unchanged; formatting the Options it returns and parsing that again
// must give the same Options; and the mount(2) arguments built from them
// must hold only words the kernel's fuse parser knows, without empty
// words or NUL bytes, and a root mode the kernel can store.
func FuzzParseOptions(f *testing.F) {
	for _, s := range []string{
		"", ",,\n,", "allow_other,default_permissions,ro,noexec,noatime,suid,dev",
		"ro,noexec,noatime,suid,dev\nrw,exec,atime,nosuid,nodev",
		"allow_other,fsname=/srv/data,subtype=pt,max_read=131072",
		"rootmode=40755\nuser_id=1000\ngroup_id=100",
		"entry_timeout=1.5,allow_other\nio_uring\nattr_timeout=0,max_write=131072",
		"fsname=a b=c", "max_read=abc", "max_read=-1", "max_read=4294967296", "max_read=", "max_read",
		"user_id=root", "rootmode=40089", "rootmode=100644", "rootmode=1040755", "rootmode=0", "rootmode=755",
		"subtype=a/b", "subtype=a b", "fsname=x\x00y", "allow_other=1", "ro=yes", "=", "=x", "fd=3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		opts := strings.Split(in, "\n")
		o, rest, err := ParseOptions(opts)
		if err != nil {
			if !errors.Is(err, ErrBadOption) {
				t.Fatalf("%q: error %v does not wrap ErrBadOption", opts, err)
			}
			if !reflect.DeepEqual(o, Options{}) || rest != nil {
				t.Fatalf("%q: error %v with options %+v, rest %q", opts, err, o, rest)
			}
			return
		}
		var wantRest []string
		for _, elem := range opts {
			for word := range strings.SplitSeq(elem, ",") {
				key, _, _ := strings.Cut(word, "=")
				if word != "" && !ownedKeys[key] {
					wantRest = append(wantRest, word)
				}
			}
		}
		if !reflect.DeepEqual(rest, wantRest) {
			t.Fatalf("%q: rest %q, want %q", opts, rest, wantRest)
		}
		again, rest2, err := ParseOptions(optionWords(&o))
		if err != nil || len(rest2) != 0 || !reflect.DeepEqual(again, o) {
			t.Fatalf("%q: parsed %+v; its words %q parse to %+v, %q, %v", opts, o, optionWords(&o), again, rest2, err)
		}
		checkMountArgs(t, &o)
	})
}

// checkMountArgs checks the mount(2) arguments built from valid Options.
func checkMountArgs(t *testing.T, o *Options) {
	t.Helper()
	const fd = 3
	data, err := o.data(fd)
	if err != nil {
		t.Fatalf("%+v: data: %v", o, err)
	}
	if strings.IndexByte(data, 0) >= 0 || strings.IndexByte(o.source(), 0) >= 0 || strings.IndexByte(o.fstype(), 0) >= 0 {
		t.Fatalf("%+v: NUL byte in %q, %q, %q", o, data, o.source(), o.fstype())
	}
	seen := map[string]bool{}
	for word := range strings.SplitSeq(data, ",") {
		key, val, _ := strings.Cut(word, "=")
		if !kernelDataKeys[key] || seen[key] {
			t.Fatalf("%+v: data %q: word %q unknown or repeated", o, data, word)
		}
		seen[key] = true
		if key == "rootmode" {
			m, err := strconv.ParseUint(val, 8, 32)
			if err != nil || m > maxUmode || m&unix.S_IFMT != unix.S_IFDIR {
				t.Fatalf("%+v: data %q: rootmode %q is not a directory mode the kernel can store", o, data, val)
			}
		}
	}
	for _, key := range []string{"fd", "rootmode", "user_id", "group_id"} {
		if !seen[key] {
			t.Fatalf("%+v: data %q lacks %s", o, data, key)
		}
	}
	if ft := o.fstype(); ft != "fuse" && (!strings.HasPrefix(ft, "fuse.") || len(ft) == len("fuse.") || strings.ContainsAny(ft, "/ \t\n,")) {
		t.Fatalf("%+v: file system type %q", o, ft)
	}
	if o.source() == "" {
		t.Fatalf("%+v: empty mount source", o)
	}
}

// mangle escapes a mountinfo field as the kernel's seq_path and
// mangle do: space, tab, newline and backslash as \ooo.
func mangle(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// mountField turns fuzzed bytes into a field the kernel could show: no
// NUL (paths cannot hold one), never empty.
func mountField(s string) string {
	s = strings.ReplaceAll(s, "\x00", "")
	if s == "" {
		return "none"
	}
	return s
}

// optionsField turns fuzzed bytes into a comma list without white space.
func optionsField(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == 0 || r == '\r' || r == '\v' || r == '\f' {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return "rw"
	}
	return s
}

// FuzzParseMountinfo formats a mountinfo line from fuzzed fields, escaped
// as the kernel escapes them, with fuzzed optional fields, and parses it
// back: every field must round-trip. It also parses the raw text and, if
// that succeeds, formats and parses the result again, which must be
// stable.
func FuzzParseMountinfo(f *testing.F) {
	f.Add(uint32(40), uint32(22), uint32(0), uint32(53), "/", "/tmp/a b\\c", "rw,nosuid", "shared:12 master:1", "fuse.ringfuse", "src dir", "rw,user_id=0")
	f.Add(uint32(1), uint32(0), uint32(8), uint32(17), "/x", "-", "rw", "", "fuseblk", "/dev/sdb1", "rw")
	f.Add(uint32(1), uint32(0), uint32(0), uint32(1), "/ - /", "/mnt/\t\n#", "ro", "-", "-", "-", "a b")
	f.Add(uint32(1<<31-1), uint32(0), uint32(1<<32-1), uint32(1<<32-1), "\\040", "\\", "rw", "propagate_from:1", "fuse", "\\134", "x")
	f.Fuzz(func(t *testing.T, id, parent, major, minor uint32, root, mnt, opts, optional, fstype, source, superOpts string) {
		want := MountInfo{
			ID: int(id &^ (1 << 31)), Parent: int(parent &^ (1 << 31)), Major: major, Minor: minor,
			Root: mountField(root), Mountpoint: mountField(mnt), Options: optionsField(opts),
			FSType: mountField(fstype), Source: mountField(source), SuperOptions: optionsField(superOpts),
		}
		var opt []string
		for o := range strings.FieldsSeq(optional) {
			if o != "-" {
				opt = append(opt, mangle(o))
			}
		}
		line := formatMountinfo(&want, opt)
		got, err := parseMountinfo(line + "\n")
		if err != nil || len(got) != 1 {
			t.Fatalf("line %q: %v, %d mounts", line, err, len(got))
		}
		if got[0] != want {
			t.Fatalf("line %q:\n got %+v\nwant %+v", line, got[0], want)
		}

		// The raw text: anything that parses must format and parse to
		// itself.
		raw := strings.Join([]string{root, mnt, opts, optional, fstype, source, superOpts}, " ")
		ms, err := parseMountinfo(raw)
		if err != nil {
			return
		}
		var text strings.Builder
		for i := range ms {
			m := ms[i]
			if strings.ContainsAny(m.Options+m.SuperOptions, "\n") || strings.Contains(m.SuperOptions, "  ") {
				return // not a field a kernel line can hold
			}
			text.WriteString(formatMountinfo(&m, nil) + "\n")
		}
		back, err := parseMountinfo(text.String())
		if err != nil || !reflect.DeepEqual(back, ms) {
			t.Fatalf("raw %q parsed to %+v; formatted %q parses to %+v, %v", raw, ms, text.String(), back, err)
		}
	})
}

// formatMountinfo writes m as a line of /proc/self/mountinfo.
func formatMountinfo(m *MountInfo, optional []string) string {
	f := []string{strconv.Itoa(m.ID), strconv.Itoa(m.Parent), fmt.Sprintf("%d:%d", m.Major, m.Minor),
		mangle(m.Root), mangle(m.Mountpoint), m.Options}
	f = append(f, optional...)
	f = append(f, "-", mangle(m.FSType), mangle(m.Source), m.SuperOptions)
	return strings.Join(f, " ")
}
