// Package hello is the smallest useful ringfuse filesystem: a read-only
// root directory holding one file. It shows the shape of the API.
package hello

import (
	"context"
	"syscall"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// FS serves a root directory with one file, Name, whose contents are Data.
type FS struct {
	Name string
	Data []byte
}

type node int // 1 is the root, 2 the file

const (
	rootIno = 1
	fileIno = 2
)

var (
	_ ringfuse.FileSystem = (*FS)(nil)
	_ ringfuse.Lookuper   = (*FS)(nil)
	_ ringfuse.GetAttrer  = (*FS)(nil)
	_ ringfuse.DirReader  = (*FS)(nil)
	_ ringfuse.Reader     = (*FS)(nil)
)

// Root implements ringfuse.FileSystem.
func (f *FS) Root() ringfuse.Node { return node(rootIno) }

func (f *FS) attr(n node, a *wire.Attr) {
	a.Ino = uint64(n)
	if n == rootIno {
		a.Mode = syscall.S_IFDIR | 0o755
		a.Nlink = 2
		return
	}
	a.Mode = syscall.S_IFREG | 0o444
	a.Nlink = 1
	a.Size = uint64(len(f.Data))
}

// Lookup implements ringfuse.Lookuper.
func (f *FS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	if parent.(node) != rootIno || name != f.Name {
		return syscall.ENOENT
	}
	out.Node = node(fileIno)
	f.attr(fileIno, &out.Attr)
	return 0
}

// GetAttr implements ringfuse.GetAttrer.
func (f *FS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	f.attr(n.(node), &out.Attr)
	return 0
}

// ReadDir implements ringfuse.DirReader.
func (f *FS) ReadDir(ctx context.Context, n ringfuse.Node, fh uint64, off uint64, w ringfuse.DirWriter) syscall.Errno {
	names := []struct {
		name string
		ino  uint64
		mode uint32
	}{{".", rootIno, syscall.S_IFDIR}, {"..", rootIno, syscall.S_IFDIR}, {f.Name, fileIno, syscall.S_IFREG}}
	for i := int(off); i < len(names); i++ {
		if !w.Add(names[i].name, names[i].ino, names[i].mode, uint64(i+1)) {
			break
		}
	}
	return 0
}

// Read implements ringfuse.Reader.
func (f *FS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	if n.(node) != fileIno {
		return 0, syscall.EISDIR
	}
	if off >= int64(len(f.Data)) {
		return 0, 0
	}
	return copy(buf, f.Data[off:]), 0
}
