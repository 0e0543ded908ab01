package main

import (
	"flag"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// switchMain times the system calls of one credential switch on a locked
// thread, in the order package creds makes them when a thread changes from
// one caller to another (setgroups, setfsgid, setfsuid, and setfsuid(-1)
// to check), alternating between two users, and the switch back to root
// (setfsuid, setfsgid, setgroups, check). It measures the kernel's part of
// a switch, without the FUSE request around it.
func switchMain(args []string) error {
	fl := flag.NewFlagSet("switch", flag.ExitOnError)
	n := fl.Int("n", 200000, "switches per measurement")
	reps := fl.Int("reps", 5, "measurements")
	groups := fl.Int("groups", 0, "supplementary groups per user")
	fl.Parse(args)
	runtime.LockOSThread() // never unlocked: the thread ends with the process
	ga, gb := make([]uint32, *groups), make([]uint32, *groups)
	for i := range ga {
		ga[i], gb[i] = uint32(1000+i), uint32(2000+i)
	}
	for r := 0; r < *reps; r++ {
		t0 := time.Now()
		for i := 0; i < *n; i++ {
			if i%2 == 0 {
				become(65534, 65534, ga)
			} else {
				become(65533, 65533, gb)
			}
		}
		userToUser := time.Since(t0)
		t0 = time.Now()
		for i := 0; i < *n; i++ {
			become(65534, 65534, ga)
			become(0, 0, nil)
		}
		roundTrip := time.Since(t0)
		become(0, 0, nil)
		fmt.Printf("rep %d: user→user switch %.0f ns; user and back to root %.0f ns\n", r+1,
			float64(userToUser.Nanoseconds())/float64(*n), float64(roundTrip.Nanoseconds())/float64(*n))
	}
	eachCall(*n)
	return nil
}

// eachCall times the calls one at a time: a call that changes an ID
// replaces the thread's credentials (prepare_creds, commit_creds, an RCU
// free), one that changes nothing does not.
func eachCall(n int) {
	calls := []struct {
		name string
		f    func(i int)
	}{
		{"getppid", func(int) { unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0) }},
		{"setfsuid(-1), no change", func(int) { unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0) }},
		{"setfsgid 65534/65533", func(i int) { unix.RawSyscall(unix.SYS_SETFSGID, uintptr(65533+i%2), 0, 0) }},
		{"setgroups(0 groups)", func(int) { unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0) }},
		{"setfsuid 65534/65533", func(i int) { unix.RawSyscall(unix.SYS_SETFSUID, uintptr(65533+i%2), 0, 0) }},
		{"setfsuid 0/65534", func(i int) { unix.RawSyscall(unix.SYS_SETFSUID, uintptr(i%2*65534), 0, 0) }},
	}
	for _, c := range calls {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			c.f(i)
		}
		fmt.Printf("%-24s %6.0f ns\n", c.name, float64(time.Since(t0).Nanoseconds())/float64(n))
		become(0, 0, nil)
	}
}

// become makes the four system calls of a switch (groups first, while the
// thread still has CAP_SETGID) and reports whether the fsuid took.
func become(uid, gid uint32, groups []uint32) bool {
	var p unsafe.Pointer
	if len(groups) > 0 {
		p = unsafe.Pointer(&groups[0])
	}
	unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0)
	unix.RawSyscall(unix.SYS_SETFSGID, uintptr(gid), 0, 0)
	unix.RawSyscall(unix.SYS_SETFSUID, uintptr(uid), 0, 0)
	r, _, _ := unix.RawSyscall(unix.SYS_SETFSUID, ^uintptr(0), 0, 0)
	return uint32(r) == uid
}
