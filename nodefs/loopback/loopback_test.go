//go:build linux

package loopback_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/nodefs"
	"github.com/ringfuse/ringfuse/nodefs/loopback"
	"github.com/ringfuse/ringfuse/posixtest"
)

// cases are the POSIX cases the loopback forwards: it has no extended
// attributes, fallocate, lseek, copy_file_range or locks.
var cases = []string{
	"CreateReadWrite", "StatAfterWrite", "OddOffsets", "LargeIO", "SeekEnd", "Append", "Truncate",
	"OpenExcl", "OpenTrunc", "CreateMode", "UnlinkOpenFile", "Fsync", "Mmap", "DirectIO", "ConcurrentWriters",
	"MkdirRmdir", "ReaddirAfterCreate", "ReaddirTypes", "ReaddirIno", "ReaddirLarge", "ReaddirSeek",
	"ReaddirWhileUnlinking", "RenameFile", "RenameOverFile", "RenameAcrossDirs", "RenameDir",
	"RenameDirOverDir", "RenameTypeMismatch", "RenameNoReplace", "RenameExchange", "RenameSelf",
	"HardLink", "Symlink", "Mkfifo", "Chmod", "Chown", "Utimens", "UtimensSymlink", "Statfs",
}

func mountLoopback(t *testing.T, src, transport string) string {
	root, err := loopback.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := nodefs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return testmount.Mount(t, fsys, testmount.Options{Transport: transport, Cleanup: func() { root.FS().Close() }}).Dir()
}

func TestLoopbackPosix(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src := t.TempDir()
			dir := mountLoopback(t, src, tr)
			for _, c := range posixtest.All {
				if !slices.Contains(cases, c.Name) {
					continue
				}
				t.Run(c.Name, func(t *testing.T) {
					d, err := os.MkdirTemp(dir, c.Name+"-")
					if err != nil {
						t.Fatal(err)
					}
					os.Chmod(d, 0o755)
					c.Run(t, posixtest.Env{Dir: d})
				})
			}
		})
	}
}

// TestLoopbackSeesHost: the tree shows the host directory, and changes go
// through to it.
func TestLoopbackSeesHost(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src := t.TempDir()
			if err := os.WriteFile(filepath.Join(src, "host"), []byte("from host"), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := mountLoopback(t, src, tr)
			if b, err := os.ReadFile(filepath.Join(dir, "host")); err != nil || string(b) != "from host" {
				t.Errorf("read host: %q, %v", b, err)
			}
			if err := os.WriteFile(filepath.Join(dir, "new"), []byte("through"), 0o600); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(src, "new")); err != nil || string(b) != "through" {
				t.Errorf("host sees new: %q, %v", b, err)
			}
			if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "new")); err != nil || string(b) != "through" {
				t.Errorf("read new after the kernel forgot it: %q, %v", b, err)
			}
		})
	}
}
