//go:build linux

package ring_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/session"
)

// alignedBuf returns n bytes aligned for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	off := int(4096 - uintptr(unsafe.Pointer(&b[0]))%4096)
	return b[off%4096 : off%4096+n]
}

// mountFileIO serves src through the passthrough over io_uring with
// Options.FileIO.
func mountFileIO(t *testing.T, src string) *session.Session {
	t.Helper()
	return mountFileIOOpts(t, src, ring.Options{QueueDepth: 8, FileIO: true})
}

// mountFileIOOpts is mountFileIO with the ring options o.
func mountFileIOOpts(t *testing.T, src string, o ring.Options) *session.Session {
	t.Helper()
	pfs, err := passthrough.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := mountT(t, pfs, session.Options{Server: noCache, Uring: &o})
	t.Cleanup(func() { pfs.Close() })
	return s
}

// TestRingFileIO serves the passthrough's reads and writes as reads and
// writes on the queues' rings (Options.FileIO): clients on every CPU write
// and read back random blocks of one file, buffered and with O_DIRECT,
// read across the end of a file of odd size, and write at its end; the
// backing file must hold exactly what was written, and the statistics must
// show the requests went the ring's way.
func TestRingFileIO(t *testing.T) {
	src := t.TempDir()
	s := mountFileIO(t, src)
	nq := s.Ring().Stats().Queues

	const size = 4 << 20
	const block = 4096
	path := filepath.Join(s.Dir(), "data")
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each client owns the blocks whose index modulo the client count
	// is its number, so that the expected contents are known.
	const per = 3
	clients := nq * per
	var id atomic.Int64
	withWatchdog(t, s, 2*time.Minute, func() {
		onCPUsN(t, nq, per, func(int) error {
			me := int(id.Add(1) - 1)
			flags := unix.O_RDWR | unix.O_CLOEXEC
			if me%2 == 0 {
				flags |= unix.O_DIRECT
			}
			fd, err := unix.Open(path, flags, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			rng := rand.New(rand.NewPCG(uint64(me), 7))
			buf, got := alignedBuf(block), alignedBuf(block)
			for range 300 {
				b := rng.IntN(size/block/clients)*clients + me
				for i := range buf {
					buf[i] = byte(b*31 + i + me)
				}
				if n, err := unix.Pwrite(fd, buf, int64(b*block)); err != nil || n != block {
					return fmt.Errorf("client %d: pwrite block %d: %d, %w", me, b, n, err)
				}
				if n, err := unix.Pread(fd, got, int64(b*block)); err != nil || n != block {
					return fmt.Errorf("client %d: pread block %d: %d, %w", me, b, n, err)
				}
				if !bytes.Equal(got, buf) {
					return fmt.Errorf("client %d: block %d reads back differently", me, b)
				}
			}
			return nil
		})
	})
	back, err := os.ReadFile(filepath.Join(src, "data"))
	if err != nil || len(back) != size {
		t.Fatalf("backing file: %d bytes, %v", len(back), err)
	}

	// A read across the end of a file returns what there is.
	odd := filepath.Join(s.Dir(), "odd")
	want := bytes.Repeat([]byte("0123456789"), 1001) // 10010 bytes
	if err := os.WriteFile(odd, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(odd)
	if err != nil {
		t.Fatal(err)
	}
	tail := make([]byte, 8192)
	n, err := f.ReadAt(tail, 8192)
	f.Close()
	if n != len(want)-8192 || !bytes.Equal(tail[:n], want[8192:]) || (err != nil && err != io.EOF) {
		t.Errorf("read across the end: %d bytes, %v; want %d", n, err, len(want)-8192)
	}
	// Appends go to the end: the kernel gives each WRITE its offset.
	a, err := os.OpenFile(odd, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("end")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if b, _ := os.ReadFile(filepath.Join(src, "odd")); !bytes.Equal(b, append(want, "end"...)) {
		t.Errorf("after an append the backing file holds %d bytes", len(b))
	}

	// Several clients per CPU keep the queues parallel: most reads and
	// writes are done on the rings (a queue serves the lone ones of its
	// quiet moments inline), none by the pool.
	cs := s.Ring().Stats()
	st := s.Server().Stats()
	checkDevfuseIdle(t, &st)
	rw := st.Requests("uring", "READ") + st.Requests("uring", "WRITE")
	if rw < uint64(2*300*clients) {
		t.Errorf("%d READs and WRITEs on the ring; want at least %d", rw, 2*300*clients)
	}
	if cs.FileIO < rw/2 {
		t.Errorf("%d of %d READs and WRITEs served as reads and writes on the ring; want at least half", cs.FileIO, rw)
	}
	if cs.Pooled != 0 {
		t.Errorf("%d requests went to the pool with FileIO on", cs.Pooled)
	}

	// A serial client is served inline once its queue has forgotten the
	// parallel clients (parallelMemory, 64 batches: 200 is plenty).
	serialIO(t, path, 200)
	before := s.Ring().Stats().FileIO
	rw = s.Server().Stats().Requests("uring", "READ") + s.Server().Stats().Requests("uring", "WRITE")
	serialIO(t, path, 100)
	// Most, not all: on a loaded machine a queue thread can be late
	// enough for the next request to find the previous one in flight.
	if after := s.Ring().Stats().FileIO; after-before > 50 {
		t.Errorf("a serial client's requests went to the ring: FileIO %d → %d (want at most 50 of 200)", before, after)
	}
	if got := s.Server().Stats().Requests("uring", "READ") + s.Server().Stats().Requests("uring", "WRITE") - rw; got < 200 {
		t.Errorf("the serial client's 200 reads and writes made %d requests on the ring", got)
	}
}

// TestRingFileIOAlways checks that Options.FileIOAlways puts a serial
// client's reads and writes on the ring too.
func TestRingFileIOAlways(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "data"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	s := mountFileIOOpts(t, src, ring.Options{QueueDepth: 8, FileIO: true, FileIOAlways: true})
	serialIO(t, filepath.Join(s.Dir(), "data"), 100)
	if got := s.Ring().Stats().FileIO; got < 200 {
		t.Errorf("%d of a serial client's 200 reads and writes went to the ring; want all", got)
	}
}

// serialIO writes and reads back n blocks of path with O_DIRECT, one at a
// time, from a thread pinned to CPU 0.
func serialIO(t *testing.T, path string, n int) {
	t.Helper()
	onCPUs(t, 1, func(int) error {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		buf := alignedBuf(4096)
		for i := range n {
			if _, err := unix.Pwrite(fd, buf, int64(i)*4096); err != nil {
				return fmt.Errorf("serial pwrite %d: %w", i, err)
			}
			if _, err := unix.Pread(fd, buf, int64(i)*4096); err != nil {
				return fmt.Errorf("serial pread %d: %w", i, err)
			}
		}
		return nil
	})
}

// TestRingFileIOAbort aborts the connection while clients keep O_DIRECT
// reads and writes in flight on the rings: clients get ENOTCONN, nothing
// hangs, and the unmount finds no descriptor of the filesystem left open
// (a read or write still on a ring at exit must give its descriptor back).
func TestRingFileIOAbort(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "data"), make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	s := mountFileIO(t, src)
	nq := s.Ring().Stats().Queues
	path := filepath.Join(s.Dir(), "data")
	started := make(chan struct{}, 64)
	go func() {
		for range nq {
			<-started
		}
		time.Sleep(200 * time.Millisecond)
		_ = mount.Abort(s.ConnID())
	}()
	withWatchdog(t, s, time.Minute, func() {
		onCPUsN(t, nq, 4, func(cpu int) error {
			fd, err := unix.Open(path, unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
			if err != nil {
				started <- struct{}{}
				return nil // the abort came first
			}
			defer unix.Close(fd)
			buf := alignedBuf(64 << 10)
			select {
			case started <- struct{}{}:
			default:
			}
			for i := 0; ; i++ {
				off := int64(i%128) * int64(len(buf))
				var err error
				if i%2 == 0 {
					_, err = unix.Pwrite(fd, buf, off)
				} else {
					_, err = unix.Pread(fd, buf, off)
				}
				if errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("I/O before the abort: %w", err)
				}
			}
		})
	})
	if s.Ring().Stats().FileIO == 0 {
		t.Errorf("no request was served as a read or write on the ring")
	}
}

// TestRingThreads serves each CPU's queue with two threads, each with its
// own ring and half the entries (Options.Threads), through the pool and
// with reads and writes on the rings: clients on every CPU write and read
// back their own blocks of one file with O_DIRECT, and the file must hold
// what they wrote.
func TestRingThreads(t *testing.T) {
	for _, fileIO := range []bool{false, true} {
		t.Run(fmt.Sprintf("fileio=%v", fileIO), func(t *testing.T) {
			src := t.TempDir()
			const size, block, per, rounds = 2 << 20, 4096, 4, 200
			if err := os.WriteFile(filepath.Join(src, "data"), make([]byte, size), 0o644); err != nil {
				t.Fatal(err)
			}
			s := mountFileIOOpts(t, src, ring.Options{QueueDepth: 8, Threads: 2, FileIO: fileIO})
			threads := s.Ring().Stats().Queues
			ncpu := threads / 2
			if ncpu < 1 || threads != 2*ncpu {
				t.Fatalf("%d queue threads; want two per CPU", threads)
			}
			path := filepath.Join(s.Dir(), "data")
			clients := ncpu * per
			var id atomic.Int64
			want := make([][]byte, size/block)
			withWatchdog(t, s, 2*time.Minute, func() {
				onCPUsN(t, ncpu, per, func(int) error {
					me := int(id.Add(1) - 1)
					fd, err := unix.Open(path, unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
					if err != nil {
						return err
					}
					defer unix.Close(fd)
					buf, got := alignedBuf(block), alignedBuf(block)
					for r := range rounds {
						b := (r*clients + me) % (size / block)
						b -= b % clients
						b += me
						for i := range buf {
							buf[i] = byte(b + r + i)
						}
						if _, err := unix.Pwrite(fd, buf, int64(b*block)); err != nil {
							return fmt.Errorf("client %d: pwrite block %d: %w", me, b, err)
						}
						if _, err := unix.Pread(fd, got, int64(b*block)); err != nil || !bytes.Equal(got, buf) {
							return fmt.Errorf("client %d: block %d reads back differently (%v)", me, b, err)
						}
						want[b] = bytes.Clone(buf)
					}
					return nil
				})
			})
			back, err := os.ReadFile(filepath.Join(src, "data"))
			if err != nil || len(back) != size {
				t.Fatalf("backing file: %d bytes, %v", len(back), err)
			}
			for b, w := range want {
				if w != nil && !bytes.Equal(back[b*block:(b+1)*block], w) {
					t.Fatalf("block %d of the backing file differs from its last write", b)
				}
			}
			cs := s.Ring().Stats()
			st := s.Server().Stats()
			checkDevfuseIdle(t, &st)
			if rw := st.Requests("uring", "READ") + st.Requests("uring", "WRITE"); rw < 2*rounds*uint64(clients) {
				t.Errorf("%d READs and WRITEs on the ring; want at least %d", rw, 2*rounds*clients)
			}
			t.Logf("commits per queue thread: %v; pooled %d, as reads and writes on the ring %d", cs.QueueCommits, cs.Pooled, cs.FileIO)
		})
	}
}
