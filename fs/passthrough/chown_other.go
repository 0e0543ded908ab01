//go:build linux && !amd64

package passthrough

import "golang.org/x/sys/unix"

// chownCalls are the system calls that change a file's owner (newer
// architectures have only these two).
var chownCalls = [...]int{unix.SYS_FCHOWN, unix.SYS_FCHOWNAT}
