//go:build linux

package passthrough

import "golang.org/x/sys/unix"

// chownCalls are the system calls that change a file's owner.
var chownCalls = [...]int{unix.SYS_CHOWN, unix.SYS_FCHOWN, unix.SYS_LCHOWN, unix.SYS_FCHOWNAT}
