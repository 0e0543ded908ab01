//go:build linux

package nodefs_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/nodefs"
	"github.com/ringfuse/ringfuse/posixtest"
)

// memCases are the POSIX cases an in-memory tree supports: MemDir has no
// extended attributes, fallocate, copy_file_range or locks of its own,
// sparse files beyond 4 GiB would take the memory, and the cases acting as
// other users need default_permissions.
var memCases = []string{
	"CreateReadWrite", "StatAfterWrite", "OddOffsets", "LargeIO", "SeekEnd", "Append", "Truncate",
	"OpenExcl", "OpenTrunc", "CreateMode", "UnlinkOpenFile", "Fsync", "Mmap", "ConcurrentWriters",
	"MkdirRmdir", "ReaddirAfterCreate", "ReaddirTypes", "ReaddirIno", "ReaddirLarge", "ReaddirSeek",
	"ReaddirWhileUnlinking", "RenameFile", "RenameOverFile", "RenameAcrossDirs", "RenameDir",
	"RenameDirOverDir", "RenameTypeMismatch", "RenameNoReplace", "RenameExchange", "RenameSelf",
	"HardLink", "Symlink", "Mkfifo", "Chmod", "Utimens", "Statfs",
}

// runCases runs the named posixtest cases in dir.
func runCases(t *testing.T, dir string, names []string) {
	for _, c := range posixtest.All {
		if !slices.Contains(names, c.Name) {
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
}

func TestMemDirPosix(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			dir := mountTree(t, &nodefs.MemDir{}, tr)
			runCases(t, dir, memCases)
		})
	}
}

func TestMemDirSurvivesForget(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			root := &nodefs.MemDir{}
			dir := mountTree(t, root, tr)
			if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("kept"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "a", "b", "f")); err != nil || string(b) != "kept" {
				t.Errorf("after drop_caches: %q, %v", b, err)
			}
			if root.GetChild("a").GetChild("b").GetChild("f") == nil {
				t.Error("a/b/f is not in the tree")
			}
		})
	}
}
