package faults

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/internal/testmount"
)

// backingTree makes the backing directory parent/src with a file, a kept
// file and a subdirectory holding a file, and returns its path.
func backingTree(t *testing.T, parent, marker string) string {
	t.Helper()
	src := filepath.Join(parent, "src")
	for _, d := range []string{src, filepath.Join(src, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{marker, "keep", "sub/inner"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte(f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// isStaleErr says whether e is a clear error for a name or node whose
// backing object is gone.
func isStaleErr(e syscall.Errno) bool {
	return e == syscall.ENOENT || e == syscall.ESTALE
}

// TestBackingRemoved deletes the whole backing directory while it is
// mounted and clients hold a file and a subdirectory open. What the
// clients see, and why:
//
//   - The root stays: the daemon holds the backing root by descriptor, so
//     stat of the mount point works and reports a directory; opening it
//     works too, but reading it fails with ENOENT, as getdents does on
//     any deleted directory.
//   - Names are gone: a lookup is an fstatat in the deleted directory,
//     which fails with ENOENT, and so does a create or mkdir in it (Linux
//     refuses new entries in a deleted directory).
//   - A file opened before keeps working: the daemon reads from its own
//     open descriptor, which keeps the inode alive.
//   - A subdirectory opened before answers ENOENT for names in it (the
//     daemon reaches it by file handle while its inode lives, but it is
//     empty and deleted) or ESTALE once the inode is gone.
//
// Nothing panics, the daemon does not spin, and it unmounts and exits
// cleanly on SIGTERM.
func TestBackingRemoved(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src := backingTree(t, t.TempDir(), "old-marker")
			mnt := t.TempDir()
			d := startDaemon(t, tr, src, mnt, "-o", "attr_timeout=0,entry_timeout=0")
			var keep *os.File
			err := within(t, opTimeout, "open keep", func() (err error) {
				keep, err = os.Open(filepath.Join(mnt, "keep"))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer keep.Close()
			sub := openDir(t, filepath.Join(mnt, "sub"))

			if err := os.RemoveAll(src); err != nil {
				t.Fatal(err)
			}

			var st unix.Stat_t
			if err := within(t, opTimeout, "stat root", func() error { return unix.Stat(mnt, &st) }); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				t.Errorf("stat of the root: mode %o, %v; want a directory", st.Mode, err)
			}
			if l := within(t, opTimeout, "readdir", func() dirList { return listDir(mnt) }); errnoOf(l.err) != syscall.ENOENT || len(l.names) != 0 {
				t.Errorf("readdir of the removed root: %v, %v; want ENOENT", l.names, l.err)
			}
			errs := map[string]error{
				"stat old-marker": within(t, opTimeout, "stat", func() error { return unix.Stat(filepath.Join(mnt, "old-marker"), &st) }),
				"create": within(t, opTimeout, "create", func() error {
					return os.WriteFile(filepath.Join(mnt, "new"), nil, 0o644)
				}),
				"mkdir":          within(t, opTimeout, "mkdir", func() error { return os.Mkdir(filepath.Join(mnt, "newdir"), 0o755) }),
				"stat sub/inner": within(t, opTimeout, "stat in sub", func() error { return unix.Fstatat(sub.fd, "inner", &st, 0) }),
				"create in sub": within(t, opTimeout, "create in sub", func() error {
					fd, err := unix.Openat(sub.fd, "new", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
					if err == nil {
						unix.Close(fd)
					}
					return err
				}),
			}
			for _, op := range slices.Sorted(maps.Keys(errs)) {
				err := errs[op]
				t.Logf("%s: %v", op, err)
				if !isStaleErr(errnoOf(err)) {
					t.Errorf("%s in the removed backing directory: %v, want ENOENT or ESTALE", op, err)
				}
			}
			buf := make([]byte, 64)
			r := within(t, opTimeout, "read kept file", func() countResult {
				n, err := keep.ReadAt(buf, 0)
				return countResult{n, err}
			})
			if string(buf[:r.n]) != "keep\n" {
				t.Errorf("read of the file opened before the removal: %q, %v; want %q", buf[:r.n], r.err, "keep\n")
			}
			keep.Close()
			sub.Close()
			d.checkNotSpinning(t)
			d.stop(t)
		})
	}
}

// TestBackingReplaced renames the backing directory away and renames a
// new directory into its place while it is mounted. The clients see no
// error, and no change: the daemon holds the backing root by descriptor
// and every node by file handle, never by path (like a process whose
// working directory is renamed), so the mount keeps serving the original
// directory, now at its new name: its files are listed, the new
// directory's are not, and a file created through the mount lands in the
// original directory. Nothing panics, the daemon does not spin, and it
// exits cleanly.
func TestBackingReplaced(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			parent := t.TempDir()
			src := backingTree(t, parent, "old-marker")
			mnt := t.TempDir()
			d := startDaemon(t, tr, src, mnt, "-o", "attr_timeout=0,entry_timeout=0")
			moved := filepath.Join(parent, "src.old")
			if err := os.Rename(src, moved); err != nil {
				t.Fatal(err)
			}
			fresh := filepath.Join(parent, "fresh")
			if err := os.Mkdir(fresh, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(fresh, "new-marker"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(fresh, src); err != nil {
				t.Fatal(err)
			}

			l := within(t, opTimeout, "readdir", func() dirList { return listDir(mnt) })
			if l.err != nil || !slices.Contains(l.names, "old-marker") || slices.Contains(l.names, "new-marker") {
				t.Errorf("readdir after the replacement: %v, %v; want the original directory's names", l.names, l.err)
			}
			data := within(t, opTimeout, "read", func() fileData { return readFile(filepath.Join(mnt, "sub", "inner")) })
			if data.err != nil || string(data.b) != "sub/inner\n" {
				t.Errorf("read sub/inner after the replacement: %q, %v", data.b, data.err)
			}
			err := within(t, opTimeout, "create", func() error {
				return os.WriteFile(filepath.Join(mnt, "created"), []byte("c\n"), 0o644)
			})
			if err != nil {
				t.Errorf("create after the replacement: %v", err)
			}
			if _, err := os.Stat(filepath.Join(moved, "created")); err != nil {
				t.Errorf("the created file is not in the original directory: %v", err)
			}
			if _, err := os.Stat(filepath.Join(src, "created")); !os.IsNotExist(err) {
				t.Errorf("the created file is in the new directory: %v", err)
			}
			d.checkNotSpinning(t)
			d.stop(t)
		})
	}
}
