package nodefs

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/ringfuse/ringfuse"
)

// MemRegularFile is a regular file held in memory: reads, writes,
// truncation and attribute changes. (MemDir also makes one for mknod of a
// FIFO, socket or device: it then has that file type and Attr.Rdev.) Set Data and Attr (Mode's permission
// bits, owner, times) before adding it to a tree; afterwards they are
// guarded by the file's own lock.
type MemRegularFile struct {
	Inode
	mu   sync.RWMutex // reads share it
	Data []byte
	Attr Attr
}

var (
	_ Getattrer = (*MemRegularFile)(nil)
	_ Setattrer = (*MemRegularFile)(nil)
	_ Opener    = (*MemRegularFile)(nil)
	_ Reader    = (*MemRegularFile)(nil)
	_ Writer    = (*MemRegularFile)(nil)
	_ Fsyncer   = (*MemRegularFile)(nil)
)

// Open implements Opener: no handle is needed. A file without any write
// permission bit is read-only, even for root.
func (f *MemRegularFile) Open(ctx context.Context, flags uint32) (FileHandle, uint32, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		if f.Attr.Mode&0o222 == 0 {
			return nil, 0, syscall.EPERM
		}
	}
	if flags&syscall.O_TRUNC != 0 {
		f.Data = f.Data[:0]
	}
	return nil, 0, 0
}

// Read implements Reader.
func (f *MemRegularFile) Read(ctx context.Context, fh FileHandle, dest []byte, off int64) (int, syscall.Errno) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if off >= int64(len(f.Data)) {
		return 0, 0
	}
	return copy(dest, f.Data[off:]), 0
}

// Write implements Writer.
func (f *MemRegularFile) Write(ctx context.Context, fh FileHandle, data []byte, off int64) (int, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if end := off + int64(len(data)); end > int64(len(f.Data)) {
		f.Data = append(f.Data, make([]byte, end-int64(len(f.Data)))...)
	}
	setNow(&f.Attr, ringfuse.FATTR_MTIME)
	return copy(f.Data[off:], data), 0
}

// Getattr implements Getattrer.
func (f *MemRegularFile) Getattr(ctx context.Context, fh FileHandle, out *AttrOut) syscall.Errno {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out.Attr = f.Attr
	out.Attr.Mode = f.StableAttr().Mode | f.Attr.Mode&0o7777
	out.Attr.Nlink = f.Nlink()
	out.Attr.Size = uint64(len(f.Data))
	out.Attr.Blocks = (out.Attr.Size + 511) / 512
	return 0
}

// Setattr implements Setattrer.
func (f *MemRegularFile) Setattr(ctx context.Context, fh FileHandle, in *SetAttrIn, out *AttrOut) syscall.Errno {
	f.mu.Lock()
	if in.Valid&ringfuse.FATTR_SIZE != 0 {
		if size := int64(in.Size); size <= int64(len(f.Data)) {
			f.Data = f.Data[:size]
		} else {
			f.Data = append(f.Data, make([]byte, size-int64(len(f.Data)))...)
		}
		setNow(&f.Attr, ringfuse.FATTR_MTIME)
	}
	setAttr(&f.Attr, in)
	f.mu.Unlock()
	return f.Getattr(ctx, fh, out)
}

// Fsync implements Fsyncer: there is nothing to sync.
func (f *MemRegularFile) Fsync(ctx context.Context, fh FileHandle, datasync bool) syscall.Errno {
	return 0
}

// setAttr applies the mode, owner and time changes of in to a.
func setAttr(a *Attr, in *SetAttrIn) {
	if in.Valid&ringfuse.FATTR_MODE != 0 {
		a.Mode = a.Mode&syscall.S_IFMT | in.Mode&0o7777
	}
	if in.Valid&ringfuse.FATTR_UID != 0 {
		a.UID = in.UID
	}
	if in.Valid&ringfuse.FATTR_GID != 0 {
		a.GID = in.GID
	}
	if in.Valid&ringfuse.FATTR_ATIME != 0 {
		a.Atime, a.Atimensec = in.Atime, in.Atimensec
	}
	if in.Valid&ringfuse.FATTR_MTIME != 0 {
		a.Mtime, a.Mtimensec = in.Mtime, in.Mtimensec
	}
	setNow(a, 0)
}

// setNow sets the change time, and the times in which (FATTR_MTIME,
// FATTR_ATIME), to now.
func setNow(a *Attr, which uint32) {
	now := time.Now()
	s, ns := uint64(now.Unix()), uint32(now.Nanosecond())
	a.Ctime, a.Ctimensec = s, ns
	if which&ringfuse.FATTR_MTIME != 0 {
		a.Mtime, a.Mtimensec = s, ns
	}
	if which&ringfuse.FATTR_ATIME != 0 {
		a.Atime, a.Atimensec = s, ns
	}
}

// newAttr returns the attributes of an object the caller of ctx makes.
func newAttr(ctx context.Context, mode uint32) Attr {
	c := ringfuse.CallerOf(ctx)
	a := Attr{Mode: mode, UID: c.UID, GID: c.GID}
	setNow(&a, ringfuse.FATTR_MTIME|ringfuse.FATTR_ATIME)
	return a
}

// MemSymlink is a symbolic link held in memory.
type MemSymlink struct {
	Inode
	Target []byte
	Attr   Attr
}

var (
	_ Readlinker = (*MemSymlink)(nil)
	_ Getattrer  = (*MemSymlink)(nil)
)

// Readlink implements Readlinker.
func (l *MemSymlink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return l.Target, 0
}

// Getattr implements Getattrer.
func (l *MemSymlink) Getattr(ctx context.Context, fh FileHandle, out *AttrOut) syscall.Errno {
	out.Attr = l.Attr
	out.Attr.Mode = syscall.S_IFLNK | 0o777
	out.Attr.Nlink = l.Nlink()
	out.Attr.Size = uint64(len(l.Target))
	return 0
}

// MemDir is a directory held in memory whose entries can be made, renamed
// and removed: mkdir makes a MemDir, creat a MemRegularFile and symlink a
// MemSymlink, all persistent. Attr holds the permission bits, owner and
// times; zero permission bits mean 0755.
type MemDir struct {
	Inode
	mu   sync.Mutex
	Attr Attr
}

var (
	_ Getattrer = (*MemDir)(nil)
	_ Setattrer = (*MemDir)(nil)
	_ Mkdirer   = (*MemDir)(nil)
	_ Mknoder   = (*MemDir)(nil)
	_ Linker    = (*MemDir)(nil)
	_ Statfser  = (*MemDir)(nil)
	_ Creater   = (*MemDir)(nil)
	_ Symlinker = (*MemDir)(nil)
	_ Unlinker  = (*MemDir)(nil)
	_ Rmdirer   = (*MemDir)(nil)
	_ Renamer   = (*MemDir)(nil)
)

// Getattr implements Getattrer.
func (d *MemDir) Getattr(ctx context.Context, fh FileHandle, out *AttrOut) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	out.Attr = d.Attr
	if out.Attr.Mode&0o7777 == 0 {
		out.Attr.Mode |= 0o755
	}
	out.Attr.Mode = syscall.S_IFDIR | out.Attr.Mode&0o7777
	out.Attr.Nlink = d.Nlink()
	return 0
}

// Setattr implements Setattrer.
func (d *MemDir) Setattr(ctx context.Context, fh FileHandle, in *SetAttrIn, out *AttrOut) syscall.Errno {
	d.mu.Lock()
	setAttr(&d.Attr, in)
	d.mu.Unlock()
	return d.Getattr(ctx, fh, out)
}

// touch records a change of the directory's entries.
func (d *MemDir) touch() {
	d.mu.Lock()
	setNow(&d.Attr, ringfuse.FATTR_MTIME)
	d.mu.Unlock()
}

// Mkdir implements Mkdirer.
func (d *MemDir) Mkdir(ctx context.Context, name string, mode uint32, out *EntryOut) (*Inode, syscall.Errno) {
	if d.GetChild(name) != nil {
		return nil, syscall.EEXIST
	}
	d.touch()
	return d.NewPersistentInode(ctx, &MemDir{Attr: newAttr(ctx, mode&0o7777)}, StableAttr{Mode: syscall.S_IFDIR}), 0
}

// Create implements Creater.
func (d *MemDir) Create(ctx context.Context, name string, flags, mode uint32, out *EntryOut) (*Inode, FileHandle, uint32, syscall.Errno) {
	if d.GetChild(name) != nil {
		return nil, nil, 0, syscall.EEXIST
	}
	d.touch()
	f := &MemRegularFile{Attr: newAttr(ctx, mode&0o7777)}
	return d.NewPersistentInode(ctx, f, StableAttr{Mode: syscall.S_IFREG}), nil, 0, 0
}

// Mknod implements Mknoder.
func (d *MemDir) Mknod(ctx context.Context, name string, mode, rdev uint32, out *EntryOut) (*Inode, syscall.Errno) {
	if d.GetChild(name) != nil {
		return nil, syscall.EEXIST
	}
	d.touch()
	f := &MemRegularFile{Attr: newAttr(ctx, mode&0o7777)}
	f.Attr.Rdev = rdev
	return d.NewPersistentInode(ctx, f, StableAttr{Mode: mode & syscall.S_IFMT}), 0
}

// Link implements Linker: target gets the name too.
func (d *MemDir) Link(ctx context.Context, target InodeEmbedder, name string, out *EntryOut) (*Inode, syscall.Errno) {
	if d.GetChild(name) != nil {
		return nil, syscall.EEXIST
	}
	d.touch()
	return target.EmbeddedInode(), 0
}

// Statfs implements Statfser: like tmpfs, half the machine's memory.
func (d *MemDir) Statfs(ctx context.Context, out *StatFS) syscall.Errno {
	total, free, ok := memory()
	if !ok {
		return syscall.EIO
	}
	const bsize = 4096
	out.Bsize, out.Frsize, out.Namelen = bsize, bsize, nameMax
	out.Blocks = total / 2 / bsize
	out.Bfree = min(out.Blocks, free/bsize)
	out.Bavail = out.Bfree
	return 0
}

// Symlink implements Symlinker.
func (d *MemDir) Symlink(ctx context.Context, target, name string, out *EntryOut) (*Inode, syscall.Errno) {
	if d.GetChild(name) != nil {
		return nil, syscall.EEXIST
	}
	d.touch()
	l := &MemSymlink{Target: []byte(target), Attr: newAttr(ctx, 0o777)}
	return d.NewPersistentInode(ctx, l, StableAttr{Mode: syscall.S_IFLNK}), 0
}

// Unlink implements Unlinker.
func (d *MemDir) Unlink(ctx context.Context, name string) syscall.Errno {
	ch := d.GetChild(name)
	switch {
	case ch == nil:
		return syscall.ENOENT
	case ch.IsDir():
		return syscall.EISDIR
	}
	d.touch()
	return 0
}

// Rmdir implements Rmdirer.
func (d *MemDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	ch := d.GetChild(name)
	switch {
	case ch == nil:
		return syscall.ENOENT
	case !ch.IsDir():
		return syscall.ENOTDIR
	case len(ch.Children()) > 0:
		return syscall.ENOTEMPTY
	}
	d.touch()
	return 0
}

// Rename implements Renamer.
func (d *MemDir) Rename(ctx context.Context, name string, newParent InodeEmbedder, newName string, flags uint32) syscall.Errno {
	src, dst := d.GetChild(name), newParent.EmbeddedInode().GetChild(newName)
	switch {
	case src == nil:
		return syscall.ENOENT
	case flags&ringfuse.RENAME_NOREPLACE != 0 && dst != nil:
		return syscall.EEXIST
	case flags&ringfuse.RENAME_EXCHANGE != 0:
		if dst == nil {
			return syscall.ENOENT
		}
	case dst != nil && dst.IsDir() && !src.IsDir():
		return syscall.EISDIR
	case dst != nil && !dst.IsDir() && src.IsDir():
		return syscall.ENOTDIR
	case dst != nil && len(dst.Children()) > 0:
		return syscall.ENOTEMPTY
	}
	d.touch()
	return 0
}
