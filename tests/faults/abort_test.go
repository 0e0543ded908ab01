package faults

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/channel/devfuse"
	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
)

// noCache makes every stat and lookup of the load reach the server.
var noCache = server.Options{AttrTimeout: -1, EntryTimeout: -1}

// checkConnErrs fails the test unless every client error is ENOTCONN or
// ECONNABORTED.
func checkConnErrs(t testing.TB, errs []clientErr) {
	t.Helper()
	for _, ce := range errs {
		if !isConnGone(errnoOf(ce.err)) {
			t.Errorf("client %s, want ENOTCONN or ECONNABORTED", ce)
		}
	}
	t.Logf("clients saw: %v", errs)
}

// TestAbortInProcess aborts the connection through fusectl
// (mount.Abort) while clients write, fsync, read, stat and create: every
// client fails with ECONNABORTED (caught in flight) or ENOTCONN (sent
// afterwards); the session ends with devfuse.ErrAborted; the dead mount
// answers ENOTCONN and unmounts; and testmount finds no goroutine or
// descriptor left.
func TestAbortInProcess(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src := t.TempDir()
			makeData(t, src)
			fsys, err := passthrough.New(src, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := mountInProcess(t, tr, fsys, func() { fsys.Close() }, noCache)
			root := openDir(t, s.Dir())
			l := startLoad(t, s.Dir(), root.fd)
			l.waitBusy(t)
			if err := mount.Abort(s.ConnID()); err != nil {
				t.Fatal(err)
			}
			checkConnErrs(t, l.waitFailed(t))
			root.Close()
			waitClosed(t, s.Done(), opTimeout, "session after the abort")
			if !errors.Is(s.Err(), devfuse.ErrAborted) {
				t.Errorf("session ended with %v after a fusectl abort, want %v (the kernel fails the server's reads with ECONNABORTED instead of ENODEV only if INIT agreed FUSE_ABORT_ERROR)", s.Err(), devfuse.ErrAborted)
			}
			if r := s.Ring(); r != nil {
				waitClosed(t, r.Done(), opTimeout, "ring after the abort")
			}
			var st unix.Stat_t
			if err := within(t, opTimeout, "stat after the abort", func() error { return unix.Stat(s.Dir(), &st) }); err != unix.ENOTCONN {
				t.Errorf("stat of the aborted mount: %v, want ENOTCONN", err)
			}
			if err := within(t, opTimeout, "unmount after the abort", s.Unmount); err != nil {
				t.Errorf("unmount of the aborted mount: %v", err)
			}
			checkUnmounted(t, s.Dir())
		})
	}
}

// TestAbortDaemon aborts the daemon's connection by writing to
// /sys/fs/fuse/connections/N/abort while clients are busy: the clients fail
// with ECONNABORTED or ENOTCONN, and the daemon notices, removes the mount
// and exits with status 1 and a message that says the connection was
// aborted.
func TestAbortDaemon(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src, mnt := t.TempDir(), t.TempDir()
			makeData(t, src)
			d := startDaemon(t, tr, src, mnt, "-o", "attr_timeout=0,entry_timeout=0")
			id := d.connID(t)
			root := openDir(t, mnt)
			l := startLoad(t, mnt, root.fd)
			l.waitBusy(t)
			if err := mount.EnsureFusectl(); err != nil {
				t.Fatal(err)
			}
			ctl := filepath.Join(mount.FusectlDir, strconv.FormatUint(uint64(id), 10), "abort")
			if err := os.WriteFile(ctl, []byte("1"), 0); err != nil {
				t.Fatal(err)
			}
			checkConnErrs(t, l.waitFailed(t))
			root.Close()
			err := d.wait(t)
			if code := exitCode(err); code != 1 || !strings.Contains(d.out.String(), devfuse.ErrAborted.Error()) {
				t.Errorf("daemon exit %v (status %d) after a fusectl abort, want status 1 and %q (needs FUSE_ABORT_ERROR agreed at INIT) in:\n%s", err, code, devfuse.ErrAborted, d.out.String())
			}
			checkUnmounted(t, mnt)
			checkNoCrash(t, "daemon", d.out.String())
		})
	}
}
