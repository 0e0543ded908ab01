package posixtest

import (
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testChmod checks chmod, fchmod and fchmodat, including the set-id and sticky
// bits, on files and directories, and that chmod follows symlinks.
func testChmod(t *testing.T, env Env) {
	f := filepath.Join(env.Dir, "file")
	writeFileT(t, f, []byte("x"), 0o644)
	wantMode := func(p string, want uint32) {
		t.Helper()
		if st, good := lstatT(t, p); good && st.Mode&0o7777 != want {
			t.Errorf("%s: mode %#o, want %#o", filepath.Base(p), st.Mode&0o7777, want)
		}
	}
	for _, m := range []uint32{0o600, 0o4755, 0o2711, 0o000, 0o777} {
		if ok(t, unix.Chmod(f, m), "chmod %#o", m) {
			wantMode(f, m)
		}
	}
	fd := openT(t, f, unix.O_RDONLY, 0)
	if ok(t, unix.Fchmod(fd, 0o640), "fchmod 0640") {
		var st unix.Stat_t
		if ok(t, unix.Fstat(fd, &st), "fstat") && st.Mode&0o7777 != 0o640 {
			t.Errorf("fstat after fchmod: mode %#o, want 0640", st.Mode&0o7777)
		}
		wantMode(f, 0o640)
	}
	d := filepath.Join(env.Dir, "dir")
	must(t, unix.Mkdir(d, 0o755), "mkdir")
	if ok(t, unix.Fchmodat(unix.AT_FDCWD, d, 0o1777, 0), "fchmodat directory 01777") {
		wantMode(d, 0o1777)
		if st, good := lstatT(t, d); good {
			wantType(t, st, unix.S_IFDIR, d)
		}
	}
	l := filepath.Join(env.Dir, "link")
	must(t, unix.Symlink("file", l), "symlink")
	lb, _ := lstatT(t, l)
	if ok(t, unix.Chmod(l, 0o604), "chmod through a symlink") {
		wantMode(f, 0o604)
		if la, good := lstatT(t, l); good && la.Mode != lb.Mode {
			t.Errorf("chmod through a symlink changed the link's own mode from %#o to %#o", lb.Mode, la.Mode)
		}
	}
	wantErrno(t, unix.Chmod(filepath.Join(env.Dir, "missing"), 0o644), unix.ENOENT, "chmod of a missing name")
	// A mode change moves ctime forward or leaves it equal, never back.
	before, _ := lstatT(t, f)
	if ok(t, unix.Chmod(f, 0o644), "chmod") {
		if after, good := lstatT(t, f); good && tsLess(after.Ctim, before.Ctim) {
			t.Errorf("chmod moved ctime back from %v to %v", before.Ctim, after.Ctim)
		}
	}
}

// testChown checks that root can chown files, directories and symlinks (with
// lchown) to uid/gid 65534 and back, that -1 leaves an id alone, and that
// testChown of a regular file clears its set-user-ID bit.
func testChown(t *testing.T, env Env) {
	needRoot(t)
	f := filepath.Join(env.Dir, "file")
	writeFileT(t, f, []byte("x"), 0o644)
	d := filepath.Join(env.Dir, "dir")
	must(t, unix.Mkdir(d, 0o755), "mkdir")
	owner := func(p string, uid, gid uint32, follow bool) {
		t.Helper()
		var st unix.Stat_t
		var err error
		if follow {
			err = unix.Stat(p, &st)
		} else {
			err = unix.Lstat(p, &st)
		}
		if ok(t, err, "stat %s", p) && (st.Uid != uid || st.Gid != gid) {
			t.Errorf("%s: owner %d:%d, want %d:%d", filepath.Base(p), st.Uid, st.Gid, uid, gid)
		}
	}
	for _, p := range []string{f, d} {
		if ok(t, unix.Chown(p, 65534, 65534), "chown %s 65534:65534", p) {
			owner(p, 65534, 65534, false)
		}
		if ok(t, unix.Chown(p, -1, 0), "chown %s -1:0", p) {
			owner(p, 65534, 0, false)
		}
		if ok(t, unix.Chown(p, 0, -1), "chown %s 0:-1", p) {
			owner(p, 0, 0, false)
		}
	}
	fd := openT(t, f, unix.O_RDONLY, 0)
	if ok(t, unix.Fchown(fd, 65534, 65534), "fchown") {
		var st unix.Stat_t
		if ok(t, unix.Fstat(fd, &st), "fstat") && (st.Uid != 65534 || st.Gid != 65534) {
			t.Errorf("fstat after fchown: owner %d:%d, want 65534:65534", st.Uid, st.Gid)
		}
		ok(t, unix.Fchown(fd, 0, 0), "fchown back to root")
	}

	l := filepath.Join(env.Dir, "link")
	must(t, unix.Symlink("file", l), "symlink")
	if ok(t, unix.Lchown(l, 65534, 65534), "lchown symlink") {
		owner(l, 65534, 65534, false)
		owner(f, 0, 0, true)
	}
	if ok(t, unix.Chown(l, 65534, 0), "chown through a symlink") {
		owner(f, 65534, 0, false)
		owner(l, 65534, 65534, false)
	}

	s := filepath.Join(env.Dir, "setuid")
	writeFileT(t, s, []byte("x"), 0o644)
	must(t, unix.Chmod(s, 0o4755), "chmod 04755")
	if ok(t, unix.Chown(s, 65534, 65534), "chown a set-user-ID file") {
		if st, good := lstatT(t, s); good && st.Mode&unix.S_ISUID != 0 {
			t.Errorf("chown left the set-user-ID bit: mode %#o", st.Mode&0o7777)
		}
	}
}

// tsLess reports whether a is before b.
func tsLess(a, b unix.Timespec) bool {
	return a.Sec < b.Sec || (a.Sec == b.Sec && a.Nsec < b.Nsec)
}

// near reports whether ts is within ten minutes of the wall clock; it checks
// that UTIME_NOW set "now" rather than timing anything.
func near(ts unix.Timespec) bool {
	d := time.Since(time.Unix(ts.Sec, ts.Nsec))
	return d < 10*time.Minute && d > -10*time.Minute
}

// testUtimens sets explicit nanosecond times with utimensat and futimens, and
// checks UTIME_NOW and UTIME_OMIT.
func testUtimens(t *testing.T, env Env) {
	f := filepath.Join(env.Dir, "file")
	writeFileT(t, f, []byte("x"), 0o644)
	atime := unix.Timespec{Sec: 1_000_000_000, Nsec: 123_456_789}
	mtime := unix.Timespec{Sec: 1_500_000_000, Nsec: 987_654_321}
	times := func(p string) (unix.Timespec, unix.Timespec, bool) {
		st, good := lstatT(t, p)
		return st.Atim, st.Mtim, good
	}
	if ok(t, unix.UtimesNanoAt(unix.AT_FDCWD, f, []unix.Timespec{atime, mtime}, 0), "utimensat explicit") {
		if a, m, good := times(f); good && (a != atime || m != mtime) {
			t.Errorf("after utimensat: atime %v mtime %v, want %v and %v", a, m, atime, mtime)
		}
	}
	omit := unix.Timespec{Nsec: unix.UTIME_OMIT}
	now := unix.Timespec{Nsec: unix.UTIME_NOW}
	if ok(t, unix.UtimesNanoAt(unix.AT_FDCWD, f, []unix.Timespec{now, omit}, 0), "utimensat(UTIME_NOW, UTIME_OMIT)") {
		if a, m, good := times(f); good {
			if m != mtime {
				t.Errorf("UTIME_OMIT changed mtime to %v, want %v", m, mtime)
			}
			if !near(a) {
				t.Errorf("UTIME_NOW set atime to %v, far from the current time", a)
			}
		}
	}
	atime2 := unix.Timespec{Sec: 1_200_000_000, Nsec: 1}
	if ok(t, unix.UtimesNanoAt(unix.AT_FDCWD, f, []unix.Timespec{atime2, omit}, 0), "utimensat(explicit, UTIME_OMIT)") {
		if a, m, good := times(f); good && (a != atime2 || m != mtime) {
			t.Errorf("after utimensat(explicit, UTIME_OMIT): atime %v mtime %v, want %v and %v", a, m, atime2, mtime)
		}
	}
	if ok(t, unix.UtimesNanoAt(unix.AT_FDCWD, f, []unix.Timespec{omit, now}, 0), "utimensat(UTIME_OMIT, UTIME_NOW)") {
		if a, m, good := times(f); good {
			if a != atime2 {
				t.Errorf("UTIME_OMIT changed atime to %v, want %v", a, atime2)
			}
			if !near(m) {
				t.Errorf("UTIME_NOW set mtime to %v, far from the current time", m)
			}
		}
	}
	// Times before 1970 and with 999999999 ns survive.
	old := unix.Timespec{Sec: -1_000_000, Nsec: 999_999_999}
	if ok(t, unix.UtimesNanoAt(unix.AT_FDCWD, f, []unix.Timespec{old, old}, 0), "utimensat before 1970") {
		if a, m, good := times(f); good && (a != old || m != old) {
			t.Errorf("after utimensat before 1970: atime %v mtime %v, want %v", a, m, old)
		}
	}
	// futimens through a descriptor, and on a directory.
	fd := openT(t, f, unix.O_RDONLY, 0)
	if ok(t, unix.Futimes(fd, []unix.Timeval{{Sec: 1_300_000_000, Usec: 5}, {Sec: 1_300_000_001, Usec: 6}}), "futimes") {
		var st unix.Stat_t
		if ok(t, unix.Fstat(fd, &st), "fstat") && (st.Atim != unix.Timespec{Sec: 1_300_000_000, Nsec: 5000} || st.Mtim != unix.Timespec{Sec: 1_300_000_001, Nsec: 6000}) {
			t.Errorf("after futimes: atime %v mtime %v", st.Atim, st.Mtim)
		}
	}
	d := filepath.Join(env.Dir, "dir")
	must(t, unix.Mkdir(d, 0o755), "mkdir")
	if ok(t, unix.UtimesNanoAt(unix.AT_FDCWD, d, []unix.Timespec{atime, mtime}, 0), "utimensat directory") {
		if a, m, good := times(d); good && (a != atime || m != mtime) {
			t.Errorf("directory after utimensat: atime %v mtime %v, want %v and %v", a, m, atime, mtime)
		}
	}
	// A write sets mtime to about now.
	wfd := openT(t, f, unix.O_WRONLY, 0)
	if _, err := unix.Write(wfd, []byte("y")); ok(t, err, "write") {
		var st unix.Stat_t
		if ok(t, unix.Fstat(wfd, &st), "fstat") && !near(st.Mtim) {
			t.Errorf("write left mtime at %v, far from the current time", st.Mtim)
		}
	}
}

// testUtimensSymlink sets times on a symlink itself with AT_SYMLINK_NOFOLLOW
// and checks that the target keeps its times, and that without the flag the
// target's times change.
func testUtimensSymlink(t *testing.T, env Env) {
	f := filepath.Join(env.Dir, "file")
	writeFileT(t, f, []byte("x"), 0o644)
	ft := unix.Timespec{Sec: 1_100_000_000, Nsec: 111}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, f, []unix.Timespec{ft, ft}, 0), "utimensat file")
	l := filepath.Join(env.Dir, "link")
	must(t, unix.Symlink("file", l), "symlink")
	lt := unix.Timespec{Sec: 1_400_000_000, Nsec: 222_333_444}
	if ok(t, unix.UtimesNanoAt(unix.AT_FDCWD, l, []unix.Timespec{lt, lt}, unix.AT_SYMLINK_NOFOLLOW), "utimensat symlink with AT_SYMLINK_NOFOLLOW") {
		if st, good := lstatT(t, l); good && (st.Atim != lt || st.Mtim != lt) {
			t.Errorf("symlink after utimensat(AT_SYMLINK_NOFOLLOW): atime %v mtime %v, want %v", st.Atim, st.Mtim, lt)
		}
		if st, good := lstatT(t, f); good && (st.Atim != ft || st.Mtim != ft) {
			t.Errorf("target after utimensat(AT_SYMLINK_NOFOLLOW) on its link: atime %v mtime %v, want unchanged %v", st.Atim, st.Mtim, ft)
		}
	}
	nt := unix.Timespec{Sec: 1_450_000_000, Nsec: 5}
	if ok(t, unix.UtimesNanoAt(unix.AT_FDCWD, l, []unix.Timespec{nt, nt}, 0), "utimensat through a symlink") {
		if st, good := lstatT(t, f); good && (st.Atim != nt || st.Mtim != nt) {
			t.Errorf("target after utimensat through its link: atime %v mtime %v, want %v", st.Atim, st.Mtim, nt)
		}
		if st, good := lstatT(t, l); good && st.Mtim != lt {
			t.Errorf("symlink mtime changed to %v by utimensat that followed it, want %v", st.Mtim, lt)
		}
	}
	// A dangling symlink can have its own times set.
	dl := filepath.Join(env.Dir, "dangling")
	must(t, unix.Symlink("missing", dl), "symlink")
	if ok(t, unix.UtimesNanoAt(unix.AT_FDCWD, dl, []unix.Timespec{lt, lt}, unix.AT_SYMLINK_NOFOLLOW), "utimensat dangling symlink with AT_SYMLINK_NOFOLLOW") {
		if st, good := lstatT(t, dl); good && st.Mtim != lt {
			t.Errorf("dangling symlink mtime %v, want %v", st.Mtim, lt)
		}
	}
	wantErrno(t, unix.UtimesNanoAt(unix.AT_FDCWD, dl, []unix.Timespec{lt, lt}, 0), unix.ENOENT, "utimensat following a dangling symlink")
}

// testStatfs checks statfs and fstatfs for sane values.
func testStatfs(t *testing.T, env Env) {
	var s unix.Statfs_t
	if !ok(t, unix.Statfs(env.Dir, &s), "statfs") {
		return
	}
	if s.Bsize <= 0 || s.Bsize&(s.Bsize-1) != 0 {
		t.Errorf("statfs: f_bsize %d, want a positive power of two", s.Bsize)
	}
	if s.Frsize < 0 {
		t.Errorf("statfs: f_frsize %d", s.Frsize)
	}
	if s.Blocks == 0 || s.Bfree > s.Blocks || s.Bavail > s.Bfree {
		t.Errorf("statfs: blocks %d, free %d, available %d; want total > 0 and total >= free >= available", s.Blocks, s.Bfree, s.Bavail)
	}
	if s.Files != 0 && s.Ffree > s.Files {
		t.Errorf("statfs: files %d, free %d; want total >= free", s.Files, s.Ffree)
	}
	if s.Namelen <= 0 {
		t.Errorf("statfs: f_namelen %d, want > 0", s.Namelen)
	}
	fd := openT(t, env.Dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	var fs unix.Statfs_t
	if ok(t, unix.Fstatfs(fd, &fs), "fstatfs") && (fs.Type != s.Type || fs.Bsize != s.Bsize || fs.Namelen != s.Namelen) {
		t.Errorf("fstatfs (type %#x, bsize %d, namelen %d) differs from statfs (type %#x, bsize %d, namelen %d)",
			fs.Type, fs.Bsize, fs.Namelen, s.Type, s.Bsize, s.Namelen)
	}
	long := make([]byte, s.Namelen+1)
	for i := range long {
		long[i] = 'n'
	}
	if s.Namelen > 0 && s.Namelen < 4096 {
		_, err := unix.Open(filepath.Join(env.Dir, string(long)), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
		wantErrno(t, err, unix.ENAMETOOLONG, "create a name one byte over f_namelen")
	}
}
