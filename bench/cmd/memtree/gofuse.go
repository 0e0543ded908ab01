package main

import (
	"context"
	"path"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// gdir is a go-fuse directory node that new files and directories can
// join, as nodefs.MemDir.
type gdir struct {
	fs.Inode
	mode uint32
}

var (
	_ fs.NodeGetattrer = (*gdir)(nil)
	_ fs.NodeMkdirer   = (*gdir)(nil)
	_ fs.NodeCreater   = (*gdir)(nil)
	_ fs.NodeUnlinker  = (*gdir)(nil)
	_ fs.NodeRmdirer   = (*gdir)(nil)
	_ fs.NodeOnAdder   = (*groot)(nil)
)

func (d *gdir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | d.mode
	out.Nlink = 2
	return 0
}

func (d *gdir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.GetChild(name) != nil {
		return nil, syscall.EEXIST
	}
	return d.NewPersistentInode(ctx, &gdir{mode: mode & 0o7777}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

func (d *gdir) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if d.GetChild(name) != nil {
		return nil, nil, 0, syscall.EEXIST
	}
	c, _ := fuse.FromContext(ctx)
	f := &fs.MemRegularFile{Attr: fuse.Attr{Mode: mode & 0o7777, Owner: fuse.Owner{Uid: c.Uid, Gid: c.Gid}}}
	return d.NewPersistentInode(ctx, f, fs.StableAttr{}), nil, 0, 0
}

func (d *gdir) Unlink(ctx context.Context, name string) syscall.Errno { return 0 }

func (d *gdir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if ch := d.GetChild(name); ch != nil && len(ch.Children()) > 0 {
		return syscall.ENOTEMPTY
	}
	return 0
}

// groot is the root directory; OnAdd fills it from the source tree.
type groot struct {
	gdir
	ents []entry
}

func (r *groot) OnAdd(ctx context.Context) {
	dirs := map[string]*fs.Inode{".": &r.Inode}
	for _, e := range r.ents {
		var node fs.InodeEmbedder
		st := fs.StableAttr{}
		if e.dir {
			node, st.Mode = &gdir{mode: e.mode}, syscall.S_IFDIR
		} else {
			node = &fs.MemRegularFile{Data: e.data, Attr: fuse.Attr{Mode: e.mode}}
		}
		in := r.NewPersistentInode(ctx, node, st)
		dirs[path.Dir(e.path)].AddChild(path.Base(e.path), in, false)
		if e.dir {
			dirs[e.path] = in
		}
	}
	r.ents = nil
}

func serveGofuse(mnt string, ents []entry) (func() error, error) {
	t := timeout
	opts := &fs.Options{
		EntryTimeout: &t,
		AttrTimeout:  &t,
		MountOptions: fuse.MountOptions{
			FsName:            "memtree",
			DirectMount:       true,
			DirectMountStrict: true,
			// As ringbench's gofuse configuration: libfuse's default, and
			// what lets QD32 reads reach the daemon 32 at a time.
			ExtraCapabilities: fuse.CAP_ASYNC_DIO,
		},
	}
	server, err := fs.Mount(mnt, &groot{gdir: gdir{mode: 0o755}, ents: ents}, opts)
	if err != nil {
		return nil, err
	}
	return func() error {
		err := server.Unmount()
		server.Wait()
		return err
	}, nil
}
