package main

import (
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/server"
)

func readClock(t *testing.T, path string) string {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 128)
	n, err := unix.Read(fd, buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// TestClock mounts the example for real over each transport and moves
// its clock: a change the kernel is not told about stays invisible for
// the hour-long cache timeout, and a tick shows at once, with STORE and
// with INVAL_INODE.
func TestClock(t *testing.T) {
	t0 := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	for _, tr := range testmount.Transports {
		for _, inval := range []bool{false, true} {
			name := tr + "/store"
			if inval {
				name = tr + "/inval"
			}
			t.Run(name, func(t *testing.T) {
				if tr == "uring" {
					testmount.LockUringParam(t, false)
				}
				fsys := newClockFS(t0)
				s := testmount.Mount(t, fsys, testmount.Options{Transport: tr,
					Server: server.Options{EntryTimeout: time.Hour, AttrTimeout: time.Hour}})
				path := filepath.Join(s.Dir(), "clock")
				if got := readClock(t, path); got != string(format(t0)) {
					t.Fatalf("read %q, want %q", got, format(t0))
				}
				fsys.mu.Lock()
				fsys.now = format(t0.Add(time.Second)) // behind the kernel's back
				fsys.mu.Unlock()
				if got := readClock(t, path); got != string(format(t0)) {
					t.Fatalf("unnotified change visible (%q): the kernel did not cache, so this test proves nothing", got)
				}
				t2 := t0.Add(2 * time.Second)
				if err := fsys.tick(s.Server(), t2, inval); err != nil {
					t.Fatal(err)
				}
				if got := readClock(t, path); got != string(format(t2)) {
					t.Errorf("after the tick: read %q, want %q", got, format(t2))
				}
			})
		}
	}
}
