// Command memfs mounts a writable filesystem held in memory and serves it
// until interrupted:
//
//	memfs MOUNTPOINT
//
// Its directory type shows the operations that make and remove names;
// nodefs.MemDir is the ready-made equivalent.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringfuse/ringfuse/nodefs"
)

// dir is a directory. The tree keeps its children: after an operation
// succeeds, the tree adds, moves or drops the child by itself.
type dir struct{ nodefs.Inode }

var (
	_ nodefs.Getattrer = (*dir)(nil)
	_ nodefs.Mkdirer   = (*dir)(nil)
	_ nodefs.Creater   = (*dir)(nil)
	_ nodefs.Unlinker  = (*dir)(nil)
	_ nodefs.Rmdirer   = (*dir)(nil)
	_ nodefs.Renamer   = (*dir)(nil)
)

func (d *dir) Getattr(ctx context.Context, fh nodefs.FileHandle, out *nodefs.AttrOut) syscall.Errno {
	out.Attr.Mode = 0o777
	out.Attr.Nlink = d.Nlink()
	return 0
}

func (d *dir) Mkdir(ctx context.Context, name string, mode uint32, out *nodefs.EntryOut) (*nodefs.Inode, syscall.Errno) {
	return d.NewPersistentInode(ctx, &dir{}, nodefs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

func (d *dir) Create(ctx context.Context, name string, flags, mode uint32, out *nodefs.EntryOut) (*nodefs.Inode, nodefs.FileHandle, uint32, syscall.Errno) {
	file := &nodefs.MemRegularFile{Attr: nodefs.Attr{Mode: mode}}
	return d.NewPersistentInode(ctx, file, nodefs.StableAttr{}), nil, 0, 0
}

func (d *dir) Unlink(ctx context.Context, name string) syscall.Errno { return 0 }

func (d *dir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if len(d.GetChild(name).Children()) > 0 {
		return syscall.ENOTEMPTY
	}
	return 0
}

func (d *dir) Rename(ctx context.Context, name string, newParent nodefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return 0
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: memfs MOUNTPOINT")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := nodefs.Mount(os.Args[1], &dir{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	s.Wait(ctx)
	s.Unmount()
}
