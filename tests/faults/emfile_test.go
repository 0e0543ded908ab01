package faults

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/internal/testmount"
)

const (
	// emfileFiles is how many files the backing directory holds; far more
	// than the daemon may open under its lowered limit.
	emfileFiles = 200
	// fdHeadroom is how many descriptors the daemon may open beyond those
	// it has when the limit is lowered.
	fdHeadroom = 24
)

// daemonFds returns the number of descriptors process pid has open below
// limit (descriptors above it, inherited before the limit was lowered,
// take no number a new descriptor could get).
func daemonFds(t testing.TB, pid int, limit uint64) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if fd, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && fd < limit {
			n++
		}
	}
	return n
}

// TestDaemonOutOfFds lowers the daemon's RLIMIT_NOFILE (prlimit on the
// running process) to a few descriptors above those it uses, then opens
// files through the mount and keeps them open until an open fails. The
// client must get EMFILE or ENFILE, not a hang or another error; while
// the daemon is out of descriptors, stat of files the kernel already
// knows, reads of the files already open and lookups keep working; once
// the client closes its files, opens, readdir and create work again; and
// the daemon exits cleanly on SIGTERM.
//
// The mount caches neither names nor attributes, so every stat reaches
// the daemon. A lookup needs no descriptor (fstatat on the parent's,
// name_to_handle_at), and a stat is answered from the node's cached O_PATH
// descriptor (fd_cache) or reopens one by handle, which fails with EMFILE
// like an open when the limit is reached and nothing in the cache can be
// given up.
func TestDaemonOutOfFds(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src, mnt := t.TempDir(), t.TempDir()
			for i := range emfileFiles {
				if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%03d", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d := startDaemon(t, tr, src, mnt, "-o", "attr_timeout=0,entry_timeout=0")
			pid := d.cmd.Process.Pid
			// A new descriptor takes the lowest free number, which must
			// stay below the soft limit: with n open, about fdHeadroom
			// more fit (descriptors above the limit stay usable).
			n := daemonFds(t, pid, math.MaxUint64)
			lim := unix.Rlimit{Cur: uint64(n + fdHeadroom)}
			var old unix.Rlimit
			if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
				t.Fatal(err)
			}
			lim.Max = old.Max
			if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
				t.Fatal(err)
			}
			t.Logf("daemon has %d descriptors; soft limit lowered from %d to %d", n, old.Cur, lim.Cur)

			var fds []int
			closeAll := func() {
				for _, fd := range fds {
					unix.Close(fd)
				}
				fds = nil
			}
			t.Cleanup(closeAll)
			var openErr error
			var failedAt string
			within(t, opTimeout, "open until the daemon runs out", func() error {
				for i := range emfileFiles {
					name := filepath.Join(mnt, fmt.Sprintf("f%03d", i))
					fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
					if err != nil {
						openErr, failedAt = err, name
						return nil
					}
					fds = append(fds, fd)
				}
				return nil
			})
			t.Logf("client: %d opens succeeded, then open %s: %v", len(fds), filepath.Base(failedAt), openErr)
			if openErr != unix.EMFILE && openErr != unix.ENFILE {
				t.Fatalf("open with the daemon out of descriptors: %v after %d files, want EMFILE or ENFILE", openErr, len(fds))
			}

			// While out of descriptors: lookups, stats of known nodes
			// and reads of open files.
			var st unix.Stat_t
			if err := within(t, opTimeout, "stat root", func() error { return unix.Stat(mnt, &st) }); err != nil {
				t.Errorf("stat of the root while out of descriptors: %v", err)
			}
			for i := range min(len(fds), 4) {
				name := filepath.Join(mnt, fmt.Sprintf("f%03d", i))
				if err := within(t, opTimeout, "stat", func() error { return unix.Stat(name, &st) }); err != nil {
					t.Errorf("stat %s while out of descriptors: %v", filepath.Base(name), err)
				}
				buf := make([]byte, 64)
				want := fmt.Sprintf("file %d\n", i)
				r := within(t, opTimeout, "read", func() countResult {
					n, err := unix.Pread(fds[i], buf, 0)
					return countResult{n, err}
				})
				if r.err != nil || string(buf[:max(r.n, 0)]) != want {
					t.Errorf("read of open %s while out of descriptors: %q, %v; want %q", filepath.Base(name), buf[:max(r.n, 0)], r.err, want)
				}
			}
			if err := within(t, opTimeout, "lookup", func() error { return unix.Lstat(filepath.Join(mnt, "missing"), &st) }); err != unix.ENOENT {
				t.Errorf("lookup of a missing name while out of descriptors: %v, want ENOENT", err)
			}

			// Closing files gives the daemon its descriptors back.
			closeAll()
			err := within(t, opTimeout, "open after closing", func() error {
				for i := range emfileFiles {
					b, err := os.ReadFile(filepath.Join(mnt, fmt.Sprintf("f%03d", i)))
					if err != nil {
						return err
					}
					if want := fmt.Sprintf("file %d\n", i); string(b) != want {
						return fmt.Errorf("f%03d: %q, want %q", i, b, want)
					}
				}
				return nil
			})
			if err != nil {
				t.Errorf("opening files one at a time after closing them: %v", err)
			}
			// Forced stats (each one reaches the daemon, which caches an
			// O_PATH descriptor for the node) fill the fd cache until the
			// daemon holds every descriptor the limit allows. Listing and
			// creating must still find one, by giving up cached ones.
			next := 0
			fillCache := func(before string) {
				t.Helper()
				for ; next < emfileFiles; next++ {
					if daemonFds(t, pid, lim.Cur) >= int(lim.Cur) {
						return
					}
					var stx unix.Statx_t
					name := filepath.Join(mnt, fmt.Sprintf("f%03d", next))
					err := within(t, opTimeout, "statx", func() error {
						return unix.Statx(unix.AT_FDCWD, name, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_FORCE_SYNC, unix.STATX_BASIC_STATS, &stx)
					})
					if err != nil {
						t.Fatalf("statx %s: %v", filepath.Base(name), err)
					}
				}
				t.Fatalf("before %s: the daemon holds %d descriptors below its limit %d after %d forced stats; the fd cache did not fill", before, daemonFds(t, pid, lim.Cur), lim.Cur, emfileFiles)
			}
			fillCache("create")
			err = within(t, opTimeout, "create", func() error {
				return os.WriteFile(filepath.Join(mnt, "new"), []byte("new\n"), 0o644)
			})
			if err != nil {
				t.Errorf("create with the fd cache full: %v (the create path must give up cached descriptors, as opens do)", err)
			}
			fillCache("readdir")
			ents := within(t, opTimeout, "readdir", func() dirList { return listDir(mnt) })
			if ents.err != nil || len(ents.names) < emfileFiles {
				t.Errorf("readdir with the fd cache full: %d names, %v; want %d or more", len(ents.names), ents.err, emfileFiles)
			}
			d.stop(t)
		})
	}
}

// countResult carries a read's result through within.
type countResult struct {
	n   int
	err error
}
