package main

import (
	"context"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/session"
)

// rawFS is the in-memory tree written against ringfuse's raw API: the
// filesystem numbers its inodes, answers Lookup from its own directory
// maps and fills every attribute itself.
type rawFS struct {
	mu   sync.RWMutex // guards every directory's kids
	root *rnode
	next atomic.Uint64
}

// rnode is one inode.
type rnode struct {
	ino  uint64
	mode uint32 // type and permissions
	kids map[string]*rnode
	mu   sync.RWMutex // guards data
	data []byte
}

var (
	_ ringfuse.Lookuper  = (*rawFS)(nil)
	_ ringfuse.GetAttrer = (*rawFS)(nil)
	_ ringfuse.SetAttrer = (*rawFS)(nil)
	_ ringfuse.Opener    = (*rawFS)(nil)
	_ ringfuse.Reader    = (*rawFS)(nil)
	_ ringfuse.Writer    = (*rawFS)(nil)
	_ ringfuse.Creater   = (*rawFS)(nil)
	_ ringfuse.Mkdirer   = (*rawFS)(nil)
	_ ringfuse.Unlinker  = (*rawFS)(nil)
	_ ringfuse.Rmdirer   = (*rawFS)(nil)
	_ ringfuse.DirReader = (*rawFS)(nil)
)

func newRawFS(ents []entry) *rawFS {
	fs := &rawFS{}
	fs.next.Store(1)
	fs.root = &rnode{ino: 1, mode: syscall.S_IFDIR | 0o755, kids: map[string]*rnode{}}
	dirs := map[string]*rnode{".": fs.root}
	for _, e := range ents {
		n := fs.newNode(syscall.S_IFREG | e.mode)
		if e.dir {
			n = fs.newNode(syscall.S_IFDIR | e.mode)
			dirs[e.path] = n
		}
		n.data = e.data
		dirs[path.Dir(e.path)].kids[path.Base(e.path)] = n
	}
	return fs
}

func (fs *rawFS) newNode(mode uint32) *rnode {
	n := &rnode{ino: fs.next.Add(1), mode: mode}
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		n.kids = map[string]*rnode{}
	}
	return n
}

func (n *rnode) attr(a *ringfuse.Attr) {
	n.mu.RLock()
	size := uint64(len(n.data))
	n.mu.RUnlock()
	*a = ringfuse.Attr{Ino: n.ino, Mode: n.mode, Nlink: 1, Size: size, Blocks: (size + 511) / 512}
	if n.kids != nil {
		a.Nlink = 2
	}
}

func (fs *rawFS) Root() ringfuse.Node { return fs.root }

func (fs *rawFS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	fs.mu.RLock()
	n := parent.(*rnode).kids[name]
	fs.mu.RUnlock()
	if n == nil {
		return syscall.ENOENT
	}
	out.Node = n
	n.attr(&out.Attr)
	return 0
}

func (fs *rawFS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	n.(*rnode).attr(&out.Attr)
	return 0
}

func (fs *rawFS) SetAttr(ctx context.Context, n ringfuse.Node, in *ringfuse.SetAttrIn, out *ringfuse.AttrOut) syscall.Errno {
	r := n.(*rnode)
	if in.Valid&ringfuse.FATTR_SIZE != 0 {
		r.mu.Lock()
		r.data = append(r.data[:min(in.Size, uint64(len(r.data)))], make([]byte, max(0, int64(in.Size)-int64(len(r.data))))...)
		r.mu.Unlock()
	}
	r.attr(&out.Attr)
	return 0
}

func (fs *rawFS) Open(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	return 0
}

func (fs *rawFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	r := n.(*rnode)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if off >= int64(len(r.data)) {
		return 0, 0
	}
	return copy(buf, r.data[off:]), 0
}

func (fs *rawFS) Write(ctx context.Context, n ringfuse.Node, fh uint64, off int64, data []byte, flags uint32) (int, syscall.Errno) {
	r := n.(*rnode)
	r.mu.Lock()
	defer r.mu.Unlock()
	if end := off + int64(len(data)); end > int64(len(r.data)) {
		r.data = append(r.data, make([]byte, end-int64(len(r.data)))...)
	}
	return copy(r.data[off:], data), 0
}

// add makes name in parent, an inode of mode.
func (fs *rawFS) add(parent ringfuse.Node, name string, mode uint32, out *ringfuse.Entry) syscall.Errno {
	p := parent.(*rnode)
	n := fs.newNode(mode)
	fs.mu.Lock()
	if p.kids[name] != nil {
		fs.mu.Unlock()
		return syscall.EEXIST
	}
	p.kids[name] = n
	fs.mu.Unlock()
	out.Node = n
	n.attr(&out.Attr)
	return 0
}

func (fs *rawFS) Create(ctx context.Context, parent ringfuse.Node, name string, flags, mode, umask uint32, out *ringfuse.Entry, open *ringfuse.OpenOut) syscall.Errno {
	return fs.add(parent, name, syscall.S_IFREG|mode&0o7777, out)
}

func (fs *rawFS) Mkdir(ctx context.Context, parent ringfuse.Node, name string, mode, umask uint32, out *ringfuse.Entry) syscall.Errno {
	return fs.add(parent, name, syscall.S_IFDIR|mode&0o7777, out)
}

func (fs *rawFS) remove(parent ringfuse.Node, name string, dir bool) syscall.Errno {
	p := parent.(*rnode)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := p.kids[name]
	switch {
	case n == nil:
		return syscall.ENOENT
	case dir && n.kids == nil:
		return syscall.ENOTDIR
	case dir && len(n.kids) > 0:
		return syscall.ENOTEMPTY
	case !dir && n.kids != nil:
		return syscall.EISDIR
	}
	delete(p.kids, name)
	return 0
}

func (fs *rawFS) Unlink(ctx context.Context, parent ringfuse.Node, name string) syscall.Errno {
	return fs.remove(parent, name, false)
}

func (fs *rawFS) Rmdir(ctx context.Context, parent ringfuse.Node, name string) syscall.Errno {
	return fs.remove(parent, name, true)
}

// ReadDir lists the children sorted by name; the offset counts entries.
func (fs *rawFS) ReadDir(ctx context.Context, n ringfuse.Node, fh uint64, off uint64, w ringfuse.DirWriter) syscall.Errno {
	d := n.(*rnode)
	fs.mu.RLock()
	names := make([]string, 0, len(d.kids))
	for name := range d.kids {
		names = append(names, name)
	}
	kids := make([]*rnode, len(names))
	slices.Sort(names)
	for i, name := range names {
		kids[i] = d.kids[name]
	}
	fs.mu.RUnlock()
	for i := int(off); i < len(names); i++ {
		if !w.Add(names[i], kids[i].ino, kids[i].mode, uint64(i+1)) {
			break
		}
	}
	return 0
}

func serveRaw(mnt string, ents []entry, uring bool) (func() error, error) {
	s, err := session.Mount(mnt, newRawFS(ents), sessionOptions(uring))
	if err != nil {
		return nil, err
	}
	return s.Unmount, nil
}
