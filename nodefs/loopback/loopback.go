//go:build linux

package loopback

import (
	"context"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/nodefs"
)

// FS is what the nodes of one loopback tree share.
type FS struct {
	pt *passthrough.FS
	// mu orders the late Forget of a collected node (read side) against
	// Close (write side).
	mu     sync.RWMutex
	closed bool
	// dev is the device of the first entry seen: its inode numbers are
	// the tree's, the others' are mixed with their device.
	dev atomic.Uint64
}

// Node is a node of a loopback tree.
type Node struct {
	nodefs.Inode
	fs *FS
	pn ringfuse.Node // the passthrough's node; the Node holds one reference
}

var (
	_ nodefs.Lookuper   = (*Node)(nil)
	_ nodefs.Getattrer  = (*Node)(nil)
	_ nodefs.Setattrer  = (*Node)(nil)
	_ nodefs.Readdirer  = (*Node)(nil)
	_ nodefs.Opener     = (*Node)(nil)
	_ nodefs.Reader     = (*Node)(nil)
	_ nodefs.Writer     = (*Node)(nil)
	_ nodefs.Releaser   = (*Node)(nil)
	_ nodefs.Flusher    = (*Node)(nil)
	_ nodefs.Fsyncer    = (*Node)(nil)
	_ nodefs.Readlinker = (*Node)(nil)
	_ nodefs.Mkdirer    = (*Node)(nil)
	_ nodefs.Mknoder    = (*Node)(nil)
	_ nodefs.Creater    = (*Node)(nil)
	_ nodefs.Symlinker  = (*Node)(nil)
	_ nodefs.Linker     = (*Node)(nil)
	_ nodefs.Unlinker   = (*Node)(nil)
	_ nodefs.Rmdirer    = (*Node)(nil)
	_ nodefs.Renamer    = (*Node)(nil)
	_ nodefs.Statfser   = (*Node)(nil)
)

// New returns the root of a loopback tree over the directory source, for
// nodefs.New or nodefs.Mount. Close the FS (Node.FS) after unmounting.
func New(source string, opts *passthrough.Options) (*Node, error) {
	pt, err := passthrough.New(source, opts)
	if err != nil {
		return nil, err
	}
	return &Node{fs: &FS{pt: pt}, pn: pt.Root()}, nil
}

// FS returns what the tree's nodes share.
func (n *Node) FS() *FS { return n.fs }

// Close closes the passthrough's descriptors; call it after unmounting.
func (fs *FS) Close() error {
	fs.mu.Lock()
	fs.closed = true
	fs.mu.Unlock()
	return fs.pt.Close()
}

// release gives back a collected node's passthrough reference.
func (fs *FS) release(pn ringfuse.Node) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	if !fs.closed {
		fs.pt.Forget(pn)
	}
}

// inoOf maps a passthrough key to the tree's inode number.
func (fs *FS) inoOf(k ringfuse.InodeKey) uint64 {
	fs.dev.CompareAndSwap(0, k.Dev)
	if k.Dev == fs.dev.Load() {
		return k.Ino
	}
	// Another device, or a new incarnation of a number: a number of its
	// own, below the range nodefs numbers inodes in.
	return (k.Ino^bits.RotateLeft64(k.Dev*0x9e3779b97f4a7c15, 32))&^(1<<63) | 1<<62
}

// child turns the entry the passthrough filled into an inode of the tree.
// The entry's node carries one passthrough reference: a new Node keeps it
// until the collector frees the Node (nodefs has then let go of it, and so
// has the server), an inode the tree already has gives it back at once.
func (n *Node) child(ctx context.Context, out *nodefs.EntryOut) *nodefs.Inode {
	pn := out.Node
	ch := &Node{fs: n.fs, pn: pn}
	st := nodefs.StableAttr{Mode: out.Attr.Mode & syscall.S_IFMT, Ino: n.fs.inoOf(out.Key), Gen: out.Generation}
	in := n.NewInode(ctx, ch, st)
	if in.Operations() != nodefs.InodeEmbedder(ch) {
		n.fs.pt.Forget(pn)
	} else {
		runtime.AddCleanup(ch, n.fs.release, pn)
	}
	return in
}

// made finishes an operation that made a name.
func (n *Node) made(ctx context.Context, errno syscall.Errno, out *nodefs.EntryOut) (*nodefs.Inode, syscall.Errno) {
	if errno != 0 {
		return nil, errno
	}
	return n.child(ctx, out), 0
}

// fh is a passthrough file handle.
type fh uint64

// fhOf returns the passthrough's handle behind f.
func fhOf(f nodefs.FileHandle) (uint64, bool) {
	h, ok := f.(fh)
	return uint64(h), ok
}

// Lookup implements nodefs.Lookuper.
func (n *Node) Lookup(ctx context.Context, name string, out *nodefs.EntryOut) (*nodefs.Inode, syscall.Errno) {
	return n.made(ctx, n.fs.pt.Lookup(ctx, n.pn, name, out), out)
}

// Getattr implements nodefs.Getattrer.
func (n *Node) Getattr(ctx context.Context, f nodefs.FileHandle, out *nodefs.AttrOut) syscall.Errno {
	h, ok := fhOf(f)
	return n.fs.pt.GetAttr(ctx, n.pn, h, ok, out)
}

// Setattr implements nodefs.Setattrer.
func (n *Node) Setattr(ctx context.Context, f nodefs.FileHandle, in *nodefs.SetAttrIn, out *nodefs.AttrOut) syscall.Errno {
	return n.fs.pt.SetAttr(ctx, n.pn, in, out)
}

// Readdir implements nodefs.Readdirer.
func (n *Node) Readdir(ctx context.Context) ([]nodefs.DirEntry, syscall.Errno) {
	oo := ringfuse.OpenOut{PassthroughFd: -1}
	if errno := n.fs.pt.OpenDir(ctx, n.pn, syscall.O_RDONLY, &oo); errno != 0 {
		return nil, errno
	}
	defer n.fs.pt.ReleaseDir(ctx, n.pn, oo.Fh)
	var l lister
	for {
		l.added = 0
		if errno := n.fs.pt.ReadDir(ctx, n.pn, oo.Fh, l.off, &l); errno != 0 {
			return nil, errno
		}
		if l.added == 0 {
			return l.ents, 0
		}
	}
}

// lister collects a passthrough listing, a page at a time.
type lister struct {
	ents  []nodefs.DirEntry
	off   uint64
	added int
}

func (l *lister) Plus() bool { return false }

func (l *lister) Add(name string, ino uint64, typ uint32, off uint64) bool {
	if l.added == 1024 {
		return false
	}
	if name != "." && name != ".." {
		l.ents = append(l.ents, nodefs.DirEntry{Name: name, Mode: typ, Ino: ino})
	}
	l.off = off
	l.added++
	return true
}

func (l *lister) AddEntry(name string, e *ringfuse.Entry, off uint64) bool {
	return l.Add(name, e.Attr.Ino, e.Attr.Mode, off)
}

// Open implements nodefs.Opener.
func (n *Node) Open(ctx context.Context, flags uint32) (nodefs.FileHandle, uint32, syscall.Errno) {
	oo := ringfuse.OpenOut{PassthroughFd: -1}
	if errno := n.fs.pt.Open(ctx, n.pn, flags, &oo); errno != 0 {
		return nil, 0, errno
	}
	return fh(oo.Fh), oo.Flags, 0
}

// Read implements nodefs.Reader.
func (n *Node) Read(ctx context.Context, f nodefs.FileHandle, dest []byte, off int64) (int, syscall.Errno) {
	h, _ := fhOf(f)
	return n.fs.pt.Read(ctx, n.pn, h, off, dest)
}

// Write implements nodefs.Writer.
func (n *Node) Write(ctx context.Context, f nodefs.FileHandle, data []byte, off int64) (int, syscall.Errno) {
	h, _ := fhOf(f)
	return n.fs.pt.Write(ctx, n.pn, h, off, data, 0)
}

// Release implements nodefs.Releaser.
func (n *Node) Release(ctx context.Context, f nodefs.FileHandle) {
	if h, ok := fhOf(f); ok {
		n.fs.pt.Release(ctx, n.pn, h, 0)
	}
}

// Flush implements nodefs.Flusher.
func (n *Node) Flush(ctx context.Context, f nodefs.FileHandle) syscall.Errno {
	h, _ := fhOf(f)
	return n.fs.pt.Flush(ctx, n.pn, h, 0)
}

// Fsync implements nodefs.Fsyncer.
func (n *Node) Fsync(ctx context.Context, f nodefs.FileHandle, datasync bool) syscall.Errno {
	h, _ := fhOf(f)
	return n.fs.pt.Fsync(ctx, n.pn, h, datasync)
}

// Readlink implements nodefs.Readlinker.
func (n *Node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return n.fs.pt.Readlink(ctx, n.pn)
}

// Mkdir implements nodefs.Mkdirer.
func (n *Node) Mkdir(ctx context.Context, name string, mode uint32, out *nodefs.EntryOut) (*nodefs.Inode, syscall.Errno) {
	return n.made(ctx, n.fs.pt.Mkdir(ctx, n.pn, name, mode, 0, out), out)
}

// Mknod implements nodefs.Mknoder.
func (n *Node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *nodefs.EntryOut) (*nodefs.Inode, syscall.Errno) {
	return n.made(ctx, n.fs.pt.Mknod(ctx, n.pn, name, mode, rdev, 0, out), out)
}

// Create implements nodefs.Creater.
func (n *Node) Create(ctx context.Context, name string, flags, mode uint32, out *nodefs.EntryOut) (*nodefs.Inode, nodefs.FileHandle, uint32, syscall.Errno) {
	oo := ringfuse.OpenOut{PassthroughFd: -1}
	in, errno := n.made(ctx, n.fs.pt.Create(ctx, n.pn, name, flags, mode, 0, out, &oo), out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return in, fh(oo.Fh), oo.Flags, 0
}

// Symlink implements nodefs.Symlinker.
func (n *Node) Symlink(ctx context.Context, target, name string, out *nodefs.EntryOut) (*nodefs.Inode, syscall.Errno) {
	return n.made(ctx, n.fs.pt.Symlink(ctx, n.pn, name, target, out), out)
}

// Link implements nodefs.Linker.
func (n *Node) Link(ctx context.Context, target nodefs.InodeEmbedder, name string, out *nodefs.EntryOut) (*nodefs.Inode, syscall.Errno) {
	t, ok := target.(*Node)
	if !ok {
		return nil, syscall.EXDEV
	}
	return n.made(ctx, n.fs.pt.Link(ctx, t.pn, n.pn, name, out), out)
}

// Unlink implements nodefs.Unlinker.
func (n *Node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.fs.pt.Unlink(ctx, n.pn, name)
}

// Rmdir implements nodefs.Rmdirer.
func (n *Node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.fs.pt.Rmdir(ctx, n.pn, name)
}

// Rename implements nodefs.Renamer.
func (n *Node) Rename(ctx context.Context, name string, newParent nodefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*Node)
	if !ok {
		return syscall.EXDEV
	}
	return n.fs.pt.Rename(ctx, n.pn, name, np.pn, newName, flags)
}

// Statfs implements nodefs.Statfser.
func (n *Node) Statfs(ctx context.Context, out *nodefs.StatFS) syscall.Errno {
	return n.fs.pt.StatFS(ctx, n.pn, out)
}
