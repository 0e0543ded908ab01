//go:build !linux

package passthrough

import (
	"errors"

	"github.com/ringfuse/ringfuse"
)

// The passthrough serves a Linux directory tree with Linux's calls (O_PATH,
// file handles, statx, renameat2). Elsewhere the package compiles, so that
// programs importing it build everywhere, and New fails.

// FS is a passthrough filesystem; on this system [New] never returns one.
type FS struct{}

// New fails: the passthrough is Linux only.
func New(source string, opts *Options) (*FS, error) {
	return nil, errors.New("passthrough: ringfuse: Linux only")
}

// Root implements ringfuse.FileSystem.
func (fs *FS) Root() ringfuse.Node { return nil }

// Stats returns zero statistics.
func (fs *FS) Stats() Stats { return Stats{} }

// Close does nothing.
func (fs *FS) Close() error { return nil }
