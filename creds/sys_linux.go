package creds

import "golang.org/x/sys/unix"

func setfsuid(uid uint32) { unix.RawSyscall(unix.SYS_SETFSUID, uintptr(uid), 0, 0) }
func setfsgid(gid uint32) { unix.RawSyscall(unix.SYS_SETFSGID, uintptr(gid), 0, 0) }

// currentFsuid returns the thread's fsuid: setfsuid with an invalid ID
// changes nothing and returns the current one.
func currentFsuid() uint32 {
	r, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0)
	return uint32(r)
}
