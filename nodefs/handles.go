package nodefs

import "sync"

// handleTable holds the open files' handles by the fh the kernel sends
// back: an index into a slice, so a read finds its handle with no map and
// no allocation.
type handleTable struct {
	mu   sync.RWMutex
	hs   []handle
	free []uint64
}

// handle is one open file or directory.
type handle struct {
	fh  FileHandle
	dir *dirHandle // OPENDIR only
	use bool
}

// dirHandle is an open directory: the listing taken at offset 0, so that
// later READDIRs resume where the last one ended.
type dirHandle struct {
	mu      sync.Mutex
	entries []DirEntry
	inodes  []*Inode // the children listed, or nil for a Readdirer's listing
}

// add stores h and returns its fh (never 0).
func (t *handleTable) add(h handle) uint64 {
	h.use = true
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.free); n > 0 {
		i := t.free[n-1]
		t.free = t.free[:n-1]
		t.hs[i-1] = h
		return i
	}
	t.hs = append(t.hs, h)
	return uint64(len(t.hs))
}

// get returns the handle fh names; ok is false for one not open.
func (t *handleTable) get(fh uint64) (h handle, ok bool) {
	t.mu.RLock()
	if fh-1 < uint64(len(t.hs)) {
		h = t.hs[fh-1]
	}
	t.mu.RUnlock()
	return h, h.use
}

// remove closes fh and returns what it held.
func (t *handleTable) remove(fh uint64) (h handle, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fh-1 >= uint64(len(t.hs)) || !t.hs[fh-1].use {
		return handle{}, false
	}
	h = t.hs[fh-1]
	t.hs[fh-1] = handle{}
	t.free = append(t.free, fh)
	return h, true
}
