package forgetstudy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// treeStamp records, in the backing directory, how many files of the
// layout exist, so a later run reuses them.
const treeStamp = ".forgetstudy-tree"

func defaultWorkDir() string { return filepath.Join(os.TempDir(), "ringfuse-forgetstudy") }

// treeDir is the subdirectory holding file i.
func treeDir(i int) string { return "d" + strconv.Itoa(i/FilesPerDir) }

// treePath appends the relative path of file i ("d3/f31234") to b.
func treePath(b []byte, i int) []byte {
	b = append(b, 'd')
	b = strconv.AppendInt(b, int64(i/FilesPerDir), 10)
	b = append(b, "/f"...)
	return strconv.AppendInt(b, int64(i), 10)
}

// readStamp returns the file count recorded in src, 0 if none.
func readStamp(src string) int {
	b, err := os.ReadFile(filepath.Join(src, treeStamp))
	if err != nil {
		return 0
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "files=")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// ensureTree makes sure files 0..n-1 exist in src, creating the missing
// ones with mknod(2) from two goroutines (about 55k files/s natively). It
// returns how many it created.
func ensureTree(ctx context.Context, src string, n int) (int, error) {
	have := readStamp(src)
	if have >= n {
		return 0, nil
	}
	if err := os.MkdirAll(src, 0o755); err != nil {
		return 0, err
	}
	// Remove the stamp first: a crash midway leaves no false claim.
	_ = os.Remove(filepath.Join(src, treeStamp))
	for d := have / FilesPerDir; d <= (n-1)/FilesPerDir; d++ {
		if err := os.Mkdir(filepath.Join(src, "d"+strconv.Itoa(d)), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return 0, err
		}
	}
	var next atomic.Int64
	next.Store(int64(have))
	var created atomic.Int64
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for g := range errs {
		wg.Go(func() {
			buf := make([]byte, 0, len(src)+32)
			for ctx.Err() == nil {
				// Claim files in chunks to keep the counter cold.
				lo := int(next.Add(256)) - 256
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+256, n); i++ {
					buf = append(buf[:0], src...)
					buf = append(buf, '/')
					buf = treePath(buf, i)
					err := unix.Mknod(string(buf), unix.S_IFREG|0o644, 0)
					switch {
					case err == nil:
						created.Add(1)
					case errors.Is(err, unix.EEXIST):
					default:
						errs[g] = fmt.Errorf("create %s: %w", buf, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return int(created.Load()), err
	}
	stamp := fmt.Appendf(nil, "files=%d\n", n)
	if err := os.WriteFile(filepath.Join(src, treeStamp), stamp, 0o644); err != nil {
		return int(created.Load()), err
	}
	return int(created.Load()), nil
}

// ensureFioFile writes the file fio reads, with random data so that no
// block is sparse, unless a file of that size is there already.
func ensureFioFile(path string, size int64) error {
	if st, err := os.Stat(path); err == nil && st.Size() == size && st.Mode().IsRegular() {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	for off := int64(0); off < size; off += int64(len(buf)) {
		chunk := buf[:min(int64(len(buf)), size-off)]
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// instantiate lstats files 0..n-1 under mnt from workers goroutines, each
// lstat a LOOKUP of the file (and, the first time, of its directory), so
// that the kernel ends up holding one FUSE inode per file.
func instantiate(ctx context.Context, mnt string, n, workers int) error {
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			buf := make([]byte, 0, len(mnt)+32)
			var st unix.Stat_t
			for ctx.Err() == nil {
				lo := int(next.Add(64)) - 64
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+64, n); i++ {
					buf = append(buf[:0], mnt...)
					buf = append(buf, '/')
					buf = treePath(buf, i)
					if err := unix.Lstat(string(buf), &st); err != nil {
						errs[g] = fmt.Errorf("lstat %s: %w", buf, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

// fuseInodeSlab returns the active fuse_inode objects from /proc/slabinfo,
// or -1 if it cannot be read.
func fuseInodeSlab() int64 { return slabActive("fuse_inode") }

// slabActive returns the active objects of the named slab cache from
// /proc/slabinfo, or -1 if it cannot be read.
func slabActive(name string) int64 {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return -1
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) > 2 && f[0] == name {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// otherFio returns the pids of fio processes other than mine and its
// children (fio forks one process per job): another benchmark on the
// machine, competing for the CPUs.
func otherFio(mine int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == mine {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "fio" {
			continue
		}
		if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			// "pid (comm) state ppid ...": comm may hold spaces.
			if i := bytes.LastIndexByte(st, ')'); i >= 0 {
				if f := strings.Fields(string(st[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(mine) {
					continue
				}
			}
		}
		pids = append(pids, pid)
	}
	return pids
}
