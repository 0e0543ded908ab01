package offheap

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// minIndex is the smallest table, one page of entries.
const minIndex = 512

// Index maps 32-bit hashes to slots: an open-addressing hash table with
// linear probing, in a mapping of its own. It stores no keys; a caller
// keeps the key in the record a slot names, and checks it for each
// candidate Find returns. The table stays at most half full, grows by
// doubling and shrinks by halving once it is less than an eighth full, so
// that it gives its memory back as a storm's records go.
//
// The zero Index is empty and ready. An Index is not safe for concurrent
// use.
type Index struct {
	mem []byte   // the mapping, for Munmap
	tab []uint64 // over mem: hash<<32 | slot+1, 0 for empty
	n   int
}

// Len returns the number of entries.
func (x *Index) Len() int { return x.n }

// Insert adds slot under hash h. The same pair may be added twice; Delete
// then removes one of them.
func (x *Index) Insert(h, slot uint32) error {
	if slot == ^uint32(0) {
		return ErrFull // slot+1 would be the empty mark
	}
	if (x.n+1)*2 > len(x.tab) {
		if err := x.resize(max(minIndex, 2*len(x.tab))); err != nil {
			return err
		}
	}
	x.put(uint64(h)<<32 | uint64(slot) + 1)
	x.n++
	return nil
}

func (x *Index) put(e uint64) {
	mask := uint32(len(x.tab) - 1)
	i := uint32(e>>32) & mask
	for x.tab[i] != 0 {
		i = (i + 1) & mask
	}
	x.tab[i] = e
}

// Probe walks the slots filed under one hash.
type Probe struct {
	tab []uint64
	i   uint32
	h   uint32
}

// Find returns a probe of the slots filed under hash h.
func (x *Index) Find(h uint32) Probe {
	return Probe{tab: x.tab, i: h & uint32(len(x.tab)-1), h: h}
}

// Next returns the next slot filed under the probe's hash; ok is false
// when there are no more. The index must not change during a probe.
func (p *Probe) Next() (slot uint32, ok bool) {
	if len(p.tab) == 0 {
		return 0, false
	}
	mask := uint32(len(p.tab) - 1)
	for {
		e := p.tab[p.i]
		if e == 0 {
			return 0, false // at most half full: an empty entry ends every run
		}
		p.i = (p.i + 1) & mask
		if uint32(e>>32) == p.h {
			return uint32(e) - 1, true
		}
	}
}

// Delete removes the entry of slot under hash h and reports whether there
// was one.
func (x *Index) Delete(h, slot uint32) bool {
	if x.n == 0 {
		return false
	}
	mask := uint32(len(x.tab) - 1)
	want := uint64(h)<<32 | uint64(slot) + 1
	i := h & mask
	for x.tab[i] != want {
		if x.tab[i] == 0 {
			return false
		}
		i = (i + 1) & mask
	}
	// Backward-shift deletion: move later entries of the run into the
	// hole unless that would put one before its home entry.
	for j := (i + 1) & mask; x.tab[j] != 0; j = (j + 1) & mask {
		home := uint32(x.tab[j]>>32) & mask
		if (j-home)&mask >= (j-i)&mask {
			x.tab[i] = x.tab[j]
			i = j
		}
	}
	x.tab[i] = 0
	x.n--
	if len(x.tab) > minIndex && x.n*8 < len(x.tab) {
		// Shrinking cannot fail for want of room; if the kernel refuses
		// the new mapping the old one stays.
		_ = x.resize(len(x.tab) / 2)
	}
	return true
}

// resize moves the entries to a table of size entries (a power of two).
func (x *Index) resize(size int) error {
	mem, err := unix.Mmap(-1, 0, size*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("offheap: index of %d entries: %w", size, err)
	}
	old, oldMem := x.tab, x.mem
	x.mem = mem
	x.tab = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(mem))), size)
	for _, e := range old {
		if e != 0 {
			x.put(e)
		}
	}
	if oldMem != nil {
		_ = unix.Munmap(oldMem)
	}
	return nil
}

// Close unmaps the table and empties the index.
func (x *Index) Close() {
	if x.mem != nil {
		_ = unix.Munmap(x.mem)
	}
	x.mem, x.tab, x.n = nil, nil, 0
}
