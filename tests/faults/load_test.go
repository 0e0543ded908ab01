package faults

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/mount"
)

// The client load of the abort and unmount tests: goroutines of the test
// process that write and fsync, read, stat, and create and remove names
// inside a mount, each through a descriptor of the mount's root, until
// they meet an error or are told to stop.

const (
	// dataName is the file of dataSize bytes the readers and statters use.
	dataName = "data"
	dataSize = 1 << 20
	// loadChunk is the size of one read or write of the load.
	loadChunk = 64 << 10
	// loadSyncEvery is how many writes a load writer makes between fsyncs.
	loadSyncEvery = 4
	// minLoadOps is how many operations each client must have completed
	// before a fault is injected, so the fault meets a busy mount.
	minLoadOps = 20
)

// makeData creates the file the load reads in the backing directory src.
func makeData(t testing.TB, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(src, dataName), bytes.Repeat([]byte("d"), dataSize), 0o644); err != nil {
		t.Fatal(err)
	}
}

// load is a set of running client loops.
type load struct {
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	done     chan struct{} // closed once every loop has returned
	ops      []atomic.Int64
	mu       sync.Mutex
	errs     []clientErr // the first error of each loop that met one
}

// clientKinds are the loops startLoad runs, one goroutine each.
var clientKinds = []string{"writer", "reader", "statter", "creator"}

// startLoad starts one loop of each kind on the mount at dir, whose root
// is dfd. The test's cleanup stops the loops; loops stuck in the kernel
// are a hang: the cleanup fails the test and tears the mount down to free
// them.
func startLoad(t testing.TB, dir string, dfd int) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{}), ops: make([]atomic.Int64, len(clientKinds))}
	for i, kind := range clientKinds {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if ce := l.run(kind, dfd, &l.ops[i]); ce != nil {
				l.mu.Lock()
				l.errs = append(l.errs, *ce)
				l.mu.Unlock()
			}
		}()
	}
	go func() {
		l.wg.Wait()
		close(l.done)
	}()
	t.Cleanup(func() {
		l.stopOnce.Do(func() { close(l.stop) })
		select {
		case <-l.done:
			return
		case <-time.After(opTimeout):
		}
		t.Errorf("clients still blocked %v after being told to stop; forcing the unmount", opTimeout)
		_ = mount.ForceUnmount(dir, 0)
		<-l.done
	})
	return l
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// run is one client loop; it returns its first error, or nil once stopped.
func (l *load) run(kind string, dfd int, ops *atomic.Int64) *clientErr {
	fail := func(op string, err error) *clientErr { return &clientErr{kind + " " + op, err} }
	buf := make([]byte, loadChunk)
	switch kind {
	case "writer":
		fd, err := unix.Openat(dfd, "load-w", unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return fail("create", err)
		}
		defer unix.Close(fd)
		for i := 0; !l.stopped(); i++ {
			if _, err := unix.Pwrite(fd, buf, int64(i%16)*loadChunk); err != nil {
				return fail("write", err)
			}
			if i%loadSyncEvery == loadSyncEvery-1 {
				if err := unix.Fsync(fd); err != nil {
					return fail("fsync", err)
				}
			}
			ops.Add(1)
		}
	case "reader":
		for !l.stopped() {
			fd, err := unix.Openat(dfd, dataName, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fail("open", err)
			}
			for off := int64(0); off < dataSize && !l.stopped(); off += loadChunk {
				if _, err := unix.Pread(fd, buf, off); err != nil {
					unix.Close(fd)
					return fail("read", err)
				}
				ops.Add(1)
			}
			// Drop the pages so that the next pass reaches the server.
			_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
			if err := unix.Close(fd); err != nil {
				return fail("close", err)
			}
		}
	case "statter":
		var st unix.Stat_t
		for !l.stopped() {
			if err := unix.Fstatat(dfd, dataName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fail("stat", err)
			}
			ops.Add(1)
		}
	case "creator":
		for i := 0; !l.stopped(); i++ {
			name := fmt.Sprintf("load-c%d", i)
			fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
			if err != nil {
				return fail("create", err)
			}
			if err := unix.Close(fd); err != nil {
				return fail("close", err)
			}
			if err := unix.Unlinkat(dfd, name, 0); err != nil {
				return fail("unlink", err)
			}
			if err := unix.Mkdirat(dfd, name, 0o755); err != nil {
				return fail("mkdir", err)
			}
			if err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR); err != nil {
				return fail("rmdir", err)
			}
			ops.Add(1)
		}
	}
	return nil
}

// waitBusy waits until every loop has completed minLoadOps operations.
func (l *load) waitBusy(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for i := range l.ops {
		for l.ops[i].Load() < minLoadOps {
			if e := l.firstErrs(); len(e) > 0 {
				t.Fatalf("load failed before the fault: %v", e)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s made %d operations in %v", clientKinds[i], l.ops[i].Load(), opTimeout)
			}
			time.Sleep(pollInterval)
		}
	}
}

func (l *load) firstErrs() []clientErr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]clientErr(nil), l.errs...)
}

// waitFailed waits until every loop has failed, and returns the errors.
func (l *load) waitFailed(t testing.TB) []clientErr {
	t.Helper()
	waitClosed(t, l.done, opTimeout, "clients after the fault")
	errs := l.firstErrs()
	if len(errs) != len(clientKinds) {
		t.Errorf("%d of %d clients failed (%v); all should have", len(errs), len(clientKinds), errs)
	}
	return errs
}

// halt stops the loops and waits for them; it returns their errors.
func (l *load) halt(t testing.TB) []clientErr {
	t.Helper()
	l.stopOnce.Do(func() { close(l.stop) })
	waitClosed(t, l.done, opTimeout, "clients told to stop")
	return l.firstErrs()
}

// totalOps returns the operations all loops have completed.
func (l *load) totalOps() int64 {
	var n int64
	for i := range l.ops {
		n += l.ops[i].Load()
	}
	return n
}
