package posixtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// describe renders err as its errno name and message, such as
// "ENOENT (no such file or directory)", or "success" for nil.
func describe(err error) string {
	if err == nil {
		return "success"
	}
	var e unix.Errno
	if errors.As(err, &e) {
		if name := unix.ErrnoName(e); name != "" {
			return fmt.Sprintf("%s (%v)", name, err)
		}
	}
	return err.Error()
}

// ok reports err, if any, as a failure of the operation op and returns
// whether err was nil.
func ok(t testing.TB, err error, op string, args ...any) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %s", fmt.Sprintf(op, args...), describe(err))
		return false
	}
	return true
}

// must stops the case if err is not nil.
func must(t testing.TB, err error, op string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %s", fmt.Sprintf(op, args...), describe(err))
	}
}

// wantErrno reports a failure unless err is one of the errnos in want.
func wantErrno(t testing.TB, err error, want unix.Errno, op string, args ...any) bool {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %s, want %s", fmt.Sprintf(op, args...), describe(err), unix.ErrnoName(want))
		return false
	}
	return true
}

// openT opens path and stops the case on failure. The descriptor is closed
// when the case ends; callers must not close it.
func openT(t testing.TB, path string, flags int, mode uint32) int {
	t.Helper()
	fd, _ := openC(t, path, flags, mode)
	return fd
}

// openC opens path like openT and also returns an idempotent close function
// for cases that must close the descriptor themselves.
func openC(t testing.TB, path string, flags int, mode uint32) (int, func() error) {
	t.Helper()
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, mode)
	if err != nil {
		t.Fatalf("open %s flags %#x: %s", path, flags, describe(err))
	}
	var once sync.Once
	var cerr error
	closeFD := func() error {
		once.Do(func() { cerr = unix.Close(fd) })
		return cerr
	}
	t.Cleanup(func() { _ = closeFD() })
	return fd, closeFD
}

// writeFileT creates (or truncates) path with data and mode.
func writeFileT(t testing.TB, path string, data []byte, mode uint32) {
	t.Helper()
	fd, closeFD := openC(t, path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, mode)
	must(t, pwriteAll(fd, data, 0), "pwrite %s", path)
	must(t, closeFD(), "close %s", path)
}

// readFileT returns the contents of path, read with unix calls.
func readFileT(t testing.TB, path string) []byte {
	t.Helper()
	fd, closeFD := openC(t, path, unix.O_RDONLY, 0)
	var st unix.Stat_t
	must(t, unix.Fstat(fd, &st), "fstat %s", path)
	b, err := preadAll(fd, int(st.Size)+1, 0)
	must(t, err, "pread %s", path)
	must(t, closeFD(), "close %s", path)
	return b
}

// pwriteAll writes all of data at off, retrying short writes.
func pwriteAll(fd int, data []byte, off int64) error {
	for len(data) > 0 {
		n, err := unix.Pwrite(fd, data, off)
		if err != nil {
			return err
		}
		if n == 0 {
			return errors.New("pwrite wrote 0 bytes")
		}
		data = data[n:]
		off += int64(n)
	}
	return nil
}

// preadAll reads up to n bytes at off, stopping early only at end of file.
func preadAll(fd int, n int, off int64) ([]byte, error) {
	b := make([]byte, n)
	got := 0
	for got < n {
		m, err := unix.Pread(fd, b[got:], off+int64(got))
		if err != nil {
			return b[:got], err
		}
		if m == 0 {
			break
		}
		got += m
	}
	return b[:got], nil
}

// pattern returns n pseudo-random bytes determined by seed.
func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// sameBytes reports a failure naming what and the first differing offset
// unless got equals want.
func sameBytes(t testing.TB, got, want []byte, what string, args ...any) bool {
	t.Helper()
	if bytes.Equal(got, want) {
		return true
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	detail := ""
	switch {
	case i < len(got) && i < len(want):
		detail = fmt.Sprintf("got %#02x, want %#02x", got[i], want[i])
	case i < len(want):
		detail = "got ends there"
	default:
		detail = "got continues"
	}
	t.Errorf("%s: got %d bytes, want %d; first difference at offset %d (%s)",
		fmt.Sprintf(what, args...), len(got), len(want), i, detail)
	return false
}

// lstatT returns the lstat of path, reporting a failure if it fails.
func lstatT(t testing.TB, path string) (unix.Stat_t, bool) {
	t.Helper()
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	return st, ok(t, err, "lstat %s", path)
}

// statT returns the stat of path, reporting a failure if it fails.
func statT(t testing.TB, path string) (unix.Stat_t, bool) {
	t.Helper()
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	return st, ok(t, err, "stat %s", path)
}

// wantGone reports a failure unless lstat of path gives ENOENT.
func wantGone(t testing.TB, path string) bool {
	t.Helper()
	var st unix.Stat_t
	return wantErrno(t, unix.Lstat(path, &st), unix.ENOENT, "lstat %s (should be gone)", path)
}

// fileType names the S_IFMT bits of mode.
func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "char device"
	case unix.S_IFBLK:
		return "block device"
	}
	return fmt.Sprintf("type %#o", mode&unix.S_IFMT)
}

// wantType reports a failure unless st has file type typ (an S_IF* value).
func wantType(t testing.TB, st unix.Stat_t, typ uint32, path string) bool {
	t.Helper()
	if st.Mode&unix.S_IFMT != typ {
		t.Errorf("%s: file type is %s, want %s", path, fileType(st.Mode), fileType(typ))
		return false
	}
	return true
}

// dirent is one entry returned by getdents64.
type dirent struct {
	ino  uint64
	off  int64
	typ  uint8
	name string
}

// parseDirents decodes the struct linux_dirent64 records in buf.
func parseDirents(buf []byte) ([]dirent, error) {
	var out []dirent
	for len(buf) > 0 {
		if len(buf) < 19 {
			return out, fmt.Errorf("truncated dirent header (%d bytes left)", len(buf))
		}
		reclen := int(binary.NativeEndian.Uint16(buf[16:]))
		if reclen < 20 || reclen > len(buf) {
			return out, fmt.Errorf("bad d_reclen %d with %d bytes left", reclen, len(buf))
		}
		name := buf[19:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		} else {
			return out, fmt.Errorf("dirent name without NUL")
		}
		out = append(out, dirent{
			ino:  binary.NativeEndian.Uint64(buf[0:]),
			off:  int64(binary.NativeEndian.Uint64(buf[8:])),
			typ:  buf[18],
			name: string(name),
		})
		buf = buf[reclen:]
	}
	return out, nil
}

// getdents performs one getdents64 call with a buffer of bufSize bytes.
func getdents(fd int, bufSize int) ([]dirent, error) {
	buf := make([]byte, bufSize)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		return nil, err
	}
	return parseDirents(buf[:n])
}

// readDirFD reads dir entries from fd with getdents64 and a buffer of
// bufSize bytes until end of directory, reporting errors.
func readDirFD(t testing.TB, fd int, bufSize int, what string) []dirent {
	t.Helper()
	var all []dirent
	for {
		ents, err := getdents(fd, bufSize)
		if err != nil {
			t.Errorf("getdents64 %s after %d entries: %s", what, len(all), describe(err))
			return all
		}
		if len(ents) == 0 {
			return all
		}
		all = append(all, ents...)
	}
}

// listDir returns the entry names of dir other than "." and "..", in the
// order getdents64 returned them.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	fd := openT(t, dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	var names []string
	for _, e := range readDirFD(t, fd, 4096, dir) {
		if e.name != "." && e.name != ".." {
			names = append(names, e.name)
		}
	}
	return names
}

// needRoot skips the case unless the test runs as root.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root (euid %d)", os.Geteuid())
	}
}

// errorsIs is errors.Is for errnos.
func errorsIs(err error, want unix.Errno) bool { return errors.Is(err, want) }

// readDirNames lists dir with os.ReadDir.
func readDirNames(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	names := make([]string, len(des))
	for i, d := range des {
		names[i] = d.Name()
	}
	return names, err
}
