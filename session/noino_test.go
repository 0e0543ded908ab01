package session_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/fs/hello"
	"github.com/ringfuse/ringfuse/session"
)

// noIno answers every lookup with an entry that names no inode.
type noIno struct{ hello.FS }

func (f *noIno) Lookup(ctx context.Context, parent ringfuse.Node, name string, out *ringfuse.Entry) syscall.Errno {
	out.Node = name
	out.Attr.Mode = syscall.S_IFREG | 0o444
	return 0
}

// TestEntryWithoutInode: an entry without Key or Attr.Ino gets EIO rather
// than making every name an alias of the first.
func TestEntryWithoutInode(t *testing.T) {
	dir := t.TempDir()
	s, err := session.Mount(dir, &noIno{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unmount()
	for _, name := range []string{"a", "b"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, syscall.EIO) {
			t.Errorf("stat %s: %v, want EIO", name, err)
		}
	}
}

// wrongRead has a Read with the wrong signature.
type wrongRead struct{ hello.FS }

func (*wrongRead) Read(ctx context.Context, n ringfuse.Node, fh uint64, off int, buf []byte) (int, syscall.Errno) {
	return 0, 0
}

func TestMountRefusesWrongSignature(t *testing.T) {
	_, err := session.Mount(t.TempDir(), &wrongRead{}, nil)
	if err == nil || !strings.Contains(err.Error(), "wrongRead.Read") {
		t.Fatalf("mount: %v, want an error naming wrongRead.Read", err)
	}
}
