// Command memfs is examples/memfs written with go-fuse v2.12.1's fs
// package, for the line counts in docs/nodefs.md.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dir is a directory. The tree keeps its children: after an operation
// succeeds, the tree adds, moves or drops the child by itself.
type dir struct{ fs.Inode }

var (
	_ fs.NodeGetattrer = (*dir)(nil)
	_ fs.NodeMkdirer   = (*dir)(nil)
	_ fs.NodeCreater   = (*dir)(nil)
	_ fs.NodeUnlinker  = (*dir)(nil)
	_ fs.NodeRmdirer   = (*dir)(nil)
	_ fs.NodeRenamer   = (*dir)(nil)
)

func (d *dir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr.Mode = 0o777
	return 0
}

func (d *dir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return d.NewPersistentInode(ctx, &dir{}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

func (d *dir) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	file := &fs.MemRegularFile{Attr: fuse.Attr{Mode: mode}}
	return d.NewPersistentInode(ctx, file, fs.StableAttr{}), nil, 0, 0
}

func (d *dir) Unlink(ctx context.Context, name string) syscall.Errno { return 0 }

func (d *dir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if len(d.GetChild(name).Children()) > 0 {
		return syscall.ENOTEMPTY
	}
	return 0
}

func (d *dir) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return 0
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: memfs MOUNTPOINT")
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	server, err := fs.Mount(os.Args[1], &dir{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	go func() { <-sigs; server.Unmount() }()
	server.Wait()
}
