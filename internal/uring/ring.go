package uring

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Options are optional io_uring_setup flags. The zero value (or a nil
// *Options) gives a plain interrupt-driven ring with a CQ twice the SQ size.
// The kernel rejects some combinations with EINVAL: SQPoll cannot be combined
// with CoopTaskrun or DeferTaskrun.
type Options struct {
	// CQEntries sets the CQ size (IORING_SETUP_CQSIZE). It must be at least
	// the SQ size; the kernel rounds it up to a power of two. Zero means
	// twice the SQ size, the kernel's default.
	CQEntries uint32

	// SingleIssuer (IORING_SETUP_SINGLE_ISSUER) promises that only one
	// thread submits, which lets the kernel skip locking. The kernel binds
	// the ring to the thread that calls New: lock the goroutine to its OS
	// thread first, and submit and register only from it (other threads
	// get EEXIST).
	SingleIssuer bool

	// DeferTaskrun (IORING_SETUP_DEFER_TASKRUN) runs completion task work
	// only when the issuer thread waits for completions, so completions
	// appear only after SubmitAndWait, or a Submit that finds
	// IORING_SQ_TASKRUN set. Requires SingleIssuer.
	DeferTaskrun bool

	// CoopTaskrun (IORING_SETUP_COOP_TASKRUN) stops the kernel from
	// interrupting the issuer thread with an IPI to run task work; the work
	// runs at its next kernel entry. Saves IPIs for a thread that enters
	// the kernel often anyway, as a FUSE queue thread does.
	CoopTaskrun bool

	// SubmitAll (IORING_SETUP_SUBMIT_ALL) keeps submitting the rest of a
	// batch when one SQE fails to prepare, instead of stopping at it. The
	// failed SQE gets an error CQE either way.
	SubmitAll bool

	// SQPoll (IORING_SETUP_SQPOLL) starts a kernel thread that polls the SQ,
	// so Submit usually makes no system call. It costs a CPU while busy.
	SQPoll bool

	// SQThreadIdle is how long the SQPOLL thread spins without work before
	// it sleeps (after which Submit wakes it with IORING_ENTER_SQ_WAKEUP).
	// It is rounded up to whole milliseconds. Zero means the kernel's default
	// of one second. Ignored unless SQPoll is set.
	SQThreadIdle time.Duration
}

// Ring is one io_uring instance with 128-byte SQEs. Create it with [New].
//
// A Ring is not safe for concurrent use; see the package documentation for
// the threading rules.
type Ring struct {
	fd       int
	flags    uint32 // IORING_SETUP_* in effect
	features uint32

	// Mappings, kept to munmap them. cqMap is nil when the CQ ring shares
	// sqMap (IORING_FEAT_SINGLE_MMAP).
	sqMap  []byte
	cqMap  []byte
	sqeMap []byte

	// SQ ring. sqHead and sqFlags are written by the kernel, sqTail by us.
	sqHead    *uint32
	sqTail    *uint32
	sqFlags   *uint32
	sqMask    uint32
	sqEntries uint32
	sqes      []SQE
	// sqeTail counts SQEs handed out by NextSQE; flushSQ publishes it to
	// *sqTail. Only the owner writes it, so it need not be atomic.
	sqeTail uint32

	// CQ ring. cqTail and cqOverflow are written by the kernel, cqHead by us.
	cqHead     *uint32
	cqTail     *uint32
	cqOverflow *uint32
	cqMask     uint32
	cqEntries  uint32
	cqes       []CQE

	// eintr counts io_uring_enter calls interrupted by a signal; tests
	// read it to check that the retry path ran.
	eintr uint64
}

// New creates a ring with at least entries SQ slots (the kernel rounds up to
// a power of two, at most IORING_MAX_ENTRIES) and 128-byte SQEs. A nil opts
// means the zero [Options]. The caller must Close the ring.
//
// It returns an error matching [ErrNotSupported] when io_uring is missing or
// disabled, and one matching [unix.EINVAL] for options the kernel rejects.
func New(entries uint32, opts *Options) (*Ring, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	p := Params{Flags: IORING_SETUP_SQE128}
	if o.CQEntries != 0 {
		p.Flags |= IORING_SETUP_CQSIZE
		p.CQEntries = o.CQEntries
	}
	if o.DeferTaskrun && !o.SingleIssuer {
		return nil, fmt.Errorf("uring: setup: DeferTaskrun requires SingleIssuer: %w", unix.EINVAL)
	}
	if o.SingleIssuer {
		p.Flags |= IORING_SETUP_SINGLE_ISSUER
	}
	if o.DeferTaskrun {
		p.Flags |= IORING_SETUP_DEFER_TASKRUN
	}
	if o.CoopTaskrun {
		p.Flags |= IORING_SETUP_COOP_TASKRUN
	}
	if o.CoopTaskrun || o.DeferTaskrun {
		// Ask the kernel to raise IORING_SQ_TASKRUN when deferred work
		// waits, so Submit knows when it must enter to make CQEs visible.
		p.Flags |= IORING_SETUP_TASKRUN_FLAG
	}
	if o.SubmitAll {
		p.Flags |= IORING_SETUP_SUBMIT_ALL
	}
	if o.SQPoll {
		p.Flags |= IORING_SETUP_SQPOLL
		if o.SQThreadIdle < 0 {
			return nil, fmt.Errorf("uring: setup: negative SQThreadIdle: %w", unix.EINVAL)
		}
		ms := (o.SQThreadIdle + time.Millisecond - 1) / time.Millisecond
		if ms > math.MaxUint32 {
			return nil, fmt.Errorf("uring: setup: SQThreadIdle too large: %w", unix.EINVAL)
		}
		p.SQThreadIdle = uint32(ms)
	}

	// p lives only for the duration of this synchronous call, which copies
	// it in and out.
	fd, errno := sysSetup(entries, &p)
	if errno != 0 {
		return nil, setupError(errno)
	}
	r := &Ring{fd: int(fd), flags: p.Flags, features: p.Features}
	if err := r.mapRings(&p); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// setupError wraps an io_uring_setup errno, adding ErrNotSupported when
// io_uring is absent or disabled.
func setupError(errno unix.Errno) error {
	switch errno {
	case unix.ENOSYS:
		return fmt.Errorf("uring: setup: %w (%w)", ErrNotSupported, errno)
	case unix.EPERM:
		disabled := "?"
		if b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled"); err == nil {
			disabled = string(bytes.TrimSpace(b))
		}
		why := ""
		if disabled == "1" {
			why = ", which admits only root and the group kernel.io_uring_group"
		}
		return fmt.Errorf("uring: setup: %w (%w; kernel.io_uring_disabled=%s%s)",
			ErrNotSupported, errno, disabled, why)
	}
	return fmt.Errorf("uring: setup: %w", errno)
}

// mapRings mmaps the SQ ring, the CQ ring and the SQE array and resolves the
// ring field pointers from the offsets the kernel returned.
func (r *Ring) mapRings(p *Params) error {
	const prot = unix.PROT_READ | unix.PROT_WRITE
	const flags = unix.MAP_SHARED | mapPopulate

	sqSize := int(p.SQOff.Array) + int(p.SQEntries)*4
	cqSize := int(p.CQOff.CQEs) + int(p.CQEntries)*SizeofCQE
	single := p.Features&IORING_FEAT_SINGLE_MMAP != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	r.sqMap, err = unix.Mmap(r.fd, IORING_OFF_SQ_RING, sqSize, prot, flags)
	if err != nil {
		return fmt.Errorf("uring: mmap sq ring: %w", err)
	}
	cqMap := r.sqMap
	if !single {
		r.cqMap, err = unix.Mmap(r.fd, IORING_OFF_CQ_RING, cqSize, prot, flags)
		if err != nil {
			return fmt.Errorf("uring: mmap cq ring: %w", err)
		}
		cqMap = r.cqMap
	}
	r.sqeMap, err = unix.Mmap(r.fd, IORING_OFF_SQES, int(p.SQEntries)*SizeofSQE, prot, flags)
	if err != nil {
		return fmt.Errorf("uring: mmap sqes: %w", err)
	}

	sq := &p.SQOff
	r.sqHead = word(r.sqMap, sq.Head)
	r.sqTail = word(r.sqMap, sq.Tail)
	r.sqFlags = word(r.sqMap, sq.Flags)
	r.sqMask = *word(r.sqMap, sq.RingMask)
	r.sqEntries = *word(r.sqMap, sq.RingEntries)
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&r.sqeMap[0])), r.sqEntries)
	r.sqeTail = atomic.LoadUint32(r.sqTail)

	// The SQ array maps ring positions to SQE slots. NextSQE always hands
	// out slot (tail & mask) for ring position tail, so the identity map
	// is right for every submission and is written once here. The kernel
	// only reads the array.
	array := unsafe.Slice(word(r.sqMap, sq.Array), r.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}

	cq := &p.CQOff
	r.cqHead = word(cqMap, cq.Head)
	r.cqTail = word(cqMap, cq.Tail)
	r.cqOverflow = word(cqMap, cq.Overflow)
	r.cqMask = *word(cqMap, cq.RingMask)
	r.cqEntries = *word(cqMap, cq.RingEntries)
	r.cqes = unsafe.Slice((*CQE)(unsafe.Pointer(&cqMap[cq.CQEs])), r.cqEntries)
	return nil
}

// word returns a pointer to the uint32 at byte offset off of a ring mapping.
// The mapping is not Go heap memory, so the pointer is invisible to the GC and
// stays valid until Close munmaps it.
func word(m []byte, off uint32) *uint32 {
	return (*uint32)(unsafe.Pointer(&m[off]))
}

// Close unmaps the rings and closes the ring fd; the kernel then cancels
// outstanding requests. Close is idempotent. It must not run concurrently with
// other methods: a thread blocked in SubmitAndWait is not woken by it, so wake
// and stop the owner first (see [Waker]).
func (r *Ring) Close() error {
	if r.fd < 0 {
		return nil
	}
	// Drop every pointer into the mappings before unmapping them, so a
	// later misuse fails on a nil check rather than touching freed memory.
	r.sqHead, r.sqTail, r.sqFlags = nil, nil, nil
	r.cqHead, r.cqTail, r.cqOverflow = nil, nil, nil
	r.sqes, r.cqes = nil, nil
	var first error
	for _, m := range []*[]byte{&r.sqeMap, &r.cqMap, &r.sqMap} {
		if *m != nil {
			if err := unix.Munmap(*m); err != nil && first == nil {
				first = fmt.Errorf("uring: munmap: %w", err)
			}
			*m = nil
		}
	}
	if err := unix.Close(r.fd); err != nil && first == nil {
		first = fmt.Errorf("uring: close: %w", err)
	}
	r.fd = -1
	return first
}

// Fd returns the ring file descriptor, or -1 after Close.
func (r *Ring) Fd() int { return r.fd }

// Features returns the IORING_FEAT_* bits the kernel reported at setup.
func (r *Ring) Features() uint32 { return r.features }

// CQEntries returns the number of CQ slots (a power of two).
func (r *Ring) CQEntries() uint32 { return r.cqEntries }
