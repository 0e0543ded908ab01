package forgetstudy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Eviction modes ([Params.Evict]): what makes the kernel forget the
// instantiated inodes.
const (
	// EvictDropCaches: one task writes 2 to /proc/sys/vm/drop_caches.
	EvictDropCaches = "drop_caches"
	// EvictUnlink: one goroutine per CPU unlinks the files through the
	// mount; each unlinked inode is evicted by its unlinking task.
	EvictUnlink = "unlink"
	// EvictCgroup: the files are looked up by a process in a cgroup v2
	// of their own, so the kernel charges their inodes and dentries to
	// it; memory.high set to 0 then makes memcg reclaim shrink them.
	EvictCgroup = "cgroup"
)

// EvictModes lists the eviction modes.
var EvictModes = []string{EvictDropCaches, EvictUnlink, EvictCgroup}

// evictor instantiates the files and evicts them.
type evictor interface {
	// lookup looks every file up through mnt.
	lookup(ctx context.Context, mnt string, n int) error
	// evict makes the kernel forget them.
	evict(ctx context.Context, mnt string, n int) error
	// partial says whether eviction may leave some inodes (reclaim
	// stops at its target): the storm then ends when forgets stop.
	partial() bool
	// kept is how many of the nodes that looking up n files
	// instantiates stay after the eviction (directories an unlink
	// leaves): the drain target is that far above the baseline.
	kept(n int) int64
	close() error
}

// newEvictor returns the evictor of mode; src is the backing tree.
func newEvictor(mode, src string) (evictor, error) {
	switch mode {
	case "", EvictDropCaches:
		return dropCachesEvictor{}, nil
	case EvictUnlink:
		return unlinkEvictor{src: src}, nil
	case EvictCgroup:
		return newCgroupEvictor()
	}
	return nil, fmt.Errorf("forgetstudy: eviction mode %q: want one of %v", mode, EvictModes)
}

type dropCachesEvictor struct{}

func (dropCachesEvictor) lookup(ctx context.Context, mnt string, n int) error {
	return instantiate(ctx, mnt, n, 4)
}

func (dropCachesEvictor) evict(context.Context, string, int) error {
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("2\n"), 0)
}

func (dropCachesEvictor) partial() bool  { return false }
func (dropCachesEvictor) kept(int) int64 { return 0 }
func (dropCachesEvictor) close() error   { return nil }

type unlinkEvictor struct{ src string }

func (unlinkEvictor) lookup(ctx context.Context, mnt string, n int) error {
	return instantiate(ctx, mnt, n, 4)
}

// evict unlinks the files from one goroutine per CPU, each on a thread
// of its own. The backing tree loses its stamp first, so the next run
// creates the files again.
func (u unlinkEvictor) evict(ctx context.Context, mnt string, n int) error {
	if err := os.Remove(filepath.Join(u.src, treeStamp)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var next atomic.Int64
	workers := runtime.NumCPU()
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			buf := make([]byte, 0, len(mnt)+32)
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				buf = append(append(buf[:0], mnt...), '/')
				buf = treePath(buf, i)
				if err := unix.Unlink(string(buf)); err != nil && err != unix.ENOENT {
					errs[w] = fmt.Errorf("unlink %s: %w", buf, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

func (unlinkEvictor) partial() bool { return false }

// kept: the files' directories stay, and so do their nodes.
func (unlinkEvictor) kept(n int) int64 { return int64((n-1)/FilesPerDir + 1) }
func (unlinkEvictor) close() error     { return nil }

// cgroupEvictor owns a cgroup v2 with the memory controller.
type cgroupEvictor struct{ dir string }

// CgroupRootEnv names a cgroup v2 mount to use instead of /sys/fs/cgroup
// (kernel/study mounts one in a guest whose /sys/fs/cgroup is not v2).
const CgroupRootEnv = "FORGETSTUDY_CGROUP"

func newCgroupEvictor() (*cgroupEvictor, error) {
	root := os.Getenv(CgroupRootEnv)
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("%w: %s is not a cgroup v2 mount (set %s)", ErrNotSupported, root, CgroupRootEnv)
	}
	// The memory controller for the children of root (already on under
	// systemd; a fresh mount needs it).
	_ = os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+memory\n"), 0)
	dir := filepath.Join(root, "forgetstudy-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%w: cgroup: %v", ErrNotSupported, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "memory.high")); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("%w: no memory controller in %s", ErrNotSupported, root)
	}
	return &cgroupEvictor{dir: dir}, nil
}

// lookup runs find(1) in the cgroup: stat-ing every file (-size) charges
// the inodes and dentries it instantiates to the cgroup.
func (c *cgroupEvictor) lookup(ctx context.Context, mnt string, n int) error {
	if err := os.WriteFile(filepath.Join(c.dir, "memory.high"), []byte("max\n"), 0); err != nil {
		return err
	}
	fd, err := unix.Open(c.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	cmd := exec.CommandContext(ctx, "find", mnt, "-size", "+1000000000k")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("find in cgroup %s: %v: %s", c.dir, err, out)
	}
	return nil
}

func (c *cgroupEvictor) evict(context.Context, string, int) error {
	before := c.current()
	if err := os.WriteFile(filepath.Join(c.dir, "memory.high"), []byte("0\n"), 0); err != nil {
		return err
	}
	if before <= 0 {
		// Nothing was charged: reclaim had nothing to evict.
		return fmt.Errorf("cgroup %s held %d bytes (memory.current) before the trigger: the lookups were not charged to it", c.dir, before)
	}
	return nil
}

// current returns the cgroup's memory.current, -1 if unreadable.
func (c *cgroupEvictor) current() int64 {
	b, err := os.ReadFile(filepath.Join(c.dir, "memory.current"))
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func (c *cgroupEvictor) partial() bool  { return true }
func (c *cgroupEvictor) kept(int) int64 { return 0 }

func (c *cgroupEvictor) close() error {
	_ = os.WriteFile(filepath.Join(c.dir, "memory.high"), []byte("max\n"), 0)
	return os.Remove(c.dir)
}
