//go:build linux

package nodefs_test

import (
	"context"
	"testing"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/nodefs"
)

// TestReadAllocs: the tree adds no allocation to READ and GETATTR, so the
// server's request path stays allocation-free (server.TestHotPathAllocs)
// for a node-tree filesystem too.
func TestReadAllocs(t *testing.T) {
	root := &helloRoot{}
	fsys, err := nodefs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	file := root.GetChild("hello.txt")
	rd := fsys.(ringfuse.Reader)
	ga := fsys.(ringfuse.GetAttrer)
	ctx := context.Background()
	buf := make([]byte, 4096)
	var out ringfuse.AttrOut
	if n := testing.AllocsPerRun(1000, func() {
		if n, errno := rd.Read(ctx, file, 0, 0, buf); errno != 0 || n != 6 {
			t.Fatalf("read: %d, %v", n, errno)
		}
	}); n != 0 {
		t.Errorf("READ: %v allocations", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if errno := ga.GetAttr(ctx, file, 0, false, &out); errno != 0 {
			t.Fatalf("getattr: %v", errno)
		}
	}); n != 0 {
		t.Errorf("GETATTR: %v allocations", n)
	}
}
