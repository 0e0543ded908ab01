//go:build !linux

package loopback

import (
	"errors"

	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/nodefs"
)

// The loopback needs the passthrough, which is Linux only. Elsewhere the
// package compiles, so that programs importing it build everywhere, and
// New fails.

// FS is what the nodes of one loopback tree share; on this system [New]
// never makes one.
type FS struct{}

// Node is a node of a loopback tree.
type Node struct {
	nodefs.Inode
	fs *FS
}

// New fails: the loopback is Linux only.
func New(source string, opts *passthrough.Options) (*Node, error) {
	return nil, errors.New("loopback: ringfuse: Linux only")
}

// FS returns the tree's shared state.
func (n *Node) FS() *FS { return n.fs }

// Close does nothing.
func (fs *FS) Close() error { return nil }
