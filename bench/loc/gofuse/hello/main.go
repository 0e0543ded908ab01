// Command hello is examples/hello written with go-fuse v2.12.1's fs
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

// root is the root directory; its one child is added in OnAdd.
type root struct{ fs.Inode }

var _ fs.NodeOnAdder = (*root)(nil)

func (r *root) OnAdd(ctx context.Context) {
	file := &fs.MemRegularFile{Data: []byte("hello, world\n"), Attr: fuse.Attr{Mode: 0o444}}
	r.AddChild("hello.txt", r.NewPersistentInode(ctx, file, fs.StableAttr{}), false)
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: hello MOUNTPOINT")
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	server, err := fs.Mount(os.Args[1], &root{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	go func() { <-sigs; server.Unmount() }()
	server.Wait()
}
