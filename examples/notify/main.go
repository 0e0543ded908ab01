// Command notify serves a one-file filesystem whose file, clock, always
// reads as the current time, although the kernel is told to cache it for
// an hour: every second the server pushes the new content into the
// kernel's page cache with a STORE notification, or, with -inval, drops
// the cached copy with INVAL_INODE so that the next read asks again.
//
//	go run ./examples/notify [-io_uring] [-inval] MOUNTPOINT
//	cat MOUNTPOINT/clock
//
// It needs root (ringfuse mounts with mount(2)); Ctrl-C unmounts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
	"github.com/ringfuse/ringfuse/wire"
)

// clockIno is the inode number, and so the key, of the clock file.
const clockIno = 2

// clockKey names the clock file in notifications.
var clockKey = ringfuse.InodeKey{Ino: clockIno}

// clockFS is a root directory holding the file clock.
type clockFS struct {
	mu  sync.Mutex
	now []byte // the clock file's content
}

type node int // 1 is the root, clockIno the file

var (
	_ ringfuse.FileSystem = (*clockFS)(nil)
	_ ringfuse.Lookuper   = (*clockFS)(nil)
	_ ringfuse.GetAttrer  = (*clockFS)(nil)
	_ ringfuse.Opener     = (*clockFS)(nil)
	_ ringfuse.Reader     = (*clockFS)(nil)
)

// format gives every instant the same length, so that a STORE over the
// old content never leaves a tail of it behind.
func format(t time.Time) []byte { return []byte(t.UTC().Format(time.RFC3339) + "\n") }

func newClockFS(t time.Time) *clockFS { return &clockFS{now: format(t)} }

func (c *clockFS) Root() ringfuse.Node { return node(1) }

func (c *clockFS) attr(n node, a *wire.Attr) {
	if n == 1 {
		*a = wire.Attr{Ino: 1, Mode: syscall.S_IFDIR | 0o755, Nlink: 2}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	*a = wire.Attr{Ino: clockIno, Mode: syscall.S_IFREG | 0o444, Nlink: 1, Size: uint64(len(c.now))}
}

func (c *clockFS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	if parent.(node) != 1 || name != "clock" {
		return syscall.ENOENT
	}
	out.Node = node(clockIno)
	c.attr(clockIno, &out.Attr)
	return 0
}

func (c *clockFS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	c.attr(n.(node), &out.Attr)
	return 0
}

func (c *clockFS) Open(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	// Keep the page cache across opens: the notifications keep it right.
	out.Flags = wire.FOPEN_KEEP_CACHE
	return 0
}

func (c *clockFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if off >= int64(len(c.now)) {
		return 0, 0
	}
	return copy(buf, c.now[off:]), 0
}

// tick sets the clock to t and tells the kernel: with STORE, the new
// content goes straight into its page cache; with INVAL_INODE, the cached
// copy is dropped. A kernel that holds no node for the file (nobody has
// looked it up yet, or it was forgotten) has nothing stale: ENOENT is
// fine.
func (c *clockFS) tick(srv *server.Server, t time.Time, inval bool) error {
	data := format(t)
	c.mu.Lock()
	c.now = data
	c.mu.Unlock()
	var err error
	if inval {
		err = srv.InvalInode(context.Background(), clockKey, 0, 0)
	} else {
		err = srv.Store(context.Background(), clockKey, 0, data)
	}
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return err
}

func main() {
	uring := flag.Bool("io_uring", false, "serve over FUSE-over-io_uring")
	inval := flag.Bool("inval", false, "invalidate with INVAL_INODE instead of pushing with STORE")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: notify [-io_uring] [-inval] MOUNTPOINT")
		os.Exit(2)
	}
	fsys := newClockFS(time.Now())
	opts := &session.Options{Server: server.Options{EntryTimeout: time.Hour, AttrTimeout: time.Hour}}
	if *uring {
		opts.Uring = &ring.Options{}
	}
	s, err := session.Mount(flag.Arg(0), fsys, opts)
	if err != nil {
		log.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case t := <-tk.C:
			if err := fsys.tick(s.Server(), t, *inval); err != nil {
				log.Printf("notify: %v", err)
			}
			continue
		case <-sigs:
		case <-s.Done():
		}
		break
	}
	if err := s.Unmount(); err != nil {
		log.Fatal(err)
	}
}
