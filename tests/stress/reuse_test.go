package stress

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
)

// reuseTries bounds the directories made while waiting for the backing
// filesystem to hand out a freed inode number again, and reuseRounds the
// attempts: other processes creating files may take the number first.
const (
	reuseTries  = 100
	reuseRounds = 10
)

// holderWait bounds the wait for the child holding the directory.
const holderWait = 10 * time.Second

// TestInodeNumberReuse is the stress test's ESTALE, made deterministic: a
// directory is removed while the kernel still holds its inode (a process
// has it as its working directory), and a new directory gets its inode
// number. The new directory must be a new kernel inode: if the server
// answered MKDIR with the old directory's node ID, the kernel would find
// the old, dead directory under that ID and try to splice it onto the new
// name (d_splice_alias: ESTALE or a dead directory in the tree).
func TestInodeNumberReuse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts")
	}
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src := t.TempDir()
			// No fd cache: a cached O_PATH descriptor would keep the
			// removed directory's inode, and its number, in use.
			fsys, err := passthrough.New(src, &passthrough.Options{FdCacheSize: -1})
			if err != nil {
				t.Fatal(err)
			}
			s := testmount.Mount(t, fsys, testmount.Options{Transport: tr, Cleanup: func() { fsys.Close() }})
			parent := filepath.Join(s.Dir(), "p")
			if err := os.Mkdir(parent, 0o755); err != nil {
				t.Fatal(err)
			}
			var reused string
			var ino uint64
			for round := 0; round < reuseRounds && reused == ""; round++ {
				reused, ino = reuseInode(t, src, parent, round)
			}
			if reused == "" {
				t.Skipf("the backing filesystem did not reuse an inode number in %d rounds of %d directories (other processes may have taken them)", reuseRounds, reuseTries)
			}
			// The new directory works as a directory of its own.
			sub := filepath.Join(reused, "sub")
			if err := unix.Mkdir(sub, 0o755); err != nil {
				t.Fatalf("mkdir %s in the directory that reused inode %d: %v (%s)", sub, ino, err, errnoName(err))
			}
			ents, err := os.ReadDir(reused)
			if err != nil || len(ents) != 1 || ents[0].Name() != "sub" {
				t.Fatalf("listing %s: %v, %v; want just sub", reused, ents, err)
			}
			var mst unix.Stat_t
			if err := unix.Stat(reused, &mst); err != nil || mst.Ino != ino {
				t.Fatalf("stat %s: ino %d, %v; want ino %d", reused, mst.Ino, err, ino)
			}
		})
	}
}

// reuseInode removes a directory below parent (the mount) while a child
// process has it as its working directory, then makes directories below
// parent until one gets the removed one's inode number in the backing
// directory src. It returns that directory and the inode number, or "" if
// none got it.
func reuseInode(t *testing.T, src, parent string, round int) (string, uint64) {
	t.Helper()
	old := filepath.Join(parent, fmt.Sprint("old", round))
	if err := os.Mkdir(old, 0o755); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(src, "p", filepath.Base(old)), &st); err != nil {
		t.Fatal(err)
	}
	ino := st.Ino
	// A child whose working directory is the doomed directory keeps its
	// kernel inode, and its node ID, alive. The shell changes directory
	// after exec: a child that touched the mount between fork and exec
	// would stall this process, the server, with it (exec.Cmd.Dir would).
	holder := exec.Command("/bin/sh", "-c", `cd "$1" && exec sleep 60`, "sh", old)
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
	})
	cwd := fmt.Sprintf("/proc/%d/cwd", holder.Process.Pid)
	for deadline := time.Now().Add(holderWait); ; time.Sleep(10 * time.Millisecond) {
		if d, err := os.Readlink(cwd); err == nil && d == old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the holder did not enter %s within %v", old, holderWait)
		}
	}
	if err := unix.Rmdir(old); err != nil {
		t.Fatal(err)
	}
	for i := range reuseTries {
		name := fmt.Sprintf("new%d.%d", round, i)
		d := filepath.Join(parent, name)
		if err := unix.Mkdir(d, 0o755); err != nil {
			t.Fatalf("mkdir %s: %v (%s)", d, err, errnoName(err))
		}
		if err := unix.Stat(filepath.Join(src, "p", name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Ino == ino {
			return d, ino
		}
	}
	return "", 0
}
