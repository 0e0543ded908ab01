package posixtest

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// testCreateReadWrite creates a file, writes it with write and pwrite, reads it
// back with read and pread through several descriptors, and checks that
// descriptors opened for one direction refuse the other.
func testCreateReadWrite(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	fd, closeFD := openC(t, p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	msg := []byte("hello world")
	n, err := unix.Write(fd, msg)
	if ok(t, err, "write %s", p) && n != len(msg) {
		t.Errorf("write %s: wrote %d bytes, want %d", p, n, len(msg))
	}
	got, err := preadAll(fd, 100, 0)
	if ok(t, err, "pread %s", p) {
		sameBytes(t, got, msg, "pread after write")
	}
	if off, err := unix.Seek(fd, 0, unix.SEEK_SET); ok(t, err, "lseek %s", p) && off != 0 {
		t.Errorf("lseek(0, SEEK_SET) = %d, want 0", off)
	}
	buf := make([]byte, 100)
	n, err = unix.Read(fd, buf)
	if ok(t, err, "read %s", p) {
		sameBytes(t, buf[:n], msg, "read after lseek")
	}
	ok(t, pwriteAll(fd, []byte("WORLD"), 6), "pwrite %s at 6", p)
	must(t, closeFD(), "close %s", p)

	sameBytes(t, readFileT(t, p), []byte("hello WORLD"), "contents after reopen")

	wr := openT(t, p, unix.O_WRONLY, 0)
	_, err = unix.Read(wr, buf)
	wantErrno(t, err, unix.EBADF, "read from O_WRONLY descriptor")
	rd := openT(t, p, unix.O_RDONLY, 0)
	_, err = unix.Write(rd, []byte("x"))
	wantErrno(t, err, unix.EBADF, "write to O_RDONLY descriptor")
	n, err = unix.Pread(rd, buf, 100)
	if ok(t, err, "pread beyond end of file") && n != 0 {
		t.Errorf("pread beyond end of file returned %d bytes, want 0", n)
	}
	var st unix.Stat_t
	wantErrno(t, unix.Stat(filepath.Join(env.Dir, "missing"), &st), unix.ENOENT, "stat of a missing name")
	_, err = unix.Open(filepath.Join(p, "sub"), unix.O_RDONLY, 0)
	wantErrno(t, err, unix.ENOTDIR, "open a path through a regular file")
}

// testStatAfterWrite checks st_size, type, mode and link count of a file while
// it is still open after a write, through fstat and stat.
func testStatAfterWrite(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	fd := openT(t, p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o640)
	data := pattern(1, 12345)
	must(t, pwriteAll(fd, data, 0), "pwrite %s", p)
	var st unix.Stat_t
	if ok(t, unix.Fstat(fd, &st), "fstat %s", p) && st.Size != int64(len(data)) {
		t.Errorf("fstat after write: st_size %d, want %d", st.Size, len(data))
	}
	st, good := statT(t, p)
	if !good {
		return
	}
	if st.Size != int64(len(data)) {
		t.Errorf("stat after write: st_size %d, want %d", st.Size, len(data))
	}
	wantType(t, st, unix.S_IFREG, p)
	if st.Mode&0o7777 != 0o640 {
		t.Errorf("stat: mode %#o, want 0640", st.Mode&0o7777)
	}
	if st.Nlink != 1 {
		t.Errorf("stat: nlink %d, want 1", st.Nlink)
	}
	if st.Blksize <= 0 {
		t.Errorf("stat: st_blksize %d, want > 0", st.Blksize)
	}
	var dst unix.Stat_t
	if ok(t, unix.Stat(env.Dir, &dst), "stat %s", env.Dir) && dst.Dev != st.Dev {
		t.Errorf("st_dev of file %#x differs from its directory's %#x", st.Dev, dst.Dev)
	}
}

// testOddOffsets applies unaligned pwrites that cross page boundaries to a file
// and to an in-memory model, then compares whole-file and partial reads.
func testOddOffsets(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	fd := openT(t, p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	var model []byte
	writes := []struct {
		off int64
		n   int
	}{{4093, 7}, {1, 3}, {8191, 5000}, {0, 1}, {12000, 1}, {4095, 2}, {20481, 4097}}
	for i, w := range writes {
		data := pattern(uint64(100+i), w.n)
		if !ok(t, pwriteAll(fd, data, w.off), "pwrite %d bytes at %d", w.n, w.off) {
			continue
		}
		if end := int(w.off) + w.n; end > len(model) {
			model = append(model, make([]byte, end-len(model))...)
		}
		copy(model[w.off:], data)
	}
	got, err := preadAll(fd, len(model)+10, 0)
	if ok(t, err, "pread whole file") {
		sameBytes(t, got, model, "whole file after unaligned writes")
	}
	for _, r := range []struct {
		off int64
		n   int
	}{{4090, 13}, {3, 1}, {8190, 3}, {13190, 4}, {20480, 4099}, {24570, 100}} {
		want := model[min(int(r.off), len(model)):min(int(r.off)+r.n, len(model))]
		got, err := preadAll(fd, r.n, r.off)
		if ok(t, err, "pread %d bytes at %d", r.n, r.off) {
			sameBytes(t, got, want, "pread %d bytes at %d", r.n, r.off)
		}
	}
}

// testLargeIO writes and reads 1 MiB in single calls, aligned and unaligned.
func testLargeIO(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	fd := openT(t, p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	const size = 1 << 20
	for _, off := range []int64{0, 3, 5<<20 + 511} {
		data := pattern(uint64(off), size)
		n, err := unix.Pwrite(fd, data, off)
		if !ok(t, err, "pwrite 1 MiB at %d", off) {
			continue
		}
		if n != size {
			t.Errorf("pwrite 1 MiB at %d: wrote %d bytes", off, n)
		}
		buf := make([]byte, size)
		n, err = unix.Pread(fd, buf, off)
		if !ok(t, err, "pread 1 MiB at %d", off) {
			continue
		}
		if n != size {
			t.Errorf("pread 1 MiB at %d: read %d bytes in one call, want %d", off, n, size)
		}
		sameBytes(t, buf[:n], data[:n], "1 MiB read back at %d", off)
	}
	var st unix.Stat_t
	if ok(t, unix.Fstat(fd, &st), "fstat") && st.Size != 5<<20+511+size {
		t.Errorf("st_size %d, want %d", st.Size, 5<<20+511+size)
	}
}

// testSeekEnd checks lseek with SEEK_END and SEEK_CUR, and writes past the end.
func testSeekEnd(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	data := pattern(2, 1000)
	writeFileT(t, p, data, 0o644)
	fd := openT(t, p, unix.O_RDWR, 0)
	off, err := unix.Seek(fd, -10, unix.SEEK_END)
	if ok(t, err, "lseek(-10, SEEK_END)") && off != 990 {
		t.Errorf("lseek(-10, SEEK_END) = %d, want 990", off)
	}
	buf := make([]byte, 100)
	n, err := unix.Read(fd, buf)
	if ok(t, err, "read at 990") {
		sameBytes(t, buf[:n], data[990:], "read after lseek(-10, SEEK_END)")
	}
	if off, err := unix.Seek(fd, 0, unix.SEEK_CUR); ok(t, err, "lseek(0, SEEK_CUR)") && off != 1000 {
		t.Errorf("lseek(0, SEEK_CUR) after reading to the end = %d, want 1000", off)
	}
	if off, err := unix.Seek(fd, 100, unix.SEEK_END); ok(t, err, "lseek(100, SEEK_END)") && off != 1100 {
		t.Errorf("lseek(100, SEEK_END) = %d, want 1100", off)
	}
	if _, err := unix.Write(fd, []byte("x")); ok(t, err, "write at 1100") {
		want := append(append(slices.Clone(data), make([]byte, 100)...), 'x')
		got, err := preadAll(fd, 2000, 0)
		if ok(t, err, "pread") {
			sameBytes(t, got, want, "file after write past the end")
		}
	}
	if off, err := unix.Seek(fd, -5, unix.SEEK_CUR); ok(t, err, "lseek(-5, SEEK_CUR)") && off != 1096 {
		t.Errorf("lseek(-5, SEEK_CUR) at 1101 = %d, want 1096", off)
	}
	_, err = unix.Seek(fd, -2000, unix.SEEK_END)
	wantErrno(t, err, unix.EINVAL, "lseek(-2000, SEEK_END) before the start")
}

// testAppend checks that O_APPEND writes land at the end of the file even after
// lseek, and that two appending descriptors never overwrite each other.
func testAppend(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	writeFileT(t, p, []byte("start|"), 0o644)
	fd := openT(t, p, unix.O_RDWR|unix.O_APPEND, 0)
	_, err := unix.Write(fd, []byte("abc"))
	ok(t, err, "append write 1")
	_, err = unix.Seek(fd, 0, unix.SEEK_SET)
	ok(t, err, "lseek(0)")
	_, err = unix.Write(fd, []byte("def"))
	ok(t, err, "append write after lseek(0)")
	if off, err := unix.Seek(fd, 0, unix.SEEK_CUR); ok(t, err, "lseek(0, SEEK_CUR)") && off != 12 {
		t.Errorf("file offset after appends = %d, want 12", off)
	}
	sameBytes(t, readFileT(t, p), []byte("start|abcdef"), "contents after appends")

	// A second appending descriptor, interleaved with the first.
	fd2 := openT(t, p, unix.O_WRONLY|unix.O_APPEND, 0)
	want := []byte("start|abcdef")
	for i := range 20 {
		w := fd
		if i%2 == 1 {
			w = fd2
		}
		chunk := bytes.Repeat([]byte{byte('A' + i)}, 1+i*37)
		if _, err := unix.Write(w, chunk); ok(t, err, "interleaved append %d", i) {
			want = append(want, chunk...)
		}
	}
	sameBytes(t, readFileT(t, p), want, "contents after interleaved appends from two descriptors")
}

// testTruncate shrinks and grows a file with ftruncate and truncate and checks
// that regrown ranges read as zeros, not as the old data.
func testTruncate(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	data := pattern(3, 10000)
	writeFileT(t, p, data, 0o644)
	fd := openT(t, p, unix.O_RDWR, 0)
	model := slices.Clone(data)
	step := func(how string, size int64, do func() error) {
		t.Helper()
		if !ok(t, do(), "%s to %d", how, size) {
			return
		}
		if int(size) < len(model) {
			model = model[:size]
		} else {
			model = append(model, make([]byte, int(size)-len(model))...)
		}
		var st unix.Stat_t
		if ok(t, unix.Fstat(fd, &st), "fstat after %s to %d", how, size) && st.Size != size {
			t.Errorf("%s to %d: fstat st_size %d", how, size, st.Size)
		}
		if st, good := statT(t, p); good && st.Size != size {
			t.Errorf("%s to %d: stat st_size %d", how, size, st.Size)
		}
		got, err := preadAll(fd, len(model)+100, 0)
		if ok(t, err, "pread after %s to %d", how, size) {
			sameBytes(t, got, model, "contents after %s to %d", how, size)
		}
	}
	step("ftruncate", 5000, func() error { return unix.Ftruncate(fd, 5000) })
	step("ftruncate", 9000, func() error { return unix.Ftruncate(fd, 9000) })
	step("truncate", 3, func() error { return unix.Truncate(p, 3) })
	step("truncate", 8192, func() error { return unix.Truncate(p, 8192) })
	step("ftruncate", 0, func() error { return unix.Ftruncate(fd, 0) })
	step("ftruncate", 1<<20+1, func() error { return unix.Ftruncate(fd, 1<<20+1) })
	wantErrno(t, unix.Ftruncate(fd, -1), unix.EINVAL, "ftruncate to -1")
	wantErrno(t, unix.Truncate(env.Dir, 0), unix.EISDIR, "truncate a directory")
	rd := openT(t, p, unix.O_RDONLY, 0)
	err := unix.Ftruncate(rd, 0)
	if err == nil || (!errorsIs(err, unix.EINVAL) && !errorsIs(err, unix.EBADF)) {
		t.Errorf("ftruncate of O_RDONLY descriptor: got %s, want EINVAL or EBADF", describe(err))
	}
}

// testOpenExcl checks O_CREAT|O_EXCL on existing files, directories and dangling
// symlinks, and on a new name.
func testOpenExcl(t *testing.T, env Env) {
	f := filepath.Join(env.Dir, "file")
	writeFileT(t, f, []byte("keep"), 0o644)
	_, err := unix.Open(f, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	wantErrno(t, err, unix.EEXIST, "O_CREAT|O_EXCL on an existing file")
	sameBytes(t, readFileT(t, f), []byte("keep"), "existing file after failed O_EXCL")

	d := filepath.Join(env.Dir, "dir")
	must(t, unix.Mkdir(d, 0o755), "mkdir %s", d)
	_, err = unix.Open(d, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	wantErrno(t, err, unix.EEXIST, "O_CREAT|O_EXCL on an existing directory")

	l := filepath.Join(env.Dir, "dangling")
	must(t, unix.Symlink("target", l), "symlink %s", l)
	_, err = unix.Open(l, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	wantErrno(t, err, unix.EEXIST, "O_CREAT|O_EXCL on a dangling symlink")
	wantGone(t, filepath.Join(env.Dir, "target"))

	n := filepath.Join(env.Dir, "new")
	fd := openT(t, n, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o600)
	var st unix.Stat_t
	if ok(t, unix.Fstat(fd, &st), "fstat %s", n) && (st.Size != 0 || st.Mode&unix.S_IFMT != unix.S_IFREG) {
		t.Errorf("new file: size %d, %s; want empty regular file", st.Size, fileType(st.Mode))
	}
}

// testOpenTrunc checks that O_TRUNC empties an existing file and that O_CREAT
// on an existing file without O_TRUNC keeps its data and mode.
func testOpenTrunc(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	writeFileT(t, p, pattern(4, 5000), 0o640)
	fd, closeFD := openC(t, p, unix.O_WRONLY|unix.O_TRUNC, 0)
	var st unix.Stat_t
	if ok(t, unix.Fstat(fd, &st), "fstat after O_TRUNC") && st.Size != 0 {
		t.Errorf("fstat after O_TRUNC: st_size %d, want 0", st.Size)
	}
	if st, good := statT(t, p); good && st.Size != 0 {
		t.Errorf("stat after O_TRUNC: st_size %d, want 0", st.Size)
	}
	_, err := unix.Write(fd, []byte("new"))
	ok(t, err, "write after O_TRUNC")
	ok(t, closeFD(), "close")
	sameBytes(t, readFileT(t, p), []byte("new"), "contents after O_TRUNC and write")

	fd = openT(t, p, unix.O_RDWR|unix.O_CREAT, 0o777)
	if ok(t, unix.Fstat(fd, &st), "fstat") {
		if st.Size != 3 {
			t.Errorf("O_CREAT without O_TRUNC on existing file: st_size %d, want 3", st.Size)
		}
		if st.Mode&0o7777 != 0o640 {
			t.Errorf("O_CREAT on existing file changed its mode to %#o, want 0640", st.Mode&0o7777)
		}
	}
	fd = openT(t, p, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC, 0o644)
	if ok(t, unix.Fstat(fd, &st), "fstat") && st.Size != 0 {
		t.Errorf("O_CREAT|O_TRUNC on existing file: st_size %d, want 0", st.Size)
	}
}

// testCreateMode checks that the mode given to open(O_CREAT), mkdir and mkfifo
// is honoured, masked by the umask, which the case sets and restores.
func testCreateMode(t *testing.T, env Env) {
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	for i, c := range []struct {
		umask, mode, want uint32
		kind              string
	}{
		{0o022, 0o666, 0o644, "file"},
		{0o077, 0o777, 0o700, "file"},
		{0o000, 0o640, 0o640, "file"},
		{0o000, 0o1755, 0o1755, "dir"},
		{0o027, 0o777, 0o750, "dir"},
		{0o022, 0o666, 0o644, "fifo"},
		{0o000, 0o604, 0o604, "fifo"},
	} {
		unix.Umask(int(c.umask))
		p := filepath.Join(env.Dir, c.kind+string(rune('a'+i)))
		var err error
		switch c.kind {
		case "file":
			var fd int
			fd, err = unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, c.mode)
			if err == nil {
				var st unix.Stat_t
				if ok(t, unix.Fstat(fd, &st), "fstat %s", p) && st.Mode&0o7777 != c.want {
					t.Errorf("open(O_CREAT, %#o) with umask %#o: fstat mode %#o, want %#o", c.mode, c.umask, st.Mode&0o7777, c.want)
				}
				unix.Close(fd)
			}
		case "dir":
			err = unix.Mkdir(p, c.mode)
		case "fifo":
			err = unix.Mkfifo(p, c.mode)
		}
		if !ok(t, err, "create %s %s mode %#o umask %#o", c.kind, p, c.mode, c.umask) {
			continue
		}
		if st, good := lstatT(t, p); good && st.Mode&0o7777 != c.want {
			t.Errorf("create %s mode %#o with umask %#o: mode %#o, want %#o", c.kind, c.mode, c.umask, st.Mode&0o7777, c.want)
		}
	}
}

// testUnlinkOpenFile checks that a file unlinked while open stays readable and
// writable through its descriptor, has nlink 0, and that its name is gone
// and can be reused for an unrelated file.
func testUnlinkOpenFile(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	data := pattern(5, 10000)
	writeFileT(t, p, data, 0o644)
	fd := openT(t, p, unix.O_RDWR, 0)
	must(t, unix.Unlink(p), "unlink %s", p)
	wantGone(t, p)
	if names := listDir(t, env.Dir); len(names) != 0 {
		t.Errorf("directory still lists %q after unlink", names)
	}
	var st unix.Stat_t
	if ok(t, unix.Fstat(fd, &st), "fstat unlinked file") {
		if st.Nlink != 0 {
			t.Errorf("fstat unlinked file: nlink %d, want 0", st.Nlink)
		}
		if st.Size != int64(len(data)) {
			t.Errorf("fstat unlinked file: st_size %d, want %d", st.Size, len(data))
		}
	}
	got, err := preadAll(fd, 20000, 0)
	if ok(t, err, "pread unlinked file") {
		sameBytes(t, got, data, "unlinked file contents")
	}
	extra := pattern(6, 3000)
	if ok(t, pwriteAll(fd, extra, 9000), "pwrite unlinked file") {
		want := append(slices.Clone(data[:9000]), extra...)
		got, err := preadAll(fd, 20000, 0)
		if ok(t, err, "pread unlinked file after pwrite") {
			sameBytes(t, got, want, "unlinked file after pwrite")
		}
	}
	if ok(t, unix.Ftruncate(fd, 3), "ftruncate unlinked file") {
		if ok(t, unix.Fstat(fd, &st), "fstat") && st.Size != 3 {
			t.Errorf("ftruncate unlinked file: st_size %d, want 3", st.Size)
		}
	}
	ok(t, unix.Fchmod(fd, 0o600), "fchmod unlinked file")
	if ok(t, unix.Fstat(fd, &st), "fstat") && st.Mode&0o7777 != 0o600 {
		t.Errorf("fchmod unlinked file: mode %#o, want 0600", st.Mode&0o7777)
	}

	// The name is free again: a new file there is distinct and empty.
	fd2 := openT(t, p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	var st2 unix.Stat_t
	if ok(t, unix.Fstat(fd2, &st2), "fstat new file") && st2.Size != 0 {
		t.Errorf("new file under the unlinked name: st_size %d, want 0", st2.Size)
	}
	ok(t, pwriteAll(fd2, []byte("new"), 0), "pwrite new file")
	got, err = preadAll(fd, 100, 0)
	if ok(t, err, "pread unlinked file after name reuse") {
		sameBytes(t, got, data[:3], "unlinked file after its name was reused")
	}
}

// testFsync checks that fsync and fdatasync succeed on files (written and
// read-only descriptors) and directories.
func testFsync(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	fd := openT(t, p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	ok(t, pwriteAll(fd, pattern(7, 100000), 0), "pwrite")
	ok(t, unix.Fsync(fd), "fsync file")
	ok(t, pwriteAll(fd, []byte("more"), 5), "pwrite")
	ok(t, unix.Fdatasync(fd), "fdatasync file")
	rd := openT(t, p, unix.O_RDONLY, 0)
	ok(t, unix.Fsync(rd), "fsync O_RDONLY file")
	ok(t, unix.Fdatasync(rd), "fdatasync O_RDONLY file")
	d := openT(t, env.Dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	ok(t, unix.Fsync(d), "fsync directory")
	ok(t, unix.Fdatasync(d), "fdatasync directory")
	unix.Sync()
	ok(t, unix.Syncfs(fd), "syncfs")
}
