//go:build linux

package passthrough

import (
	"context"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/creds"
)

// withParent runs f with an O_PATH descriptor for directory parent, after
// validating name.
func (fs *FS) withParent(ctx context.Context, parent ringfuse.Node, name string, dotErr syscall.Errno, f func(pfd int) syscall.Errno) syscall.Errno {
	if e := checkName(name, dotErr); e != 0 {
		return e
	}
	pn, e := nodeOf(parent)
	if e != 0 {
		return e
	}
	p, e := fs.acquireRetry(ctx, pn)
	if e != 0 {
		return e
	}
	defer fs.release(p)
	return f(p.fd)
}

// acquireRetry is acquire, retried once the descriptor cache has given up
// idle descriptors if the process is out of them.
func (fs *FS) acquireRetry(ctx context.Context, n *node) (pathFd, syscall.Errno) {
	var p pathFd
	e := fs.retryFds(false, func() syscall.Errno {
		var e syscall.Errno
		p, e = fs.acquire(ctx, n)
		return e
	})
	return p, e
}

// openAtRetry is openUpgraded as the caller, retried the same way. An open
// that fails with EMFILE has created nothing (the descriptor is reserved
// before the path is resolved), so the retry is safe with O_CREAT|O_EXCL.
func (fs *FS) openAtRetry(ctx context.Context, dirfd int, name string, flags int, mode uint32) (fd int, err error) {
	fs.retryFds(false, func() syscall.Errno {
		return creds.Run(ctx, func() syscall.Errno {
			fd, err = openUpgraded(dirfd, name, flags, mode)
			return errnoOf(err)
		})
	})
	return fd, err
}

// The operations that make, link and remove names run as the caller
// (package creds): the backing filesystem checks the caller's rights on
// the directories and gives a new object the caller's owner and group, or
// the directory's group in a set-group-ID directory, in one step.

// Mkdir makes directory name in parent, owned by the caller.
func (fs *FS) Mkdir(ctx context.Context, parent ringfuse.Node, name string, mode, umask uint32, out *ringfuse.Entry) syscall.Errno {
	return fs.withParent(ctx, parent, name, syscall.EEXIST, func(pfd int) syscall.Errno {
		mode, restore := fs.createMode(pfd, mode, umask)
		e := creds.Run(ctx, func() syscall.Errno { return errnoOf(unix.Mkdirat(pfd, name, mode)) })
		if e != 0 {
			return e
		}
		return fs.newNodeAt(ctx, pfd, name, unix.S_IFDIR, restore, out)
	})
}

// Mknod makes a FIFO, socket, device or regular file, owned by the caller.
// rdev is in the kernel's new_encode_dev format.
func (fs *FS) Mknod(ctx context.Context, parent ringfuse.Node, name string, mode, rdev, umask uint32, out *ringfuse.Entry) syscall.Errno {
	return fs.withParent(ctx, parent, name, syscall.EEXIST, func(pfd int) syscall.Errno {
		typ := mode & unix.S_IFMT
		if typ == 0 {
			typ = unix.S_IFREG
		}
		perm, restore := fs.createMode(pfd, mode, umask)
		e := creds.Run(ctx, func() syscall.Errno {
			return errnoOf(unix.Mknodat(pfd, name, typ|perm, int(decodeDev(rdev))))
		})
		if e != 0 {
			return e
		}
		return fs.newNodeAt(ctx, pfd, name, typ, restore, out)
	})
}

// Symlink makes name in parent a symlink to target, owned by the caller.
// The target is stored, never resolved.
func (fs *FS) Symlink(ctx context.Context, parent ringfuse.Node, name, target string, out *ringfuse.Entry) syscall.Errno {
	return fs.withParent(ctx, parent, name, syscall.EEXIST, func(pfd int) syscall.Errno {
		e := creds.Run(ctx, func() syscall.Errno { return errnoOf(unix.Symlinkat(target, pfd, name)) })
		if e != 0 {
			return e
		}
		return fs.newNodeAt(ctx, pfd, name, unix.S_IFLNK, 0, out)
	})
}

// Link makes newName in newParent a hard link to n. linkat(2) of a
// descriptor needs CAP_DAC_READ_SEARCH unless the caller opened it, so the
// caller reopens n through /proc first: the backing filesystem then
// applies its rules for the caller (protected_hardlinks among them).
func (fs *FS) Link(ctx context.Context, n ringfuse.Node, newParent ringfuse.Node, newName string, out *ringfuse.Entry) syscall.Errno {
	src, e := nodeOf(n)
	if e != 0 {
		return e
	}
	return fs.withParent(ctx, newParent, newName, syscall.EEXIST, func(pfd int) syscall.Errno {
		s, e := fs.acquireRetry(ctx, src)
		if e != 0 {
			return e
		}
		defer fs.release(s)
		e = creds.Run(ctx, func() syscall.Errno {
			// O_PATH through the magic link reaches the object itself,
			// a symlink too, without following it.
			own, e := openProc(s.fd, unix.O_PATH|unix.O_CLOEXEC)
			if e != 0 {
				return e
			}
			defer closeFd(own)
			return errnoOf(unix.Linkat(own, "", pfd, newName, unix.AT_EMPTY_PATH))
		})
		if e != 0 {
			return e
		}
		var st unix.Stat_t
		if e := fstatFd(s.fd, &st); e != 0 {
			return e
		}
		fs.ref(src)
		fillEntry(out, src, &st)
		return 0
	})
}

// Unlink removes name from parent.
func (fs *FS) Unlink(ctx context.Context, parent ringfuse.Node, name string) syscall.Errno {
	return fs.withParent(ctx, parent, name, syscall.EISDIR, func(pfd int) syscall.Errno {
		return creds.Run(ctx, func() syscall.Errno { return errnoOf(unix.Unlinkat(pfd, name, 0)) })
	})
}

// Rmdir removes the empty directory name from parent.
func (fs *FS) Rmdir(ctx context.Context, parent ringfuse.Node, name string) syscall.Errno {
	return fs.withParent(ctx, parent, name, syscall.EINVAL, func(pfd int) syscall.Errno {
		return creds.Run(ctx, func() syscall.Errno { return errnoOf(unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)) })
	})
}

// Rename renames name in parent to newName in newParent with renameat2,
// so flags RENAME_NOREPLACE, RENAME_EXCHANGE and RENAME_WHITEOUT behave as
// on the backing filesystem (a whiteout belongs to the caller).
func (fs *FS) Rename(ctx context.Context, parent ringfuse.Node, name string, newParent ringfuse.Node, newName string, flags uint32) syscall.Errno {
	if e := checkName(newName, syscall.EINVAL); e != 0 {
		return e
	}
	np, e := nodeOf(newParent)
	if e != 0 {
		return e
	}
	return fs.withParent(ctx, parent, name, syscall.EINVAL, func(pfd int) syscall.Errno {
		q, e := fs.acquireRetry(ctx, np)
		if e != 0 {
			return e
		}
		defer fs.release(q)
		return creds.Run(ctx, func() syscall.Errno {
			return errnoOf(unix.Renameat2(pfd, name, q.fd, newName, uint(flags)))
		})
	})
}

// Create creates and opens name in parent as the caller. A file it creates
// belongs to the caller; an existing file (without O_EXCL) is opened as
// open(2) would, with the caller's rights checked by the backing
// filesystem (the kernel skipped its own check, believing the file new).
func (fs *FS) Create(ctx context.Context, parent ringfuse.Node, name string, flags, mode, umask uint32, out *ringfuse.Entry, open *ringfuse.OpenOut) syscall.Errno {
	return fs.withParent(ctx, parent, name, syscall.EISDIR, func(pfd int) syscall.Errno {
		oflags := openFlags(flags) &^ unix.O_CREAT
		mode, restore := fs.createMode(pfd, mode, umask)
		var fd int
		var err error
		created := false
		for range 8 {
			fd, err = fs.openAtRetry(ctx, pfd, name, oflags|unix.O_CREAT|unix.O_EXCL, mode)
			if err == nil {
				created = true
				break
			}
			if err != unix.EEXIST || flags&unix.O_EXCL != 0 {
				break
			}
			// It exists: open it without creating, which can race with
			// its removal, hence the loop.
			fd, err = fs.openAtRetry(ctx, pfd, name, oflags, 0)
			if err != unix.ENOENT {
				break
			}
		}
		if err != nil {
			return errnoOf(err)
		}
		var st unix.Stat_t
		e := fstatFd(fd, &st)
		if e == 0 && created {
			e = fs.fixMode(ctx, fd, &st, restore)
		}
		var n *node
		if e == 0 {
			n, e = fs.nodeAt(ctx, fd, &st)
		}
		if e != 0 {
			closeFd(fd)
			return e
		}
		if e := fs.addOpen(ctx, fd, oflags, nil, open); e != 0 {
			closeFd(fd)
			fs.Forget(n) // the reference nodeAt took
			return e
		}
		fillEntry(out, n, &st)
		return 0
	})
}

// openFlags turns a client's open flags into the flags the daemon opens
// with: never creating, never a controlling terminal, never following a
// symlink, always close-on-exec, and never O_APPEND: the kernel already
// puts an appending write's offset at the end, and pwrite on an O_APPEND
// descriptor would ignore the offset of a page written back from mmap.
// Everything else (O_DIRECT, O_SYNC, O_TRUNC, O_NONBLOCK...) is kept.
func openFlags(flags uint32) int {
	f := int(flags) &^ (unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY | unix.O_APPEND)
	return f | unix.O_NOFOLLOW | unix.O_CLOEXEC
}

// openUpgraded is openat, but opens a write-only file read-write when it
// can: with a writeback cache the kernel reads pages through any handle.
func openUpgraded(dirfd int, name string, flags int, mode uint32) (int, error) {
	if flags&unix.O_ACCMODE == unix.O_WRONLY {
		fd, err := unix.Openat(dirfd, name, flags&^unix.O_ACCMODE|unix.O_RDWR, mode)
		if err == nil || err == unix.EEXIST || err == unix.ENOENT {
			return fd, err
		}
	}
	return unix.Openat(dirfd, name, flags, mode)
}
