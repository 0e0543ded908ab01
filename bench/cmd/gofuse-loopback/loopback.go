package main

import (
	"context"
	"fmt"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// newRoot returns go-fuse's loopback root for src. With noPassthrough, every
// node is a *node, so no file handle it returns offers a passthrough fd.
func newRoot(src string, noPassthrough bool) (fs.InodeEmbedder, error) {
	root, err := fs.NewLoopbackRoot(src)
	if err != nil {
		return nil, fmt.Errorf("loopback root %s: %w", src, err)
	}
	if !noPassthrough {
		return root, nil
	}
	ln, ok := root.(*fs.LoopbackNode)
	if !ok {
		return nil, fmt.Errorf("loopback root %s: unexpected node type %T", src, root)
	}
	n := &node{ln}
	ln.RootData.RootNode = n
	return n, nil
}

// node is a loopback node whose file handles do not implement
// fs.FilePassthroughFder. It embeds the pointer, so go-fuse's own type checks
// on the loopback node (Rename and Link look for its unexported
// loopbackNodeEmbedder method) still succeed.
type node struct {
	*fs.LoopbackNode
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
)

// WrapChild makes every loopback child that go-fuse creates below a node (on
// LOOKUP, CREATE, MKDIR, MKNOD, LINK, SYMLINK, TMPFILE) a node too.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if ln, ok := ops.(*fs.LoopbackNode); ok {
		return &node{ln}
	}
	return ops
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	return wrapFile(fh), fuseFlags, errno
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	return ch, wrapFile(fh), fuseFlags, errno
}

func (n *node) Tmpfile(ctx context.Context, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fuseFlags, errno := n.LoopbackNode.Tmpfile(ctx, flags, mode, out)
	return ch, wrapFile(fh), fuseFlags, errno
}

// CopyFileRange unwraps the handles: go-fuse's implementation only accepts
// *fs.LoopbackFile.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return n.LoopbackNode.CopyFileRange(ctx, unwrapFile(fhIn), offIn, out, unwrapFile(fhOut), offOut, length, flags)
}

// loopbackFile lists the file interfaces of *fs.LoopbackFile that the
// benchmark peer keeps: all of them except fs.FilePassthroughFder.
type loopbackFile interface {
	fs.FileReleaser
	fs.FileGetattrer
	fs.FileStatxer
	fs.FileReader
	fs.FileWriter
	fs.FileWritever
	fs.FileGetlker
	fs.FileSetlker
	fs.FileSetlkwer
	fs.FileLseeker
	fs.FileFlusher
	fs.FileFsyncer
	fs.FileSetattrer
	fs.FileAllocater
	fs.FileIoctler
}

var _ loopbackFile = (*fs.LoopbackFile)(nil)

// file hides every method of the wrapped handle that loopbackFile does not
// name, PassthroughFd among them.
type file struct {
	loopbackFile
}

func wrapFile(fh fs.FileHandle) fs.FileHandle {
	if lf, ok := fh.(loopbackFile); ok {
		return &file{lf}
	}
	return fh
}

func unwrapFile(fh fs.FileHandle) fs.FileHandle {
	if f, ok := fh.(*file); ok {
		return f.loopbackFile
	}
	return fh
}
