// Command hello mounts a read-only filesystem holding one file,
// hello.txt, and serves it until interrupted:
//
//	hello MOUNTPOINT
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringfuse/ringfuse/nodefs"
)

// root is the root directory; its one child is added in OnAdd.
type root struct{ nodefs.Inode }

var _ nodefs.OnAdder = (*root)(nil)

func (r *root) OnAdd(ctx context.Context) {
	file := &nodefs.MemRegularFile{Data: []byte("hello, world\n"), Attr: nodefs.Attr{Mode: 0o444}}
	r.AddChild("hello.txt", r.NewPersistentInode(ctx, file, nodefs.StableAttr{}), false)
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: hello MOUNTPOINT")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := nodefs.Mount(os.Args[1], &root{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	s.Wait(ctx)
	s.Unmount()
}
