package mount

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseMountinfo(t *testing.T) {
	text := `22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:3 - ext3 /dev/root rw,errors=continue
40 22 0:53 / /tmp/a\040b\134c rw,nosuid,nodev,relatime - fuse.ringfuse src\040dir rw,user_id=0,group_id=0,allow_other
41 22 8:17 / /media/usb rw,relatime - fuseblk /dev/sdb1 rw,user_id=0,group_id=0
`
	got, err := parseMountinfo(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d mounts, want 4", len(got))
	}
	want := MountInfo{
		ID: 40, Parent: 22, Major: 0, Minor: 53, Root: "/", Mountpoint: `/tmp/a b\c`,
		Options: "rw,nosuid,nodev,relatime", FSType: "fuse.ringfuse", Source: "src dir",
		SuperOptions: "rw,user_id=0,group_id=0,allow_other",
	}
	if got[2] != want {
		t.Errorf("line 3:\n got %+v\nwant %+v", got[2], want)
	}
	if m := got[1]; m.Mountpoint != "/mnt2" || m.Root != "/mnt1" || m.FSType != "ext3" || m.Major != 98 || m.IsFUSE() {
		t.Errorf("line 2 (optional fields): %+v", m)
	}
	if !got[2].IsFUSE() || got[2].ConnID() != 53 {
		t.Errorf("fuse mount: IsFUSE=%v ConnID=%d, want true, 53", got[2].IsFUSE(), got[2].ConnID())
	}
	if !got[3].IsFUSE() || got[3].ConnID() != 8<<20|17 {
		t.Errorf("fuseblk mount: IsFUSE=%v ConnID=%d", got[3].IsFUSE(), got[3].ConnID())
	}

	for _, bad := range []string{
		"22 1 0:21 / /proc rw - proc",
		"22 1 0:21 / /proc rw shared:12 proc proc rw",
		"x 1 0:21 / /proc rw - proc proc rw",
		"22 1 021 / /proc rw - proc proc rw",
	} {
		if _, err := parseMountinfo(bad); err == nil {
			t.Errorf("parseMountinfo(%q): no error", bad)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:            "plain",
		`a\040b`:           "a b",
		`\011\012\134\043`: "\t\n\\#",
		`trailing\04`:      `trailing\04`,
		`not\999octal`:     `not\999octal`,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonical(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{real, dir + "/./real/", dir + "/rel", dir + "/up/up/rel"} {
		if got, err := canonical(in); got != real || err != nil {
			t.Errorf("canonical(%q) = %q, %v; want %q", in, got, err, real)
		}
	}
	if got, _ := canonical(dir + "/missing"); got != dir+"/missing" {
		t.Errorf("canonical of a missing path = %q", got)
	}
	if got, _ := canonical("/"); got != "/" {
		t.Errorf("canonical(/) = %q", got)
	}
	if err := os.Symlink("loop", filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	if _, err := canonical(dir + "/loop"); err == nil {
		t.Errorf("canonical of a symlink loop: no error")
	}
	if _, err := canonical(""); err == nil {
		t.Errorf("canonical(\"\"): no error")
	}
}

func TestIsMountedNoMount(t *testing.T) {
	if ok, err := IsMounted("/"); !ok || err != nil {
		t.Errorf("IsMounted(/) = %v, %v; want true", ok, err)
	}
	dir := t.TempDir()
	if ok, err := IsMounted(dir); ok || err != nil {
		t.Errorf("IsMounted(%s) = %v, %v; want false", dir, ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := WaitMounted(ctx, dir); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitMounted on a plain directory: %v, want DeadlineExceeded", err)
	}
	if err := WaitUnmounted(context.Background(), dir); err != nil {
		t.Errorf("WaitUnmounted on a plain directory: %v", err)
	}
}
