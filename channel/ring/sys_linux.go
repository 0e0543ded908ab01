package ring

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// possibleCPUsPath lists every CPU the kernel may ever bring online; the
// kernel makes one FUSE queue for each (num_possible_cpus()). A variable so
// that tests can redirect it.
var possibleCPUsPath = "/sys/devices/system/cpu/possible"

// possibleCPUs returns the number of possible CPUs. runtime.NumCPU is not
// it: that counts the CPUs in the affinity mask.
func possibleCPUs() (int, error) {
	b, err := os.ReadFile(possibleCPUsPath)
	if err != nil {
		return 0, fmt.Errorf("ring: count queues: %w", err)
	}
	n, err := parseCPUList(string(b))
	if err != nil {
		return 0, fmt.Errorf("ring: count queues: %s: %w", possibleCPUsPath, err)
	}
	return n, nil
}

// mapAnon maps size bytes of anonymous, zeroed memory for buffers the kernel
// reads and writes. It is never Go heap: the garbage collector must not own
// memory the kernel writes into long after a system call returned. The
// mapping is not inherited by children (MADV_DONTFORK), so a fork does not
// turn it copy-on-write under the kernel's feet.
func mapAnon(size int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("ring: mmap %d bytes: %w", size, err)
	}
	_ = unix.Madvise(b, unix.MADV_DONTFORK) // best effort
	return b, nil
}

// unmap releases a mapping made by mapAnon.
func unmap(b []byte) error {
	if b == nil {
		return nil
	}
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("ring: munmap: %w", err)
	}
	return nil
}

// pinToCPU restricts the calling OS thread to cpu. The caller must be locked
// to its thread (runtime.LockOSThread) and stay locked until it exits, so
// that the mask never leaks to another goroutine; Go starts new threads from
// a clean template thread, not from a locked one.
func pinToCPU(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

// pageSize is the system page size; buffers are rounded up to it.
var pageSize = unix.Getpagesize()

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// setSchedIdle puts thread tid (0: the calling thread) in the SCHED_IDLE
// class, or back in SCHED_OTHER (SCHED_NORMAL) at nice 0.
func setSchedIdle(tid int, idle bool) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}
	if idle {
		attr.Policy = unix.SCHED_IDLE
	}
	if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
		return fmt.Errorf("ring: sched_setattr(%d): %w", tid, err)
	}
	return nil
}

// gettid returns the calling thread's ID.
func gettid() int { return unix.Gettid() }
