// Command zipfs is examples/zipfs written with go-fuse v2.12.1's fs
// package, for the line counts in docs/nodefs.md.
package main

import (
	"archive/zip"
	"context"
	"io"
	iofs "io/fs"
	"log"
	"os"
	"os/signal"
	"path"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// root is the archive's top directory; OnAdd builds the tree.
type root struct {
	fs.Inode
	zr *zip.Reader
}

// file is one archive member, decompressed on first open.
type file struct {
	fs.Inode
	zf   *zip.File
	once sync.Once
	data []byte
	err  syscall.Errno
}

var (
	_ fs.NodeOnAdder   = (*root)(nil)
	_ fs.NodeGetattrer = (*file)(nil)
	_ fs.NodeOpener    = (*file)(nil)
	_ fs.NodeReader    = (*file)(nil)
)

func (r *root) OnAdd(ctx context.Context) {
	for _, zf := range r.zr.File {
		if !iofs.ValidPath(strings.TrimSuffix(zf.Name, "/")) {
			continue // "..", "/etc/passwd" and such name nothing in the tree
		}
		dir, base := path.Split(strings.TrimSuffix(zf.Name, "/"))
		parent := r.mkdirAll(ctx, dir)
		if strings.HasSuffix(zf.Name, "/") {
			r.mkdirAll(ctx, zf.Name)
			continue
		}
		parent.AddChild(base, r.NewPersistentInode(ctx, &file{zf: zf}, fs.StableAttr{}), false)
	}
}

// mkdirAll returns the directory named by the slash-separated p, making
// it and its parents as needed.
func (r *root) mkdirAll(ctx context.Context, p string) *fs.Inode {
	n := &r.Inode
	for _, name := range strings.Split(strings.Trim(p, "/"), "/") {
		if name == "" {
			continue
		}
		ch := n.GetChild(name)
		if ch == nil {
			ch = n.NewPersistentInode(ctx, &fs.Inode{}, fs.StableAttr{Mode: syscall.S_IFDIR})
			n.AddChild(name, ch, false)
		}
		n = ch
	}
	return n
}

func (f *file) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr.Mode = uint32(f.zf.Mode().Perm()) | 0o444
	out.Attr.Size = f.zf.UncompressedSize64
	out.Attr.Mtime = uint64(f.zf.Modified.Unix())
	return 0
}

func (f *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
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

func (f *file) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if errno := f.load(); errno != 0 {
		return nil, errno
	}
	off = min(off, int64(len(f.data)))
	return fuse.ReadResultData(f.data[off:min(off+int64(len(dest)), int64(len(f.data)))]), 0
}

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: zipfs ARCHIVE.zip MOUNTPOINT")
	}
	zr, err := zip.OpenReader(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	server, err := fs.Mount(os.Args[2], &root{zr: &zr.Reader}, nil)
	if err != nil {
		log.Fatal(err)
	}
	go func() { <-sigs; server.Unmount() }()
	server.Wait()
}
