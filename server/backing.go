package server

import "ringfuse/wire"

// openBacking registers fd as the passthrough backing file of handle fh.
func (s *Server) openBacking(fh uint64, fd int) (int32, bool) {
	c := s.conn.Load()
	if !s.opts.Passthrough || c == nil || c.info.Flags&wire.FUSE_PASSTHROUGH == 0 {
		return 0, false
	}
	s.backingMu.Lock()
	defer s.backingMu.Unlock()
	if s.backingFn == nil {
		return 0, false
	}
	id, err := s.backingFn(fd)
	if err != nil {
		s.log.Printf("passthrough: registering backing file: %v", err)
		return 0, false
	}
	s.backing[fh] = id
	return id, true
}

// releaseBacking unregisters the backing file of handle fh, if any.
func (s *Server) releaseBacking(fh uint64) {
	if !s.opts.Passthrough {
		return
	}
	s.backingMu.Lock()
	defer s.backingMu.Unlock()
	if id, ok := s.backing[fh]; ok {
		delete(s.backing, fh)
		if err := s.backingCl(id); err != nil {
			s.log.Printf("passthrough: closing backing id %d: %v", id, err)
		}
	}
}
