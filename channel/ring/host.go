package ring

import "runtime"

// Host is what the channel asks of the machine, as [QueueRing] is what it
// asks of the kernel's FUSE side: the number of queues to make and the
// placement and scheduling of their threads. [Options.Host] nil means
// [Machine]; the kernel model brings its own, so that a model of another
// machine needs nothing from this one.
type Host interface {
	// PossibleCPUs returns the number of possible CPUs
	// (num_possible_cpus()): the kernel makes one queue for each.
	PossibleCPUs() (int, error)
	// PinThread restricts the calling thread, locked to its goroutine
	// for good, to cpu.
	PinThread(cpu int) error
	// SetSchedIdle puts thread tid (0: the calling thread) in the
	// SCHED_IDLE class, or back in the normal class.
	SetSchedIdle(tid int, idle bool) error
	// EnsureProcs raises GOMAXPROCS to at least n (see
	// [Options.KeepProcs]).
	EnsureProcs(n int)
	// WhyNotOffered returns a hint, such as the state of the fuse
	// module's enable_uring parameter, for a kernel that did not offer
	// FUSE_OVER_IO_URING; "" if it has none.
	WhyNotOffered() string
}

// Machine is the [Host] the process runs on, through sysfs,
// sched_setaffinity, sched_setattr and the Go runtime. It has no hint for
// a kernel that did not offer the ring: package session, which owns the
// mount and its module parameters, adds one.
type Machine struct{}

// PossibleCPUs implements Host from /sys/devices/system/cpu/possible.
func (Machine) PossibleCPUs() (int, error) { return possibleCPUs() }

// PinThread implements Host with sched_setaffinity.
func (Machine) PinThread(cpu int) error { return pinToCPU(cpu) }

// SetSchedIdle implements Host with sched_setattr.
func (Machine) SetSchedIdle(tid int, idle bool) error { return setSchedIdle(tid, idle) }

// EnsureProcs implements Host with runtime.GOMAXPROCS.
func (Machine) EnsureProcs(n int) {
	if runtime.GOMAXPROCS(0) < n {
		runtime.GOMAXPROCS(n)
	}
}

// WhyNotOffered implements Host: the machine alone has no hint.
func (Machine) WhyNotOffered() string { return "" }
