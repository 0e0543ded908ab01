package server

import "github.com/ringfuse/ringfuse/wire"

// Passthrough backing files are shared per kernel node. The kernel keeps
// one backing file per inode while any passthrough open of it lasts, and
// refuses an open whose backing ID names another file (EBUSY, which the
// client sees as EIO). Registering the file of the first open and handing
// its ID to every later open of the node is also enough for writes: the
// kernel opens its own backing file for each FUSE file, with that file's
// flags, from the registered file's path and credentials, so a read-only
// first open does not make later writers fail.

// backingKey names one open file: the node it opened and its handle. The
// node is part of the key because a filesystem may reuse a handle value
// across nodes.
type backingKey struct{ node, fh uint64 }

// nodeBacking is the backing file registered for one node and the number
// of open files that use it.
type nodeBacking struct {
	id    int32
	opens int
}

// openBacking lets the open file fh of node use the node's backing file,
// registering fd as that file if the node has none yet.
func (s *Server) openBacking(node, fh uint64, fd int) (int32, bool) {
	c := s.conn.Load()
	if !s.opts.Passthrough || c == nil || c.info.Flags&wire.FUSE_PASSTHROUGH == 0 {
		return 0, false
	}
	s.backingMu.Lock()
	defer s.backingMu.Unlock()
	if s.backingFn == nil {
		return 0, false
	}
	b := s.byNode[node]
	if b == nil {
		id, err := s.backingFn(fd)
		if err != nil {
			s.log.Printf("passthrough: registering backing file: %v", err)
			return 0, false
		}
		b = &nodeBacking{id: id}
		s.byNode[node] = b
	}
	b.opens++
	s.backing[backingKey{node, fh}]++
	return b.id, true
}

// releaseBacking ends the use of the node's backing file by the open file
// fh, and unregisters the file when no open file uses it any more.
func (s *Server) releaseBacking(node, fh uint64) {
	if !s.opts.Passthrough {
		return
	}
	s.backingMu.Lock()
	defer s.backingMu.Unlock()
	k := backingKey{node, fh}
	if s.backing[k] == 0 {
		return // opened without passthrough
	}
	if s.backing[k]--; s.backing[k] == 0 {
		delete(s.backing, k)
	}
	b := s.byNode[node]
	if b == nil {
		return
	}
	if b.opens--; b.opens > 0 {
		return
	}
	delete(s.byNode, node)
	if err := s.backingCl(b.id); err != nil {
		s.log.Printf("passthrough: closing backing id %d: %v", b.id, err)
	}
}

// BackingFiles returns the number of passthrough backing files registered
// with the kernel.
func (s *Server) BackingFiles() int {
	s.backingMu.Lock()
	defer s.backingMu.Unlock()
	return len(s.byNode)
}
