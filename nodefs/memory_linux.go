package nodefs

import "golang.org/x/sys/unix"

// memory returns the machine's total and free memory in bytes.
func memory() (total, free uint64, ok bool) {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0, 0, false
	}
	return uint64(si.Totalram) * uint64(si.Unit), uint64(si.Freeram) * uint64(si.Unit), true
}
