package mount

import (
	"errors"
	"os"
	"testing"
)

func TestHelperOpts(t *testing.T) {
	uid := uint32(os.Getuid())
	other := uid + 1
	for _, c := range []struct {
		name string
		o    Options
		want string
		err  error
	}{
		{"zero", Options{}, "fsname=ringfuse,subtype=ringfuse,nosuid,nodev", nil},
		{"words", Options{FSName: "/srv", Subtype: "x", ReadOnly: true, AllowOther: true, DefaultPermissions: true, MaxRead: 4096, NoExec: true, NoAtime: true, Extra: []string{"blksize=4096"}},
			"fsname=/srv,subtype=x,nosuid,nodev,ro,noexec,noatime,allow_other,default_permissions,max_read=4096,blksize=4096", nil},
		{"plain", Options{PlainFSType: true}, "fsname=ringfuse,nosuid,nodev", nil},
		{"own uid", Options{UserID: &uid}, "fsname=ringfuse,subtype=ringfuse,nosuid,nodev", nil},
		{"other uid", Options{UserID: &other}, "", ErrBadOption},
		{"comma", Options{FSName: "a,b"}, "", ErrBadOption},
		{"reserved", Options{Extra: []string{"fd=3"}}, "", ErrBadOption},
	} {
		got, err := c.o.helperOpts()
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("%s: %q, %v; want %q, %v", c.name, got, err, c.want, c.err)
		}
	}
}

func TestParseAutoUnmount(t *testing.T) {
	o, rest, err := ParseOptions([]string{"auto_unmount,io_uring"})
	if err != nil || !o.AutoUnmount || len(rest) != 1 {
		t.Errorf("auto_unmount: %+v %v %v", o, rest, err)
	}
	if _, _, err := ParseOptions([]string{"auto_unmount=1"}); !errors.Is(err, ErrBadOption) {
		t.Errorf("auto_unmount=1: %v", err)
	}
}

// TestNoFusermount checks the error a user without fusermount3 gets.
func TestNoFusermount(t *testing.T) {
	old := fusermountPath
	fusermountPath = func() (string, error) { return "", ErrNoFusermount }
	defer func() { fusermountPath = old }()
	_, err := Mount(t.TempDir(), &Options{UseFusermount: true})
	if !errors.Is(err, ErrNoFusermount) {
		t.Errorf("Mount without fusermount3: %v", err)
	}
}

// TestFusermountRefuses mounts through fusermount3 (as root, asked to) with
// an option the helper does not know, and checks that its reason comes
// back in the error.
func TestFusermountRefuses(t *testing.T) {
	if _, err := fusermountPath(); err != nil {
		t.Fatalf("%v (apt-get install fuse3)", err)
	}
	_, err := Mount(t.TempDir(), &Options{UseFusermount: true, Extra: []string{"bogus_option"}})
	if !errors.Is(err, ErrFusermount) {
		t.Fatalf("fusermount3 with a bad option: %v", err)
	}
	t.Log(err)
}
