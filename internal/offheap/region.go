package offheap

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// commitStep is how much of a region becomes writable at a time, so that
// a growing slab calls mprotect once per 64 KiB, not once per record.
const commitStep = 64 << 10

var pageSize = unix.Getpagesize()

// region is a range of address space reserved at once and made writable
// from its start as it is needed. The range is never moved or unmapped
// while in use, so that pointers into it stay valid; pages given back
// with Madvise read as zeros afterwards.
type region struct {
	mem []byte
	// committed is the length of the writable prefix of mem.
	committed int
}

// reserve maps size bytes of inaccessible address space. PROT_NONE keeps
// the reservation out of the kernel's commit accounting until commit makes
// a part of it writable.
func (r *region) reserve(size int) error {
	size = roundUp(size, pageSize)
	m, err := unix.Mmap(-1, 0, size, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("offheap: reserve %d bytes: %w", size, err)
	}
	r.mem = m
	return nil
}

// commit makes the first n bytes writable.
func (r *region) commit(n int) error {
	if n <= r.committed {
		return nil
	}
	c := min(roundUp(n, commitStep), len(r.mem))
	if n > c {
		return fmt.Errorf("offheap: %d bytes do not fit a region of %d", n, len(r.mem))
	}
	if err := unix.Mprotect(r.mem[r.committed:c], unix.PROT_READ|unix.PROT_WRITE); err != nil {
		return fmt.Errorf("offheap: commit %d bytes: %w", c, err)
	}
	r.committed = c
	return nil
}

// discard gives the pages of mem[from:to] back to the kernel; they read as
// zeros when next touched. from and to must be page aligned.
func (r *region) discard(from, to int) {
	if from < to {
		// It cannot fail on a private anonymous mapping of our own; if
		// it did, the pages would merely stay resident.
		_ = unix.Madvise(r.mem[from:to], unix.MADV_DONTNEED)
	}
}

// unmap ends the region. Nothing may point into it any more.
func (r *region) unmap() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
	}
	r.mem, r.committed = nil, 0
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

func roundDown(n, to int) int { return n / to * to }
