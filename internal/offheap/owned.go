package offheap

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Owned lists slabs and indexes to unmap together, for a cleanup that runs
// once their owner is unreachable (runtime.AddCleanup): the owner itself
// must not be reachable from the list.
type Owned []interface{ Close() }

// Close unmaps every member.
func (o Owned) Close() {
	for _, m := range o {
		m.Close()
	}
}

// Mix hashes two words, such as an inode's device and number, into 64
// well-mixed bits.
func Mix(a, b uint64) uint64 {
	h := a*0x9E3779B97F4A7C15 ^ b*0xC2B2AE3D27D4EB4F
	h ^= h >> 31
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 29
	return h
}

// Resident returns how many of the whole pages inside b the kernel holds
// in memory (mincore(2)); tests use it to check that memory was given back.
func Resident(b []byte) (int, error) {
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & uintptr(pageSize-1))
	if off >= len(b) {
		return 0, nil
	}
	b = b[off:]
	b = b[:len(b)/pageSize*pageSize]
	if len(b) == 0 {
		return 0, nil
	}
	vec := make([]byte, len(b)/pageSize)
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), uintptr(unsafe.Pointer(unsafe.SliceData(vec))))
	if e != 0 {
		return 0, e
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n, nil
}
