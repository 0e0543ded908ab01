package ringfuse_test

import (
	"context"
	"strings"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse"
)

type okFS struct{}

func (okFS) Root() ringfuse.Node { return nil }
func (okFS) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int64, buf []byte) (int, syscall.Errno) {
	return 0, 0
}

type wrongSig struct{ okFS }

// Read shadows okFS.Read with the wrong signature: int64 and uint64 swapped.
func (wrongSig) Read(ctx context.Context, n ringfuse.Node, fh int64, off uint64, buf []byte) (int, syscall.Errno) {
	return 0, 0
}

type halfXattr struct{ okFS }

func (halfXattr) GetXattr(ctx context.Context, n ringfuse.Node, name string, buf []byte) (int, syscall.Errno) {
	return 0, 0
}

func TestCheck(t *testing.T) {
	if err := ringfuse.Check(okFS{}); err != nil {
		t.Errorf("okFS: %v", err)
	}
	err := ringfuse.Check(wrongSig{})
	if err == nil || !strings.Contains(err.Error(), "wrongSig.Read is (context.Context, ringfuse.Node, int64, uint64, []uint8)") {
		t.Errorf("wrongSig: got %v", err)
	}
	err = ringfuse.Check(halfXattr{})
	if err == nil || !strings.Contains(err.Error(), "also needs ListXattr and RemoveXattr and SetXattr") {
		t.Errorf("halfXattr: got %v", err)
	}
}
