package nodefs

import "sync/atomic"

// The server keeps a number for each inode it holds (ringfuse.NodeTable)
// and asks for the inode by number on every request: slots maps numbers
// to inodes with no lock on that path.
const (
	slotChunkBits = 12
	slotChunk     = 1 << slotChunkBits
	slotChunks    = 1 << 16 // 256M inodes
)

type slotTable struct {
	chunks [slotChunks]atomic.Pointer[[slotChunk]atomic.Pointer[Inode]]
	// Guarded by tree.mu.
	next uint64
	free []uint64
}

// take gives in a number (never 0). tree.mu is held.
func (s *slotTable) take(in *Inode) {
	var i uint64
	if n := len(s.free); n > 0 {
		i, s.free = s.free[n-1], s.free[:n-1]
	} else {
		s.next++
		i = s.next
		if i>>slotChunkBits >= slotChunks {
			panic("nodefs: more than 256M inodes")
		}
	}
	c := s.chunks[i>>slotChunkBits].Load()
	if c == nil {
		c = new([slotChunk]atomic.Pointer[Inode])
		s.chunks[i>>slotChunkBits].Store(c)
	}
	c[i&(slotChunk-1)].Store(in)
	in.slot = i
}

// put frees in's number. tree.mu is held.
func (s *slotTable) put(in *Inode) {
	if in.slot == 0 {
		return
	}
	s.chunks[in.slot>>slotChunkBits].Load()[in.slot&(slotChunk-1)].Store(nil)
	s.free = append(s.free, in.slot)
	in.slot = 0
}

// at returns the inode numbered i.
func (s *slotTable) at(i uint64) *Inode {
	if i>>slotChunkBits >= slotChunks {
		return nil
	}
	c := s.chunks[i>>slotChunkBits].Load()
	if c == nil {
		return nil
	}
	return c[i&(slotChunk-1)].Load()
}
