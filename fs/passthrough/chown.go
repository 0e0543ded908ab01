//go:build linux

package passthrough

import (
	"bytes"
	"os"
	"strconv"
)

// inChown says whether thread tid is in one of the chown system calls,
// from /proc/TID/syscall, whose first field is the call's number while the
// thread is blocked in it (as a FUSE caller is until the reply). Anything
// unreadable says no. It reads a file, so it is for rare paths only.
func inChown(tid uint32) bool {
	if tid == 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/syscall")
	if err != nil {
		return false
	}
	if end := bytes.IndexByte(b, ' '); end >= 0 {
		b = b[:end]
	}
	nr, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return false
	}
	for _, c := range chownCalls {
		if nr == c {
			return true
		}
	}
	return false
}
