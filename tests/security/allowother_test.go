package security

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
)

// TestAllowOther checks that without allow_other the kernel refuses every
// user but the mounter, whatever the mode bits say, and that with it the
// same users get through (the positive control).
func TestAllowOther(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			for _, allow := range []bool{false, true} {
				name := "private"
				if allow {
					name = "allow_other"
				}
				t.Run(name, func(t *testing.T) { testAllowOther(t, tr, allow) })
			}
		})
	}
}

func testAllowOther(t *testing.T, transport string, allow bool) {
	src := newSource(t)
	// Everything is open to everyone by its mode bits.
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("hello"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "d"), 0o777); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".", "f", "d"} {
		if err := os.Chmod(filepath.Join(src, p), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	m := mountPT(t, transport, src, mount.Options{AllowOther: allow}, server.Options{})
	mnt := m.dir
	f, d := filepath.Join(mnt, "f"), filepath.Join(mnt, "d")

	// Root, the mounter, always gets in.
	for i, r := range runAs(t, root,
		op{Op: "stat", Path: mnt}, op{Op: "readdir", Path: mnt}, op{Op: "read", Path: f},
	) {
		if r.Err != "" {
			t.Errorf("root op %d: %v", i, r)
		}
	}

	opsOf := func(who cred) []op {
		return []op{
			{Op: "stat", Path: filepath.Dir(mnt)}, // native: reachable either way
			{Op: "stat", Path: mnt},
			{Op: "readdir", Path: mnt},
			{Op: "access", Path: mnt, Mode: 1}, // X_OK
			{Op: "stat", Path: f},
			{Op: "read", Path: f},
			{Op: "write", Path: f, Flags: os.O_APPEND, Data: "x"},
			{Op: "stat", Path: d},
			{Op: "readdir", Path: d},
			{Op: "write", Path: filepath.Join(d, "new-"+who.name), Flags: os.O_CREATE, Mode: 0o644, Data: "x"},
			{Op: "mkdir", Path: filepath.Join(mnt, "newdir-"+who.name), Mode: 0o755},
		}
	}
	for _, who := range []cred{nobody, user} {
		ops := opsOf(who)
		res := runAs(t, who, ops...)
		if res[0].Err != "" {
			t.Fatalf("%s cannot stat the mount point's parent (%v): the test's directories are not traversable", who.name, res[0])
		}
		for i, r := range res[1:] {
			o := ops[i+1]
			switch {
			case !allow && r.Err != "EACCES":
				t.Errorf("without allow_other, %s %s %s: %v, want EACCES", who.name, o.Op, o.Path, r)
			case allow && r.Err != "":
				t.Errorf("with allow_other, %s %s %s: %v, want success", who.name, o.Op, o.Path, r)
			}
		}
		if allow && res[5].Out != "hello" && res[5].Out != "hellox" {
			t.Errorf("with allow_other, %s read %q", who.name, res[5].Out)
		}
	}
	// Nothing changed behind the mount without allow_other.
	if !allow {
		if b, err := os.ReadFile(filepath.Join(src, "f")); err != nil || string(b) != "hello" {
			t.Errorf("backing f: %q, %v; want it untouched", b, err)
		}
		for _, who := range []cred{nobody, user} {
			for _, p := range []string{"d/new-" + who.name, "newdir-" + who.name} {
				if _, err := os.Lstat(filepath.Join(src, p)); !os.IsNotExist(err) {
					t.Errorf("backing %s exists (%v); others were refused", p, err)
				}
			}
		}
	}
}
