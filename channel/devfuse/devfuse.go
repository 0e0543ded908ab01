// Package devfuse is the classic FUSE channel: requests are read(2) from
// /dev/fuse and replies written back with writev(2).
//
// Several reader goroutines block in read(2) on the raw descriptor (never
// through Go's netpoller, which cannot poll /dev/fuse), and each serves the
// request it read inline, so a request costs two syscalls and no goroutine
// hand-off. The channel runs until the kernel reports the connection gone
// (ENODEV at unmount, ECONNABORTED after an abort).
package devfuse

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/internal/osthread"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// Device is the kernel side of the channel: the /dev/fuse descriptor, or
// the kernel model in tests. Implementations return syscall.Errno errors,
// as the kernel does.
type Device interface {
	// Read reads one request into p. Serve retries EINTR and EAGAIN.
	Read(p []byte) (int, error)
	// Writev writes one reply made of the concatenation of bufs. It
	// retries EINTR itself: Serve takes any error as the kernel's answer.
	Writev(bufs [][]byte) (int, error)
}

// Options configure Serve. The zero value is a sane default.
type Options struct {
	// Readers is the number of goroutines blocked in read(2). Zero means
	// four, or GOMAXPROCS if larger, so that a request that blocks (fsync)
	// does not stall the others.
	Readers int
	// Coalesce, if not nil with a positive Window, makes the readers
	// coalesce forget storms; see [Coalesce].
	Coalesce *Coalesce
}

// Errors Serve returns.
var (
	// ErrAborted: the connection was aborted through fusectl.
	ErrAborted = errors.New("devfuse: connection aborted")
)

// Serve reads and answers requests on dev for s until the connection ends.
// It returns nil after a normal unmount.
func Serve(s *server.Server, dev Device, opts *Options) error {
	n := 0
	var st *storm
	if opts != nil {
		n = opts.Readers
		st = newStorm(opts.Coalesce)
	}
	if n <= 0 {
		n = max(4, runtime.GOMAXPROCS(0))
	}
	var ap *applier
	if st != nil && !opts.Coalesce.Inline {
		if ap = newApplier(s, opts.Coalesce.Nice); ap != nil {
			defer ap.stop()
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		r := newReader(s, dev)
		r.storm, r.apply = st, ap
		go func() {
			defer wg.Done()
			errs[i] = r.loop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reader is one goroutine's buffers and worker.
type reader struct {
	s   *server.Server
	dev Device
	w   *server.Worker
	in  []byte
	out []byte
	iov [1][]byte
	// storm is the state shared with the other readers for
	// Options.Coalesce, or nil.
	storm *storm
	// apply, if not nil, applies the forgets this reader takes.
	apply *applier
}

func newReader(s *server.Server, dev Device) *reader {
	return &reader{
		s:   s,
		dev: dev,
		w:   s.NewWorker("devfuse"),
		// WRITE data follows the two headers, and READ data the out
		// header: align those offsets to a page, so a filesystem can
		// hand them to O_DIRECT I/O without a bounce buffer.
		in:  alignedAfter(s.ReadBufferSize(), wire.SizeofInHeader+wire.SizeofWriteIn),
		out: alignedAfter(wire.SizeofOutHeader+s.ReplyBufferSize(), wire.SizeofOutHeader),
	}
}

// dataAlign is the alignment of request and reply data in the buffers.
const dataAlign = 4096

// alignedAfter returns an n-byte buffer whose byte at offset hdr is
// dataAlign-aligned.
func alignedAfter(n, hdr int) []byte {
	b := make([]byte, n+dataAlign)
	addr := uintptr(unsafe.Pointer(&b[0])) + uintptr(hdr)
	off := int(-addr & (dataAlign - 1))
	return b[off : off+n : off+n]
}

func (r *reader) loop() error {
	// A filesystem may leave a caller's credentials on the thread from
	// one request to the next (package creds): keep the thread for good,
	// so they never reach other goroutines, and Go ends it with us.
	runtime.LockOSThread()
	r.w.OwnThread()
	osthread.SetName("fuse-dev")
	if r.storm != nil {
		// The waits between forget reads are short; the default
		// 50 µs of slack would stretch them.
		osthread.SetTimerSlack(time.Microsecond)
	}
	ending := false // a read said ECONNABORTED
	for {
		turn := r.storm.enter()
		n, err := r.dev.Read(r.in)
		if err == nil {
			r.storm.saw(r.in[:n])
		}
		r.storm.leave(turn)
		if err != nil {
			switch {
			case errors.Is(err, syscall.EINTR), errors.Is(err, syscall.EAGAIN):
				continue
			case errors.Is(err, syscall.ENOENT):
				// The request was interrupted while being read.
				continue
			case errors.Is(err, syscall.ENODEV):
				r.s.Disconnect() // unmounted: free handlers waiting on a context
				return nil
			case errors.Is(err, syscall.ECONNABORTED):
				r.s.Disconnect()
				if !ending {
					// The kernel also says this to a read that
					// took a request just as an unmount shut the
					// connection. Only after an abort does the
					// next read say it again (ENODEV otherwise).
					ending = true
					continue
				}
				return ErrAborted
			}
			return fmt.Errorf("devfuse: read: %w", err)
		}
		if err := r.serve(r.in[:n]); err != nil {
			return err
		}
		if n > forgetKeep && wire.View[wire.InHeader](r.in).Opcode == wire.FUSE_BATCH_FORGET {
			discardPages(r.in[forgetKeep:n])
		}
	}
}

// forgetKeep: after a BATCH_FORGET longer than this, a reader gives the
// pages of its buffer beyond it back to the kernel. In a forget storm the
// kernel sends messages of up to 8192 forgets, 128 KiB, to every reader;
// the touched pages would otherwise stay resident for the daemon's life,
// half a megabyte of the memory a storm must not leave behind (issue 5).
// Other requests that large are WRITEs, whose pages are their working
// set.
const forgetKeep = 16 << 10

// discardPages gives the whole pages inside b back to the kernel; they
// read as zeros when next touched. b is part of a live buffer of bytes,
// which the garbage collector neither scans nor moves.
func discardPages(b []byte) {
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (dataAlign - 1))
	if off >= len(b) {
		return
	}
	b = b[off:]
	if n := len(b) &^ (dataAlign - 1); n > 0 {
		// Only an argument error can fail it; then the pages stay.
		_ = unix.Madvise(b[:n], unix.MADV_DONTNEED)
	}
}

func (r *reader) serve(msg []byte) error {
	if r.apply != nil && r.apply.take(r.w, msg) {
		return nil
	}
	if r.storm != nil && len(msg) >= wire.SizeofInHeader && !wire.View[wire.InHeader](msg).Opcode.NoReply() {
		r.storm.held.Add(1)
		defer r.storm.held.Add(-1)
	}
	rep := r.w.HandleDev(msg, r.out[wire.SizeofOutHeader:])
	if rep.None {
		return nil
	}
	size := wire.SizeofOutHeader
	if rep.Error == 0 {
		size += rep.Len
	}
	*wire.View[wire.OutHeader](r.out) = wire.OutHeader{Len: uint32(size), Error: rep.Error, Unique: rep.Unique}
	r.iov[0] = r.out[:size]
	_, err := r.dev.Writev(r.iov[:])
	switch {
	case err == nil:
	case errors.Is(err, syscall.ENOENT):
		// The kernel no longer waits for this request (interrupted or
		// aborted): whatever the reply handed out must be taken back.
		r.w.ReplyFailed()
	case errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ECONNABORTED):
		r.w.ReplyFailed()
		return nil
	default:
		r.w.ReplyFailed()
		r.s.Logf("devfuse: reply to %v (unique %d): %v", rep.Opcode, rep.Unique, err)
	}
	if rep.Init {
		r.s.InitReplied()
	}
	return nil
}
