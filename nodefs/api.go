package nodefs

import (
	"context"
	"syscall"

	"github.com/ringfuse/ringfuse"
)

// InodeEmbedder is implemented by every node of a tree, by embedding
// [Inode] in the node's struct:
//
//	type myFile struct {
//		nodefs.Inode
//		...
//	}
type InodeEmbedder interface {
	// EmbeddedInode returns the embedded Inode.
	EmbeddedInode() *Inode
}

// StableAttr is what never changes about an inode while it is in the
// tree.
type StableAttr struct {
	// Mode is the file type (syscall.S_IFDIR, S_IFREG, ...); permission
	// bits are ignored. Zero means a regular file.
	Mode uint32
	// Ino is the inode number, and the inode's identity: two inodes made
	// with one nonzero number are one inode (a hard link), and NewInode
	// returns the inode the tree already has. Zero lets the tree number
	// the inode, from 2^63 up, out of the way of the numbers a
	// filesystem picks.
	Ino uint64
	// Gen is the generation: it tells reuses of one inode number apart.
	Gen uint64
}

// FileHandle is what an [Opener] or [Creater] returns for an open file:
// any value the node wants handed back to Read, Write, Release and the
// others. The tree keeps it until Release; nil is fine.
type FileHandle any

// Types shared with the raw API, so that a filesystem needs no other
// package for them.
type (
	// Attr is an inode's attributes (struct fuse_attr).
	Attr = ringfuse.Attr
	// AttrOut is the answer to a Getattr or Setattr: Attr and how long
	// the kernel may cache it (prefilled with the server's default).
	AttrOut = ringfuse.AttrOut
	// EntryOut is the answer to Lookup, Mkdir, Create and the others
	// that make names. Fill in Attr, and change EntryTimeout and
	// AttrTimeout if the defaults do not suit; the tree sets Node, Key
	// and Generation, and Attr.Ino, from the returned inode.
	EntryOut = ringfuse.Entry
	// SetAttrIn is a Setattr request: Valid says which fields to change
	// (ringfuse.FATTR_SIZE, ...).
	SetAttrIn = ringfuse.SetAttrIn
	// StatFS is the answer to Statfs.
	StatFS = ringfuse.StatFS
)

// DirEntry is one entry of a [Readdirer]'s listing.
type DirEntry struct {
	Name string
	// Mode is the file type (syscall.S_IFDIR, ...).
	Mode uint32
	// Ino is the inode number readdir(3) shows; zero is fine when it is
	// not known.
	Ino uint64
}

// Node operations. A node implements those it supports; a method named
// like one of them but with another signature is reported as an error
// (see the package doc).
type (
	// OnAdder is called once, when the node joins the tree: the root at
	// New, another node in the NewInode or NewPersistentInode that made
	// it. A directory can add its persistent children there.
	OnAdder interface {
		OnAdd(ctx context.Context)
	}
	// OnForgetter is told when the kernel has forgotten the node (once
	// per time the kernel knew it). A dynamic node has then left the tree.
	OnForgetter interface {
		OnForget()
	}
	// Lookuper finds a child by name, for directories whose children are
	// dynamic. It returns the child (an existing inode, or one made with
	// NewInode) and fills out.Attr. Without it, names are looked up among
	// the node's children.
	Lookuper interface {
		Lookup(ctx context.Context, name string, out *EntryOut) (*Inode, syscall.Errno)
	}
	// Getattrer answers stat(2). fh is the open file's handle, or nil.
	// Without it, the attributes are the file type with mode 0755 (a
	// directory) or 0644.
	Getattrer interface {
		Getattr(ctx context.Context, fh FileHandle, out *AttrOut) syscall.Errno
	}
	// Setattrer answers chmod, chown, truncate and utimens.
	Setattrer interface {
		Setattr(ctx context.Context, fh FileHandle, in *SetAttrIn, out *AttrOut) syscall.Errno
	}
	// Readdirer lists a directory whose children are dynamic. Without it,
	// a listing shows the node's children. "." and ".." are added by the
	// tree.
	Readdirer interface {
		Readdir(ctx context.Context) ([]DirEntry, syscall.Errno)
	}
	// Opener opens a file; fuseFlags are FOPEN_* bits. Without it, opens
	// succeed with a nil handle.
	Opener interface {
		Open(ctx context.Context, flags uint32) (fh FileHandle, fuseFlags uint32, errno syscall.Errno)
	}
	// Reader reads into dest (the reply buffer itself) from off and
	// returns the byte count.
	Reader interface {
		Read(ctx context.Context, fh FileHandle, dest []byte, off int64) (int, syscall.Errno)
	}
	// Writer writes data at off and returns the byte count.
	Writer interface {
		Write(ctx context.Context, fh FileHandle, data []byte, off int64) (int, syscall.Errno)
	}
	// Releaser is told of the last close of a handle.
	Releaser interface {
		Release(ctx context.Context, fh FileHandle)
	}
	// Flusher is told of every close(2) of a descriptor.
	Flusher interface {
		Flush(ctx context.Context, fh FileHandle) syscall.Errno
	}
	// Fsyncer answers fsync(2) and fdatasync(2).
	Fsyncer interface {
		Fsync(ctx context.Context, fh FileHandle, datasync bool) syscall.Errno
	}
	// Readlinker answers readlink(2).
	Readlinker interface {
		Readlink(ctx context.Context) ([]byte, syscall.Errno)
	}
	// Mkdirer makes a directory; the tree adds the returned inode as the
	// child name.
	Mkdirer interface {
		Mkdir(ctx context.Context, name string, mode uint32, out *EntryOut) (*Inode, syscall.Errno)
	}
	// Mknoder makes a device, FIFO, socket or regular file; the tree adds
	// the returned inode as the child name.
	Mknoder interface {
		Mknod(ctx context.Context, name string, mode, rdev uint32, out *EntryOut) (*Inode, syscall.Errno)
	}
	// Creater makes and opens a regular file; the tree adds the returned
	// inode as the child name.
	Creater interface {
		Create(ctx context.Context, name string, flags, mode uint32, out *EntryOut) (node *Inode, fh FileHandle, fuseFlags uint32, errno syscall.Errno)
	}
	// Symlinker makes a symbolic link name pointing at target.
	Symlinker interface {
		Symlink(ctx context.Context, target, name string, out *EntryOut) (*Inode, syscall.Errno)
	}
	// Linker makes name a hard link to target.
	Linker interface {
		Link(ctx context.Context, target InodeEmbedder, name string, out *EntryOut) (*Inode, syscall.Errno)
	}
	// Unlinker removes a non-directory; on success the tree drops the
	// child.
	Unlinker interface {
		Unlink(ctx context.Context, name string) syscall.Errno
	}
	// Rmdirer removes a directory; on success the tree drops the child.
	Rmdirer interface {
		Rmdir(ctx context.Context, name string) syscall.Errno
	}
	// Renamer renames name to newName in newParent; flags are
	// RENAME_NOREPLACE or RENAME_EXCHANGE. On success the tree moves (or
	// swaps) the children.
	Renamer interface {
		Rename(ctx context.Context, name string, newParent InodeEmbedder, newName string, flags uint32) syscall.Errno
	}
	// Statfser answers statfs(2). Without it, the answer is all zeros
	// but the block size and name length.
	Statfser interface {
		Statfs(ctx context.Context, out *StatFS) syscall.Errno
	}
)
