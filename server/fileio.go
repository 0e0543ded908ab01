package server

import "github.com/ringfuse/ringfuse/wire"

// FileIO is a READ or WRITE that a channel performs itself on the
// filesystem's descriptor (see ringfuse.FdFiler), between
// [Worker.StartFileIO] and [Worker.FinishFileIO].
type FileIO struct {
	// Fd is the descriptor to read or write.
	Fd int
	// Off is the file offset.
	Off int64
	// Len is the number of bytes to read into the start of the reply
	// buffer, or to write from Data.
	Len int
	// Write is set for a WRITE.
	Write bool
	// Data is the data of a WRITE (a part of the request's payload).
	Data []byte
	// Unique is the request's unique, for the reply.
	Unique uint64

	hold any
}

// StartFileIO reports whether the request decoded by [Worker.DecodeRing]
// is a READ or WRITE that the channel may do itself on a descriptor,
// reading at most outCap bytes. If so it fills io, counts the request and
// holds the descriptor until FinishFileIO; if not, the request stays
// decoded for [Worker.Serve].
func (w *Worker) StartFileIO(outCap int, io *FileIO) bool {
	f := w.s.ops.fdFiler
	if f == nil || w.s.conn.Load() == nil || w.s.disconnected.Load() {
		return false
	}
	if w.decodeErr != nil {
		return false
	}
	h := &w.req.Header
	if h.Unique == 0 || h.NodeID == pollHackID {
		return false
	}
	var fh uint64
	switch h.Opcode {
	case wire.FUSE_READ:
		if w.s.ops.read == nil {
			return false
		}
		in := wire.ArgAs[wire.ReadIn](&w.req)
		fh = in.Fh
		*io = FileIO{Off: int64(in.Offset), Len: min(int(in.Size), outCap)}
	case wire.FUSE_WRITE:
		if w.s.ops.write == nil {
			return false
		}
		in := wire.ArgAs[wire.WriteIn](&w.req)
		if in.WriteFlags&wire.FUSE_WRITE_KILL_SUIDGID != 0 {
			return false // the filesystem clears the bits first
		}
		fh = in.Fh
		*io = FileIO{Off: int64(in.Offset), Len: len(w.req.Data), Write: true, Data: w.req.Data}
	default:
		return false
	}
	if io.Off < 0 {
		return false
	}
	if _, ok := w.s.nodes.get(h.NodeID); !ok {
		return false // HandleRing answers ESTALE
	}
	fd, hold, ok := f.AcquireFd(fh, io.Off, io.Len)
	if !ok {
		return false
	}
	io.Fd, io.hold, io.Unique = fd, hold, h.Unique
	w.stats.ops[h.Opcode].Add(1)
	w.req = wire.Request{} // drop the references into the entry
	return true
}

// FinishFileIO ends io with the result of its read or write, all of it
// done (a byte count, short only at the end of the file or after an
// error, or a negative errno), and returns the reply: for a READ, the data
// is already at the start of out; for a WRITE, the reply is written into
// out.
func (w *Worker) FinishFileIO(io *FileIO, res int32, out []byte) Reply {
	w.s.ops.fdFiler.ReleaseFd(io.hold)
	r := Reply{Unique: io.Unique, Opcode: wire.FUSE_READ}
	if io.Write {
		r.Opcode = wire.FUSE_WRITE
	}
	switch {
	case res < 0:
		w.stats.errors.Add(1)
		r.Error = res
	case io.Write:
		*wire.View[wire.WriteOut](out) = wire.WriteOut{Size: uint32(res)}
		r.Len = wire.SizeofWriteOut
	default:
		r.Len = int(res)
	}
	return r
}

// AbandonFileIO ends io without a reply, when the channel stops before
// its read or write completed.
func (w *Worker) AbandonFileIO(io *FileIO) {
	w.s.ops.fdFiler.ReleaseFd(io.hold)
	*io = FileIO{}
}
