package posixtest

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// testXattr sets, gets and removes user.* attributes on a file (by path and by
// descriptor) and a directory, and checks the errno of each refusal.
func testXattr(t *testing.T, env Env) {
	f := filepath.Join(env.Dir, "file")
	writeFileT(t, f, []byte("x"), 0o644)
	const name = "user.posixtest"
	val := []byte("some value\x00with a NUL")
	if !ok(t, unix.Setxattr(f, name, val, 0), "setxattr %s", name) {
		t.FailNow()
	}
	get := func(p, attr string, size int) ([]byte, error) {
		buf := make([]byte, size)
		n, err := unix.Getxattr(p, attr, buf)
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	if got, err := get(f, name, 256); ok(t, err, "getxattr %s", name) {
		sameBytes(t, got, val, "getxattr %s", name)
	}
	if n, err := unix.Getxattr(f, name, nil); ok(t, err, "getxattr size query") && n != len(val) {
		t.Errorf("getxattr size query = %d, want %d", n, len(val))
	}
	_, err := get(f, name, len(val)-1)
	wantErrno(t, err, unix.ERANGE, "getxattr into a buffer one byte short")
	_, err = get(f, "user.missing", 256)
	wantErrno(t, err, unix.ENODATA, "getxattr of a missing name")
	_, err = unix.Getxattr(f, "user.missing", nil)
	wantErrno(t, err, unix.ENODATA, "getxattr size query of a missing name")

	wantErrno(t, unix.Setxattr(f, name, []byte("other"), unix.XATTR_CREATE), unix.EEXIST, "setxattr XATTR_CREATE on an existing name")
	if got, err := get(f, name, 256); ok(t, err, "getxattr") {
		sameBytes(t, got, val, "value after refused XATTR_CREATE")
	}
	wantErrno(t, unix.Setxattr(f, "user.missing", []byte("v"), unix.XATTR_REPLACE), unix.ENODATA, "setxattr XATTR_REPLACE on a missing name")
	_, err = get(f, "user.missing", 256)
	wantErrno(t, err, unix.ENODATA, "getxattr after refused XATTR_REPLACE")
	if ok(t, unix.Setxattr(f, name, []byte("replaced"), unix.XATTR_REPLACE), "setxattr XATTR_REPLACE on an existing name") {
		if got, err := get(f, name, 256); ok(t, err, "getxattr") {
			sameBytes(t, got, []byte("replaced"), "value after XATTR_REPLACE")
		}
	}
	if ok(t, unix.Setxattr(f, "user.new", []byte("created"), unix.XATTR_CREATE), "setxattr XATTR_CREATE on a new name") {
		if got, err := get(f, "user.new", 256); ok(t, err, "getxattr") {
			sameBytes(t, got, []byte("created"), "value after XATTR_CREATE")
		}
	}
	// Empty and large values.
	if ok(t, unix.Setxattr(f, "user.empty", nil, 0), "setxattr with an empty value") {
		if n, err := unix.Getxattr(f, "user.empty", make([]byte, 16)); ok(t, err, "getxattr empty value") && n != 0 {
			t.Errorf("getxattr of an empty value returned %d bytes", n)
		}
	}
	big := pattern(13, 3000)
	if ok(t, unix.Setxattr(f, "user.big", big, 0), "setxattr 3000-byte value") {
		if got, err := get(f, "user.big", 4000); ok(t, err, "getxattr big") {
			sameBytes(t, got, big, "3000-byte value")
		}
	}

	if ok(t, unix.Removexattr(f, name), "removexattr") {
		_, err = get(f, name, 256)
		wantErrno(t, err, unix.ENODATA, "getxattr after removexattr")
	}
	wantErrno(t, unix.Removexattr(f, name), unix.ENODATA, "removexattr of a missing name")

	// Through a descriptor.
	fd := openT(t, f, unix.O_RDONLY, 0)
	if ok(t, unix.Fsetxattr(fd, "user.fd", []byte("by fd"), 0), "fsetxattr") {
		buf := make([]byte, 64)
		if n, err := unix.Fgetxattr(fd, "user.fd", buf); ok(t, err, "fgetxattr") {
			sameBytes(t, buf[:n], []byte("by fd"), "fgetxattr")
		}
		if got, err := get(f, "user.fd", 64); ok(t, err, "getxattr of a value set with fsetxattr") {
			sameBytes(t, got, []byte("by fd"), "getxattr of a value set with fsetxattr")
		}
		ok(t, unix.Fremovexattr(fd, "user.fd"), "fremovexattr")
	}

	// On a directory.
	d := filepath.Join(env.Dir, "dir")
	must(t, unix.Mkdir(d, 0o755), "mkdir")
	if ok(t, unix.Setxattr(d, "user.dir", []byte("dir value"), 0), "setxattr on a directory") {
		if got, err := get(d, "user.dir", 64); ok(t, err, "getxattr on a directory") {
			sameBytes(t, got, []byte("dir value"), "directory xattr")
		}
	}
	// Attributes belong to the inode: visible through a hard link, and
	// they survive a rename.
	h := filepath.Join(env.Dir, "hard")
	must(t, unix.Link(f, h), "link")
	if got, err := get(h, "user.big", 4000); ok(t, err, "getxattr through a hard link") {
		sameBytes(t, got, big, "xattr through a hard link")
	}
	r := filepath.Join(env.Dir, "renamed")
	must(t, unix.Rename(f, r), "rename")
	if got, err := get(r, "user.new", 64); ok(t, err, "getxattr after rename") {
		sameBytes(t, got, []byte("created"), "xattr after rename")
	}
	_, err = get(filepath.Join(env.Dir, "missing"), "user.x", 64)
	wantErrno(t, err, unix.ENOENT, "getxattr of a missing file")
}

// testXattrList checks listxattr: the size query, the NUL-separated list, ERANGE
// for a short buffer, and the effect of set and remove.
func testXattrList(t *testing.T, env Env) {
	f := filepath.Join(env.Dir, "file")
	writeFileT(t, f, nil, 0o644)
	list := func() ([]string, bool) {
		t.Helper()
		n, err := unix.Listxattr(f, nil)
		if !ok(t, err, "listxattr size query") {
			return nil, false
		}
		buf := make([]byte, n)
		m, err := unix.Listxattr(f, buf)
		if !ok(t, err, "listxattr with a buffer of the queried size %d", n) {
			return nil, false
		}
		if m != n {
			t.Errorf("listxattr returned %d bytes, size query said %d", m, n)
		}
		buf = buf[:m]
		if len(buf) > 0 && buf[len(buf)-1] != 0 {
			t.Errorf("listxattr result %q does not end with NUL", buf)
		}
		var names []string
		for _, s := range bytes.Split(bytes.TrimSuffix(buf, []byte{0}), []byte{0}) {
			// Only user.* names are ours; security.* (SELinux) may be present.
			if strings.HasPrefix(string(s), "user.") {
				names = append(names, string(s))
			}
		}
		slices.Sort(names)
		return names, true
	}
	if names, good := list(); good && len(names) != 0 {
		t.Errorf("new file lists user attributes %q", names)
	}
	want := []string{"user.a", "user.bb", "user.ccc"}
	for _, n := range want {
		must(t, unix.Setxattr(f, n, []byte("v-"+n), 0), "setxattr %s", n)
	}
	if names, good := list(); good && !slices.Equal(names, want) {
		t.Errorf("listxattr = %q, want %q", names, want)
	}
	n, err := unix.Listxattr(f, nil)
	if ok(t, err, "listxattr size query") {
		if n < len("user.a\x00user.bb\x00user.ccc\x00") {
			t.Errorf("listxattr size query = %d, less than the %d bytes of our names", n, len("user.a\x00user.bb\x00user.ccc\x00"))
		} else {
			_, err := unix.Listxattr(f, make([]byte, n-1))
			wantErrno(t, err, unix.ERANGE, "listxattr into a buffer one byte short")
		}
	}
	must(t, unix.Removexattr(f, "user.bb"), "removexattr")
	if names, good := list(); good && !slices.Equal(names, []string{"user.a", "user.ccc"}) {
		t.Errorf("listxattr after removexattr = %q, want [user.a user.ccc]", names)
	}
	fd := openT(t, f, unix.O_RDONLY, 0)
	buf := make([]byte, 1024)
	if m, err := unix.Flistxattr(fd, buf); ok(t, err, "flistxattr") && !bytes.Contains(buf[:m], []byte("user.ccc\x00")) {
		t.Errorf("flistxattr = %q, missing user.ccc", buf[:m])
	}
	// A symlink's own list (llistxattr) does not show its target's names.
	l := filepath.Join(env.Dir, "link")
	must(t, unix.Symlink("file", l), "symlink")
	if m, err := unix.Llistxattr(l, buf); ok(t, err, "llistxattr") && bytes.Contains(buf[:m], []byte("user.a\x00")) {
		t.Errorf("llistxattr of a symlink shows its target's attributes: %q", buf[:m])
	}
	if m, err := unix.Listxattr(l, buf); ok(t, err, "listxattr through a symlink") && !bytes.Contains(buf[:m], []byte("user.a\x00")) {
		t.Errorf("listxattr through a symlink = %q, missing user.a", buf[:m])
	}
}
