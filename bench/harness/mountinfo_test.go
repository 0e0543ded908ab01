package harness

import (
	"strings"
	"testing"
)

const sampleMountinfo = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda rw,discard
61 27 0:55 / /tmp/ring\040bench/mnt rw,nosuid,nodev,relatime - fuse.gofuse-loopback /tmp/src\134dir rw,user_id=0,group_id=0
62 27 0:300 / /tmp/x rw - fuse ringfuse rw
`

func TestParseMountinfo(t *testing.T) {
	all, err := ParseMountinfo(strings.NewReader(sampleMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 {
		t.Fatalf("got %d entries, want 4", len(all))
	}
	root := all[1]
	if root.MountPoint != "/" || root.FSType != "ext4" || root.Source != "/dev/vda" || root.Major != 254 || root.IsFUSE() {
		t.Errorf("root entry = %+v", root)
	}
	f := all[2]
	if f.ID != 61 || f.MountPoint != "/tmp/ring bench/mnt" || f.Source != `/tmp/src\dir` || f.FSType != "fuse.gofuse-loopback" || !f.IsFUSE() {
		t.Errorf("fuse entry = %+v", f)
	}
	if f.ConnectionID() != 55 {
		t.Errorf("ConnectionID = %d, want 55", f.ConnectionID())
	}
	if !all[3].IsFUSE() || all[3].ConnectionID() != 300 {
		t.Errorf("entry %+v: IsFUSE %v ConnectionID %d", all[3], all[3].IsFUSE(), all[3].ConnectionID())
	}
	if id := (MountEntry{Major: 1, Minor: 2}).ConnectionID(); id != 1<<20|2 {
		t.Errorf("ConnectionID(1:2) = %d", id)
	}
}

func TestParseMountinfoErrors(t *testing.T) {
	for _, bad := range []string{
		"22 27 0:21 / /proc rw,relatime proc proc rw\n", // no separator
		"x 27 0:21 / /proc rw - proc proc rw\n",
		"22 27 021 / /proc rw - proc proc rw\n",
		"22 27 0:21 / - proc proc rw\n",
	} {
		if _, err := ParseMountinfo(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseMountinfo(%q): no error", bad)
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:   "/a b",
		`/a\011b`:   "/a\tb",
		`/a\012`:    "/a\n",
		`/a\134`:    `/a\`,
		`/plain`:    "/plain",
		`/short\04`: `/short\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFindMountRoot(t *testing.T) {
	e, ok, err := FindMount("/")
	if err != nil || !ok {
		t.Fatalf("FindMount(/) = %v, %v", ok, err)
	}
	if e.MountPoint != "/" {
		t.Errorf("FindMount(/) = %+v", e)
	}
	if _, ok, _ := FindMount("/no/such/mountpoint"); ok {
		t.Error("FindMount found a mountpoint that does not exist")
	}
}
