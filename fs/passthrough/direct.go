//go:build linux

package passthrough

import (
	"context"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/creds"
)

// A file opened with O_DIRECT is opened twice. The kernel sends reads
// and writes that O_DIRECT refuses on such a handle: pages written back
// from a shared mapping (FUSE_WRITE_CACHE) or read for it end at EOF, not
// at a block boundary, and a client may clear O_DIRECT with fcntl, which
// the server never hears of. Those go to a second descriptor of the same
// open without O_DIRECT; both share the backing inode's page cache rules,
// so a direct read still sees a buffered write (the kernel writes the
// range back first) and a direct write drops the cached pages it covers.

// defaultDioAlign is the alignment assumed when statx does not report
// one (tmpfs, network filesystems): a page, which no local filesystem
// exceeds in practice.
const defaultDioAlign = 4096

// directAlign is the alignment used to bounce O_DIRECT I/O whose buffer
// the server did not align.
const directAlign = 4096

// openDirect completes f, an open file whose descriptor has O_DIRECT:
// it learns the alignment O_DIRECT needs and opens the second descriptor.
// Only running out of descriptors is an error; without the second
// descriptor, unaligned I/O fails with EINVAL as on the backing file. The
// reopen has the daemon's rights: the first open, the caller's, decided
// the access (a file created 0444 for writing may not be opened for
// writing again by its creator).
func (fs *FS) openDirect(ctx context.Context, f *openFile) syscall.Errno {
	f.dioAlign = defaultDioAlign
	var stx unix.Statx_t
	if unix.Statx(f.fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx) == nil &&
		stx.Mask&unix.STATX_DIOALIGN != 0 && stx.Dio_offset_align > 0 {
		f.dioAlign = int64(stx.Dio_offset_align)
	}
	fl, err := unix.FcntlInt(uintptr(f.fd), unix.F_GETFL, 0)
	if err != nil {
		return 0
	}
	// The same access mode and status flags as fd, reopened through
	// /proc as Open reopens pinned nodes: the same inode, never a path
	// (so no O_NOFOLLOW, which the magic link would fail), and never
	// creating or truncating.
	fl &^= unix.O_DIRECT | unix.O_NOFOLLOW | unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_NOCTTY
	e := creds.Daemon(ctx, func() syscall.Errno {
		return fs.retryFds(false, func() (e syscall.Errno) {
			f.bfd, e = openProc(f.fd, fl|unix.O_CLOEXEC)
			return e
		})
	})
	if e != 0 {
		f.bfd = -1
		if outOfFds(e) {
			return e
		}
	}
	return 0
}

// ioFd returns the descriptor for a read or write of n bytes at off: the
// buffered one if the file has one and the range is not aligned for
// O_DIRECT.
func (f *openFile) ioFd(off int64, n int) int {
	if f.bfd >= 0 && (off%f.dioAlign != 0 || int64(n)%f.dioAlign != 0) {
		return f.bfd
	}
	return f.fd
}

// pread is one pread(2) of buf at off on the descriptor that can take it.
func (f *openFile) pread(buf []byte, off int64) (int, error) {
	fd := f.ioFd(off, len(buf))
	n, err := unix.Pread(fd, buf, off)
	if err != unix.EINVAL || fd != f.fd || !f.direct {
		return n, err
	}
	// The reply buffer is not aligned for O_DIRECT: bounce.
	b := alignedBuf(len(buf))
	n, err = unix.Pread(fd, b, off)
	if n > 0 {
		copy(buf, b[:n])
	}
	if err == unix.EINVAL && f.bfd >= 0 {
		return unix.Pread(f.bfd, buf, off) // a need statx did not tell
	}
	return n, err
}

// pwrite is one pwrite(2) of data at off on the descriptor that can take
// it.
func (f *openFile) pwrite(data []byte, off int64) (int, error) {
	fd := f.ioFd(off, len(data))
	n, err := unix.Pwrite(fd, data, off)
	if err != unix.EINVAL || fd != f.fd || !f.direct {
		return n, err
	}
	b := alignedBuf(len(data))
	copy(b, data)
	n, err = unix.Pwrite(fd, b, off)
	if err == unix.EINVAL && f.bfd >= 0 {
		return unix.Pwrite(f.bfd, data, off)
	}
	return n, err
}

// alignedBuf returns an n-byte slice aligned to directAlign.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	off := int(-uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
	return b[off : off+n]
}
