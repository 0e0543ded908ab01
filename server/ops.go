package server

import "github.com/ringfuse/ringfuse"

// ops holds the filesystem's optional interfaces, asserted once in New so
// that no request pays for a type assertion.
type ops struct {
	lookup    ringfuse.Lookuper
	forget    func(ringfuse.Node)
	table     ringfuse.NodeTable // only with forget
	getattr   ringfuse.GetAttrer
	setattr   ringfuse.SetAttrer
	statx     ringfuse.Statxer
	readlink  ringfuse.Readlinker
	symlink   ringfuse.Symlinker
	mknod     ringfuse.Mknoder
	mkdir     ringfuse.Mkdirer
	unlink    ringfuse.Unlinker
	rmdir     ringfuse.Rmdirer
	rename    ringfuse.Renamer
	link      ringfuse.Linker
	open      ringfuse.Opener
	read      ringfuse.Reader
	write     ringfuse.Writer
	fdFiler   ringfuse.FdFiler
	statfs    ringfuse.StatFSer
	release   ringfuse.Releaser
	fsync     ringfuse.Fsyncer
	flush     ringfuse.Flusher
	xattr     ringfuse.Xattrer
	opendir   ringfuse.DirOpener
	readdir   ringfuse.DirReader
	releasdir ringfuse.DirReleaser
	fsyncdir  ringfuse.DirFsyncer
	access    ringfuse.Accesser
	create    ringfuse.Creater
	fallocate ringfuse.Allocater
	lseek     ringfuse.Seeker
	copyRange ringfuse.CopyFileRanger
	lock      ringfuse.Locker
	destroy   ringfuse.Destroyer
}

func (o *ops) resolve(fs ringfuse.FileSystem) {
	o.lookup, _ = fs.(ringfuse.Lookuper)
	if f, ok := fs.(ringfuse.Forgetter); ok {
		o.forget = f.Forget
		// Numbers are only safe to keep if the server can give the
		// references back.
		o.table, _ = fs.(ringfuse.NodeTable)
	}
	o.getattr, _ = fs.(ringfuse.GetAttrer)
	o.setattr, _ = fs.(ringfuse.SetAttrer)
	o.statx, _ = fs.(ringfuse.Statxer)
	o.readlink, _ = fs.(ringfuse.Readlinker)
	o.symlink, _ = fs.(ringfuse.Symlinker)
	o.mknod, _ = fs.(ringfuse.Mknoder)
	o.mkdir, _ = fs.(ringfuse.Mkdirer)
	o.unlink, _ = fs.(ringfuse.Unlinker)
	o.rmdir, _ = fs.(ringfuse.Rmdirer)
	o.rename, _ = fs.(ringfuse.Renamer)
	o.link, _ = fs.(ringfuse.Linker)
	o.open, _ = fs.(ringfuse.Opener)
	o.read, _ = fs.(ringfuse.Reader)
	o.write, _ = fs.(ringfuse.Writer)
	o.fdFiler, _ = fs.(ringfuse.FdFiler)
	o.statfs, _ = fs.(ringfuse.StatFSer)
	o.release, _ = fs.(ringfuse.Releaser)
	o.fsync, _ = fs.(ringfuse.Fsyncer)
	o.flush, _ = fs.(ringfuse.Flusher)
	o.xattr, _ = fs.(ringfuse.Xattrer)
	o.opendir, _ = fs.(ringfuse.DirOpener)
	o.readdir, _ = fs.(ringfuse.DirReader)
	o.releasdir, _ = fs.(ringfuse.DirReleaser)
	o.fsyncdir, _ = fs.(ringfuse.DirFsyncer)
	o.access, _ = fs.(ringfuse.Accesser)
	o.create, _ = fs.(ringfuse.Creater)
	o.fallocate, _ = fs.(ringfuse.Allocater)
	o.lseek, _ = fs.(ringfuse.Seeker)
	o.copyRange, _ = fs.(ringfuse.CopyFileRanger)
	o.lock, _ = fs.(ringfuse.Locker)
	o.destroy, _ = fs.(ringfuse.Destroyer)
}
