// Command zipfs mounts a zip archive read-only and serves it until
// interrupted:
//
//	zipfs ARCHIVE.zip MOUNTPOINT
package main

import (
	"archive/zip"
	"context"
	"io"
	"io/fs"
	"log"
	"os"
	"os/signal"
	"path"
	"strings"
	"sync"
	"syscall"

	"github.com/ringfuse/ringfuse/nodefs"
)

// root is the archive's top directory; OnAdd builds the tree.
type root struct {
	nodefs.Inode
	zr *zip.Reader
}

// file is one archive member, decompressed on first open.
type file struct {
	nodefs.Inode
	zf   *zip.File
	once sync.Once
	data []byte
	err  syscall.Errno
}

var (
	_ nodefs.OnAdder   = (*root)(nil)
	_ nodefs.Getattrer = (*file)(nil)
	_ nodefs.Opener    = (*file)(nil)
	_ nodefs.Reader    = (*file)(nil)
)

func (r *root) OnAdd(ctx context.Context) {
	for _, zf := range r.zr.File {
		if !fs.ValidPath(strings.TrimSuffix(zf.Name, "/")) {
			continue // "..", "/etc/passwd" and such name nothing in the tree
		}
		dir, base := path.Split(strings.TrimSuffix(zf.Name, "/"))
		parent := r.mkdirAll(ctx, dir)
		if strings.HasSuffix(zf.Name, "/") {
			r.mkdirAll(ctx, zf.Name)
			continue
		}
		parent.AddChild(base, r.NewPersistentInode(ctx, &file{zf: zf}, nodefs.StableAttr{}), false)
	}
}

// mkdirAll returns the directory named by the slash-separated p, making
// it and its parents as needed.
func (r *root) mkdirAll(ctx context.Context, p string) *nodefs.Inode {
	n := &r.Inode
	for _, name := range strings.Split(strings.Trim(p, "/"), "/") {
		if name == "" {
			continue
		}
		ch := n.GetChild(name)
		if ch == nil {
			ch = n.NewPersistentInode(ctx, &nodefs.Inode{}, nodefs.StableAttr{Mode: syscall.S_IFDIR})
			n.AddChild(name, ch, false)
		}
		n = ch
	}
	return n
}

func (f *file) Getattr(ctx context.Context, fh nodefs.FileHandle, out *nodefs.AttrOut) syscall.Errno {
	out.Attr.Mode = uint32(f.zf.Mode().Perm()) | 0o444
	out.Attr.Size = f.zf.UncompressedSize64
	out.Attr.Mtime = uint64(f.zf.Modified.Unix())
	return 0
}

func (f *file) Open(ctx context.Context, flags uint32) (nodefs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EROFS
	}
	return nil, 0, f.load()
}

// load decompresses the member once. Read calls it too: that the kernel
// opened first is invisible to Go's memory model.
func (f *file) load() syscall.Errno {
	f.once.Do(func() {
		rc, err := f.zf.Open()
		if err == nil {
			f.data, err = io.ReadAll(rc)
			rc.Close()
		}
		if err != nil {
			f.err = syscall.EIO
		}
	})
	return f.err
}

func (f *file) Read(ctx context.Context, fh nodefs.FileHandle, dest []byte, off int64) (int, syscall.Errno) {
	if errno := f.load(); errno != 0 {
		return 0, errno
	}
	if off >= int64(len(f.data)) {
		return 0, 0
	}
	return copy(dest, f.data[off:]), 0
}

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: zipfs ARCHIVE.zip MOUNTPOINT")
	}
	zr, err := zip.OpenReader(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := nodefs.Mount(os.Args[2], &root{zr: &zr.Reader}, nil)
	if err != nil {
		log.Fatal(err)
	}
	s.Wait(ctx)
	s.Unmount()
}
