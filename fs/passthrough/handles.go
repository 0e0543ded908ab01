//go:build linux

package passthrough

import (
	"sync"
	"sync/atomic"
)

// openFile is an open file or directory: the target of a file handle.
type openFile struct {
	fd  int
	gen uint32 // the high half of the fh, so a stale or forged fh misses
	// refs counts the table's reference plus each request using fd; the
	// descriptor is closed when it drops to zero, so a request racing
	// with RELEASE never touches a reused descriptor number.
	refs   atomic.Int32
	direct bool       // opened with O_DIRECT
	dir    *dirStream // non-nil for OPENDIR handles
	// bfd is, for a file opened with O_DIRECT, the same file opened
	// without it, for the reads and writes O_DIRECT refuses (see
	// openDirect); -1 otherwise.
	bfd int
	// dioAlign is the offset and length alignment O_DIRECT needs on fd.
	dioAlign int64
}

// put drops a reference taken by handleTable.get or held by the table.
func (f *openFile) put() {
	if f.refs.Add(-1) == 0 {
		closeFd(f.fd)
		if f.bfd >= 0 {
			closeFd(f.bfd)
		}
	}
}

const (
	chunkBits = 9
	chunkSize = 1 << chunkBits
	maxChunks = 1 << 11 // a million handles, far beyond RLIMIT_NOFILE
)

type handleChunk [chunkSize]atomic.Pointer[openFile]

// handleTable maps file handles to open files. An fh is a generation in
// its high 32 bits and a table index in its low 32 bits; lookups take no
// lock.
type handleTable struct {
	mu     sync.Mutex
	free   []uint32
	next   uint32
	gen    uint32
	chunks [maxChunks]atomic.Pointer[handleChunk]
}

// add stores f and returns its fh; ok is false when the table is full.
func (t *handleTable) add(f *openFile) (fh uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var idx uint32
	if n := len(t.free); n > 0 {
		idx = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if t.next >= maxChunks*chunkSize {
			return 0, false
		}
		idx = t.next
		t.next++
		if c := &t.chunks[idx>>chunkBits]; c.Load() == nil {
			c.Store(new(handleChunk))
		}
	}
	t.gen++
	if t.gen == 0 {
		t.gen = 1
	}
	f.gen = t.gen
	f.refs.Store(1)
	t.chunks[idx>>chunkBits].Load()[idx&(chunkSize-1)].Store(f)
	return uint64(f.gen)<<32 | uint64(idx), true
}

// slotOf returns the table slot fh names, or nil.
func (t *handleTable) slotOf(fh uint64) *atomic.Pointer[openFile] {
	idx := uint32(fh)
	ci := idx >> chunkBits
	if ci >= maxChunks {
		return nil
	}
	c := t.chunks[ci].Load()
	if c == nil {
		return nil
	}
	return &c[idx&(chunkSize-1)]
}

// get returns the open file for fh with a reference the caller must put,
// or nil if fh names no open file.
func (t *handleTable) get(fh uint64) *openFile {
	s := t.slotOf(fh)
	if s == nil {
		return nil
	}
	f := s.Load()
	if f == nil || f.gen != uint32(fh>>32) {
		return nil
	}
	for {
		r := f.refs.Load()
		if r <= 0 {
			return nil
		}
		if f.refs.CompareAndSwap(r, r+1) {
			return f
		}
	}
}

// remove takes fh out of the table and returns its open file, still
// holding the table's reference, or nil.
func (t *handleTable) remove(fh uint64) *openFile {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.slotOf(fh)
	if s == nil {
		return nil
	}
	f := s.Load()
	if f == nil || f.gen != uint32(fh>>32) {
		return nil
	}
	s.Store(nil)
	t.free = append(t.free, uint32(fh))
	return f
}

// drain removes every open file, for Close.
func (t *handleTable) drain() []*openFile {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*openFile
	for i := range t.next {
		s := &t.chunks[i>>chunkBits].Load()[i&(chunkSize-1)]
		if f := s.Swap(nil); f != nil {
			out = append(out, f)
			t.free = append(t.free, i)
		}
	}
	return out
}
