//go:build linux

package mount

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func u32(v uint32) *uint32 { return &v }

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want Options
		rest []string
		err  string // substring of the error; empty means success
	}{
		{name: "empty", in: nil, want: Options{}},
		{name: "empty words", in: []string{"", ",,", ","}, want: Options{}},
		{
			name: "flags",
			in:   []string{"allow_other", "default_permissions", "ro", "noexec", "noatime", "suid", "dev"},
			want: Options{AllowOther: true, DefaultPermissions: true, ReadOnly: true, NoExec: true, NoAtime: true, AllowSuid: true, AllowDev: true},
		},
		{
			name: "later word wins",
			in:   []string{"ro,noexec,noatime,suid,dev", "rw,exec,atime,nosuid,nodev"},
			want: Options{},
		},
		{
			name: "one comma-separated element",
			in:   []string{"allow_other,fsname=/srv/data,subtype=pt,max_read=131072"},
			want: Options{AllowOther: true, FSName: "/srv/data", Subtype: "pt", MaxRead: 131072},
		},
		{
			name: "numbers",
			in:   []string{"rootmode=40755", "user_id=1000", "group_id=100"},
			want: Options{RootMode: 0o40755, UserID: u32(1000), GroupID: u32(100)},
		},
		{
			name: "server words pass through in order",
			in:   []string{"entry_timeout=1.5,allow_other", "io_uring", "attr_timeout=0,max_write=131072", "io_uring_q_depth=8,passthrough,ro", "allow_root"},
			want: Options{AllowOther: true, ReadOnly: true},
			rest: []string{"entry_timeout=1.5", "io_uring", "attr_timeout=0", "max_write=131072", "io_uring_q_depth=8", "passthrough", "allow_root"},
		},
		{name: "fsname with spaces and equals", in: []string{"fsname=a b=c"}, want: Options{FSName: "a b=c"}},
		{name: "max_read not a number", in: []string{"max_read=abc"}, err: "mount: option max_read=abc: not a number"},
		{name: "max_read negative", in: []string{"max_read=-1"}, err: "option max_read=-1: not a number"},
		{name: "max_read too big", in: []string{"max_read=4294967296"}, err: "option max_read=4294967296: out of range"},
		{name: "max_read empty", in: []string{"max_read="}, err: "option max_read=: needs a value"},
		{name: "max_read no equals", in: []string{"max_read"}, err: "option max_read: needs a value"},
		{name: "user_id bad", in: []string{"user_id=root"}, err: "option user_id=root: not a number"},
		{name: "rootmode not octal", in: []string{"rootmode=40089"}, err: "option rootmode=40089: not an octal number"},
		{name: "rootmode not a directory", in: []string{"rootmode=100644"}, err: "the root must be a directory"},
		{name: "flag with value", in: []string{"allow_other=1"}, err: "option allow_other=1: takes no value"},
		{name: "ro with value", in: []string{"ro=yes"}, err: "option ro=yes: takes no value"},
		{name: "fsname empty", in: []string{"fsname="}, err: "option fsname=: needs a value"},
		{name: "subtype empty", in: []string{"subtype"}, err: "option subtype: needs a value"},
		{name: "subtype with slash", in: []string{"subtype=a/b"}, err: `subtype="a/b": contains '/' or white space`},
		{name: "error after good words", in: []string{"ro,allow_other", "io_uring,max_read=x"}, err: "option max_read=x: not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rest, err := ParseOptions(tt.in)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("ParseOptions(%q) = %+v, %q, nil; want error %q", tt.in, got, rest, tt.err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %q does not contain %q", err, tt.err)
				}
				if !errors.Is(err, ErrBadOption) {
					t.Errorf("error %q does not match ErrBadOption", err)
				}
				if !reflect.DeepEqual(got, Options{}) || rest != nil {
					t.Errorf("on error got %+v, %q; want zero values", got, rest)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOptions(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseOptions(%q) options\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
			if !reflect.DeepEqual(rest, tt.rest) {
				t.Errorf("ParseOptions(%q) rest = %q, want %q", tt.in, rest, tt.rest)
			}
		})
	}
}

func TestOptionsMountArgs(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	tests := []struct {
		name   string
		o      Options
		source string
		fstype string
		flags  uintptr
		data   string
		err    string
	}{
		{
			name:   "zero value",
			source: "ringfuse", fstype: "fuse.ringfuse",
			flags: unix.MS_NOSUID | unix.MS_NODEV,
			data:  fmt.Sprintf("fd=7,rootmode=40000,user_id=%d,group_id=%d", uid, gid),
		},
		{
			name: "everything",
			o: Options{
				FSName: "/srv/src", Subtype: "pt", AllowOther: true, DefaultPermissions: true,
				ReadOnly: true, MaxRead: 65536, RootMode: 0o755, UserID: u32(1000), GroupID: u32(0),
				AllowSuid: true, AllowDev: true, NoExec: true, NoAtime: true,
				Extra: []string{"blksize=4096,", "future_opt"},
			},
			source: "/srv/src", fstype: "fuse.pt",
			flags: unix.MS_RDONLY | unix.MS_NOEXEC | unix.MS_NOATIME,
			data:  "fd=7,rootmode=40755,user_id=1000,group_id=0,allow_other,default_permissions,max_read=65536,blksize=4096,future_opt",
		},
		{
			name:   "plain fstype",
			o:      Options{PlainFSType: true, Subtype: "ignored"},
			source: "ringfuse", fstype: "fuse",
			flags: unix.MS_NOSUID | unix.MS_NODEV,
			data:  fmt.Sprintf("fd=7,rootmode=40000,user_id=%d,group_id=%d", uid, gid),
		},
		{name: "extra fd refused", o: Options{Extra: []string{"allow_other,fd=3"}}, err: "extra option fd=3: set by Mount"},
		{name: "extra user_id refused", o: Options{Extra: []string{"user_id=3"}}, err: "extra option user_id=3: set by Mount"},
		{name: "extra NUL refused", o: Options{Extra: []string{"a\x00b"}}, err: "contains a NUL byte"},
		{name: "root not a directory", o: Options{RootMode: unix.S_IFREG | 0o644}, err: "the root must be a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.o.data(7)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrBadOption) {
					t.Fatalf("data() error = %v, want one containing %q and matching ErrBadOption", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if data != tt.data {
				t.Errorf("data =\n %s\nwant\n %s", data, tt.data)
			}
			if s := tt.o.source(); s != tt.source {
				t.Errorf("source = %q, want %q", s, tt.source)
			}
			if s := tt.o.fstype(); s != tt.fstype {
				t.Errorf("fstype = %q, want %q", s, tt.fstype)
			}
			if f := tt.o.flags(); f != tt.flags {
				t.Errorf("flags = %#x, want %#x", f, tt.flags)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{FSName: "a\x00b"},
		{Subtype: "a\x00b"},
		{Subtype: "a b"},
		{Subtype: "a/b"},
	} {
		if err := o.validate(); !errors.Is(err, ErrBadOption) {
			t.Errorf("validate(%+v) = %v, want ErrBadOption", o, err)
		}
	}
	if err := (&Options{FSName: "any thing/at all", Subtype: "ok.x-1"}).validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
}
