package main

import (
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func TestFileHidesPassthroughFd(t *testing.T) {
	var lf fs.FileHandle = fs.NewLoopbackFileFromOS(os.Stdin)
	if _, ok := lf.(fs.FilePassthroughFder); !ok {
		t.Fatal("go-fuse's LoopbackFile no longer offers a passthrough fd; revisit this peer")
	}
	w := wrapFile(lf)
	if _, ok := w.(fs.FilePassthroughFder); ok {
		t.Error("wrapped file still offers a passthrough fd")
	}
	for name, ok := range map[string]bool{
		"reader":    is[fs.FileReader](w),
		"writer":    is[fs.FileWriter](w),
		"getattrer": is[fs.FileGetattrer](w),
		"setattrer": is[fs.FileSetattrer](w),
		"flusher":   is[fs.FileFlusher](w),
		"releaser":  is[fs.FileReleaser](w),
		"fsyncer":   is[fs.FileFsyncer](w),
	} {
		if !ok {
			t.Errorf("wrapped file is not a %s", name)
		}
	}
	if unwrapFile(w) != lf {
		t.Error("unwrapFile did not return the LoopbackFile")
	}
}

func is[T any](v any) bool { _, ok := v.(T); return ok }

// opCounter counts the READ requests in go-fuse's debug log.
type opCounter struct {
	mu    sync.Mutex
	reads int
}

func (c *opCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, line := range strings.Split(string(p), "\n") {
		if strings.HasPrefix(line, "rx ") && strings.Contains(line, ": READ ") {
			c.reads++
		}
	}
	return len(p), nil
}

func (c *opCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// TestMountReadsReachDaemon mounts the peer and checks that O_DIRECT reads
// reach the daemon and that rename, which go-fuse's loopback checks by node
// type, still works through the wrapper.
func TestMountReadsReachDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	src, mnt := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), make([]byte, 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := newRoot(src, true)
	if err != nil {
		t.Fatal(err)
	}
	var ops opCounter
	sec := time.Second
	server, err := fs.Mount(mnt, root, &fs.Options{
		EntryTimeout: &sec,
		AttrTimeout:  &sec,
		MountOptions: fuse.MountOptions{
			DirectMount:          true,
			DirectMountStrict:    true,
			DisabledCapabilities: fuse.CAP_PASSTHROUGH,
			Debug:                true,
			Logger:               log.New(&ops, "", 0),
		},
	})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})

	fd, err := syscall.Open(filepath.Join(mnt, "f"), syscall.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	// O_DIRECT wants an aligned buffer; mmap gives a page.
	buf, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(buf)
	before := ops.count()
	for i := range 8 {
		if _, err := syscall.Pread(fd, buf, int64(i)*4096); err != nil {
			t.Fatal(err)
		}
	}
	syscall.Close(fd)
	if n := ops.count() - before; n < 8 {
		t.Errorf("%d of 8 O_DIRECT reads reached the daemon", n)
	}
	if err := os.Rename(filepath.Join(mnt, "f"), filepath.Join(mnt, "g")); err != nil {
		t.Errorf("rename through the wrapper: %v", err)
	}
}
