package ringfuse_test

import (
	"context"
	"fmt"
	"syscall"

	"github.com/ringfuse/ringfuse"
)

// typoFS meant to implement ringfuse.Reader but swapped two parameters.
type typoFS struct{}

func (typoFS) Root() ringfuse.Node { return nil }

func (typoFS) Read(ctx context.Context, n ringfuse.Node, off int64, fh uint64, buf []byte) (int, syscall.Errno) {
	return 0, 0
}

// Check finds a method that the server would never call; session.Mount
// runs it and refuses to mount.
func ExampleCheck() {
	fmt.Println(ringfuse.Check(typoFS{}))
	// Output: ringfuse: ringfuse_test.typoFS.Read is (context.Context, ringfuse.Node, int64, uint64, []uint8) (int, syscall.Errno), but ringfuse.Reader.Read needs (context.Context, ringfuse.Node, uint64, int64, []uint8) (int, syscall.Errno)
}
