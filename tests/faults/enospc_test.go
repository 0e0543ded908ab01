package faults

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
)

const (
	// tmpfsSize is the size of the backing tmpfs that the test fills.
	tmpfsSize = 4 << 20
	// fillChunk is the size of one write of the filling client.
	fillChunk = 256 << 10
	// afterSize is what the client writes once space is freed.
	afterSize = 1 << 20
)

// tmpfsDir mounts a tmpfs of size bytes on a fresh temporary directory.
// Its cleanup, which runs after those of anything mounted later on top of
// it, unmounts it.
func tmpfsDir(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+itoa(size)+",mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount tmpfs %s: %v", dir, err)
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// pattern returns n bytes of the content expected at offset off of the
// filled file: a value per 4 KiB block, so a misplaced block shows.
func pattern(off int64, n int) []byte {
	const block, values = 4096, 251 // a prime, so blocks do not repeat in step with chunks
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off + int64(i)) / block % values)
	}
	return b
}

// TestBackingFull serves a 4 MiB tmpfs and fills it through the mount.
// The client sees ENOSPC from write(2) (after a short write, the kernel
// reports the bytes that made it; the next write gets the error); fsync
// and close then succeed, because nothing is left unwritten. The server
// keeps serving: stat shows the bytes written, they read back intact,
// statfs shows the filesystem full, unlink frees the space (once the
// FORGET that follows it is served), and a new
// file can then be written, fsynced and read back, through the mount and
// in the backing directory.
func TestBackingFull(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			needRoot(t)
			src := tmpfsDir(t, tmpfsSize)
			fsys, err := passthrough.New(src, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := mountInProcess(t, tr, fsys, func() { fsys.Close() }, noCache)
			fill := filepath.Join(s.Dir(), "fill")

			var written int64
			var werr error
			var fsyncErr, closeErr error
			within(t, opTimeout, "fill the backing filesystem", func() error {
				fd, err := unix.Open(fill, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
				if err != nil {
					werr = err
					return nil
				}
				for written <= 2*tmpfsSize {
					n, err := unix.Pwrite(fd, pattern(written, fillChunk), written)
					if n > 0 {
						written += int64(n)
					}
					if err != nil {
						werr = err
						break
					}
				}
				fsyncErr = unix.Fsync(fd)
				closeErr = unix.Close(fd)
				return nil
			})
			t.Logf("client: wrote %d bytes, then write: %v; fsync: %v; close: %v", written, werr, fsyncErr, closeErr)
			if werr != unix.ENOSPC {
				t.Fatalf("filling %d bytes of a %d-byte filesystem: write error %v, want ENOSPC", written, tmpfsSize, werr)
			}
			for _, err := range []error{fsyncErr, closeErr} {
				if err != nil && err != unix.ENOSPC {
					t.Errorf("fsync or close of the filled file: %v, want nil or ENOSPC", err)
				}
			}

			// The server keeps serving the full filesystem.
			var st unix.Stat_t
			if err := within(t, opTimeout, "stat", func() error { return unix.Stat(fill, &st) }); err != nil || st.Size != written {
				t.Errorf("stat of the filled file: size %d, %v; want %d", st.Size, err, written)
			}
			data := within(t, opTimeout, "read back", func() fileData { return readFile(fill) })
			if data.err != nil || !bytes.Equal(data.b, pattern(0, int(written))) {
				t.Errorf("read back of the filled file: %d bytes, %v; want the %d bytes written", len(data.b), data.err, written)
			}
			var sfs unix.Statfs_t
			if err := within(t, opTimeout, "statfs", func() error { return unix.Statfs(s.Dir(), &sfs) }); err != nil {
				t.Errorf("statfs of the full mount: %v", err)
			} else if free := int64(sfs.Bavail) * sfs.Bsize; free >= fillChunk {
				t.Errorf("statfs of the full mount: %d bytes available, want less than %d", free, fillChunk)
			}
			ents := within(t, opTimeout, "readdir", func() dirList { return listDir(s.Dir()) })
			if ents.err != nil || len(ents.names) != 1 || ents.names[0] != "fill" {
				t.Errorf("readdir of the full mount: %v, %v", ents.names, ents.err)
			}

			// Freeing space makes writes work again.
			if err := within(t, opTimeout, "unlink", func() error { return unix.Unlink(fill) }); err != nil {
				t.Fatalf("unlink of the filled file: %v", err)
			}
			// The space comes back when the server handles the FORGET
			// that follows the unlink: until then the passthrough's fd
			// cache may hold an O_PATH descriptor of the unlinked inode.
			polls := 0
			for ; ; polls++ {
				err := within(t, opTimeout, "statfs", func() error { return unix.Statfs(s.Dir(), &sfs) })
				if err != nil {
					t.Fatalf("statfs after the unlink: %v", err)
				}
				if int64(sfs.Bavail)*sfs.Bsize >= afterSize {
					break
				}
				if polls*int(pollInterval) > int(opTimeout) {
					t.Fatalf("statfs after the unlink: %d bytes available %v later, want at least %d", int64(sfs.Bavail)*sfs.Bsize, opTimeout, afterSize)
				}
				time.Sleep(pollInterval)
			}
			t.Logf("space freed after %d statfs polls", polls)
			after := filepath.Join(s.Dir(), "after")
			err = within(t, opTimeout, "write after the unlink", func() error {
				f, err := os.OpenFile(after, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					return err
				}
				_, err = f.Write(pattern(0, afterSize))
				return errors.Join(err, f.Sync(), f.Close())
			})
			if err != nil {
				t.Fatalf("write after the unlink: %v", err)
			}
			for _, p := range []string{after, filepath.Join(src, "after")} {
				data := within(t, opTimeout, "read "+p, func() fileData { return readFile(p) })
				if data.err != nil || !bytes.Equal(data.b, pattern(0, afterSize)) {
					t.Errorf("%s: %d bytes, %v; want the %d bytes written", p, len(data.b), data.err, afterSize)
				}
			}
		})
	}
}

// fileData carries os.ReadFile's result through within.
type fileData struct {
	b   []byte
	err error
}

func readFile(p string) fileData {
	b, err := os.ReadFile(p)
	return fileData{b, err}
}

// dirList carries a directory listing through within.
type dirList struct {
	names []string
	err   error
}

func listDir(p string) dirList {
	ents, err := os.ReadDir(p)
	var l dirList
	for _, e := range ents {
		l.names = append(l.names, e.Name())
	}
	l.err = err
	return l
}
