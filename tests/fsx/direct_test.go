package fsx

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"

	"golang.org/x/sys/unix"
)

// The tests in this file are issue 12's first defect: a page written back
// from a shared mapping of a file opened with O_DIRECT reaches the server
// as a WRITE whose offset or length is not aligned for O_DIRECT, and the
// daemon's O_DIRECT descriptor refused it with EINVAL, losing the data.
// Each case runs on a fresh mount and a native directory on the same
// backing filesystem, and the backing file must end up byte for byte
// like the native one: the mount's own view could hide a lost write in
// the FUSE page cache.

// directVariants are the mount variants the O_DIRECT tests run under on
// transport tr: Read and Write, FUSE_PASSTHROUGH, and over io_uring the
// ring's own reads and writes (FileIO), which take the descriptor from
// the filesystem's FdFiler.
func directVariants(tr string) []variant {
	names := []string{"cached", "kpassthrough"}
	if tr == "uring" {
		names = append(names, "fileio")
	}
	var out []variant
	for _, n := range names {
		for _, v := range variants {
			if v.name == n {
				out = append(out, v)
			}
		}
	}
	return out
}

// needDirectAlignment skips the test, saying why, unless the temporary
// directory's filesystem refuses unaligned O_DIRECT writes (ext4 and xfs
// do; tmpfs does not), without which the defect cannot show.
func needDirectAlignment(t *testing.T) {
	t.Helper()
	fd, err := unix.Open(filepath.Join(t.TempDir(), "probe"), unix.O_RDWR|unix.O_CREAT|unix.O_DIRECT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Skipf("the filesystem of %s refuses O_DIRECT (%v); these tests need one that takes it with alignment rules (ext4, xfs)", os.TempDir(), err)
	}
	defer unix.Close(fd)
	buf := alignedPages(t, 1)
	if _, err := unix.Pwrite(fd, buf[:100], 7); err != unix.EINVAL {
		t.Skipf("the filesystem of %s takes an unaligned O_DIRECT write (%v), so a lost write cannot show; run with TMPDIR on ext4 or xfs", os.TempDir(), err)
	}
}

// alignedPages returns n pages of anonymous memory (page-aligned, as
// O_DIRECT wants; never a FUSE mapping, so Go code may touch it).
func alignedPages(t *testing.T, n int) []byte {
	t.Helper()
	m, err := unix.Mmap(-1, 0, n*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(m) })
	return m
}

// sameBytes fails t unless each name holds the same bytes in the backing
// directory, in the native directory and through the mount.
func sameBytes(t *testing.T, m sides, names ...string) {
	t.Helper()
	for _, name := range names {
		want, err := os.ReadFile(filepath.Join(m.b.Root, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{m.src, m.a.Root} {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Errorf("%s: %v", filepath.Join(dir, name), err)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the native file: %s", filepath.Join(dir, name), dataDiff(got, want))
			}
		}
	}
}

// usedRing fails t if the variant serves reads and writes on the ring and
// none went there, which would leave that path untested.
func usedRing(t *testing.T, su setup, m sides) {
	t.Helper()
	if su.variant.fileIO && su.transport == "uring" && m.s.Ring().Stats().FileIO == 0 {
		t.Error("no READ or WRITE was served on the ring")
	}
}

const direct = unix.O_RDWR | unix.O_DIRECT

// directCases are operation sequences on files opened with O_DIRECT and
// written through shared mappings (OpMmapWrite msyncs), with the files
// whose bytes must match.
var directCases = []struct {
	name  string
	ops   []Op
	files []string
}{{
	// The report: 0xdfd75 bytes, bytes 0xd2000-0xdfd74 written through
	// the mapping; the last page written back ends at the unaligned EOF.
	name: "issue12", files: []string{"f"},
	ops: []Op{
		{Kind: OpOpen, Path: "f", Flags: direct | unix.O_CREAT, Mode: 0o644},
		{Kind: OpFtruncate, Off: 0xdfd75},
		{Kind: OpMmapWrite, Off: 0xd2000, Len: 0xdfd75 - 0xd2000, Pat: 1},
		{Kind: OpClose},
	},
}, {
	// A file written without O_DIRECT, then patched through a mapping
	// of an O_DIRECT open: in its unaligned tail and across a page
	// boundary in the middle.
	name: "unaligned-tail", files: []string{"g"},
	ops: []Op{
		{Kind: OpOpen, Slot: 1, Path: "g", Flags: unix.O_RDWR | unix.O_CREAT, Mode: 0o644},
		{Kind: OpPwrite, Slot: 1, Off: 0, Len: 20000, Pat: 2},
		{Kind: OpClose, Slot: 1},
		{Kind: OpOpen, Slot: 1, Path: "g", Flags: direct},
		{Kind: OpMmapWrite, Slot: 1, Off: 19950, Len: 50, Pat: 3},
		{Kind: OpMmapWrite, Slot: 1, Off: 4000, Len: 200, Pat: 4},
		{Kind: OpMmapRead, Slot: 1, Off: 0, Len: 20000},
		{Kind: OpClose, Slot: 1},
	},
}, {
	// A sparse file: a few scattered writes, holes between, and a size
	// one past a page boundary.
	name: "sparse", files: []string{"f"},
	ops: []Op{
		{Kind: OpOpen, Path: "f", Flags: direct | unix.O_CREAT, Mode: 0o644},
		{Kind: OpFtruncate, Off: 1<<20 + 7},
		{Kind: OpMmapWrite, Off: 5, Len: 10, Pat: 5},
		{Kind: OpMmapWrite, Off: 300001, Len: 5000, Pat: 6},
		{Kind: OpMmapWrite, Off: 1<<20 - 3, Len: 10, Pat: 7},
		{Kind: OpSeek, Off: 0, Flags: unix.SEEK_HOLE},
		{Kind: OpClose},
	},
}, {
	// Shrinking and growing between mapped writes.
	name: "shrink-grow", files: []string{"f"},
	ops: []Op{
		{Kind: OpOpen, Path: "f", Flags: direct | unix.O_CREAT, Mode: 0o644},
		{Kind: OpFtruncate, Off: 0x30075},
		{Kind: OpMmapWrite, Off: 0, Len: 0x30075, Pat: 8},
		{Kind: OpFtruncate, Off: 0x18033},
		{Kind: OpMmapWrite, Off: 0x17f00, Len: 0x133, Pat: 9},
		{Kind: OpFtruncate, Off: 0x20000},
		{Kind: OpMmapRead, Off: 0x17000, Len: 0x9000},
		{Kind: OpClose},
	},
}}

// TestDirectMmap runs directCases on a mount and a native directory,
// comparing every result and snapshot, then the bytes of the backing
// files.
func TestDirectMmap(t *testing.T) {
	needDirectAlignment(t)
	for _, tr := range testmount.Transports {
		for _, v := range directVariants(tr) {
			for _, c := range directCases {
				t.Run(tr+"/"+v.name+"/"+c.name, func(t *testing.T) {
					su := setup{tr, v}
					m := mountSides(t, su)
					opts := RunOptions{SnapshotEvery: 1}
					if *flagTrace {
						opts.Trace = func(step int, op Op, ra, rb Result) {
							t.Logf("#%d %v: %v | %v", step, op, ra, rb)
						}
					}
					if div := Run(m.a, m.b, c.ops, opts); div != nil {
						t.Errorf("ringfuse and native diverge %s", div)
					}
					sameBytes(t, m, c.files...)
					usedRing(t, su, m)
				})
			}
		}
	}
}

// mappedTruncate maps a file opened with O_DIRECT, dirties all of it,
// truncates it while it is mapped and dirty, dirties a page below the new
// end, msyncs and grows the file again. It returns each step's result.
// As in Side, mapped memory is touched only inside system calls.
func mappedTruncate(root string) []string {
	const size, cut, regrow = 0x30075, 0x18033, 0x20000
	var log []string
	step := func(what string, err error) bool {
		log = append(log, fmt.Sprintf("%s: %v", what, errnoOf(err)))
		return err == nil
	}
	fd, err := unix.Open(filepath.Join(root, "f"), direct|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if !step("open", err) {
		return log
	}
	defer unix.Close(fd)
	mfd, err := unix.MemfdCreate("fsx-direct", unix.MFD_CLOEXEC)
	if !step("memfd", err) {
		return log
	}
	defer unix.Close(mfd)
	if !step("ftruncate", unix.Ftruncate(fd, size)) {
		return log
	}
	m, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if !step("mmap", err) {
		return log
	}
	defer unix.Munmap(m)
	// Into the mapping through the memfd: the kernel faults the pages.
	fill := func(what string, b []byte, pat uint32) bool {
		if _, err := unix.Pwrite(mfd, Data(pat, int64(len(b))), 0); err != nil {
			return step(what+" memfd", err)
		}
		_, err := unix.Pread(mfd, b, 0)
		return step(what, err)
	}
	if !fill("dirty all", m[:size], 10) {
		return log
	}
	step("ftruncate while mapped", unix.Ftruncate(fd, cut))
	fill("dirty below the cut", m[0x10000:0x11000], 11)
	step("msync", unix.Msync(m[:(cut+pageSize-1)&^(pageSize-1)], unix.MS_SYNC))
	step("munmap", unix.Munmap(m))
	step("ftruncate up", unix.Ftruncate(fd, regrow))
	return log
}

// TestDirectTruncateMapped runs mappedTruncate on a mount and a native
// directory and compares the results and the files.
func TestDirectTruncateMapped(t *testing.T) {
	needDirectAlignment(t)
	for _, tr := range testmount.Transports {
		for _, v := range directVariants(tr) {
			t.Run(tr+"/"+v.name, func(t *testing.T) {
				su := setup{tr, v}
				m := mountSides(t, su)
				got, want := mappedTruncate(m.a.Root), mappedTruncate(m.b.Root)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("ringfuse: %q\nnative:   %q", got, want)
				}
				sameBytes(t, m, "f")
				usedRing(t, su, m)
			})
		}
	}
}

// TestDirectUnaligned is a client's own unaligned pread and pwrite on an
// O_DIRECT descriptor. Natively they fail with EINVAL; on the mount the
// kernel passes them to the server, which cannot tell them from a
// client's buffered write through a descriptor whose O_DIRECT was
// cleared with fcntl, so it does them, and the data must land. With
// FUSE_PASSTHROUGH the kernel does them on the backing descriptor itself
// and fails them as native does. Aligned ones behave as natively in
// every variant.
func TestDirectUnaligned(t *testing.T) {
	needDirectAlignment(t)
	for _, tr := range testmount.Transports {
		for _, v := range directVariants(tr) {
			t.Run(tr+"/"+v.name, func(t *testing.T) {
				su := setup{tr, v}
				m := mountSides(t, su)
				buf := alignedPages(t, 4)
				copy(buf, Data(12, 3*pageSize))
				rb := buf[3*pageSize:]
				for _, side := range []*Side{m.a, m.b} {
					native := side == m.b
					fd, err := unix.Open(filepath.Join(side.Root, "f"), direct|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
					if err != nil {
						t.Fatal(err)
					}
					if n, err := unix.Pwrite(fd, buf[:2*pageSize], 0); n != 2*pageSize || err != nil {
						unix.Close(fd)
						t.Fatalf("%s: aligned O_DIRECT pwrite: %d, %v", side.Name, n, err)
					}
					n, err := unix.Pwrite(fd, buf[2*pageSize:2*pageSize+100], 7)
					switch {
					case native || v.server.Passthrough:
						if err != unix.EINVAL {
							t.Errorf("%s: unaligned O_DIRECT pwrite: %d, %v; want EINVAL", side.Name, n, err)
						}
					case n != 100 || err != nil:
						t.Errorf("%s: unaligned O_DIRECT pwrite: %d, %v; want 100", side.Name, n, err)
					}
					n, err = unix.Pread(fd, rb[:100], 4099)
					switch {
					case native || v.server.Passthrough:
						if err != unix.EINVAL {
							t.Errorf("%s: unaligned O_DIRECT pread: %d, %v; want EINVAL", side.Name, n, err)
						}
					case n != 100 || err != nil:
						t.Errorf("%s: unaligned O_DIRECT pread: %d, %v; want 100", side.Name, n, err)
					case !bytes.Equal(rb[:100], buf[4099:4199]):
						t.Errorf("%s: unaligned O_DIRECT pread read other bytes", side.Name)
					}
					if n, err := unix.Pread(fd, rb[:pageSize], pageSize); n != pageSize || err != nil {
						t.Errorf("%s: aligned O_DIRECT pread: %d, %v", side.Name, n, err)
					}
					unix.Close(fd)
				}
				if !v.server.Passthrough {
					// The native write that the mount did and
					// native refused, through a buffered descriptor.
					f, err := os.OpenFile(filepath.Join(m.b.Root, "f"), os.O_WRONLY, 0)
					if err != nil {
						t.Fatal(err)
					}
					_, err = f.WriteAt(buf[2*pageSize:2*pageSize+100], 7)
					f.Close()
					if err != nil {
						t.Fatal(err)
					}
				}
				sameBytes(t, m, "f")
				usedRing(t, su, m)
			})
		}
	}
}
