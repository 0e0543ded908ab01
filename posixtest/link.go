package posixtest

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// testHardLink checks link counts, shared inode and contents, that one name
// survives the other's unlink, and the errors of link.
func testHardLink(t *testing.T, env Env) {
	a, b := filepath.Join(env.Dir, "a"), filepath.Join(env.Dir, "b")
	writeFileT(t, a, []byte("shared"), 0o644)
	fd := openT(t, a, unix.O_RDWR, 0)
	must(t, unix.Link(a, b), "link a b")
	nlink := func(want uint64, when string) {
		t.Helper()
		var st unix.Stat_t
		if ok(t, unix.Fstat(fd, &st), "fstat %s", when) && st.Nlink != want {
			t.Errorf("fstat %s: nlink %d, want %d", when, st.Nlink, want)
		}
		for _, p := range []string{a, b} {
			var st unix.Stat_t
			if unix.Lstat(p, &st) == nil && st.Nlink != want {
				t.Errorf("lstat %s %s: nlink %d, want %d", p, when, st.Nlink, want)
			}
		}
	}
	nlink(2, "after link")
	var fst unix.Stat_t
	if ok(t, unix.Fstat(fd, &fst), "fstat") {
		if st, good := lstatT(t, b); good && st.Ino != fst.Ino {
			t.Errorf("new link has inode %d, want %d", st.Ino, fst.Ino)
		}
	}
	c := filepath.Join(env.Dir, "c")
	if ok(t, unix.Linkat(unix.AT_FDCWD, b, unix.AT_FDCWD, c, 0), "linkat b c") {
		nlink(3, "after second link")
		ok(t, unix.Unlink(c), "unlink c")
		nlink(2, "after unlinking the second link")
	}

	// Writes through one name are seen through the other.
	if ok(t, pwriteAll(fd, []byte("SH"), 0), "pwrite via a") {
		sameBytes(t, readFileT(t, b), []byte("SHared"), "b after writing via a")
	}
	fb := openT(t, b, unix.O_WRONLY|unix.O_APPEND, 0)
	if _, err := unix.Write(fb, []byte("+b")); ok(t, err, "append via b") {
		sameBytes(t, readFileT(t, a), []byte("SHared+b"), "a after appending via b")
	}

	must(t, unix.Unlink(a), "unlink a")
	wantGone(t, a)
	nlink(1, "after unlinking a")
	sameBytes(t, readFileT(t, b), []byte("SHared+b"), "b after unlinking a")

	d := filepath.Join(env.Dir, "d")
	must(t, unix.Mkdir(d, 0o755), "mkdir")
	wantErrno(t, unix.Link(d, filepath.Join(env.Dir, "dlink")), unix.EPERM, "link to a directory")
	wantErrno(t, unix.Link(b, d), unix.EEXIST, "link onto an existing directory name")
	writeFileT(t, a, nil, 0o644)
	wantErrno(t, unix.Link(b, a), unix.EEXIST, "link onto an existing file name")
	wantErrno(t, unix.Link(filepath.Join(env.Dir, "missing"), filepath.Join(env.Dir, "x")), unix.ENOENT, "link of a missing file")

	// A link to a symlink links the symlink itself.
	l := filepath.Join(env.Dir, "sym")
	must(t, unix.Symlink("b", l), "symlink")
	if ok(t, unix.Link(l, filepath.Join(env.Dir, "sym2")), "link to a symlink") {
		if st, good := lstatT(t, filepath.Join(env.Dir, "sym2")); good {
			wantType(t, st, unix.S_IFLNK, "sym2")
			if st.Nlink != 2 {
				t.Errorf("hard-linked symlink: nlink %d, want 2", st.Nlink)
			}
		}
	}
}

// testSymlink checks symlink and readlink with short, dangling, relative and
// 1000-byte targets, lstat of links, O_NOFOLLOW, and following.
func testSymlink(t *testing.T, env Env) {
	long := strings.Repeat("long-component/", 66) + "end" // 993 bytes
	targets := map[string]string{
		"plain":    "file",
		"dangling": "does/not/exist",
		"abs":      filepath.Join(env.Dir, "file"),
		"dotdot":   "../" + filepath.Base(env.Dir) + "/file",
		"long":     long,
		"spaces":   " odd name\twith\x01bytes ",
	}
	writeFileT(t, filepath.Join(env.Dir, "file"), []byte("target contents"), 0o644)
	for name, target := range targets {
		p := filepath.Join(env.Dir, name)
		if !ok(t, unix.Symlink(target, p), "symlink %q (%d bytes)", name, len(target)) {
			continue
		}
		buf := make([]byte, 4096)
		n, err := unix.Readlink(p, buf)
		if ok(t, err, "readlink %s", name) && string(buf[:n]) != target {
			t.Errorf("readlink %s = %q (%d bytes), want %q (%d bytes)", name, buf[:n], n, target, len(target))
		}
		// readlink truncates silently to the buffer.
		small := make([]byte, 3)
		if n, err := unix.Readlink(p, small); ok(t, err, "readlink %s into 3 bytes", name) && (n != 3 || string(small) != target[:3]) {
			t.Errorf("readlink %s into 3 bytes = %q, want %q", name, small[:n], target[:3])
		}
		if st, good := lstatT(t, p); good {
			wantType(t, st, unix.S_IFLNK, p)
			if st.Size != int64(len(target)) {
				t.Errorf("lstat %s: st_size %d, want the target length %d", name, st.Size, len(target))
			}
		}
		_, err = unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		wantErrno(t, err, unix.ELOOP, "open %s with O_NOFOLLOW", name)
	}
	for _, name := range []string{"plain", "abs", "dotdot"} {
		p := filepath.Join(env.Dir, name)
		if st, good := statT(t, p); good {
			wantType(t, st, unix.S_IFREG, p)
		}
		sameBytes(t, readFileT(t, p), []byte("target contents"), "reading through symlink %s", name)
	}
	var st unix.Stat_t
	wantErrno(t, unix.Stat(filepath.Join(env.Dir, "dangling"), &st), unix.ENOENT, "stat through a dangling symlink")
	wantErrno(t, unix.Symlink("x", filepath.Join(env.Dir, "plain")), unix.EEXIST, "symlink onto an existing name")
	_, err := unix.Readlink(filepath.Join(env.Dir, "file"), make([]byte, 100))
	wantErrno(t, err, unix.EINVAL, "readlink of a regular file")

	// A relative target resolves against the link's directory.
	sub := filepath.Join(env.Dir, "sub")
	must(t, unix.Mkdir(sub, 0o755), "mkdir")
	must(t, unix.Symlink("../file", filepath.Join(sub, "up")), "symlink sub/up")
	sameBytes(t, readFileT(t, filepath.Join(sub, "up")), []byte("target contents"), "relative symlink in a subdirectory")

	// A loop gives ELOOP.
	must(t, unix.Symlink("loop2", filepath.Join(env.Dir, "loop1")), "symlink")
	must(t, unix.Symlink("loop1", filepath.Join(env.Dir, "loop2")), "symlink")
	_, err = unix.Open(filepath.Join(env.Dir, "loop1"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	wantErrno(t, err, unix.ELOOP, "open of a symlink loop")

	// Unlinking the link leaves its target.
	if ok(t, unix.Unlink(filepath.Join(env.Dir, "plain")), "unlink symlink") {
		wantGone(t, filepath.Join(env.Dir, "plain"))
		sameBytes(t, readFileT(t, filepath.Join(env.Dir, "file")), []byte("target contents"), "target after unlinking its symlink")
	}
}

// testMkfifo creates FIFOs with mkfifo and mknod and checks their type, and that
// data passes through one.
func testMkfifo(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "fifo")
	must(t, unix.Mkfifo(p, 0o644), "mkfifo")
	if st, good := lstatT(t, p); good {
		wantType(t, st, unix.S_IFIFO, p)
		if st.Mode&0o777 != 0o644&^currentUmask() {
			t.Errorf("fifo mode %#o, want %#o", st.Mode&0o777, 0o644&^currentUmask())
		}
	}
	q := filepath.Join(env.Dir, "node")
	if ok(t, unix.Mknod(q, unix.S_IFIFO|0o600, 0), "mknod S_IFIFO") {
		if st, good := lstatT(t, q); good {
			wantType(t, st, unix.S_IFIFO, q)
		}
	}
	r := filepath.Join(env.Dir, "reg")
	if ok(t, unix.Mknod(r, unix.S_IFREG|0o600, 0), "mknod S_IFREG") {
		if st, good := lstatT(t, r); good {
			wantType(t, st, unix.S_IFREG, r)
		}
	}
	wantErrno(t, unix.Mkfifo(p, 0o644), unix.EEXIST, "mkfifo on an existing name")

	// Data through the FIFO: open both ends without blocking.
	rd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	must(t, err, "open fifo for reading")
	defer unix.Close(rd)
	wr, err := unix.Open(p, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	must(t, err, "open fifo for writing")
	defer unix.Close(wr)
	if _, err := unix.Write(wr, []byte("through the pipe")); ok(t, err, "write fifo") {
		buf := make([]byte, 100)
		n, err := unix.Read(rd, buf)
		if ok(t, err, "read fifo") {
			sameBytes(t, buf[:n], []byte("through the pipe"), "data read from the fifo")
		}
	}
}

// currentUmask returns the process umask without changing it for long.
func currentUmask() uint32 {
	m := unix.Umask(0o022)
	unix.Umask(m)
	return uint32(m)
}
