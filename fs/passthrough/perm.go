package passthrough

import "ringfuse"

var _ ringfuse.KernelChecked = (*FS)(nil)

// KernelChecksPermissions implements [ringfuse.KernelChecked]: the
// passthrough does every operation with the daemon's credentials (root) and
// checks no permission itself, so other users must only reach it through
// the kernel's mode checks.
func (fs *FS) KernelChecksPermissions() bool { return true }
