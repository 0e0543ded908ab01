package posixtest

import (
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testFlock checks flock between two open file descriptions of one file:
// exclusive and shared locks conflict as they should with LOCK_NB, a dup
// shares its description's lock, and unlock and close release it.
func testFlock(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	writeFileT(t, p, []byte("x"), 0o644)
	a := openT(t, p, unix.O_RDWR, 0)
	b, closeB := openC(t, p, unix.O_RDONLY, 0)
	must(t, unix.Flock(a, unix.LOCK_EX|unix.LOCK_NB), "flock(a, LOCK_EX|LOCK_NB)")
	wantErrno(t, unix.Flock(b, unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK, "flock(b, LOCK_EX|LOCK_NB) while a holds LOCK_EX")
	wantErrno(t, unix.Flock(b, unix.LOCK_SH|unix.LOCK_NB), unix.EWOULDBLOCK, "flock(b, LOCK_SH|LOCK_NB) while a holds LOCK_EX")
	a2, err := unix.Dup(a)
	must(t, err, "dup")
	ok(t, unix.Flock(a2, unix.LOCK_EX|unix.LOCK_NB), "flock(LOCK_EX) through a dup of the holder")
	unix.Close(a2)
	// Closing a dup does not release the description's lock.
	wantErrno(t, unix.Flock(b, unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK, "flock(b) after closing a dup of the holder")

	ok(t, unix.Flock(a, unix.LOCK_UN), "flock(a, LOCK_UN)")
	ok(t, unix.Flock(b, unix.LOCK_SH|unix.LOCK_NB), "flock(b, LOCK_SH|LOCK_NB) after unlock")
	ok(t, unix.Flock(a, unix.LOCK_SH|unix.LOCK_NB), "flock(a, LOCK_SH|LOCK_NB) while b holds LOCK_SH")
	wantErrno(t, unix.Flock(a, unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK, "upgrade a to LOCK_EX while b holds LOCK_SH")
	ok(t, closeB(), "close b")
	ok(t, unix.Flock(a, unix.LOCK_EX|unix.LOCK_NB), "flock(a, LOCK_EX|LOCK_NB) after closing b")

	// A blocking request is granted once the holder unlocks.
	c := openT(t, p, unix.O_RDONLY, 0)
	done := make(chan error, 1)
	go func() { done <- unix.Flock(c, unix.LOCK_EX) }()
	ok(t, unix.Flock(a, unix.LOCK_UN), "flock(a, LOCK_UN)")
	// The guard only keeps a lost wakeup from hanging the whole suite.
	select {
	case err := <-done:
		ok(t, err, "blocking flock(c, LOCK_EX) after a unlocked")
	case <-time.After(time.Minute):
		t.Fatalf("blocking flock(c, LOCK_EX) still waits a minute after the holder unlocked")
	}
	wantErrno(t, unix.Flock(a, unix.LOCK_SH|unix.LOCK_NB), unix.EWOULDBLOCK, "flock(a, LOCK_SH|LOCK_NB) while c holds LOCK_EX")
}

// testOFDLocks checks open-file-description record locks (F_OFD_SETLK and
// F_OFD_GETLK) between two descriptions of one file: conflicts, reports of
// the conflicting lock, shared read locks, partial unlocks, and that classic
// POSIX locks of one process never conflict with each other.
func testOFDLocks(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	writeFileT(t, p, make([]byte, 1000), 0o644)
	a := openT(t, p, unix.O_RDWR, 0)
	b := openT(t, p, unix.O_RDWR, 0)
	lk := func(typ int16, start, n int64) *unix.Flock_t {
		return &unix.Flock_t{Type: typ, Whence: unix.SEEK_SET, Start: start, Len: n}
	}
	set := func(fd int, typ int16, start, n int64) error {
		return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, lk(typ, start, n))
	}
	get := func(fd int, typ int16, start, n int64) (*unix.Flock_t, bool) {
		t.Helper()
		l := lk(typ, start, n)
		return l, ok(t, unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, l), "F_OFD_GETLK [%d, +%d)", start, n)
	}

	must(t, set(a, unix.F_WRLCK, 0, 100), "a: F_OFD_SETLK write lock [0, 100)")
	if l, good := get(b, unix.F_WRLCK, 50, 10); good {
		if l.Type != unix.F_WRLCK || l.Start != 0 || l.Len != 100 || l.Pid != -1 {
			t.Errorf("b: F_OFD_GETLK [50, 60) = type %d start %d len %d pid %d; want a's write lock [0, 100) with pid -1",
				l.Type, l.Start, l.Len, l.Pid)
		}
	}
	if l, good := get(b, unix.F_RDLCK, 100, 50); good && l.Type != unix.F_UNLCK {
		t.Errorf("b: F_OFD_GETLK [100, 150) next to a's lock reports type %d, want F_UNLCK", l.Type)
	}
	if l, good := get(a, unix.F_WRLCK, 0, 100); good && l.Type != unix.F_UNLCK {
		t.Errorf("a: F_OFD_GETLK over its own lock reports type %d, want F_UNLCK", l.Type)
	}
	wantErrno(t, set(b, unix.F_WRLCK, 50, 10), unix.EAGAIN, "b: write lock inside a's write lock")
	wantErrno(t, set(b, unix.F_RDLCK, 99, 2), unix.EAGAIN, "b: read lock overlapping a's write lock")
	ok(t, set(b, unix.F_WRLCK, 200, 10), "b: write lock [200, 210) away from a's")
	wantErrno(t, set(a, unix.F_RDLCK, 205, 1), unix.EAGAIN, "a: read lock inside b's write lock")

	// Shared read locks.
	ok(t, set(a, unix.F_RDLCK, 300, 10), "a: read lock [300, 310)")
	ok(t, set(b, unix.F_RDLCK, 305, 10), "b: read lock [305, 315) overlapping a's read lock")
	wantErrno(t, set(b, unix.F_WRLCK, 300, 1), unix.EAGAIN, "b: upgrade to a write lock over a's read lock")

	// Unlocking the middle of a's lock splits it.
	ok(t, set(a, unix.F_UNLCK, 40, 20), "a: unlock [40, 60)")
	ok(t, set(b, unix.F_WRLCK, 45, 10), "b: write lock inside a's unlocked hole")
	wantErrno(t, set(b, unix.F_WRLCK, 30, 1), unix.EAGAIN, "b: write lock on a's remaining [0, 40)")
	wantErrno(t, set(b, unix.F_WRLCK, 70, 1), unix.EAGAIN, "b: write lock on a's remaining [60, 100)")

	// Whole-file unlock (len 0 means to EOF and beyond).
	ok(t, set(a, unix.F_UNLCK, 0, 0), "a: unlock everything")
	if l, good := get(b, unix.F_WRLCK, 0, 40); good && l.Type != unix.F_UNLCK {
		t.Errorf("b: F_OFD_GETLK after a unlocked everything reports type %d, want F_UNLCK", l.Type)
	}
	ok(t, set(b, unix.F_WRLCK, 0, 40), "b: write lock after a unlocked everything")
	// Locks past EOF are allowed.
	ok(t, set(a, unix.F_WRLCK, 1<<40, 0), "a: write lock from 1 TiB to infinity")
	wantErrno(t, set(b, unix.F_WRLCK, 1<<41, 1), unix.EAGAIN, "b: write lock at 2 TiB under a's lock to infinity")

	// A nonzero l_pid is invalid for OFD locks.
	bad := lk(unix.F_WRLCK, 500, 1)
	bad.Pid = 1
	wantErrno(t, unix.FcntlFlock(uintptr(a), unix.F_OFD_SETLK, bad), unix.EINVAL, "F_OFD_SETLK with l_pid set")

	// Classic process-associated locks of one process never conflict.
	q := filepath.Join(env.Dir, "posix")
	writeFileT(t, q, nil, 0o644)
	c := openT(t, q, unix.O_RDWR, 0)
	d := openT(t, q, unix.O_RDWR, 0)
	must(t, unix.FcntlFlock(uintptr(c), unix.F_SETLK, lk(unix.F_WRLCK, 0, 10)), "F_SETLK write lock through c")
	ok(t, unix.FcntlFlock(uintptr(d), unix.F_SETLK, lk(unix.F_WRLCK, 0, 10)), "F_SETLK write lock through d by the same process")
	l := lk(unix.F_WRLCK, 0, 10)
	if ok(t, unix.FcntlFlock(uintptr(d), unix.F_GETLK, l), "F_GETLK") && l.Type != unix.F_UNLCK {
		t.Errorf("F_GETLK reports the process's own lock (type %d), want F_UNLCK", l.Type)
	}
	// But they do conflict with OFD locks of another description.
	wantErrno(t, unix.FcntlFlock(uintptr(c), unix.F_OFD_SETLK, lk(unix.F_WRLCK, 5, 1)), unix.EAGAIN,
		"F_OFD_SETLK over a process-associated lock")
}
