//go:build linux

package passthrough

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/creds"
)

// dirBufSize is the getdents64 buffer of each open directory.
const dirBufSize = 8 << 10

// dirStream is the listing state of an open directory. Entries read from
// the kernel but not yet sent stay in buf for the next READDIR.
type dirStream struct {
	mu       sync.Mutex
	buf      []byte
	pos, end int // unsent entries are buf[pos:end]
	// next is the cookie a READDIR continuing this listing asks for: the
	// d_off of the last entry sent, 0 at the start. A READDIR with another
	// offset seeks the directory there.
	next uint64
}

// OpenDir opens directory n for listing, as the caller: reading a
// directory needs read permission on it.
func (fs *FS) OpenDir(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	var fd int
	e := fs.withNode(ctx, n, func(pfd int) syscall.Errno {
		// Through /proc, not "." of pfd, which would also need search
		// permission on the directory itself.
		return creds.Run(ctx, func() (e syscall.Errno) {
			fd, e = openProc(pfd, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
			return e
		})
	})
	if e != 0 {
		return e
	}
	if e := fs.addOpen(ctx, fd, unix.O_RDONLY, &dirStream{}, out); e != 0 {
		closeFd(fd)
		return e
	}
	return 0
}

// ReleaseDir closes directory handle fh.
func (fs *FS) ReleaseDir(ctx context.Context, n ringfuse.Node, fh uint64) {
	fs.Release(ctx, n, fh, 0)
}

// FsyncDir flushes the open directory fh to storage.
func (fs *FS) FsyncDir(ctx context.Context, n ringfuse.Node, fh uint64, datasync bool) syscall.Errno {
	return fs.Fsync(ctx, n, fh, datasync)
}

// ReadDir lists the open directory fh from cookie off, filling w until it
// is full. Offsets are the backing filesystem's d_off cookies, so a
// client's telldir and seekdir work. For READDIRPLUS each entry comes with
// its node and attributes; "." and ".." come without, and a name that
// vanished since getdents is skipped.
func (fs *FS) ReadDir(ctx context.Context, n ringfuse.Node, fh uint64, off uint64, w ringfuse.DirWriter) syscall.Errno {
	of := fs.handles.get(fh)
	if of == nil {
		return syscall.EBADF
	}
	defer of.put()
	d := of.dir
	if d == nil {
		return syscall.ENOTDIR
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if off != d.next {
		if _, err := unix.Seek(of.fd, int64(off), unix.SEEK_SET); err != nil {
			return errnoOf(err)
		}
		d.pos, d.end = 0, 0
		d.next = off
	}
	if d.buf == nil {
		d.buf = make([]byte, dirBufSize)
	}
	plus := w.Plus()
	sent := 0
	for {
		if d.pos >= d.end {
			c, err := unix.Getdents(of.fd, d.buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				if sent > 0 {
					return 0
				}
				return errnoOf(err)
			}
			if c <= 0 {
				return 0
			}
			d.pos, d.end = 0, c
		}
		// struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16,
		// d_type u8, d_name.
		rec := d.buf[d.pos:d.end]
		if len(rec) < 20 {
			return syscall.EIO
		}
		reclen := int(binary.NativeEndian.Uint16(rec[16:18]))
		if reclen < 20 || reclen > len(rec) {
			return syscall.EIO
		}
		ino := binary.NativeEndian.Uint64(rec[0:8])
		doff := binary.NativeEndian.Uint64(rec[8:16])
		typ := uint32(rec[18]) << 12 // DT_* is S_IF* >> 12
		nb := rec[19:reclen]
		if i := bytes.IndexByte(nb, 0); i >= 0 {
			nb = nb[:i]
		}
		name := string(nb)
		var ok bool
		if plus {
			ok = fs.addPlus(ctx, of.fd, name, ino, typ, doff, w)
		} else {
			ok = w.Add(name, ino, typ, doff)
		}
		if !ok {
			return 0 // full: the entry stays buffered
		}
		d.pos += reclen
		d.next = doff
		sent++
	}
}

// addPlus adds one READDIRPLUS entry; it reports false when w is full.
func (fs *FS) addPlus(ctx context.Context, dirfd int, name string, ino uint64, typ uint32, off uint64, w ringfuse.DirWriter) bool {
	if name == "." || name == ".." {
		return w.Add(name, ino, typ, off)
	}
	e := ringfuse.Entry{
		EntryTimeout: time.Duration(fs.entryTimeout.Load()),
		AttrTimeout:  time.Duration(fs.attrTimeout.Load()),
	}
	n, errno := fs.lookupAt(ctx, dirfd, name, &e)
	switch {
	case errno == syscall.ENOENT:
		return true // removed since getdents: skip it
	case errno != 0:
		return w.Add(name, ino, typ, off) // list it, without attributes
	}
	ok := w.AddEntry(name, &e, off)
	if !ok {
		fs.Forget(n) // the server did not take the entry's reference
	}
	return ok
}
