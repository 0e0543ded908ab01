package main

import (
	"context"
	"path"
	"syscall"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/nodefs"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
)

// memRoot is a nodefs.MemDir that fills itself from the source tree.
type memRoot struct {
	nodefs.MemDir
	ents []entry
}

var _ nodefs.OnAdder = (*memRoot)(nil)

func (r *memRoot) OnAdd(ctx context.Context) {
	dirs := map[string]*nodefs.Inode{".": &r.Inode}
	for _, e := range r.ents {
		var node nodefs.InodeEmbedder
		st := nodefs.StableAttr{}
		if e.dir {
			node, st.Mode = &nodefs.MemDir{Attr: nodefs.Attr{Mode: e.mode}}, syscall.S_IFDIR
		} else {
			node = &nodefs.MemRegularFile{Data: e.data, Attr: nodefs.Attr{Mode: e.mode}}
		}
		in := r.NewPersistentInode(ctx, node, st)
		dirs[path.Dir(e.path)].AddChild(path.Base(e.path), in, false)
		if e.dir {
			dirs[e.path] = in
		}
	}
	r.ents = nil
}

func sessionOptions(uring bool) *session.Options {
	o := &session.Options{Server: server.Options{EntryTimeout: timeout, AttrTimeout: timeout}}
	if uring {
		o.Uring = &ring.Options{}
	}
	return o
}

func serveNodefs(mnt string, ents []entry, uring bool) (func() error, error) {
	s, err := nodefs.Mount(mnt, &memRoot{ents: ents}, sessionOptions(uring))
	if err != nil {
		return nil, err
	}
	return s.Unmount, nil
}
