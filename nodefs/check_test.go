package nodefs_test

import (
	"context"
	"strings"
	"syscall"
	"testing"

	"ringfuse/nodefs"
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
