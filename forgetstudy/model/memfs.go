package model

import (
	"context"
	"strconv"
	"strings"
	"syscall"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// memFS is the model runs' filesystem: a root directory holding n empty
// files "f0" … "f<n-1>" (the storm's nodes) and one file "data" that the
// readers read. Files are computed from their names, so a million cost one
// small struct each and no map.
type memFS struct {
	root  *mnode
	data  *mnode
	files []mnode
	buf   []byte // the contents of "data"
}

type mnode struct {
	ino uint64
	dir bool
}

var (
	_ ringfuse.Lookuper  = (*memFS)(nil)
	_ ringfuse.GetAttrer = (*memFS)(nil)
	_ ringfuse.Opener    = (*memFS)(nil)
	_ ringfuse.Reader    = (*memFS)(nil)
	_ ringfuse.Flusher   = (*memFS)(nil)
	_ ringfuse.Releaser  = (*memFS)(nil)
)

func newMemFS(n int, size int64) *memFS {
	f := &memFS{
		root:  &mnode{ino: 1, dir: true},
		data:  &mnode{ino: 2},
		files: make([]mnode, n),
		buf:   make([]byte, size),
	}
	for i := range f.files {
		f.files[i].ino = uint64(i) + 3
	}
	return f
}

func fileName(i int) string { return "f" + strconv.Itoa(i) }

func (f *memFS) Root() ringfuse.Node { return f.root }

func (f *memFS) attr(n *mnode, a *wire.Attr) {
	a.Ino = n.ino
	a.Nlink = 1
	switch {
	case n.dir:
		a.Mode = syscall.S_IFDIR | 0o755
		a.Nlink = 2
	case n == f.data:
		a.Mode = syscall.S_IFREG | 0o644
		a.Size = uint64(len(f.buf))
	default:
		a.Mode = syscall.S_IFREG | 0o644
	}
}

func (f *memFS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	if p := parent.(*mnode); p != f.root {
		return syscall.ENOTDIR
	}
	var n *mnode
	if name == "data" {
		n = f.data
	} else if s, ok := strings.CutPrefix(name, "f"); ok {
		i, err := strconv.Atoi(s)
		if err != nil || i < 0 || i >= len(f.files) || strconv.Itoa(i) != s {
			return syscall.ENOENT
		}
		n = &f.files[i]
	} else {
		return syscall.ENOENT
	}
	out.Node = n
	f.attr(n, &out.Attr)
	return 0
}

func (f *memFS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	f.attr(n.(*mnode), &out.Attr)
	return 0
}

func (f *memFS) Open(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	out.Fh = n.(*mnode).ino
	out.Flags = wire.FOPEN_DIRECT_IO
	return 0
}

func (f *memFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	if n.(*mnode) != f.data || off >= int64(len(f.buf)) {
		return 0, 0
	}
	return copy(buf, f.buf[off:]), 0
}

func (f *memFS) Flush(ctx context.Context, n ringfuse.Node, fh uint64, lockOwner uint64) syscall.Errno {
	return 0
}

func (f *memFS) Release(ctx context.Context, n ringfuse.Node, fh uint64, flags uint32) {}
