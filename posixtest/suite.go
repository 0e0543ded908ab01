package posixtest

import (
	"os"
	"regexp"
	"testing"
)

// Env describes the directory a case runs in.
type Env struct {
	// Dir is an empty, writable directory private to the case, on the
	// mount under test or on a local file system. Run fills it in with a
	// fresh subdirectory of the directory newEnv returns.
	Dir string

	// Native is true when Dir is on a plain local file system (no FUSE).
	// Cases use it only to decide whether a refusal by the underlying file
	// system (such as O_DIRECT on tmpfs) may be skipped.
	Native bool

	// DefaultPermissions is true when the kernel checks mode bits itself
	// (FUSE default_permissions). It is always true when Native is set.
	// Without it a passthrough server running as root grants everything,
	// so PermissionsNonRoot skips.
	DefaultPermissions bool
}

// Case is one named check of the suite.
type Case struct {
	// Name is a unique identifier usable as a subtest name.
	Name string
	// Run performs the check in env.Dir, which is empty and private to it.
	Run func(t *testing.T, env Env)
}

// All is the ordered list of cases that Run runs.
var All = []Case{
	{"CreateReadWrite", testCreateReadWrite},
	{"StatAfterWrite", testStatAfterWrite},
	{"OddOffsets", testOddOffsets},
	{"LargeIO", testLargeIO},
	{"SeekEnd", testSeekEnd},
	{"Append", testAppend},
	{"Truncate", testTruncate},
	{"OpenExcl", testOpenExcl},
	{"OpenTrunc", testOpenTrunc},
	{"CreateMode", testCreateMode},
	{"UnlinkOpenFile", testUnlinkOpenFile},
	{"Fsync", testFsync},
	{"SparseBeyond4GiB", testSparseBeyond4GiB},
	{"Fallocate", testFallocate},
	{"CopyFileRange", testCopyFileRange},
	{"Mmap", testMmap},
	{"DirectIO", testDirectIO},
	{"ConcurrentWriters", testConcurrentWriters},
	{"MkdirRmdir", testMkdirRmdir},
	{"ReaddirAfterCreate", testReaddirAfterCreate},
	{"ReaddirTypes", testReaddirTypes},
	{"ReaddirIno", testReaddirIno},
	{"ReaddirLarge", testReaddirLarge},
	{"ReaddirSeek", testReaddirSeek},
	{"ReaddirWhileUnlinking", testReaddirWhileUnlinking},
	{"RenameFile", testRenameFile},
	{"RenameOverFile", testRenameOverFile},
	{"RenameAcrossDirs", testRenameAcrossDirs},
	{"RenameDir", testRenameDir},
	{"RenameDirOverDir", testRenameDirOverDir},
	{"RenameTypeMismatch", testRenameTypeMismatch},
	{"RenameNoReplace", testRenameNoReplace},
	{"RenameExchange", testRenameExchange},
	{"RenameSelf", testRenameSelf},
	{"HardLink", testHardLink},
	{"Symlink", testSymlink},
	{"Mkfifo", testMkfifo},
	{"Chmod", testChmod},
	{"Chown", testChown},
	{"Utimens", testUtimens},
	{"UtimensSymlink", testUtimensSymlink},
	{"Xattr", testXattr},
	{"XattrList", testXattrList},
	{"Statfs", testStatfs},
	{"Flock", testFlock},
	{"OFDLocks", testOFDLocks},
	{"PermissionsNonRoot", testPermissionsNonRoot},
	{"NewNodeOwner", testNewNodeOwner},
	{"SetgidDirectory", testSetgidDirectory},
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// Run runs every case of All, in order, as a subtest named after the case.
// For each case it calls newEnv with the subtest's t (so newEnv may register
// cleanups, such as an unmount, that run after the case), creates a fresh
// subdirectory of the returned Dir with mode 0755, and runs the case there.
// newEnv may return the same directory every time.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	t.Helper()
	for _, c := range All {
		t.Run(c.Name, func(t *testing.T) {
			env := newEnv(t)
			if env.Native {
				env.DefaultPermissions = true
			}
			dir, err := os.MkdirTemp(env.Dir, unsafeName.ReplaceAllString(c.Name, "_")+"-")
			if err != nil {
				t.Fatalf("make case directory in %s: %v", env.Dir, err)
			}
			// MkdirTemp makes 0700 directories; the credential cases need
			// other users to search this one.
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatalf("chmod case directory %s: %v", dir, err)
			}
			env.Dir = dir
			c.Run(t, env)
		})
	}
}
