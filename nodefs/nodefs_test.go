//go:build linux

package nodefs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/nodefs"
)

// mountTree mounts the tree of root over transport.
func mountTree(t *testing.T, root nodefs.InodeEmbedder, transport string) string {
	t.Helper()
	fsys, err := nodefs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return testmount.Mount(t, fsys, testmount.Options{Transport: transport}).Dir()
}

// testRoot has persistent children made in OnAdd and a dynamic directory.
type testRoot struct {
	nodefs.Inode
	dyn *dynDir
}

var _ nodefs.OnAdder = (*testRoot)(nil)

func (r *testRoot) OnAdd(ctx context.Context) {
	f := r.NewPersistentInode(ctx, &nodefs.MemRegularFile{Data: []byte("hello\n"), Attr: nodefs.Attr{Mode: 0o444}}, nodefs.StableAttr{})
	r.AddChild("file", f, false)
	sub := r.NewPersistentInode(ctx, &nodefs.MemDir{}, nodefs.StableAttr{Mode: syscall.S_IFDIR})
	r.AddChild("sub", sub, false)
	sub.AddChild("inner", sub.NewPersistentInode(ctx, &nodefs.MemRegularFile{Data: []byte("in")}, nodefs.StableAttr{}), false)
	r.dyn = &dynDir{forgot: map[string]int{}}
	r.AddChild("dyn", r.NewPersistentInode(ctx, r.dyn, nodefs.StableAttr{Mode: syscall.S_IFDIR}), false)
}

// dynDir makes a child for every name "n<digits>" on demand, and lists
// n0, n1 and n2.
type dynDir struct {
	nodefs.Inode
	mu     sync.Mutex
	forgot map[string]int
}

var (
	_ nodefs.Lookuper  = (*dynDir)(nil)
	_ nodefs.Readdirer = (*dynDir)(nil)
)

func (d *dynDir) Lookup(ctx context.Context, name string, out *nodefs.EntryOut) (*nodefs.Inode, syscall.Errno) {
	if !strings.HasPrefix(name, "n") {
		return nil, syscall.ENOENT
	}
	f := &dynFile{dir: d, name: name}
	f.Data = []byte("dynamic " + name)
	return d.NewInode(ctx, f, nodefs.StableAttr{}), 0
}

func (d *dynDir) Readdir(ctx context.Context) ([]nodefs.DirEntry, syscall.Errno) {
	return []nodefs.DirEntry{{Name: "n0", Mode: syscall.S_IFREG}, {Name: "n1", Mode: syscall.S_IFREG}, {Name: "n2", Mode: syscall.S_IFREG}}, 0
}

func (d *dynDir) forgotten(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.forgot[name]
}

// dynFile counts its OnForget calls in its directory.
type dynFile struct {
	nodefs.MemRegularFile
	dir  *dynDir
	name string
}

var _ nodefs.OnForgetter = (*dynFile)(nil)

func (f *dynFile) OnForget() {
	f.dir.mu.Lock()
	f.dir.forgot[f.name]++
	f.dir.mu.Unlock()
}

func ino(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func readDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestTree(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			root := &testRoot{}
			dir := mountTree(t, root, tr)
			if b, err := os.ReadFile(filepath.Join(dir, "file")); err != nil || string(b) != "hello\n" {
				t.Errorf("read file: %q, %v", b, err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "sub", "inner")); err != nil || string(b) != "in" {
				t.Errorf("read sub/inner: %q, %v", b, err)
			}
			if got := readDir(t, dir); !slices.Equal(got, []string{"dyn", "file", "sub"}) {
				t.Errorf("readdir /: %v", got)
			}
			if got := readDir(t, filepath.Join(dir, "dyn")); !slices.Equal(got, []string{"n0", "n1", "n2"}) {
				t.Errorf("readdir dyn: %v", got)
			}
			// Identity: every node its own inode number, with no Ino set.
			inos := map[uint64]string{}
			for _, p := range []string{".", "file", "sub", "sub/inner", "dyn", "dyn/n7"} {
				i := ino(t, filepath.Join(dir, p))
				if other, dup := inos[i]; dup {
					t.Errorf("%s and %s share inode %d", p, other, i)
				}
				inos[i] = p
			}
			if a, b := ino(t, filepath.Join(dir, "file")), ino(t, filepath.Join(dir, "file")); a != b {
				t.Errorf("file: inode %d then %d", a, b)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "dyn", "n7")); err != nil || string(b) != "dynamic n7" {
				t.Errorf("read dyn/n7: %q, %v", b, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "dyn", "x")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("stat dyn/x: %v", err)
			}
			if root.dyn.GetChild("n7") == nil {
				t.Fatal("dyn/n7 is not a child after its lookup")
			}
			forgetAll(t, func() bool { return root.dyn.forgotten("n7") > 0 })
			if root.dyn.GetChild("n7") != nil {
				t.Error("dyn/n7 is still a child after the kernel forgot it")
			}
			if root.GetChild("file") == nil || root.GetChild("sub").GetChild("inner") == nil {
				t.Error("a persistent child left the tree after the forget")
			}
			if b, err := os.ReadFile(filepath.Join(dir, "sub", "inner")); err != nil || string(b) != "in" {
				t.Errorf("read sub/inner after the forget: %q, %v", b, err)
			}
		})
	}
}

// forgetAll drops the kernel's dentries and inodes until done reports true.
func forgetAll(t *testing.T, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal("no forget within 10 s of drop_caches")
		}
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
