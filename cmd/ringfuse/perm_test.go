package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"
)

func TestAllowOtherImpliesDefaultPermissions(t *testing.T) {
	c, err := parseOptions([]string{"allow_other"}, "/src")
	if err != nil {
		t.Fatal(err)
	}
	if !c.session.Mount.AllowOther || !c.session.Mount.DefaultPermissions {
		t.Errorf("-o allow_other gave %+v, want allow_other and default_permissions", c.session.Mount)
	}
	c, err = parseOptions(nil, "/src")
	if err != nil {
		t.Fatal(err)
	}
	if c.session.Mount.AllowOther || c.session.Mount.DefaultPermissions {
		t.Errorf("no options gave %+v", c.session.Mount)
	}
}

// TestAllowOtherDeniesByMode mounts with -o allow_other alone, as a user
// would, and checks that uid 65534 can read a public file but not root's
// 0600 file: the daemon acts as root, so without the kernel's mode checks
// every user could read everything.
func TestAllowOtherDeniesByMode(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src, mnt, cmd, stderr := daemon(t, append(transportOpts(tr), "-o", "allow_other")...)
			testmount.Traversable(t, mnt)
			if err := os.Chmod(src, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "public"), []byte("hello\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(src, "secret"), []byte("s3cret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			asNobody := func(name string) ([]byte, error) {
				c := exec.Command("cat", filepath.Join(mnt, name))
				c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
				return c.CombinedOutput()
			}
			if out, err := asNobody("public"); err != nil || string(out) != "hello\n" {
				t.Errorf("uid 65534 reading a 0644 file: %q, %v (allow_other not in effect?)", out, err)
			}
			if out, err := asNobody("secret"); err == nil {
				t.Errorf("uid 65534 read root's 0600 file through the mount: %q", out)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("daemon exit: %v\n%s", err, stderr)
			}
		})
	}
}
