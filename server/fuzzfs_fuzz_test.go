package server

// fuzzFS, the in-memory filesystem the server's fuzz targets serve: it
// implements every optional interface, is deterministic (two instances fed
// the same requests answer the same bytes) and bounds what a request can
// make it allocate. Two names make it panic on purpose, so that the
// server's recovery is fuzzed too; it counts those panics.

import (
	"context"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// Bounds of fuzzFS.
const (
	fzMaxNodes  = 64      // inodes, the root included
	fzMaxData   = 1 << 16 // bytes of one file
	fzMaxXattrs = 8       // extended attributes per inode
	fzMaxXattr  = 4096    // bytes of one extended attribute value
	fzMaxName   = 255     // NAME_MAX
	fzMaxTarget = 4095    // a symlink target: PATH_MAX less the NUL
)

// Names that make fuzzFS panic: MKDIR of fzPanicMkdir panics at once,
// READDIRPLUS panics after adding an entry named fzPanicList.
const (
	fzPanicMkdir = "panic"
	fzPanicList  = "boom"
)

// Lseek whences fuzzFS serves.
const (
	seekData = 3
	seekHole = 4
)

// Flags of RENAME2.
const (
	renameNoreplace = 1 << 0
	renameExchange  = 1 << 1
)

type fzNode struct {
	ino    uint64
	mode   uint32
	nlink  uint32
	data   []byte
	target string
	kids   map[string]*fzNode
	xattrs map[string][]byte
}

func (n *fzNode) isDir() bool { return n.mode&syscall.S_IFMT == syscall.S_IFDIR }

type fuzzFS struct {
	mu      sync.Mutex
	root    *fzNode
	nextIno uint64
	nodes   int

	panics  atomic.Int64 // deliberate panics
	forgets atomic.Int64
}

var (
	_ ringfuse.Lookuper       = (*fuzzFS)(nil)
	_ ringfuse.Forgetter      = (*fuzzFS)(nil)
	_ ringfuse.GetAttrer      = (*fuzzFS)(nil)
	_ ringfuse.SetAttrer      = (*fuzzFS)(nil)
	_ ringfuse.Statxer        = (*fuzzFS)(nil)
	_ ringfuse.Readlinker     = (*fuzzFS)(nil)
	_ ringfuse.Symlinker      = (*fuzzFS)(nil)
	_ ringfuse.Mknoder        = (*fuzzFS)(nil)
	_ ringfuse.Mkdirer        = (*fuzzFS)(nil)
	_ ringfuse.Unlinker       = (*fuzzFS)(nil)
	_ ringfuse.Rmdirer        = (*fuzzFS)(nil)
	_ ringfuse.Renamer        = (*fuzzFS)(nil)
	_ ringfuse.Linker         = (*fuzzFS)(nil)
	_ ringfuse.Opener         = (*fuzzFS)(nil)
	_ ringfuse.Reader         = (*fuzzFS)(nil)
	_ ringfuse.Writer         = (*fuzzFS)(nil)
	_ ringfuse.StatFSer       = (*fuzzFS)(nil)
	_ ringfuse.Releaser       = (*fuzzFS)(nil)
	_ ringfuse.Fsyncer        = (*fuzzFS)(nil)
	_ ringfuse.Flusher        = (*fuzzFS)(nil)
	_ ringfuse.Xattrer        = (*fuzzFS)(nil)
	_ ringfuse.DirOpener      = (*fuzzFS)(nil)
	_ ringfuse.DirReader      = (*fuzzFS)(nil)
	_ ringfuse.DirReleaser    = (*fuzzFS)(nil)
	_ ringfuse.DirFsyncer     = (*fuzzFS)(nil)
	_ ringfuse.Accesser       = (*fuzzFS)(nil)
	_ ringfuse.Creater        = (*fuzzFS)(nil)
	_ ringfuse.Allocater      = (*fuzzFS)(nil)
	_ ringfuse.Seeker         = (*fuzzFS)(nil)
	_ ringfuse.CopyFileRanger = (*fuzzFS)(nil)
	_ ringfuse.Locker         = (*fuzzFS)(nil)
	_ ringfuse.Destroyer      = (*fuzzFS)(nil)
)

// newFuzzFS returns a root holding files "a" (8 KiB) and "b" (empty) and
// the empty directory "d".
func newFuzzFS() *fuzzFS {
	f := &fuzzFS{nextIno: 1, nodes: 1}
	f.root = &fzNode{ino: 1, mode: syscall.S_IFDIR | 0o755, nlink: 2, kids: map[string]*fzNode{}}
	a, _ := f.mk(f.root, "a", syscall.S_IFREG|0o644)
	a.data = make([]byte, 8192)
	for i := range a.data {
		a.data[i] = byte(i * 7)
	}
	f.mk(f.root, "b", syscall.S_IFREG|0o600)
	f.mk(f.root, "d", syscall.S_IFDIR|0o755)
	return f
}

func (f *fuzzFS) Root() ringfuse.Node { return f.root }

func validName(name string) syscall.Errno {
	switch {
	case len(name) > fzMaxName:
		return syscall.ENAMETOOLONG
	case name == "" || strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0):
		return syscall.EINVAL
	case name == "." || name == "..":
		return syscall.EEXIST
	}
	return 0
}

// mk creates name in dir with mode; f.mu is held.
func (f *fuzzFS) mk(dir *fzNode, name string, mode uint32) (*fzNode, syscall.Errno) {
	if !dir.isDir() {
		return nil, syscall.ENOTDIR
	}
	if errno := validName(name); errno != 0 {
		return nil, errno
	}
	if dir.kids[name] != nil {
		return nil, syscall.EEXIST
	}
	if f.nodes >= fzMaxNodes {
		return nil, syscall.ENOSPC
	}
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG, syscall.S_IFDIR, syscall.S_IFLNK, syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
	case 0:
		mode |= syscall.S_IFREG
	default:
		return nil, syscall.EINVAL
	}
	f.nextIno++
	f.nodes++
	n := &fzNode{ino: f.nextIno, mode: mode &^ 0o7000, nlink: 1}
	if n.isDir() {
		n.kids = map[string]*fzNode{}
		n.nlink = 2
	}
	dir.kids[name] = n
	return n, 0
}

func attrOf(n *fzNode, a *wire.Attr) {
	*a = wire.Attr{Ino: n.ino, Mode: n.mode, Nlink: n.nlink, Size: uint64(len(n.data)), Blksize: 4096}
	if n.mode&syscall.S_IFMT == syscall.S_IFLNK {
		a.Size = uint64(len(n.target))
	}
	a.Blocks = (a.Size + 511) / 512
}

func (f *fuzzFS) entry(n *fzNode, out *ringfuse.Entry) {
	out.Node = n
	attrOf(n, &out.Attr)
}

func fzn(n ringfuse.Node) *fzNode { return n.(*fzNode) }

func (f *fuzzFS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := fzn(parent)
	if !p.isDir() {
		return syscall.ENOTDIR
	}
	c := p.kids[name]
	if c == nil {
		return syscall.ENOENT
	}
	f.entry(c, out)
	return 0
}

func (f *fuzzFS) Forget(ringfuse.Node) { f.forgets.Add(1) }

func (f *fuzzFS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	attrOf(fzn(n), &out.Attr)
	return 0
}

func (f *fuzzFS) SetAttr(ctx context.Context, n ringfuse.Node, in *ringfuse.SetAttrIn, out *ringfuse.AttrOut) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := fzn(n)
	if in.Valid&wire.FATTR_SIZE != 0 {
		if m.isDir() {
			return syscall.EISDIR
		}
		if in.Size > fzMaxData {
			return syscall.EFBIG
		}
		m.data = resize(m.data, int(in.Size))
	}
	if in.Valid&wire.FATTR_MODE != 0 {
		m.mode = m.mode&syscall.S_IFMT | in.Mode&0o777
	}
	attrOf(m, &out.Attr)
	return 0
}

func resize(b []byte, n int) []byte {
	if n <= len(b) {
		return b[:n]
	}
	return append(b, make([]byte, n-len(b))...)
}

func (f *fuzzFS) Statx(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, flags, mask uint32, out *ringfuse.StatxOut) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	var a wire.Attr
	attrOf(fzn(n), &a)
	out.Stat.Ino, out.Stat.Size, out.Stat.Mode, out.Stat.Nlink = a.Ino, a.Size, uint16(a.Mode), a.Nlink
	return 0
}

func (f *fuzzFS) Readlink(ctx context.Context, n ringfuse.Node) ([]byte, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := fzn(n)
	if m.mode&syscall.S_IFMT != syscall.S_IFLNK {
		return nil, syscall.EINVAL
	}
	return []byte(m.target), 0
}

func (f *fuzzFS) Symlink(ctx context.Context, parent ringfuse.Node, name, target string, out *ringfuse.Entry) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(target) > fzMaxTarget {
		return syscall.ENAMETOOLONG
	}
	n, errno := f.mk(fzn(parent), name, syscall.S_IFLNK|0o777)
	if errno != 0 {
		return errno
	}
	n.target = target
	f.entry(n, out)
	return 0
}

func (f *fuzzFS) Mknod(ctx context.Context, parent ringfuse.Node, name string, mode, rdev, umask uint32, out *ringfuse.Entry) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		return syscall.EINVAL
	}
	n, errno := f.mk(fzn(parent), name, mode&^umask)
	if errno != 0 {
		return errno
	}
	f.entry(n, out)
	return 0
}

func (f *fuzzFS) Mkdir(ctx context.Context, parent ringfuse.Node, name string, mode, umask uint32, out *ringfuse.Entry) syscall.Errno {
	if name == fzPanicMkdir {
		f.panics.Add(1)
		panic("fuzzFS: mkdir " + fzPanicMkdir)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, errno := f.mk(fzn(parent), name, syscall.S_IFDIR|mode&^umask&0o777)
	if errno != 0 {
		return errno
	}
	fzn(parent).nlink++
	f.entry(n, out)
	return 0
}

// unlinkLocked removes name from dir; f.mu is held.
func (f *fuzzFS) unlinkLocked(dir *fzNode, name string, wantDir bool) syscall.Errno {
	if !dir.isDir() {
		return syscall.ENOTDIR
	}
	c := dir.kids[name]
	if c == nil {
		return syscall.ENOENT
	}
	switch {
	case wantDir && !c.isDir():
		return syscall.ENOTDIR
	case !wantDir && c.isDir():
		return syscall.EISDIR
	case wantDir && len(c.kids) != 0:
		return syscall.ENOTEMPTY
	}
	delete(dir.kids, name)
	c.nlink--
	if wantDir {
		dir.nlink--
		c.nlink = 0
	}
	if c.nlink == 0 {
		f.nodes--
	}
	return 0
}

func (f *fuzzFS) Unlink(ctx context.Context, parent ringfuse.Node, name string) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unlinkLocked(fzn(parent), name, false)
}

func (f *fuzzFS) Rmdir(ctx context.Context, parent ringfuse.Node, name string) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unlinkLocked(fzn(parent), name, true)
}

func (f *fuzzFS) Rename(ctx context.Context, parent ringfuse.Node, name string, newParent ringfuse.Node, newName string, flags uint32) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, np := fzn(parent), fzn(newParent)
	if !p.isDir() || !np.isDir() {
		return syscall.ENOTDIR
	}
	if flags&^(renameNoreplace|renameExchange) != 0 || flags == renameNoreplace|renameExchange {
		return syscall.EINVAL
	}
	if errno := validName(newName); errno != 0 {
		return errno
	}
	c := p.kids[name]
	if c == nil {
		return syscall.ENOENT
	}
	if c.isDir() && c != np {
		// Moving a directory below itself would make a cycle: forbid
		// moving directories between parents altogether.
		if p != np {
			return syscall.EXDEV
		}
	}
	old := np.kids[newName]
	switch {
	case flags&renameExchange != 0:
		if old == nil {
			return syscall.ENOENT
		}
		p.kids[name], np.kids[newName] = old, c
		return 0
	case old == c:
		return 0
	case old != nil && flags&renameNoreplace != 0:
		return syscall.EEXIST
	case old != nil:
		if errno := f.unlinkLocked(np, newName, old.isDir()); errno != 0 {
			return errno
		}
	}
	delete(p.kids, name)
	np.kids[newName] = c
	return 0
}

func (f *fuzzFS) Link(ctx context.Context, n ringfuse.Node, newParent ringfuse.Node, newName string, out *ringfuse.Entry) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, np := fzn(n), fzn(newParent)
	switch {
	case m.isDir():
		return syscall.EPERM
	case !np.isDir():
		return syscall.ENOTDIR
	case np.kids[newName] != nil:
		return syscall.EEXIST
	}
	if errno := validName(newName); errno != 0 {
		return errno
	}
	np.kids[newName] = m
	m.nlink++
	f.entry(m, out)
	return 0
}

func (f *fuzzFS) Open(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	if fzn(n).isDir() && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return syscall.EISDIR
	}
	out.Fh = fzn(n).ino
	return 0
}

func (f *fuzzFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := fzn(n)
	if m.isDir() {
		return 0, syscall.EISDIR
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if off >= int64(len(m.data)) {
		return 0, 0
	}
	return copy(buf, m.data[off:]), 0
}

func (f *fuzzFS) Write(ctx context.Context, n ringfuse.Node, fh uint64, off int64, data []byte, flags uint32) (int, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := fzn(n)
	if m.isDir() {
		return 0, syscall.EISDIR
	}
	if off < 0 || off > fzMaxData || int64(len(data)) > fzMaxData-off {
		return 0, syscall.EFBIG
	}
	end := int(off) + len(data)
	if end > len(m.data) {
		m.data = resize(m.data, end)
	}
	return copy(m.data[off:], data), 0
}

func (f *fuzzFS) StatFS(ctx context.Context, n ringfuse.Node, out *ringfuse.StatFS) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	*out = ringfuse.StatFS{Blocks: 1 << 20, Bfree: 1 << 19, Bavail: 1 << 19, Files: fzMaxNodes,
		Ffree: uint64(fzMaxNodes - f.nodes), Bsize: 4096, Namelen: fzMaxName, Frsize: 4096}
	return 0
}

func (f *fuzzFS) Release(ctx context.Context, n ringfuse.Node, fh uint64, flags uint32) {}

func (f *fuzzFS) Fsync(ctx context.Context, n ringfuse.Node, fh uint64, datasync bool) syscall.Errno {
	return 0
}

func (f *fuzzFS) Flush(ctx context.Context, n ringfuse.Node, fh uint64, lockOwner uint64) syscall.Errno {
	return 0
}

func (f *fuzzFS) SetXattr(ctx context.Context, n ringfuse.Node, name string, value []byte, flags uint32) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := fzn(n)
	if len(value) > fzMaxXattr {
		return syscall.E2BIG
	}
	if len(name) > fzMaxName {
		return syscall.ERANGE
	}
	_, exists := m.xattrs[name]
	switch {
	case flags == 1 && exists: // XATTR_CREATE
		return syscall.EEXIST
	case flags == 2 && !exists: // XATTR_REPLACE
		return syscall.ENODATA
	case !exists && len(m.xattrs) >= fzMaxXattrs:
		return syscall.ENOSPC
	}
	if m.xattrs == nil {
		m.xattrs = map[string][]byte{}
	}
	m.xattrs[name] = append([]byte(nil), value...)
	return 0
}

// fzSized answers a get or list: the size with an empty buf, else the data.
func fzSized(buf, data []byte) (int, syscall.Errno) {
	if len(buf) == 0 {
		return len(data), 0
	}
	if len(buf) < len(data) {
		return 0, syscall.ERANGE
	}
	return copy(buf, data), 0
}

func (f *fuzzFS) GetXattr(ctx context.Context, n ringfuse.Node, name string, buf []byte) (int, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := fzn(n).xattrs[name]
	if !ok {
		return 0, syscall.ENODATA
	}
	return fzSized(buf, v)
}

func (f *fuzzFS) ListXattr(ctx context.Context, n ringfuse.Node, buf []byte) (int, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for k := range fzn(n).xattrs {
		names = append(names, k)
	}
	sort.Strings(names)
	var list []byte
	for _, k := range names {
		list = append(append(list, k...), 0)
	}
	return fzSized(buf, list)
}

func (f *fuzzFS) RemoveXattr(ctx context.Context, n ringfuse.Node, name string) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := fzn(n)
	if _, ok := m.xattrs[name]; !ok {
		return syscall.ENODATA
	}
	delete(m.xattrs, name)
	return 0
}

func (f *fuzzFS) OpenDir(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	if !fzn(n).isDir() {
		return syscall.ENOTDIR
	}
	out.Fh = fzn(n).ino
	return 0
}

// ReadDir lists ".", ".." and the children in name order; cookie i
// resumes after the i-th.
func (f *fuzzFS) ReadDir(ctx context.Context, n ringfuse.Node, fh uint64, off uint64, w ringfuse.DirWriter) syscall.Errno {
	f.mu.Lock()
	d := fzn(n)
	if !d.isDir() {
		f.mu.Unlock()
		return syscall.ENOTDIR
	}
	names := make([]string, 0, len(d.kids)+2)
	for k := range d.kids {
		names = append(names, k)
	}
	sort.Strings(names)
	names = append([]string{".", ".."}, names...)
	kids := make([]*fzNode, len(names))
	for i, k := range names[2:] {
		kids[i+2] = d.kids[k]
	}
	f.mu.Unlock()
	for i := off; i < uint64(len(names)); i++ {
		name := names[i]
		var e ringfuse.Entry
		if c := kids[i]; c != nil {
			f.mu.Lock()
			f.entry(c, &e)
			f.mu.Unlock()
		} else {
			e.Attr = wire.Attr{Ino: d.ino, Mode: syscall.S_IFDIR}
		}
		var ok bool
		if w.Plus() {
			ok = w.AddEntry(name, &e, i+1)
		} else {
			ok = w.Add(name, e.Attr.Ino, e.Attr.Mode, i+1)
		}
		if !ok {
			break
		}
		if w.Plus() && name == fzPanicList {
			f.panics.Add(1)
			panic("fuzzFS: listing " + fzPanicList)
		}
	}
	return 0
}

func (f *fuzzFS) ReleaseDir(ctx context.Context, n ringfuse.Node, fh uint64) {}

func (f *fuzzFS) FsyncDir(ctx context.Context, n ringfuse.Node, fh uint64, datasync bool) syscall.Errno {
	return 0
}

func (f *fuzzFS) Access(ctx context.Context, n ringfuse.Node, mask uint32) syscall.Errno {
	if mask&^7 != 0 {
		return syscall.EINVAL
	}
	return 0
}

func (f *fuzzFS) Create(ctx context.Context, parent ringfuse.Node, name string, flags, mode, umask uint32, out *ringfuse.Entry, open *ringfuse.OpenOut) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, errno := f.mk(fzn(parent), name, syscall.S_IFREG|mode&^umask&0o777)
	if errno != 0 {
		return errno
	}
	f.entry(n, out)
	open.Fh = n.ino
	return 0
}

func (f *fuzzFS) Fallocate(ctx context.Context, n ringfuse.Node, fh uint64, off, length int64, mode uint32) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := fzn(n)
	if off < 0 || length <= 0 || mode != 0 {
		return syscall.EINVAL
	}
	if off > fzMaxData || length > fzMaxData-off {
		return syscall.EFBIG
	}
	if end := int(off + length); end > len(m.data) {
		m.data = resize(m.data, end)
	}
	return 0
}

func (f *fuzzFS) Lseek(ctx context.Context, n ringfuse.Node, fh uint64, off int64, whence uint32) (int64, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	size := int64(len(fzn(n).data))
	if off < 0 || off >= size {
		return 0, syscall.ENXIO
	}
	switch whence {
	case seekData:
		return off, 0
	case seekHole:
		return size, 0
	}
	return 0, syscall.EINVAL
}

func (f *fuzzFS) CopyFileRange(ctx context.Context, in ringfuse.Node, fhIn uint64, offIn int64, out ringfuse.Node, fhOut uint64, offOut int64, length uint64, flags uint64) (uint64, syscall.Errno) {
	f.mu.Lock()
	defer f.mu.Unlock()
	src, dst := fzn(in), fzn(out)
	if src.isDir() || dst.isDir() {
		return 0, syscall.EISDIR
	}
	if flags != 0 || offIn < 0 || offOut < 0 {
		return 0, syscall.EINVAL
	}
	if offIn >= int64(len(src.data)) {
		return 0, 0
	}
	k := min(length, uint64(int64(len(src.data))-offIn))
	if offOut > fzMaxData || k > uint64(fzMaxData-offOut) {
		return 0, syscall.EFBIG
	}
	chunk := append([]byte(nil), src.data[offIn:offIn+int64(k)]...)
	if end := int(offOut) + len(chunk); end > len(dst.data) {
		dst.data = resize(dst.data, end)
	}
	copy(dst.data[offOut:], chunk)
	return k, 0
}

func (f *fuzzFS) GetLk(ctx context.Context, n ringfuse.Node, fh uint64, owner uint64, lk *ringfuse.FileLock, out *ringfuse.FileLock) syscall.Errno {
	*out = ringfuse.FileLock{Type: syscall.F_UNLCK}
	return 0
}

func (f *fuzzFS) SetLk(ctx context.Context, n ringfuse.Node, fh uint64, owner uint64, lk *ringfuse.FileLock, flock, wait bool) syscall.Errno {
	if lk.Type > syscall.F_UNLCK {
		return syscall.EINVAL
	}
	return 0
}

func (f *fuzzFS) Destroy() {}
