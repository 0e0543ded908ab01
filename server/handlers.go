package server

import (
	"syscall"
	"time"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

type handler func(w *Worker, out []byte) (int, syscall.Errno)

// handlers is the dispatch table, indexed by opcode. A nil entry answers
// ENOSYS; TestDispatchTable checks that every opcode is either here or on
// the explicit unsupported list.
var handlers = [wire.OpcodeMax]handler{
	wire.FUSE_INIT:               (*Worker).doInit,
	wire.FUSE_DESTROY:            (*Worker).doDestroy,
	wire.FUSE_LOOKUP:             (*Worker).doLookup,
	wire.FUSE_FORGET:             (*Worker).doForget,
	wire.FUSE_BATCH_FORGET:       (*Worker).doForget,
	wire.FUSE_INTERRUPT:          (*Worker).doInterrupt,
	wire.FUSE_NOTIFY_REPLY:       (*Worker).doNotifyReply,
	wire.FUSE_GETATTR:            (*Worker).doGetattr,
	wire.FUSE_SETATTR:            (*Worker).doSetattr,
	wire.FUSE_STATX:              (*Worker).doStatx,
	wire.FUSE_READLINK:           (*Worker).doReadlink,
	wire.FUSE_SYMLINK:            (*Worker).doSymlink,
	wire.FUSE_MKNOD:              (*Worker).doMknod,
	wire.FUSE_MKDIR:              (*Worker).doMkdir,
	wire.FUSE_UNLINK:             (*Worker).doUnlink,
	wire.FUSE_RMDIR:              (*Worker).doRmdir,
	wire.FUSE_RENAME:             (*Worker).doRename,
	wire.FUSE_RENAME2:            (*Worker).doRename,
	wire.FUSE_LINK:               (*Worker).doLink,
	wire.FUSE_OPEN:               (*Worker).doOpen,
	wire.FUSE_READ:               (*Worker).doRead,
	wire.FUSE_WRITE:              (*Worker).doWrite,
	wire.FUSE_STATFS:             (*Worker).doStatfs,
	wire.FUSE_RELEASE:            (*Worker).doRelease,
	wire.FUSE_FSYNC:              (*Worker).doFsync,
	wire.FUSE_SETXATTR:           (*Worker).doSetxattr,
	wire.FUSE_GETXATTR:           (*Worker).doGetxattr,
	wire.FUSE_LISTXATTR:          (*Worker).doListxattr,
	wire.FUSE_REMOVEXATTR:        (*Worker).doRemovexattr,
	wire.FUSE_FLUSH:              (*Worker).doFlush,
	wire.FUSE_OPENDIR:            (*Worker).doOpendir,
	wire.FUSE_READDIR:            (*Worker).doReaddir,
	wire.FUSE_READDIRPLUS:        (*Worker).doReaddir,
	wire.FUSE_RELEASEDIR:         (*Worker).doReleasedir,
	wire.FUSE_FSYNCDIR:           (*Worker).doFsyncdir,
	wire.FUSE_GETLK:              (*Worker).doGetlk,
	wire.FUSE_SETLK:              (*Worker).doSetlk,
	wire.FUSE_SETLKW:             (*Worker).doSetlk,
	wire.FUSE_ACCESS:             (*Worker).doAccess,
	wire.FUSE_CREATE:             (*Worker).doCreate,
	wire.FUSE_FALLOCATE:          (*Worker).doFallocate,
	wire.FUSE_LSEEK:              (*Worker).doLseek,
	wire.FUSE_COPY_FILE_RANGE:    (*Worker).doCopyFileRange,
	wire.FUSE_COPY_FILE_RANGE_64: (*Worker).doCopyFileRange,
}

// unsupported lists the opcodes answered with ENOSYS on purpose. POLL must
// get ENOSYS: Go's runtime poller polls files, and a server that answered
// POLL for its own process could deadlock.
var unsupported = []wire.Opcode{
	wire.FUSE_POLL, wire.FUSE_IOCTL, wire.FUSE_BMAP, wire.FUSE_SETUPMAPPING,
	wire.FUSE_REMOVEMAPPING, wire.FUSE_SYNCFS, wire.FUSE_TMPFILE,
}

func (w *Worker) node() (ringfuse.Node, syscall.Errno) {
	n, ok := w.s.nodes.get(w.req.Header.NodeID)
	if !ok {
		return nil, syscall.ESTALE
	}
	return n, 0
}

func (w *Worker) resetEntry() *ringfuse.Entry {
	w.entry = ringfuse.Entry{EntryTimeout: w.s.entryTimeout, AttrTimeout: w.s.attrTimeout}
	return &w.entry
}

func splitDuration(d time.Duration) (uint64, uint32) {
	if d <= 0 {
		return 0, 0
	}
	return uint64(d / time.Second), uint32(d % time.Second)
}

// putEntry counts a lookup of w.entry and encodes it as fuse_entry_out.
func (w *Worker) putEntry(out []byte) (int, syscall.Errno) {
	e := &w.entry
	id, err := w.s.refEntry(e)
	if err != nil {
		if w.s.ops.table != nil {
			w.s.ops.forget(e.Node) // the reference the entry carried
		}
		e.Node = nil
		if err == errNoInode {
			return 0, syscall.EIO
		}
		return 0, syscall.ENOMEM
	}
	e.Node = nil // do not keep the filesystem's node alive from here
	w.handout.counted = append(w.handout.counted, id)
	fillEntryOut(wire.View[wire.EntryOut](out), id, e)
	return wire.SizeofEntryOut, 0
}

func fillEntryOut(eo *wire.EntryOut, id uint64, e *ringfuse.Entry) {
	eo.NodeID = id
	eo.Generation = e.Generation
	eo.EntryValid, eo.EntryValidNsec = splitDuration(e.EntryTimeout)
	eo.AttrValid, eo.AttrValidNsec = splitDuration(e.AttrTimeout)
	eo.Attr = e.Attr
}

func (w *Worker) putAttr(out []byte) int {
	ao := wire.View[wire.AttrOut](out)
	*ao = wire.AttrOut{Attr: w.attr.Attr} // whole: the padding must not carry stale bytes
	ao.AttrValid, ao.AttrValidNsec = splitDuration(w.attr.Timeout)
	return wire.SizeofAttrOut
}

func (w *Worker) doDestroy(out []byte) (int, syscall.Errno) {
	if w.s.ops.destroy != nil {
		w.s.ops.destroy.Destroy()
	}
	return 0, 0
}

func (w *Worker) doLookup(out []byte) (int, syscall.Errno) {
	if w.s.ops.lookup == nil {
		return 0, syscall.ENOSYS
	}
	parent, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	if w.req.Header.NodeID == wire.FUSE_ROOT_ID && string(w.req.Name) == PollHackName {
		return w.lookupPollHack(out), 0
	}
	e := w.resetEntry()
	if errno := w.s.ops.lookup.Lookup(&w.ctx, parent, string(w.req.Name), e); errno != 0 {
		return 0, errno
	}
	return w.putEntry(out)
}

// doForget serves FORGET and BATCH_FORGET through the one forget path
// (ApplyForgets), which also counts the message. The forgets are applied
// from the request buffer, not copied: a storm's large batches would
// otherwise leave a copy's storage with every worker.
func (w *Worker) doForget(out []byte) (int, syscall.Errno) {
	f := &w.forgets
	f.borrow(&w.req, &w.forgetOne)
	w.ApplyForgets(f)
	f.ones = nil // it pointed into the request
	return 0, 0
}

func (w *Worker) doInterrupt(out []byte) (int, syscall.Errno) {
	in := wire.ArgAs[wire.InterruptIn](&w.req)
	w.s.interrupt(in.Unique)
	return 0, 0
}

func (w *Worker) doGetattr(out []byte) (int, syscall.Errno) {
	if w.s.ops.getattr == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.GetattrIn](&w.req)
	w.attr = ringfuse.AttrOut{Timeout: w.s.attrTimeout}
	hasFh := in.GetattrFlags&wire.FUSE_GETATTR_FH != 0
	if errno := w.s.ops.getattr.GetAttr(&w.ctx, n, in.Fh, hasFh, &w.attr); errno != 0 {
		return 0, errno
	}
	return w.putAttr(out), 0
}

func (w *Worker) doSetattr(out []byte) (int, syscall.Errno) {
	if w.s.ops.setattr == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	w.attr = ringfuse.AttrOut{Timeout: w.s.attrTimeout}
	if errno := w.s.ops.setattr.SetAttr(&w.ctx, n, wire.ArgAs[wire.SetattrIn](&w.req), &w.attr); errno != 0 {
		return 0, errno
	}
	return w.putAttr(out), 0
}

func (w *Worker) doReadlink(out []byte) (int, syscall.Errno) {
	if w.s.ops.readlink == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	target, errno := w.s.ops.readlink.Readlink(&w.ctx, n)
	if errno != 0 {
		return 0, errno
	}
	if len(target) > len(out) {
		return 0, syscall.ENAMETOOLONG
	}
	return copy(out, target), 0
}

func (w *Worker) doSymlink(out []byte) (int, syscall.Errno) {
	if w.s.ops.symlink == nil {
		return 0, syscall.ENOSYS
	}
	parent, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	e := w.resetEntry()
	if errno := w.s.ops.symlink.Symlink(&w.ctx, parent, string(w.req.Name), string(w.req.Name2), e); errno != 0 {
		return 0, errno
	}
	return w.putEntry(out)
}

func (w *Worker) doMknod(out []byte) (int, syscall.Errno) {
	if w.s.ops.mknod == nil {
		return 0, syscall.ENOSYS
	}
	parent, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.MknodIn](&w.req)
	e := w.resetEntry()
	if errno := w.s.ops.mknod.Mknod(&w.ctx, parent, string(w.req.Name), in.Mode, in.Rdev, in.Umask, e); errno != 0 {
		return 0, errno
	}
	return w.putEntry(out)
}

func (w *Worker) doMkdir(out []byte) (int, syscall.Errno) {
	if w.s.ops.mkdir == nil {
		return 0, syscall.ENOSYS
	}
	parent, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.MkdirIn](&w.req)
	e := w.resetEntry()
	if errno := w.s.ops.mkdir.Mkdir(&w.ctx, parent, string(w.req.Name), in.Mode, in.Umask, e); errno != 0 {
		return 0, errno
	}
	return w.putEntry(out)
}

func (w *Worker) doUnlink(out []byte) (int, syscall.Errno) {
	if w.s.ops.unlink == nil {
		return 0, syscall.ENOSYS
	}
	parent, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	return 0, w.s.ops.unlink.Unlink(&w.ctx, parent, string(w.req.Name))
}

func (w *Worker) doRmdir(out []byte) (int, syscall.Errno) {
	if w.s.ops.rmdir == nil {
		return 0, syscall.ENOSYS
	}
	parent, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	return 0, w.s.ops.rmdir.Rmdir(&w.ctx, parent, string(w.req.Name))
}

func (w *Worker) doRename(out []byte) (int, syscall.Errno) {
	if w.s.ops.rename == nil {
		return 0, syscall.ENOSYS
	}
	parent, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	var newdir uint64
	var flags uint32
	if w.req.Header.Opcode == wire.FUSE_RENAME2 {
		in := wire.ArgAs[wire.Rename2In](&w.req)
		newdir, flags = in.Newdir, in.Flags
	} else {
		newdir = wire.ArgAs[wire.RenameIn](&w.req).Newdir
	}
	newParent, ok := w.s.nodes.get(newdir)
	if !ok {
		return 0, syscall.ESTALE
	}
	return 0, w.s.ops.rename.Rename(&w.ctx, parent, string(w.req.Name), newParent, string(w.req.Name2), flags)
}

func (w *Worker) doLink(out []byte) (int, syscall.Errno) {
	if w.s.ops.link == nil {
		return 0, syscall.ENOSYS
	}
	newParent, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	old, ok := w.s.nodes.get(wire.ArgAs[wire.LinkIn](&w.req).Oldnodeid)
	if !ok {
		return 0, syscall.ESTALE
	}
	e := w.resetEntry()
	if errno := w.s.ops.link.Link(&w.ctx, old, newParent, string(w.req.Name), e); errno != 0 {
		return 0, errno
	}
	return w.putEntry(out)
}

// putOpen writes the OPEN reply of node id (its fsNode n).
func (w *Worker) putOpen(out []byte, id uint64, n ringfuse.Node, dir bool) int {
	o := &w.open
	oo := wire.View[wire.OpenOut](out)
	oo.Fh = o.Fh
	oo.OpenFlags = o.Flags
	oo.BackingID = 0
	if !dir && o.PassthroughFd >= 0 {
		if bid, ok := w.s.openBacking(id, o.Fh, o.PassthroughFd); ok {
			oo.BackingID = bid
			oo.OpenFlags |= wire.FOPEN_PASSTHROUGH
			oo.OpenFlags &^= wire.FOPEN_KEEP_CACHE | wire.FOPEN_DIRECT_IO
		}
	}
	h := &w.handout
	h.opened, h.openedID, h.openedNode, h.openedDir = o.Fh, id, n, dir
	return wire.SizeofOpenOut
}

func (w *Worker) doOpen(out []byte) (int, syscall.Errno) {
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	w.open = ringfuse.OpenOut{PassthroughFd: -1}
	if w.s.ops.open != nil {
		in := wire.ArgAs[wire.OpenIn](&w.req)
		if errno := w.s.ops.open.Open(&w.ctx, n, in.Flags, &w.open); errno != 0 {
			return 0, errno
		}
		w.killSuidgidAtOpen(n, in.OpenFlags)
	}
	return w.putOpen(out, w.req.Header.NodeID, n, false), 0
}

// killSuidgidAtOpen clears the set-ID bits of a file just opened with
// O_TRUNC by a caller without CAP_FSETID: with FUSE_HANDLE_KILLPRIV_V2 the
// kernel leaves that to the server and says so with FUSE_OPEN_KILL_SUIDGID.
// The filesystem does it in SETATTR, as for a truncate.
func (w *Worker) killSuidgidAtOpen(n ringfuse.Node, openFlags uint32) {
	if openFlags&wire.FUSE_OPEN_KILL_SUIDGID == 0 || w.s.ops.setattr == nil {
		return
	}
	in := ringfuse.SetAttrIn{Valid: wire.FATTR_KILL_SUIDGID | wire.FATTR_FH, Fh: w.open.Fh}
	var ao ringfuse.AttrOut
	if errno := w.s.ops.setattr.SetAttr(&w.ctx, n, &in, &ao); errno != 0 {
		w.s.log.Printf("%s: clearing set-ID bits after open(O_TRUNC): %v", w.channel, errno)
	}
}

func (w *Worker) doCreate(out []byte) (int, syscall.Errno) {
	if w.s.ops.create == nil {
		return 0, syscall.ENOSYS
	}
	parent, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.CreateIn](&w.req)
	e := w.resetEntry()
	w.open = ringfuse.OpenOut{PassthroughFd: -1}
	if errno := w.s.ops.create.Create(&w.ctx, parent, string(w.req.Name), in.Flags, in.Mode, in.Umask, e, &w.open); errno != 0 {
		return 0, errno
	}
	n := e.Node
	// No killSuidgidAtOpen here: the kernel marks a creating open with
	// O_TRUNC too, and a file just created keeps the bits it asked for.
	k, errno := w.putEntry(out)
	if errno != 0 {
		// No kernel node, so the kernel will never release the file.
		if w.s.ops.release != nil {
			w.s.ops.release.Release(&w.ctx, n, w.open.Fh, in.Flags)
		}
		return 0, errno
	}
	return k + w.putOpen(out[k:], wire.View[wire.EntryOut](out).NodeID, n, false), 0
}

func (w *Worker) doRead(out []byte) (int, syscall.Errno) {
	if w.s.ops.read == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.ReadIn](&w.req)
	size := min(int(in.Size), len(out))
	return w.s.ops.read.Read(&w.ctx, n, in.Fh, int64(in.Offset), out[:size])
}

func (w *Worker) doWrite(out []byte) (int, syscall.Errno) {
	if w.s.ops.write == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.WriteIn](&w.req)
	fh, off, flags := in.Fh, int64(in.Offset), in.WriteFlags
	written, errno := w.s.ops.write.Write(&w.ctx, n, fh, off, w.req.Data, flags)
	if errno != 0 {
		return 0, errno
	}
	// out may alias the data just written (ring payload): write the reply
	// only now.
	wo := wire.View[wire.WriteOut](out)
	*wo = wire.WriteOut{Size: uint32(written)}
	return wire.SizeofWriteOut, 0
}

func (w *Worker) doStatfs(out []byte) (int, syscall.Errno) {
	so := wire.View[wire.StatfsOut](out)
	*so = wire.StatfsOut{}
	if w.s.ops.statfs == nil {
		so.St.Namelen, so.St.Bsize = 255, 512
		return wire.SizeofStatfsOut, 0
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	if errno := w.s.ops.statfs.StatFS(&w.ctx, n, &so.St); errno != 0 {
		return 0, errno
	}
	return wire.SizeofStatfsOut, 0
}

func (w *Worker) doRelease(out []byte) (int, syscall.Errno) {
	in := wire.ArgAs[wire.ReleaseIn](&w.req)
	w.s.releaseBacking(w.req.Header.NodeID, in.Fh)
	if w.s.ops.release == nil {
		return 0, 0
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	w.s.ops.release.Release(&w.ctx, n, in.Fh, in.Flags)
	return 0, 0
}

func (w *Worker) doFsync(out []byte) (int, syscall.Errno) {
	if w.s.ops.fsync == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.FsyncIn](&w.req)
	return 0, w.s.ops.fsync.Fsync(&w.ctx, n, in.Fh, in.FsyncFlags&wire.FUSE_FSYNC_FDATASYNC != 0)
}

func (w *Worker) doFlush(out []byte) (int, syscall.Errno) {
	if w.s.ops.flush == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.FlushIn](&w.req)
	return 0, w.s.ops.flush.Flush(&w.ctx, n, in.Fh, in.LockOwner)
}

func (w *Worker) doSetxattr(out []byte) (int, syscall.Errno) {
	if w.s.ops.xattr == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.SetxattrIn](&w.req)
	return 0, w.s.ops.xattr.SetXattr(&w.ctx, n, string(w.req.Name), w.req.Data, in.Flags)
}

// xattrReply answers GETXATTR and LISTXATTR: a size query (size 0) gets
// fuse_getxattr_out, otherwise the data itself.
func (w *Worker) xattrReply(out []byte, get func(buf []byte) (int, syscall.Errno)) (int, syscall.Errno) {
	size := int(wire.ArgAs[wire.GetxattrIn](&w.req).Size)
	if size == 0 {
		k, errno := get(nil)
		if errno != 0 {
			return 0, errno
		}
		*wire.View[wire.GetxattrOut](out) = wire.GetxattrOut{Size: uint32(k)}
		return wire.SizeofGetxattrOut, 0
	}
	return get(out[:min(size, len(out))])
}

func (w *Worker) doGetxattr(out []byte) (int, syscall.Errno) {
	if w.s.ops.xattr == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	name := string(w.req.Name) // copy: the reply may overwrite the payload holding it
	return w.xattrReply(out, func(buf []byte) (int, syscall.Errno) {
		return w.s.ops.xattr.GetXattr(&w.ctx, n, name, buf)
	})
}

func (w *Worker) doListxattr(out []byte) (int, syscall.Errno) {
	if w.s.ops.xattr == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	return w.xattrReply(out, func(buf []byte) (int, syscall.Errno) {
		return w.s.ops.xattr.ListXattr(&w.ctx, n, buf)
	})
}

func (w *Worker) doRemovexattr(out []byte) (int, syscall.Errno) {
	if w.s.ops.xattr == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	return 0, w.s.ops.xattr.RemoveXattr(&w.ctx, n, string(w.req.Name))
}

func (w *Worker) doOpendir(out []byte) (int, syscall.Errno) {
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	w.open = ringfuse.OpenOut{PassthroughFd: -1}
	if w.s.ops.opendir != nil {
		in := wire.ArgAs[wire.OpenIn](&w.req)
		if errno := w.s.ops.opendir.OpenDir(&w.ctx, n, in.Flags, &w.open); errno != 0 {
			return 0, errno
		}
	}
	return w.putOpen(out, w.req.Header.NodeID, n, true), 0
}

func (w *Worker) doReaddir(out []byte) (int, syscall.Errno) {
	if w.s.ops.readdir == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.ReadIn](&w.req)
	fh, off := in.Fh, in.Offset
	w.dw.reset(out[:min(int(in.Size), len(out))], w.req.Header.Opcode == wire.FUSE_READDIRPLUS)
	errno = w.s.ops.readdir.ReadDir(&w.ctx, n, fh, off, &w.dw)
	if errno != 0 && w.dw.n == 0 {
		return 0, errno
	}
	return w.dw.n, 0
}

func (w *Worker) doReleasedir(out []byte) (int, syscall.Errno) {
	if w.s.ops.releasdir == nil {
		return 0, 0
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	w.s.ops.releasdir.ReleaseDir(&w.ctx, n, wire.ArgAs[wire.ReleaseIn](&w.req).Fh)
	return 0, 0
}

func (w *Worker) doFsyncdir(out []byte) (int, syscall.Errno) {
	if w.s.ops.fsyncdir == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.FsyncIn](&w.req)
	return 0, w.s.ops.fsyncdir.FsyncDir(&w.ctx, n, in.Fh, in.FsyncFlags&wire.FUSE_FSYNC_FDATASYNC != 0)
}

func (w *Worker) doGetlk(out []byte) (int, syscall.Errno) {
	if w.s.ops.lock == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.LkIn](&w.req)
	lk := in.Lk
	lo := wire.View[wire.LkOut](out)
	*lo = wire.LkOut{} // the filesystem may set only some fields
	if errno := w.s.ops.lock.GetLk(&w.ctx, n, in.Fh, in.Owner, &lk, &lo.Lk); errno != 0 {
		return 0, errno
	}
	return wire.SizeofLkOut, 0
}

func (w *Worker) doSetlk(out []byte) (int, syscall.Errno) {
	if w.s.ops.lock == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.LkIn](&w.req)
	flock := in.LkFlags&wire.FUSE_LK_FLOCK != 0
	return 0, w.s.ops.lock.SetLk(&w.ctx, n, in.Fh, in.Owner, &in.Lk, flock, w.req.Header.Opcode == wire.FUSE_SETLKW)
}

func (w *Worker) doAccess(out []byte) (int, syscall.Errno) {
	if w.s.ops.access == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	return 0, w.s.ops.access.Access(&w.ctx, n, wire.ArgAs[wire.AccessIn](&w.req).Mask)
}

func (w *Worker) doFallocate(out []byte) (int, syscall.Errno) {
	if w.s.ops.fallocate == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.FallocateIn](&w.req)
	return 0, w.s.ops.fallocate.Fallocate(&w.ctx, n, in.Fh, int64(in.Offset), int64(in.Length), in.Mode)
}

func (w *Worker) doLseek(out []byte) (int, syscall.Errno) {
	if w.s.ops.lseek == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.LseekIn](&w.req)
	off, errno := w.s.ops.lseek.Lseek(&w.ctx, n, in.Fh, int64(in.Offset), in.Whence)
	if errno != 0 {
		return 0, errno
	}
	*wire.View[wire.LseekOut](out) = wire.LseekOut{Offset: uint64(off)}
	return wire.SizeofLseekOut, 0
}

func (w *Worker) doCopyFileRange(out []byte) (int, syscall.Errno) {
	if w.s.ops.copyRange == nil {
		return 0, syscall.ENOSYS
	}
	src, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.CopyFileRangeIn](&w.req)
	dst, ok := w.s.nodes.get(in.NodeidOut)
	if !ok {
		return 0, syscall.ESTALE
	}
	length := in.Len
	op := w.req.Header.Opcode
	if op == wire.FUSE_COPY_FILE_RANGE && length > 1<<32-1 {
		length = 1<<32 - uint64(pageSize) // fuse_write_out.size is 32 bits; the kernel clamps to UINT_MAX & PAGE_MASK
	}
	copied, errno := w.s.ops.copyRange.CopyFileRange(&w.ctx, src, in.FhIn, int64(in.OffIn), dst, in.FhOut, int64(in.OffOut), length, in.Flags)
	if errno != 0 {
		return 0, errno
	}
	if op == wire.FUSE_COPY_FILE_RANGE_64 {
		*wire.View[wire.CopyFileRangeOut](out) = wire.CopyFileRangeOut{BytesCopied: copied}
		return wire.SizeofCopyFileRangeOut, 0
	}
	*wire.View[wire.WriteOut](out) = wire.WriteOut{Size: uint32(copied)}
	return wire.SizeofWriteOut, 0
}

func (w *Worker) doStatx(out []byte) (int, syscall.Errno) {
	if w.s.ops.statx == nil {
		return 0, syscall.ENOSYS
	}
	n, errno := w.node()
	if errno != 0 {
		return 0, errno
	}
	in := wire.ArgAs[wire.StatxIn](&w.req)
	fh, hasFh, flags, mask := in.Fh, in.GetattrFlags&wire.FUSE_GETATTR_FH != 0, in.SxFlags, in.SxMask
	so := wire.View[wire.StatxOut](out)
	*so = wire.StatxOut{}
	w.statx.Timeout = w.s.attrTimeout
	w.statx.Stat = wire.Statx{}
	if errno := w.s.ops.statx.Statx(&w.ctx, n, fh, hasFh, flags, mask, &w.statx); errno != 0 {
		return 0, errno
	}
	so.AttrValid, so.AttrValidNsec = splitDuration(w.statx.Timeout)
	so.Stat = w.statx.Stat
	return wire.SizeofStatxOut, 0
}
