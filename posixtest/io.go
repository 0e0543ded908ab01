package posixtest

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// testSparseBeyond4GiB writes a few bytes at 5 GiB into an empty file and checks
// the size, that the hole reads as zeros (also at 1 GiB, where a server that
// cuts offsets to 32 bits would put the data), and that SEEK_DATA and
// SEEK_HOLE obey the relations that hold both for file systems that track
// holes and for the kernel's fallback that treats the whole file as data.
func testSparseBeyond4GiB(t *testing.T, env Env) {
	const (
		gib  = int64(1) << 30
		at   = 5 * gib
		size = at + 6
	)
	p := filepath.Join(env.Dir, "sparse")
	fd := openT(t, p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	data := []byte("marker")
	must(t, pwriteAll(fd, data, at), "pwrite at 5 GiB")
	var st unix.Stat_t
	if ok(t, unix.Fstat(fd, &st), "fstat") && st.Size != size {
		t.Errorf("fstat: st_size %d, want %d", st.Size, size)
	}
	if st, good := statT(t, p); good && st.Size != size {
		t.Errorf("stat: st_size %d, want %d", st.Size, size)
	}
	zero := make([]byte, 8192)
	for _, off := range []int64{0, gib, 4*gib - 4096, 4 * gib, at - 8192} {
		got, err := preadAll(fd, len(zero), off)
		if ok(t, err, "pread hole at %d", off) {
			sameBytes(t, got, zero, "hole at %d", off)
		}
	}
	got, err := preadAll(fd, 4096+100, at-4096)
	if ok(t, err, "pread across the end of the hole") {
		sameBytes(t, got, append(make([]byte, 4096), data...), "read across the end of the hole")
	}
	got, err = preadAll(fd, len(data), at)
	if ok(t, err, "pread data at 5 GiB") {
		sameBytes(t, got, data, "data at 5 GiB")
	}

	dataOff, err := unix.Seek(fd, 0, unix.SEEK_DATA)
	if ok(t, err, "lseek(0, SEEK_DATA)") && (dataOff < 0 || dataOff > at) {
		t.Errorf("lseek(0, SEEK_DATA) = %d, want in [0, %d]", dataOff, at)
	}
	holeOff, err := unix.Seek(fd, 0, unix.SEEK_HOLE)
	if ok(t, err, "lseek(0, SEEK_HOLE)") {
		if holeOff < 0 || holeOff > size {
			t.Errorf("lseek(0, SEEK_HOLE) = %d, want in [0, %d]", holeOff, size)
		}
		if dataOff > 0 && holeOff != 0 {
			t.Errorf("lseek(0, SEEK_DATA) = %d says offset 0 is a hole, but lseek(0, SEEK_HOLE) = %d", dataOff, holeOff)
		}
		if dataOff == 0 && holeOff == 0 {
			t.Errorf("lseek(0, SEEK_DATA) and lseek(0, SEEK_HOLE) both returned 0")
		}
	}
	if off, err := unix.Seek(fd, at, unix.SEEK_DATA); ok(t, err, "lseek(5 GiB, SEEK_DATA)") && off != at {
		t.Errorf("lseek(5 GiB, SEEK_DATA) = %d, want %d", off, at)
	}
	if off, err := unix.Seek(fd, at, unix.SEEK_HOLE); ok(t, err, "lseek(5 GiB, SEEK_HOLE)") && off != size {
		t.Errorf("lseek(5 GiB, SEEK_HOLE) = %d, want %d (end of file)", off, size)
	}
	_, err = unix.Seek(fd, size, unix.SEEK_DATA)
	wantErrno(t, err, unix.ENXIO, "lseek(EOF, SEEK_DATA)")
	_, err = unix.Seek(fd, size+gib, unix.SEEK_DATA)
	wantErrno(t, err, unix.ENXIO, "lseek(beyond EOF, SEEK_DATA)")
	_, err = unix.Seek(fd, size+1, unix.SEEK_HOLE)
	wantErrno(t, err, unix.ENXIO, "lseek(beyond EOF, SEEK_HOLE)")

	// Shrinking below 4 GiB and growing again must not bring the data back.
	if ok(t, unix.Ftruncate(fd, 3*gib), "ftruncate to 3 GiB") && ok(t, unix.Ftruncate(fd, size), "ftruncate back to %d", size) {
		got, err := preadAll(fd, len(data), at)
		if ok(t, err, "pread at 5 GiB after truncate") {
			sameBytes(t, got, make([]byte, len(data)), "5 GiB after shrink and regrow")
		}
	}
}

// testFallocate checks that fallocate mode 0 extends the size, KEEP_SIZE does
// not, and PUNCH_HOLE|KEEP_SIZE zeroes exactly the punched range.
func testFallocate(t *testing.T, env Env) {
	p := filepath.Join(env.Dir, "file")
	fd := openT(t, p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	size := func() int64 {
		var st unix.Stat_t
		if !ok(t, unix.Fstat(fd, &st), "fstat") {
			return -1
		}
		return st.Size
	}
	if ok(t, unix.Fallocate(fd, 0, 0, 1<<20), "fallocate(0, 0, 1 MiB)") {
		if s := size(); s != 1<<20 {
			t.Errorf("fallocate mode 0 to 1 MiB: st_size %d, want %d", s, 1<<20)
		}
		got, err := preadAll(fd, 1<<20, 0)
		if ok(t, err, "pread allocated range") {
			sameBytes(t, got, make([]byte, 1<<20), "allocated range")
		}
	}
	if ok(t, unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 0, 4<<20), "fallocate(KEEP_SIZE, 0, 4 MiB)") {
		if s := size(); s != 1<<20 {
			t.Errorf("fallocate KEEP_SIZE to 4 MiB: st_size %d, want unchanged %d", s, 1<<20)
		}
	}
	// Allocation inside the file changes nothing visible.
	data := pattern(8, 256<<10)
	must(t, pwriteAll(fd, data, 0), "pwrite")
	if ok(t, unix.Fallocate(fd, 0, 4096, 8192), "fallocate inside written data") {
		got, err := preadAll(fd, len(data), 0)
		if ok(t, err, "pread") {
			sameBytes(t, got, data, "data after fallocate inside it")
		}
	}
	const holeOff, holeLen = 64 << 10, 32 << 10
	if ok(t, unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, holeOff, holeLen), "fallocate(PUNCH_HOLE|KEEP_SIZE)") {
		want := slices.Clone(data)
		clear(want[holeOff : holeOff+holeLen])
		got, err := preadAll(fd, len(data), 0)
		if ok(t, err, "pread after punch") {
			sameBytes(t, got, want, "data after punching [%d, %d)", holeOff, holeOff+holeLen)
		}
		if s := size(); s != 1<<20 {
			t.Errorf("punch hole: st_size %d, want unchanged %d", s, 1<<20)
		}
	}
	wantErrno(t, unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE, 0, 4096), unix.EOPNOTSUPP,
		"fallocate(PUNCH_HOLE) without KEEP_SIZE")
}

// testCopyFileRange copies between two files with copy_file_range, with
// explicit offsets and with the file offsets, and checks the contents and
// which offsets move.
func testCopyFileRange(t *testing.T, env Env) {
	srcPath := filepath.Join(env.Dir, "src")
	data := pattern(9, 1<<20+123)
	writeFileT(t, srcPath, data, 0o644)
	src := openT(t, srcPath, unix.O_RDONLY, 0)

	copyAll := func(dst int, what string, roff, woff int64, n int) bool {
		t.Helper()
		for n > 0 {
			m, err := unix.CopyFileRange(src, &roff, dst, &woff, n, 0)
			if !ok(t, err, "copy_file_range %s", what) {
				return false
			}
			if m == 0 {
				t.Errorf("copy_file_range %s: returned 0 with %d bytes left", what, n)
				return false
			}
			n -= m
		}
		return true
	}

	dstPath := filepath.Join(env.Dir, "dst")
	dst := openT(t, dstPath, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	if copyAll(dst, "whole file", 0, 0, len(data)) {
		sameBytes(t, readFileT(t, dstPath), data, "whole-file copy")
	}

	// A middle range to an odd offset; the offsets are in/out arguments
	// and the file offsets stay put.
	dst2Path := filepath.Join(env.Dir, "dst2")
	dst2 := openT(t, dst2Path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	roff, woff := int64(1000), int64(7)
	n, err := unix.CopyFileRange(src, &roff, dst2, &woff, 5000, 0)
	if ok(t, err, "copy_file_range 5000 bytes from 1000 to 7") {
		if n <= 0 || n > 5000 {
			t.Errorf("copy_file_range returned %d, want 1..5000", n)
		} else {
			if roff != 1000+int64(n) || woff != 7+int64(n) {
				t.Errorf("copy_file_range of %d bytes left offsets at %d, %d; want %d, %d", n, roff, woff, 1000+n, 7+n)
			}
			want := append(make([]byte, 7), data[1000:1000+n]...)
			sameBytes(t, readFileT(t, dst2Path), want, "partial copy")
		}
	}
	for _, fd := range []int{src, dst2} {
		if off, err := unix.Seek(fd, 0, unix.SEEK_CUR); ok(t, err, "lseek") && off != 0 {
			t.Errorf("copy_file_range with explicit offsets moved a file offset to %d", off)
		}
	}

	// Nil offsets use and advance the file offsets.
	dst3Path := filepath.Join(env.Dir, "dst3")
	dst3 := openT(t, dst3Path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	_, err = unix.Seek(src, 10, unix.SEEK_SET)
	must(t, err, "lseek src")
	n, err = unix.CopyFileRange(src, nil, dst3, nil, 100, 0)
	if ok(t, err, "copy_file_range with file offsets") && n == 100 {
		sameBytes(t, readFileT(t, dst3Path), data[10:110], "copy with file offsets")
		if off, err := unix.Seek(src, 0, unix.SEEK_CUR); ok(t, err, "lseek") && off != 110 {
			t.Errorf("source file offset after copy_file_range = %d, want 110", off)
		}
		if off, err := unix.Seek(dst3, 0, unix.SEEK_CUR); ok(t, err, "lseek") && off != 100 {
			t.Errorf("destination file offset after copy_file_range = %d, want 100", off)
		}
	} else if err == nil {
		t.Errorf("copy_file_range of 100 bytes returned %d", n)
	}
	// Copying from the end of the source copies nothing.
	roff, woff = int64(len(data)), 0
	n, err = unix.CopyFileRange(src, &roff, dst3, &woff, 100, 0)
	if ok(t, err, "copy_file_range at source EOF") && n != 0 {
		t.Errorf("copy_file_range at source EOF returned %d, want 0", n)
	}
}

// testMmap writes through a MAP_SHARED mapping, msyncs, and reads the data back
// with pread on another descriptor; and maps data written with pwrite.
func testMmap(t *testing.T, env Env) {
	ps := unix.Getpagesize()
	p := filepath.Join(env.Dir, "file")
	fd := openT(t, p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	must(t, unix.Ftruncate(fd, int64(3*ps)), "ftruncate")
	m, err := unix.Mmap(fd, 0, 3*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	must(t, err, "mmap MAP_SHARED read/write")
	data := pattern(10, 2*ps+100)
	copy(m[ps/2:], data)
	ok(t, unix.Msync(m, unix.MS_SYNC), "msync")
	ok(t, unix.Munmap(m), "munmap")
	want := make([]byte, 3*ps)
	copy(want[ps/2:], data)
	rd := openT(t, p, unix.O_RDONLY, 0)
	got, err := preadAll(rd, 4*ps, 0)
	if ok(t, err, "pread after msync") {
		sameBytes(t, got, want, "pread of data written through mmap")
	}
	var st unix.Stat_t
	if ok(t, unix.Fstat(rd, &st), "fstat") && st.Size != int64(3*ps) {
		t.Errorf("writing through mmap changed st_size to %d, want %d", st.Size, 3*ps)
	}

	// Data written with pwrite is visible through a new read-only mapping,
	// and through the mapping after a later pwrite.
	p2 := filepath.Join(env.Dir, "file2")
	fd2 := openT(t, p2, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	data2 := pattern(11, 2*ps+5)
	must(t, pwriteAll(fd2, data2, 0), "pwrite")
	rd2 := openT(t, p2, unix.O_RDONLY, 0)
	m2, err := unix.Mmap(rd2, 0, len(data2), unix.PROT_READ, unix.MAP_SHARED)
	must(t, err, "mmap MAP_SHARED read-only")
	defer unix.Munmap(m2)
	sameBytes(t, slices.Clone(m2), data2, "mmap of data written with pwrite")
	if ok(t, pwriteAll(fd2, []byte("late"), int64(ps+1)), "pwrite after mmap") {
		sameBytes(t, slices.Clone(m2[ps+1:ps+5]), []byte("late"), "mapping after a later pwrite")
	}

	// A private mapping does not write through.
	m3, err := unix.Mmap(fd2, 0, ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if ok(t, err, "mmap MAP_PRIVATE") {
		copy(m3, bytes.Repeat([]byte{0xEE}, 16))
		ok(t, unix.Munmap(m3), "munmap")
		got, err := preadAll(fd2, 16, 0)
		if ok(t, err, "pread") {
			sameBytes(t, got, data2[:16], "file after writing to a MAP_PRIVATE mapping")
		}
	}
}

// testDirectIO writes and reads aligned 4 KiB blocks with O_DIRECT.
func testDirectIO(t *testing.T, env Env) {
	const bs = 4096
	p := filepath.Join(env.Dir, "file")
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_DIRECT|unix.O_CLOEXEC, 0o644)
	if env.Native && errorsIs(err, unix.EINVAL) {
		t.Skipf("the local file system refuses O_DIRECT: %s", describe(err))
	}
	must(t, err, "open O_DIRECT")
	t.Cleanup(func() { unix.Close(fd) })
	// Page-aligned buffers from anonymous mappings.
	alloc := func() []byte {
		b, err := unix.Mmap(-1, 0, 4*bs, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
		must(t, err, "mmap buffer")
		t.Cleanup(func() { unix.Munmap(b) })
		if uintptr(unsafe.Pointer(&b[0]))%bs != 0 {
			t.Fatalf("buffer not aligned")
		}
		return b
	}
	wbuf, rbuf := alloc(), alloc()
	copy(wbuf, pattern(12, 4*bs))
	for i, off := range []int64{0, bs, 3 * bs, 1 << 20} {
		n, err := unix.Pwrite(fd, wbuf[i*bs:(i+1)*bs], off)
		if ok(t, err, "O_DIRECT pwrite 4 KiB at %d", off) && n != bs {
			t.Errorf("O_DIRECT pwrite at %d wrote %d bytes, want %d", off, n, bs)
		}
	}
	n, err := unix.Pread(fd, rbuf[:2*bs], 0)
	if ok(t, err, "O_DIRECT pread 8 KiB at 0") {
		sameBytes(t, rbuf[:n], wbuf[:2*bs], "O_DIRECT read of blocks 0-1")
	}
	n, err = unix.Pread(fd, rbuf[:2*bs], 2*bs)
	if ok(t, err, "O_DIRECT pread 8 KiB at 8192") {
		want := append(make([]byte, bs), wbuf[2*bs:3*bs]...)
		sameBytes(t, rbuf[:n], want, "O_DIRECT read of hole and block 3")
	}
	n, err = unix.Pread(fd, rbuf[:bs], 1<<20)
	if ok(t, err, "O_DIRECT pread at 1 MiB") {
		sameBytes(t, rbuf[:n], wbuf[3*bs:], "O_DIRECT read at 1 MiB")
	}
	// Buffered readers see what O_DIRECT wrote.
	got := readFileT(t, p)
	if len(got) != 1<<20+bs {
		t.Errorf("file size after O_DIRECT writes %d, want %d", len(got), 1<<20+bs)
	} else {
		sameBytes(t, got[:bs], wbuf[:bs], "buffered read of O_DIRECT data")
	}
}

// testConcurrentWriters runs goroutines that pwrite disjoint regions of one file
// and goroutines that each create, write and verify their own file.
func testConcurrentWriters(t *testing.T, env Env) {
	const (
		workers = 8
		region  = 192 << 10
		chunk   = 12 << 10
	)
	p := filepath.Join(env.Dir, "shared")
	fd := openT(t, p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o644)
	want := make([]byte, workers*region)
	var wg sync.WaitGroup
	for w := range workers {
		data := pattern(uint64(200+w), region)
		copy(want[w*region:], data)
		wg.Go(func() {
			// Interleave chunks backwards so regions grow out of order.
			for c := region/chunk - 1; c >= 0; c-- {
				off := int64(w*region + c*chunk)
				if err := pwriteAll(fd, data[c*chunk:(c+1)*chunk], off); err != nil {
					t.Errorf("worker %d: pwrite at %d: %s", w, off, describe(err))
					return
				}
			}
		})
	}
	for w := range workers {
		wg.Go(func() {
			name := filepath.Join(env.Dir, fmt.Sprintf("own-%d", w))
			data := pattern(uint64(300+w), 100<<10+w)
			fd, err := unix.Open(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
			if err != nil {
				t.Errorf("worker %d: create %s: %s", w, name, describe(err))
				return
			}
			defer unix.Close(fd)
			for i := 0; i < len(data); i += 7000 {
				if _, err := unix.Write(fd, data[i:min(i+7000, len(data))]); err != nil {
					t.Errorf("worker %d: write: %s", w, describe(err))
					return
				}
			}
			got, err := preadAll(fd, len(data)+1, 0)
			if err != nil {
				t.Errorf("worker %d: pread: %s", w, describe(err))
				return
			}
			if !bytes.Equal(got, data) {
				t.Errorf("worker %d: own file read back %d bytes that differ from the %d written", w, len(got), len(data))
			}
		})
	}
	wg.Wait()
	got, err := preadAll(fd, len(want)+1, 0)
	if ok(t, err, "pread shared file") {
		sameBytes(t, got, want, "shared file after concurrent pwrites")
	}
	for w := range workers {
		name := filepath.Join(env.Dir, fmt.Sprintf("own-%d", w))
		sameBytes(t, readFileT(t, name), pattern(uint64(300+w), 100<<10+w), "file %s after concurrent writers", name)
	}
}
