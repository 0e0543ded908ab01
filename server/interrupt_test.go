package server_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/wire"
)

// slowFS has one file whose reads block until the request is interrupted.
type slowFS struct {
	reading  chan struct{}
	canceled chan error
}

func (f *slowFS) Root() ringfuse.Node { return 1 }

func (f *slowFS) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	if name != "slow" {
		return syscall.ENOENT
	}
	out.Node = 2
	out.Attr = wire.Attr{Ino: 2, Mode: syscall.S_IFREG | 0o444, Nlink: 1, Size: 4096}
	return 0
}

func (f *slowFS) GetAttr(ctx context.Context, n ringfuse.Node, fh uint64, hasFh bool, out *ringfuse.AttrOut) syscall.Errno {
	if n.(int) == 1 {
		out.Attr = wire.Attr{Ino: 1, Mode: syscall.S_IFDIR | 0o755, Nlink: 2}
		return 0
	}
	out.Attr = wire.Attr{Ino: 2, Mode: syscall.S_IFREG | 0o444, Nlink: 1, Size: 4096}
	return 0
}

func (f *slowFS) Open(ctx context.Context, n ringfuse.Node, flags uint32, out *ringfuse.OpenOut) syscall.Errno {
	out.Flags = wire.FOPEN_DIRECT_IO
	return 0
}

func (f *slowFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	f.reading <- struct{}{}
	select {
	case <-ctx.Done():
		f.canceled <- ctx.Err()
		return 0, syscall.EINTR
	case <-time.After(20 * time.Second):
		f.canceled <- nil
		return 0, syscall.EIO
	}
}

// TestInterrupt kills a reader blocked in the filesystem: the kernel sends
// FUSE_INTERRUPT, which must cancel the request's context.
func TestInterrupt(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys := &slowFS{reading: make(chan struct{}, 1), canceled: make(chan error, 1)}
			s := testmount.Mount(t, fsys, testmount.Options{Transport: tr})
			cmd := exec.Command("dd", "if="+filepath.Join(s.Dir(), "slow"), "of=/dev/null", "bs=4096", "count=1")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-fsys.reading:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatal("READ never reached the filesystem")
			}
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-fsys.canceled:
				if err != context.Canceled {
					t.Errorf("read ended with context error %v, want context.Canceled", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("INTERRUPT did not cancel the request")
			}
			cmd.Wait()
			st := s.Server().Stats()
			if n := st.Requests("devfuse", "INTERRUPT"); n == 0 {
				t.Error("no INTERRUPT counted")
			}
		})
	}
}
