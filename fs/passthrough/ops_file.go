//go:build linux

package passthrough

import (
	"context"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/creds"
	"github.com/ringfuse/ringfuse/wire"
)

// addOpen registers fd as a new file handle and fills open.
func (fs *FS) addOpen(ctx context.Context, fd, flags int, dir *dirStream, open *ringfuse.OpenOut) syscall.Errno {
	f := &openFile{fd: fd, dir: dir, direct: flags&unix.O_DIRECT != 0, bfd: -1}
	if f.direct && dir == nil {
		if e := fs.openDirect(ctx, f); e != 0 {
			return e
		}
	}
	fh, ok := fs.handles.add(f)
	if !ok {
		if f.bfd >= 0 {
			closeFd(f.bfd)
		}
		return syscall.ENFILE
	}
	fs.openFiles.Add(1)
	open.Fh = fh
	if dir == nil && fs.opts.Passthrough {
		open.PassthroughFd = fd
	}
	return 0
}

// openNode opens n itself with flags (from openFlags) as the caller: it
// reopens n's O_PATH descriptor through /proc, so the backing filesystem
// checks the caller's right to open it (open_by_handle_at would check
// nothing). A symlink node fails with ELOOP.
func (fs *FS) openNode(ctx context.Context, n *node, flags int) (int, syscall.Errno) {
	p, e := fs.acquire(ctx, n)
	if e != 0 {
		return -1, e
	}
	defer fs.release(p)
	var fd int
	e = creds.Run(ctx, func() (e syscall.Errno) {
		if flags&unix.O_ACCMODE == unix.O_WRONLY {
			// Read-write if the caller may: with a writeback cache
			// the kernel reads pages through any handle.
			if fd, e = openProc(p.fd, flags&^unix.O_ACCMODE|unix.O_RDWR); e == 0 {
				return 0
			}
		}
		fd, e = openProc(p.fd, flags)
		return e
	})
	return fd, e
}

// Open opens n with the client's flags.
func (fs *FS) Open(ctx context.Context, rn ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	n, e := nodeOf(rn)
	if e != 0 {
		return e
	}
	of := openFlags(flags)
	var fd int
	// The new descriptor outlives the call, so the spare is no help.
	e = fs.retryFds(false, func() syscall.Errno {
		var e syscall.Errno
		fd, e = fs.openNode(ctx, n, of)
		return e
	})
	if e != 0 {
		return e
	}
	if e := fs.addOpen(ctx, fd, of, nil, out); e != 0 {
		closeFd(fd)
		return e
	}
	return 0
}

// withFile runs f on the descriptor of open file fh.
func (fs *FS) withFile(fh uint64, f func(of *openFile) syscall.Errno) syscall.Errno {
	of := fs.handles.get(fh)
	if of == nil {
		return syscall.EBADF
	}
	defer of.put()
	return f(of)
}

// Read reads into buf at off, all of it unless the file ends first.
func (fs *FS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	of := fs.handles.get(fh)
	if of == nil {
		return 0, syscall.EBADF
	}
	defer of.put()
	got := 0
	for got < len(buf) {
		r, err := of.pread(buf[got:], off+int64(got))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if got > 0 {
				break
			}
			return 0, errnoOf(err)
		}
		if r == 0 {
			break
		}
		got += r
	}
	return got, 0
}

// Write writes data at off (the kernel sets off to the end for an O_APPEND
// client; the backing descriptor never has O_APPEND).
func (fs *FS) Write(ctx context.Context, n ringfuse.Node, fh uint64, off int64, data []byte, flags uint32) (int, syscall.Errno) {
	of := fs.handles.get(fh)
	if of == nil {
		return 0, syscall.EBADF
	}
	defer of.put()
	if flags&wire.FUSE_WRITE_KILL_SUIDGID != 0 {
		creds.Daemon(ctx, func() syscall.Errno { return killSuidgid(of.fd) })
	}
	// As the caller: a write by a caller without CAP_FSETID clears the
	// set-ID bits on the backing file too, as it would natively.
	var put int
	e := creds.Run(ctx, func() (e syscall.Errno) {
		put, e = writeAt(of, off, data)
		return e
	})
	return put, e
}

// writeAt writes all of data at off, or as much as the file takes.
func writeAt(of *openFile, off int64, data []byte) (int, syscall.Errno) {
	put := 0
	for put < len(data) {
		w, err := of.pwrite(data[put:], off+int64(put))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if put > 0 {
				break
			}
			return 0, errnoOf(err)
		}
		if w == 0 {
			break
		}
		put += w
	}
	return put, 0
}

// killSuidgid clears the set-user-ID bit, and the set-group-ID bit of a
// group-executable file, as a write by an unprivileged process does.
func killSuidgid(fd int) syscall.Errno {
	var st unix.Stat_t
	if e := fstatFd(fd, &st); e != 0 {
		return e
	}
	mode := st.Mode & 0o7777
	kill := mode & unix.S_ISUID
	if mode&(unix.S_ISGID|unix.S_IXGRP) == unix.S_ISGID|unix.S_IXGRP {
		kill |= unix.S_ISGID
	}
	if kill == 0 || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0
	}
	return chmodFd(fd, mode&^kill)
}

// Release closes file handle fh.
func (fs *FS) Release(ctx context.Context, n ringfuse.Node, fh uint64, flags uint32) {
	if of := fs.handles.remove(fh); of != nil {
		fs.openFiles.Add(-1)
		of.put()
	}
}

// Flush does nothing: the descriptor is closed at Release, and locks are
// local to the kernel.
func (fs *FS) Flush(ctx context.Context, n ringfuse.Node, fh uint64, lockOwner uint64) syscall.Errno {
	return 0
}

// Fsync flushes the open file fh to storage.
func (fs *FS) Fsync(ctx context.Context, n ringfuse.Node, fh uint64, datasync bool) syscall.Errno {
	return fs.withFile(fh, func(of *openFile) syscall.Errno {
		if datasync {
			return errnoOf(unix.Fdatasync(of.fd))
		}
		return errnoOf(unix.Fsync(of.fd))
	})
}

// Fallocate is fallocate(2) on the open file fh.
func (fs *FS) Fallocate(ctx context.Context, n ringfuse.Node, fh uint64, off, length int64, mode uint32) syscall.Errno {
	return fs.withFile(fh, func(of *openFile) syscall.Errno {
		return creds.Run(ctx, func() syscall.Errno { return errnoOf(unix.Fallocate(of.fd, mode, off, length)) })
	})
}

// Lseek answers SEEK_DATA and SEEK_HOLE with lseek on the open file.
func (fs *FS) Lseek(ctx context.Context, n ringfuse.Node, fh uint64, off int64, whence uint32) (int64, syscall.Errno) {
	var pos int64
	e := fs.withFile(fh, func(of *openFile) syscall.Errno {
		var err error
		pos, err = unix.Seek(of.fd, off, int(whence))
		return errnoOf(err)
	})
	return pos, e
}

// CopyFileRange copies between two open files with copy_file_range(2).
func (fs *FS) CopyFileRange(ctx context.Context, in ringfuse.Node, fhIn uint64, offIn int64, out ringfuse.Node, fhOut uint64, offOut int64, length uint64, flags uint64) (uint64, syscall.Errno) {
	src := fs.handles.get(fhIn)
	if src == nil {
		return 0, syscall.EBADF
	}
	defer src.put()
	dst := fs.handles.get(fhOut)
	if dst == nil {
		return 0, syscall.EBADF
	}
	defer dst.put()
	if length > 1<<30 {
		length = 1 << 30 // the reply is a count; copy in bounded steps
	}
	var c int
	e := creds.Run(ctx, func() syscall.Errno {
		var err error
		c, err = unix.CopyFileRange(src.fd, &offIn, dst.fd, &offOut, int(length), int(flags))
		return errnoOf(err)
	})
	return uint64(c), e
}

// withNode runs f with an O_PATH descriptor for n. f must be safe to run
// again after it failed with EMFILE or ENFILE (see usingNode).
func (fs *FS) withNode(ctx context.Context, rn ringfuse.Node, f func(fd int) syscall.Errno) syscall.Errno {
	n, e := nodeOf(rn)
	if e != 0 {
		return e
	}
	return fs.usingNode(ctx, n, f)
}

// withTarget runs f on the open file fh when the kernel sent one that is
// still open, and otherwise on n's descriptor.
func (fs *FS) withTarget(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, f func(fd int) syscall.Errno) syscall.Errno {
	if hasFh {
		e := fs.withFile(fh, func(of *openFile) syscall.Errno { return f(of.fd) })
		if e != syscall.EBADF {
			return e
		}
	}
	return fs.withNode(ctx, n, f)
}

// GetAttr returns n's attributes, from the open file when the kernel sent
// a handle.
func (fs *FS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	var st unix.Stat_t
	e := fs.withTarget(ctx, n, fh, hasFh, func(fd int) syscall.Errno { return fstatFd(fd, &st) })
	if e == 0 {
		fillAttr(&out.Attr, &st)
	}
	return e
}

// Statx answers STATX with statx(2) on the node or the open file, so
// birth times and the other statx fields reach the client.
func (fs *FS) Statx(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, flags, mask uint32, out *ringfuse.StatxOut) syscall.Errno {
	var stx unix.Statx_t
	sync := int(flags) & 0x6000 // AT_STATX_SYNC_TYPE
	do := func(fd int) syscall.Errno {
		return errnoOf(unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW|sync, int(mask), &stx))
	}
	if e := fs.withTarget(ctx, n, fh, hasFh, do); e != 0 {
		return e
	}
	st := &out.Stat
	st.Mask = stx.Mask
	st.Blksize = stx.Blksize
	st.Attributes = stx.Attributes
	st.Nlink = stx.Nlink
	st.UID = stx.Uid
	st.GID = stx.Gid
	st.Mode = stx.Mode
	st.Ino = stx.Ino
	st.Size = stx.Size
	st.Blocks = stx.Blocks
	st.AttributesMask = stx.Attributes_mask
	st.Atime = wire.SxTime{Sec: stx.Atime.Sec, Nsec: stx.Atime.Nsec}
	st.Btime = wire.SxTime{Sec: stx.Btime.Sec, Nsec: stx.Btime.Nsec}
	st.Ctime = wire.SxTime{Sec: stx.Ctime.Sec, Nsec: stx.Ctime.Nsec}
	st.Mtime = wire.SxTime{Sec: stx.Mtime.Sec, Nsec: stx.Mtime.Nsec}
	st.RdevMajor, st.RdevMinor = stx.Rdev_major, stx.Rdev_minor
	st.DevMajor, st.DevMinor = stx.Dev_major, stx.Dev_minor
	return 0
}

// SetAttr changes mode, owner, size and times, in that order, as the
// caller, and returns the new attributes. With FATTR_FH it works on the
// open file, which may be unlinked.
func (fs *FS) SetAttr(ctx context.Context, rn ringfuse.Node, in *ringfuse.SetAttrIn, out *ringfuse.AttrOut) syscall.Errno {
	do := func(fd int, open bool) syscall.Errno {
		if in.Valid&^(wire.FATTR_FH|wire.FATTR_LOCKOWNER) == 0 {
			if e := fs.emptySetAttr(ctx, fd); e != 0 {
				return e
			}
		} else if e := creds.Run(ctx, func() syscall.Errno { return setAttrs(fd, open, in) }); e != 0 {
			return e
		}
		if in.Valid&wire.FATTR_KILL_SUIDGID != 0 && in.Valid&wire.FATTR_MODE == 0 {
			// The kernel says the caller's change clears the set-ID
			// bits, which the caller may not chmod itself.
			if e := creds.Daemon(ctx, func() syscall.Errno { return killSuidgid(fd) }); e != 0 {
				return e
			}
		}
		var st unix.Stat_t
		if e := fstatFd(fd, &st); e != 0 {
			return e
		}
		fillAttr(&out.Attr, &st)
		return 0
	}
	if in.Valid&wire.FATTR_FH != 0 {
		e := fs.withFile(in.Fh, func(of *openFile) syscall.Errno { return do(of.fd, of.dir == nil) })
		if e != syscall.EBADF {
			return e
		}
	}
	return fs.withNode(ctx, rn, func(fd int) syscall.Errno { return do(fd, false) })
}

// emptySetAttr answers a SETATTR that changes nothing: the kernel's way of
// asking for set-ID bits to go after a write or truncate by a caller
// without CAP_FSETID (FUSE_HANDLE_KILLPRIV_V2), and also what chown(f, -1,
// -1) sends. chown(f, -1, -1) on the backing file applies the kernel's own
// rules, with the daemon's rights since the kernel's clearing ignores
// ownership, but only for a caller who may write the file. For anyone
// else it is either a write through a descriptor another process opened,
// which must not fail (its WRITE carries FUSE_WRITE_KILL_SUIDGID and
// clears the bits then), or a chown by a non-owner, which natively fails
// with EPERM and changes nothing.
func (fs *FS) emptySetAttr(ctx context.Context, fd int) syscall.Errno {
	e := creds.Run(ctx, func() syscall.Errno {
		return errnoOf(unix.Faccessat2(fd, "", unix.W_OK, unix.AT_EMPTY_PATH|unix.AT_EACCESS))
	})
	if e != 0 {
		if inChown(ringfuse.CallerOf(ctx).PID) {
			return syscall.EPERM
		}
		return 0
	}
	return creds.Daemon(ctx, func() syscall.Errno {
		return errnoOf(unix.Fchownat(fd, "", -1, -1, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW))
	})
}

// setAttrs applies in to the object fd refers to (open says fd is an open
// file rather than an O_PATH descriptor).
func setAttrs(fd int, open bool, in *ringfuse.SetAttrIn) syscall.Errno {
	v := in.Valid
	if v&wire.FATTR_MODE != 0 {
		if e := chmodFd(fd, in.Mode&0o7777); e != 0 {
			return e
		}
	}
	if v&(wire.FATTR_UID|wire.FATTR_GID) != 0 {
		uid, gid := -1, -1
		if v&wire.FATTR_UID != 0 {
			uid = int(in.UID)
		}
		if v&wire.FATTR_GID != 0 {
			gid = int(in.GID)
		}
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return errnoOf(err)
		}
	}
	if v&wire.FATTR_SIZE != 0 {
		var err error = unix.EBADF
		if open {
			err = unix.Ftruncate(fd, int64(in.Size))
		}
		if err == unix.EBADF || err == unix.EINVAL && open {
			// No open file, or one not open for writing: truncate the
			// object itself through /proc (there is no truncate for
			// O_PATH descriptors).
			err = unix.Truncate(procPath(fd), int64(in.Size))
		}
		if err != nil {
			return errnoOf(err)
		}
	}
	if v&(wire.FATTR_ATIME|wire.FATTR_MTIME|wire.FATTR_ATIME_NOW|wire.FATTR_MTIME_NOW) != 0 {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		switch {
		case v&wire.FATTR_ATIME_NOW != 0:
			ts[0].Nsec = unix.UTIME_NOW
		case v&wire.FATTR_ATIME != 0:
			ts[0] = unix.Timespec{Sec: int64(in.Atime), Nsec: int64(in.Atimensec)}
		}
		switch {
		case v&wire.FATTR_MTIME_NOW != 0:
			ts[1].Nsec = unix.UTIME_NOW
		case v&wire.FATTR_MTIME != 0:
			ts[1] = unix.Timespec{Sec: int64(in.Mtime), Nsec: int64(in.Mtimensec)}
		}
		if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return errnoOf(err)
		}
	}
	return 0
}

// Readlink returns the target of symlink n.
func (fs *FS) Readlink(ctx context.Context, n ringfuse.Node) ([]byte, syscall.Errno) {
	var target []byte
	e := fs.withNode(ctx, n, func(fd int) syscall.Errno {
		for size := 256; ; size *= 2 {
			buf := make([]byte, size)
			r, err := unix.Readlinkat(fd, "", buf)
			if err == unix.ENOENT {
				// readlinkat with an empty path says ENOENT for a
				// descriptor that is not a symlink; readlink says EINVAL.
				return syscall.EINVAL
			}
			if err != nil {
				return errnoOf(err)
			}
			if r < size || size >= 1<<16 {
				target = buf[:r]
				return 0
			}
		}
	})
	return target, e
}

// StatFS reports the backing filesystem's statistics.
func (fs *FS) StatFS(ctx context.Context, n ringfuse.Node, out *ringfuse.StatFS) syscall.Errno {
	return fs.withNode(ctx, n, func(fd int) syscall.Errno {
		var s unix.Statfs_t
		if err := unix.Fstatfs(fd, &s); err != nil {
			return errnoOf(err)
		}
		*out = ringfuse.StatFS{
			Blocks:  s.Blocks,
			Bfree:   s.Bfree,
			Bavail:  s.Bavail,
			Files:   s.Files,
			Ffree:   s.Ffree,
			Bsize:   uint32(s.Bsize),
			Namelen: uint32(s.Namelen),
			Frsize:  uint32(s.Frsize),
		}
		return 0
	})
}

// Access checks mask with faccessat2(AT_EACCESS) as the caller. The kernel
// sends ACCESS only without default_permissions.
func (fs *FS) Access(ctx context.Context, n ringfuse.Node, mask uint32) syscall.Errno {
	return fs.withNode(ctx, n, func(fd int) syscall.Errno {
		return creds.Run(ctx, func() syscall.Errno {
			return errnoOf(unix.Faccessat2(fd, "", mask, unix.AT_EMPTY_PATH|unix.AT_EACCESS))
		})
	})
}

// The extended attribute calls run as the caller: user attributes need
// read or write permission, ACLs need ownership. Linux has no xattr call
// for O_PATH descriptors, so they go through /proc/self/fd, which reaches
// the object itself (a symlink too, without following it).

// SetXattr sets an extended attribute of n.
func (fs *FS) SetXattr(ctx context.Context, n ringfuse.Node, name string, value []byte, flags uint32) syscall.Errno {
	return fs.withNode(ctx, n, func(fd int) syscall.Errno {
		return creds.Run(ctx, func() syscall.Errno {
			return errnoOf(unix.Setxattr(procPath(fd), name, value, int(flags)))
		})
	})
}

// GetXattr reads an extended attribute of n.
func (fs *FS) GetXattr(ctx context.Context, n ringfuse.Node, name string, buf []byte) (int, syscall.Errno) {
	var size int
	e := fs.withNode(ctx, n, func(fd int) syscall.Errno {
		return creds.Run(ctx, func() (e syscall.Errno) {
			size, e = getxattrFd(fd, name, buf)
			return e
		})
	})
	return size, e
}

// ListXattr lists the extended attributes of n.
func (fs *FS) ListXattr(ctx context.Context, n ringfuse.Node, buf []byte) (int, syscall.Errno) {
	var size int
	e := fs.withNode(ctx, n, func(fd int) syscall.Errno {
		return creds.Run(ctx, func() (e syscall.Errno) {
			size, e = listxattrFd(fd, buf)
			return e
		})
	})
	return size, e
}

// RemoveXattr removes an extended attribute of n.
func (fs *FS) RemoveXattr(ctx context.Context, n ringfuse.Node, name string) syscall.Errno {
	return fs.withNode(ctx, n, func(fd int) syscall.Errno {
		return creds.Run(ctx, func() syscall.Errno {
			return errnoOf(unix.Removexattr(procPath(fd), name))
		})
	})
}

// AcquireFd implements ringfuse.FdFiler: the descriptor of an open file
// that Read or Write would use for size bytes at off, held open until
// ReleaseFd.
func (fs *FS) AcquireFd(fh uint64, off int64, size int) (int, any, bool) {
	of := fs.handles.get(fh)
	if of == nil {
		return -1, nil, false
	}
	if of.dir != nil {
		of.put()
		return -1, nil, false
	}
	return of.ioFd(off, size), of, true
}

// ReleaseFd implements ringfuse.FdFiler.
func (fs *FS) ReleaseFd(hold any) {
	if of, ok := hold.(*openFile); ok {
		of.put()
	}
}
