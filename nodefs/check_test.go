//go:build linux

package nodefs_test

import (
	"context"
	"errors"
	stdlog "log"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/nodefs"
	"github.com/ringfuse/ringfuse/server"
)

// badRead has a Read whose offset is an int: the tree would never call it.
type badRead struct{ nodefs.Inode }

func (*badRead) Read(ctx context.Context, fh nodefs.FileHandle, dest []byte, off int) (int, syscall.Errno) {
	return 0, 0
}

// badChildRoot adds a badRead child in OnAdd.
type badChildRoot struct{ nodefs.Inode }

func (r *badChildRoot) OnAdd(ctx context.Context) {
	r.AddChild("f", r.NewPersistentInode(ctx, &badRead{}, nodefs.StableAttr{}), false)
}

func TestWrongSignature(t *testing.T) {
	want := "badRead.Read is (context.Context, nodefs.FileHandle, []uint8, int) (int, syscall.Errno), but nodefs.Reader.Read needs (context.Context, nodefs.FileHandle, []uint8, int64)"
	if _, err := nodefs.New(&badRead{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("root with a wrong Read: %v", err)
	}
	if _, err := nodefs.New(&badChildRoot{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("child with a wrong Read, added in OnAdd: %v", err)
	}
}

// badLookup makes a badRead child on demand.
type badLookup struct{ nodefs.Inode }

func (d *badLookup) Lookup(ctx context.Context, name string, out *nodefs.EntryOut) (*nodefs.Inode, syscall.Errno) {
	return d.NewInode(ctx, &badRead{}, nodefs.StableAttr{}), 0
}

// TestWrongSignatureLater: a node type that first joins the tree in a
// lookup fails that lookup with EIO (the server logs why).
func TestWrongSignatureLater(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			var log testmount.LogBuffer
			fsys, err := nodefs.New(&badLookup{})
			if err != nil {
				t.Fatal(err)
			}
			dir := testmount.Mount(t, fsys, testmount.Options{Transport: tr, Server: server.Options{ErrorLog: stdlog.New(&log, "", 0)}}).Dir()
			if _, err := os.Stat(filepath.Join(dir, "x")); !errors.Is(err, syscall.EIO) {
				t.Errorf("stat: %v, want EIO", err)
			}
			if !strings.Contains(log.String(), "badRead.Read is") {
				t.Errorf("the server log does not name the method:\n%s", log.String())
			}
		})
	}
}
