package nodefs

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/session"
	"github.com/ringfuse/ringfuse/wire"
)

// operations lists the node interfaces, for the method check.
var operations = []reflect.Type{
	reflect.TypeFor[OnAdder](), reflect.TypeFor[OnForgetter](), reflect.TypeFor[Lookuper](),
	reflect.TypeFor[Getattrer](), reflect.TypeFor[Setattrer](), reflect.TypeFor[Readdirer](),
	reflect.TypeFor[Opener](), reflect.TypeFor[Reader](), reflect.TypeFor[Writer](),
	reflect.TypeFor[Releaser](), reflect.TypeFor[Flusher](), reflect.TypeFor[Fsyncer](),
	reflect.TypeFor[Readlinker](), reflect.TypeFor[Mkdirer](), reflect.TypeFor[Mknoder](),
	reflect.TypeFor[Creater](), reflect.TypeFor[Symlinker](), reflect.TypeFor[Linker](),
	reflect.TypeFor[Unlinker](), reflect.TypeFor[Rmdirer](), reflect.TypeFor[Renamer](),
	reflect.TypeFor[Statfser](),
}

// bridge serves a tree through the raw API: every ringfuse.Node it hands
// the server is an *Inode.
type bridge struct {
	t *tree
}

var (
	_ ringfuse.FileSystem  = (*bridge)(nil)
	_ ringfuse.Lookuper    = (*bridge)(nil)
	_ ringfuse.Forgetter   = (*bridge)(nil)
	_ ringfuse.NodeTable   = (*bridge)(nil)
	_ ringfuse.GetAttrer   = (*bridge)(nil)
	_ ringfuse.SetAttrer   = (*bridge)(nil)
	_ ringfuse.Readlinker  = (*bridge)(nil)
	_ ringfuse.Symlinker   = (*bridge)(nil)
	_ ringfuse.Mknoder     = (*bridge)(nil)
	_ ringfuse.Mkdirer     = (*bridge)(nil)
	_ ringfuse.Unlinker    = (*bridge)(nil)
	_ ringfuse.Rmdirer     = (*bridge)(nil)
	_ ringfuse.Renamer     = (*bridge)(nil)
	_ ringfuse.Linker      = (*bridge)(nil)
	_ ringfuse.Opener      = (*bridge)(nil)
	_ ringfuse.Reader      = (*bridge)(nil)
	_ ringfuse.Writer      = (*bridge)(nil)
	_ ringfuse.StatFSer    = (*bridge)(nil)
	_ ringfuse.Releaser    = (*bridge)(nil)
	_ ringfuse.Fsyncer     = (*bridge)(nil)
	_ ringfuse.Flusher     = (*bridge)(nil)
	_ ringfuse.DirOpener   = (*bridge)(nil)
	_ ringfuse.DirReader   = (*bridge)(nil)
	_ ringfuse.DirReleaser = (*bridge)(nil)
	_ ringfuse.Creater     = (*bridge)(nil)
)

// New returns the filesystem that serves the tree whose root is root, a
// directory. It calls the root's OnAdd. It fails if a node type that
// joined the tree so far has a method named like an operation that does
// not match it.
func New(root InodeEmbedder) (fsys ringfuse.FileSystem, err error) {
	if err := checkNode(root); err != nil {
		return nil, err
	}
	t := &tree{byIno: map[uint64]*Inode{}, nextIno: autoIno}
	in := root.EmbeddedInode()
	if in.tree != nil {
		return nil, errors.New("nodefs: the root is already in a tree")
	}
	in.ops, in.tree, in.persistent = root, t, true
	in.stable = StableAttr{Mode: syscall.S_IFDIR, Ino: 1}
	t.root = in
	t.register(in)
	defer func() {
		if p := recover(); p != nil {
			ce, ok := p.(checkError)
			if !ok {
				panic(p)
			}
			fsys, err = nil, ce.err
		}
	}()
	if a, ok := root.(OnAdder); ok {
		a.OnAdd(context.Background())
	}
	return &bridge{t: t}, nil
}

// Mount mounts the tree whose root is root on dir and serves it (see New
// and session.Mount). The caller unmounts it with the session's Unmount.
func Mount(dir string, root InodeEmbedder, opts *session.Options) (*session.Session, error) {
	fsys, err := New(root)
	if err != nil {
		return nil, err
	}
	return session.Mount(dir, fsys, opts)
}

// Root implements ringfuse.FileSystem.
func (b *bridge) Root() ringfuse.Node { return b.t.root }

// defaultAttr fills a's type, mode and number for a node without Getattr.
func defaultAttr(in *Inode, a *Attr) {
	a.Mode = in.stable.Mode | 0o644
	a.Nlink = 1
	if in.IsDir() {
		a.Mode = in.stable.Mode | 0o755
		a.Nlink = 2
	}
}

// fixAttr makes a's number and file type the inode's.
func fixAttr(in *Inode, a *Attr) {
	a.Ino = in.stable.Ino
	if a.Mode&syscall.S_IFMT == 0 {
		a.Mode |= in.stable.Mode
	}
}

// getattr fills out for in; fh is the open file's handle or nil.
func getattr(ctx context.Context, in *Inode, fh FileHandle, out *AttrOut) syscall.Errno {
	if g, ok := in.ops.(Getattrer); ok {
		if errno := g.Getattr(ctx, fh, out); errno != 0 {
			return errno
		}
	} else {
		defaultAttr(in, &out.Attr)
	}
	fixAttr(in, &out.Attr)
	return 0
}

// entry fills out for ch, made or found under a name: its key, and its
// attributes when fill is true (the node's operation did not). The entry
// carries a reference the server gives back through Forget.
func (b *bridge) entry(ctx context.Context, ch *Inode, out *ringfuse.Entry, fill bool) syscall.Errno {
	if fill {
		ao := AttrOut{Timeout: out.AttrTimeout}
		if errno := getattr(ctx, ch, nil, &ao); errno != 0 {
			return errno
		}
		out.Attr, out.AttrTimeout = ao.Attr, ao.Timeout
	}
	ch = b.t.ref(ch)
	fixAttr(ch, &out.Attr)
	out.Node = ch
	out.Key = ringfuse.InodeKey{Ino: ch.stable.Ino}
	out.Generation = ch.stable.Gen
	return 0
}

// adopt makes ch, just returned by an operation of parent, its child name.
func (b *bridge) adopt(parent *Inode, name string, ch *Inode) {
	t := b.t
	t.mu.Lock()
	if parent.children[name] != ch {
		t.unlink(parent, name)
		t.link(parent, name, ch)
	}
	t.mu.Unlock()
}

// nameMax is the longest name the tree takes (NAME_MAX), as statfs says.
const nameMax = 255

// made handles the inode an operation that makes a name returned.
func (b *bridge) made(ctx context.Context, parent *Inode, name string, ch *Inode, errno syscall.Errno, out *ringfuse.Entry) syscall.Errno {
	if errno != 0 {
		return errno
	}
	if ch == nil || ch.tree != b.t {
		return syscall.EIO
	}
	b.adopt(parent, name, ch)
	return b.entry(ctx, ch, out, out.Attr.Mode == 0)
}

// Lookup implements ringfuse.Lookuper.
func (b *bridge) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	if len(name) > nameMax {
		return syscall.ENAMETOOLONG
	}
	p := parent.(*Inode)
	if l, ok := p.ops.(Lookuper); ok {
		ch, errno := l.Lookup(ctx, name, out)
		return b.made(ctx, p, name, ch, errno, out)
	}
	b.t.mu.Lock()
	ch := p.children[name]
	b.t.mu.Unlock()
	if ch == nil {
		return syscall.ENOENT
	}
	return b.entry(ctx, ch, out, true)
}

// Forget implements ringfuse.Forgetter: the server gives back one
// reference.
func (b *bridge) Forget(n ringfuse.Node) {
	in := n.(*Inode)
	if !b.t.unref(in) {
		return
	}
	if f, ok := in.ops.(OnForgetter); ok {
		f.OnForget()
	}
}

// NodeNumber implements ringfuse.NodeTable.
func (b *bridge) NodeNumber(n ringfuse.Node) uint64 { return n.(*Inode).slot }

// NodeAt implements ringfuse.NodeTable.
func (b *bridge) NodeAt(i uint64) ringfuse.Node {
	if in := b.t.slots.at(i); in != nil {
		return in
	}
	return nil
}

// file returns the handle the kernel's fh names (nil for 0).
func (b *bridge) file(fh uint64) FileHandle {
	if fh == 0 {
		return nil
	}
	h, _ := b.t.files.get(fh)
	return h.fh
}

// GetAttr implements ringfuse.GetAttrer.
func (b *bridge) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	return getattr(ctx, n.(*Inode), b.file(fh), out)
}

// SetAttr implements ringfuse.SetAttrer.
func (b *bridge) SetAttr(ctx context.Context, n ringfuse.Node, in *ringfuse.SetAttrIn, out *ringfuse.AttrOut) syscall.Errno {
	node := n.(*Inode)
	s, ok := node.ops.(Setattrer)
	if !ok {
		return syscall.ENOSYS
	}
	var fh FileHandle
	if in.Valid&wire.FATTR_FH != 0 {
		fh = b.file(in.Fh)
	}
	if errno := s.Setattr(ctx, fh, in, out); errno != 0 {
		return errno
	}
	fixAttr(node, &out.Attr)
	return 0
}

// Readlink implements ringfuse.Readlinker.
func (b *bridge) Readlink(ctx context.Context, n ringfuse.Node) ([]byte, syscall.Errno) {
	if r, ok := n.(*Inode).ops.(Readlinker); ok {
		return r.Readlink(ctx)
	}
	return nil, syscall.EINVAL
}

// Symlink implements ringfuse.Symlinker.
func (b *bridge) Symlink(ctx context.Context, parent ringfuse.Node, name, target string, out *ringfuse.Entry) syscall.Errno {
	if len(name) > nameMax {
		return syscall.ENAMETOOLONG
	}
	p := parent.(*Inode)
	s, ok := p.ops.(Symlinker)
	if !ok {
		return syscall.ENOSYS
	}
	ch, errno := s.Symlink(ctx, target, name, out)
	return b.made(ctx, p, name, ch, errno, out)
}

// Mknod implements ringfuse.Mknoder.
func (b *bridge) Mknod(ctx context.Context, parent ringfuse.Node, name string, mode, rdev, umask uint32, out *ringfuse.Entry) syscall.Errno {
	if len(name) > nameMax {
		return syscall.ENAMETOOLONG
	}
	p := parent.(*Inode)
	m, ok := p.ops.(Mknoder)
	if !ok {
		return syscall.ENOSYS
	}
	ch, errno := m.Mknod(ctx, name, mode, rdev, out)
	return b.made(ctx, p, name, ch, errno, out)
}

// Mkdir implements ringfuse.Mkdirer.
func (b *bridge) Mkdir(ctx context.Context, parent ringfuse.Node, name string, mode, umask uint32, out *ringfuse.Entry) syscall.Errno {
	if len(name) > nameMax {
		return syscall.ENAMETOOLONG
	}
	p := parent.(*Inode)
	m, ok := p.ops.(Mkdirer)
	if !ok {
		return syscall.ENOSYS
	}
	ch, errno := m.Mkdir(ctx, name, mode, out)
	return b.made(ctx, p, name, ch, errno, out)
}

// Link implements ringfuse.Linker.
func (b *bridge) Link(ctx context.Context, n ringfuse.Node, newParent ringfuse.Node, newName string, out *ringfuse.Entry) syscall.Errno {
	if len(newName) > nameMax {
		return syscall.ENAMETOOLONG
	}
	p := newParent.(*Inode)
	l, ok := p.ops.(Linker)
	if !ok {
		return syscall.ENOSYS
	}
	ch, errno := l.Link(ctx, n.(*Inode).ops, newName, out)
	return b.made(ctx, p, newName, ch, errno, out)
}

// Create implements ringfuse.Creater.
func (b *bridge) Create(ctx context.Context, parent ringfuse.Node, name string, flags, mode, umask uint32, out *ringfuse.Entry, open *ringfuse.OpenOut) syscall.Errno {
	if len(name) > nameMax {
		return syscall.ENAMETOOLONG
	}
	p := parent.(*Inode)
	c, ok := p.ops.(Creater)
	if !ok {
		return syscall.ENOSYS
	}
	ch, fh, fuseFlags, errno := c.Create(ctx, name, flags, mode, out)
	if errno = b.made(ctx, p, name, ch, errno, out); errno != 0 {
		return errno
	}
	b.opened(fh, fuseFlags, open)
	return 0
}

// opened stores an open file's handle.
func (b *bridge) opened(fh FileHandle, fuseFlags uint32, out *ringfuse.OpenOut) {
	out.Flags = fuseFlags
	if fh != nil {
		out.Fh = b.t.files.add(handle{fh: fh})
	}
}

// Unlink implements ringfuse.Unlinker.
func (b *bridge) Unlink(ctx context.Context, parent ringfuse.Node, name string) syscall.Errno {
	p := parent.(*Inode)
	u, ok := p.ops.(Unlinker)
	if !ok {
		return syscall.ENOSYS
	}
	if errno := u.Unlink(ctx, name); errno != 0 {
		return errno
	}
	p.RmChild(name)
	return 0
}

// Rmdir implements ringfuse.Rmdirer.
func (b *bridge) Rmdir(ctx context.Context, parent ringfuse.Node, name string) syscall.Errno {
	p := parent.(*Inode)
	r, ok := p.ops.(Rmdirer)
	if !ok {
		return syscall.ENOSYS
	}
	if errno := r.Rmdir(ctx, name); errno != 0 {
		return errno
	}
	p.RmChild(name)
	return 0
}

// Rename implements ringfuse.Renamer.
func (b *bridge) Rename(ctx context.Context, parent ringfuse.Node, name string, newParent ringfuse.Node, newName string, flags uint32) syscall.Errno {
	if len(newName) > nameMax {
		return syscall.ENAMETOOLONG
	}
	p, np := parent.(*Inode), newParent.(*Inode)
	r, ok := p.ops.(Renamer)
	if !ok {
		return syscall.ENOSYS
	}
	if errno := r.Rename(ctx, name, np.ops, newName, flags); errno != 0 {
		return errno
	}
	t := b.t
	t.mu.Lock()
	defer t.mu.Unlock()
	src, dst := p.children[name], np.children[newName]
	if src == nil {
		t.unlink(np, newName) // the child was not in the tree: nor is the target now
		return 0
	}
	// Link before unlinking, so that no inode is dropped on the way.
	t.link(np, newName, src)
	if dst != nil {
		dst.links--
		if dst.IsDir() {
			np.subdirs--
		}
	}
	src.links--
	if src.IsDir() {
		p.subdirs--
	}
	delete(p.children, name)
	if flags&ringfuse.RENAME_EXCHANGE != 0 && dst != nil {
		t.link(p, name, dst)
	}
	src.parent, src.name = np, newName
	if dst != nil && dst.parent == np && dst.name == newName {
		dst.parent, dst.name = nil, ""
		if flags&ringfuse.RENAME_EXCHANGE != 0 {
			dst.parent, dst.name = p, name
		}
	}
	if dst != nil {
		t.maybeDrop(dst)
	}
	return 0
}

// Open implements ringfuse.Opener.
func (b *bridge) Open(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	o, ok := n.(*Inode).ops.(Opener)
	if !ok {
		return 0
	}
	fh, fuseFlags, errno := o.Open(ctx, flags)
	if errno != 0 {
		return errno
	}
	b.opened(fh, fuseFlags, out)
	return 0
}

// Read implements ringfuse.Reader.
func (b *bridge) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	r, ok := n.(*Inode).ops.(Reader)
	if !ok {
		return 0, syscall.ENOSYS
	}
	return r.Read(ctx, b.file(fh), buf, off)
}

// Write implements ringfuse.Writer.
func (b *bridge) Write(ctx context.Context, n ringfuse.Node, fh uint64, off int64, data []byte, flags uint32) (int, syscall.Errno) {
	w, ok := n.(*Inode).ops.(Writer)
	if !ok {
		return 0, syscall.ENOSYS
	}
	return w.Write(ctx, b.file(fh), data, off)
}

// StatFS implements ringfuse.StatFSer.
func (b *bridge) StatFS(ctx context.Context, n ringfuse.Node, out *ringfuse.StatFS) syscall.Errno {
	if s, ok := n.(*Inode).ops.(Statfser); ok {
		return s.Statfs(ctx, out)
	}
	out.Bsize, out.Frsize, out.Namelen = 4096, 4096, nameMax
	return 0
}

// Release implements ringfuse.Releaser.
func (b *bridge) Release(ctx context.Context, n ringfuse.Node, fh uint64, flags uint32) {
	var h handle
	if fh != 0 {
		h, _ = b.t.files.remove(fh)
	}
	if r, ok := n.(*Inode).ops.(Releaser); ok {
		r.Release(ctx, h.fh)
	}
}

// Fsync implements ringfuse.Fsyncer.
func (b *bridge) Fsync(ctx context.Context, n ringfuse.Node, fh uint64, datasync bool) syscall.Errno {
	if f, ok := n.(*Inode).ops.(Fsyncer); ok {
		return f.Fsync(ctx, b.file(fh), datasync)
	}
	return syscall.ENOSYS
}

// Flush implements ringfuse.Flusher.
func (b *bridge) Flush(ctx context.Context, n ringfuse.Node, fh uint64, lockOwner uint64) syscall.Errno {
	if f, ok := n.(*Inode).ops.(Flusher); ok {
		return f.Flush(ctx, b.file(fh))
	}
	return syscall.ENOSYS
}

// OpenDir implements ringfuse.DirOpener.
func (b *bridge) OpenDir(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	if !n.(*Inode).IsDir() {
		return syscall.ENOTDIR
	}
	out.Fh = b.t.files.add(handle{dir: new(dirHandle)})
	return 0
}

// ReleaseDir implements ringfuse.DirReleaser.
func (b *bridge) ReleaseDir(ctx context.Context, n ringfuse.Node, fh uint64) {
	b.t.files.remove(fh)
}

// list takes the listing of dir into d.
func (b *bridge) list(ctx context.Context, dir *Inode, d *dirHandle) syscall.Errno {
	d.entries, d.inodes = d.entries[:0], d.inodes[:0]
	if r, ok := dir.ops.(Readdirer); ok {
		ents, errno := r.Readdir(ctx)
		if errno != 0 {
			return errno
		}
		d.entries, d.inodes = append(d.entries, ents...), nil
		return 0
	}
	b.t.mu.Lock()
	for name, ch := range dir.children {
		d.entries = append(d.entries, DirEntry{Name: name, Mode: ch.stable.Mode, Ino: ch.stable.Ino})
	}
	b.t.mu.Unlock()
	slices.SortFunc(d.entries, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
	for _, e := range d.entries {
		d.inodes = append(d.inodes, dir.GetChild(e.Name))
	}
	return 0
}

// ReadDir implements ringfuse.DirReader. Offsets count entries: "." is 1,
// ".." 2, and the listing follows.
func (b *bridge) ReadDir(ctx context.Context, n ringfuse.Node, fh uint64, off uint64, w ringfuse.DirWriter) syscall.Errno {
	dir := n.(*Inode)
	h, ok := b.t.files.get(fh)
	if !ok || h.dir == nil {
		return syscall.EBADF
	}
	d := h.dir
	d.mu.Lock()
	defer d.mu.Unlock()
	if off == 0 {
		if errno := b.list(ctx, dir, d); errno != 0 {
			return errno
		}
	}
	for ; off < 2; off++ {
		ino := dir.stable.Ino
		if p, _ := dir.Parent(); off == 1 && p != nil {
			ino = p.stable.Ino
		}
		if !w.Add(".."[:off+1], ino, syscall.S_IFDIR, off+1) {
			return 0
		}
	}
	for i := int(off) - 2; i < len(d.entries); i++ {
		if !b.addEntry(ctx, w, d, i) {
			break
		}
	}
	return 0
}

// addEntry adds the listing's entry i, with its attributes if the kernel
// asked for them and the entry is a child in the tree.
func (b *bridge) addEntry(ctx context.Context, w ringfuse.DirWriter, d *dirHandle, i int) bool {
	e, off := d.entries[i], uint64(i)+3
	if !w.Plus() || d.inodes == nil || d.inodes[i] == nil {
		return w.Add(e.Name, e.Ino, e.Mode, off)
	}
	var out ringfuse.Entry
	if b.entry(ctx, d.inodes[i], &out, true) != 0 {
		return w.Add(e.Name, e.Ino, e.Mode, off)
	}
	if !w.AddEntry(e.Name, &out, off) {
		b.Forget(out.Node) // not taken: the reference is still ours
		return false
	}
	return true
}
