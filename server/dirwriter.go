package server

import (
	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// dirWriter encodes READDIR and READDIRPLUS entries straight into the
// reply buffer.
type dirWriter struct {
	w    *Worker
	buf  []byte
	n    int
	plus bool
}

var _ ringfuse.DirWriter = (*dirWriter)(nil)

func (d *dirWriter) reset(buf []byte, plus bool) {
	d.buf, d.n, d.plus = buf, 0, plus
}

func (d *dirWriter) Plus() bool { return d.plus }

func (d *dirWriter) Add(name string, ino uint64, typ uint32, off uint64) bool {
	if d.plus {
		// A READDIRPLUS entry without attributes: node ID 0 tells the
		// kernel not to instantiate it.
		var dp wire.Direntplus
		dp.Dirent = wire.Dirent{Ino: ino, Off: off, Type: (typ & 0o170000) >> 12}
		return d.put(wire.PutDirentplus(d.buf[d.n:], &dp, name))
	}
	de := wire.Dirent{Ino: ino, Off: off, Type: (typ & 0o170000) >> 12}
	return d.put(wire.PutDirent(d.buf[d.n:], &de, name))
}

func (d *dirWriter) put(n int) bool {
	if n == 0 {
		return false
	}
	d.n += n
	return true
}

func (d *dirWriter) AddEntry(name string, e *ringfuse.Entry, off uint64) bool {
	if !d.plus || name == "." || name == ".." || e == nil || e.Node == nil || entryKey(e) == (ringfuse.InodeKey{}) {
		// The kernel neither instantiates nor counts "." and "..".
		var ino uint64
		var mode uint32
		if e != nil {
			ino, mode = e.Attr.Ino, e.Attr.Mode
		}
		ok := d.Add(name, ino, mode, off)
		if ok && e != nil && e.Node != nil && d.w.s.ops.table != nil {
			d.w.s.ops.forget(e.Node) // added without a kernel node: give the reference back
		}
		return ok
	}
	if wire.DirentplusSize(len(name)) > len(d.buf)-d.n {
		return false
	}
	w := d.w
	if e.EntryTimeout == 0 && e.AttrTimeout == 0 {
		e.EntryTimeout, e.AttrTimeout = w.s.entryTimeout, w.s.attrTimeout
	}
	var dp wire.Direntplus
	id, err := w.s.refEntry(e)
	if err != nil {
		// Given back already: end the listing here, as a full reply
		// would.
		return false
	}
	w.handout.counted = append(w.handout.counted, id)
	fillEntryOut(&dp.Entry, id, e)
	dp.Dirent = wire.Dirent{Ino: e.Attr.Ino, Off: off, Type: (e.Attr.Mode & 0o170000) >> 12}
	return d.put(wire.PutDirentplus(d.buf[d.n:], &dp, name))
}
