//go:build linux

package nodefs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/ringfuse/ringfuse/nodefs"
)

// helloRoot is a directory with one persistent file, added in OnAdd.
type helloRoot struct{ nodefs.Inode }

var _ nodefs.OnAdder = (*helloRoot)(nil)

func (r *helloRoot) OnAdd(ctx context.Context) {
	f := &nodefs.MemRegularFile{Data: []byte("hello\n"), Attr: nodefs.Attr{Mode: 0o444}}
	r.AddChild("hello.txt", r.NewPersistentInode(ctx, f, nodefs.StableAttr{}), false)
}

// Mount a tree, read its file, unmount. Needs root.
func ExampleMount() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.Remove(dir)
	s, err := nodefs.Mount(dir, &helloRoot{}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Unmount()
	data, err := os.ReadFile(filepath.Join(dir, "hello.txt"))
	fmt.Printf("%q %v\n", data, err)
	// Output: "hello\n" <nil>
}

// squares makes a file for every number on demand: "7" holds "49".
type squares struct{ nodefs.Inode }

var _ nodefs.Lookuper = (*squares)(nil)

func (d *squares) Lookup(ctx context.Context, name string, out *nodefs.EntryOut) (*nodefs.Inode, syscall.Errno) {
	n, err := strconv.Atoi(name)
	if err != nil {
		return nil, syscall.ENOENT
	}
	f := &nodefs.MemRegularFile{Data: []byte(strconv.Itoa(n * n)), Attr: nodefs.Attr{Mode: 0o444}}
	return d.NewInode(ctx, f, nodefs.StableAttr{}), 0
}

// Dynamic children: a Lookuper makes them with NewInode, and they leave
// the tree when the kernel forgets them. Needs root.
func ExampleInode_NewInode() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.Remove(dir)
	s, err := nodefs.Mount(dir, &squares{}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Unmount()
	data, _ := os.ReadFile(filepath.Join(dir, "12"))
	_, err = os.Stat(filepath.Join(dir, "twelve"))
	fmt.Printf("%s %v\n", data, os.IsNotExist(err))
	// Output: 144 true
}

// An in-memory writable filesystem is one MemDir. Needs root.
func ExampleMemDir() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.Remove(dir)
	s, err := nodefs.Mount(dir, &nodefs.MemDir{}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Unmount()
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "d", "f"), []byte("in memory"), 0o644)
	data, err := os.ReadFile(filepath.Join(dir, "d", "f"))
	fmt.Printf("%s %v\n", data, err)
	// Output: in memory <nil>
}
