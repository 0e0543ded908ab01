//go:build linux

package passthrough

import (
	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/creds"
)

var _ ringfuse.KernelChecked = (*FS)(nil)

// KernelChecksPermissions implements [ringfuse.KernelChecked]. The
// passthrough makes every call that a permission decides as the caller
// (package creds), so the backing filesystem checks it, and needs no
// kernel checks. A daemon that cannot switch credentials (it is not root)
// acts as itself, and then only the kernel's mode checks keep other users
// apart.
func (fs *FS) KernelChecksPermissions() bool { return !creds.Supported() }
