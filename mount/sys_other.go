//go:build !linux

package mount

import "golang.org/x/sys/unix"

// FUSE as this package speaks it exists only on Linux. Elsewhere the
// package compiles, so that programs importing ringfuse build everywhere,
// and [Mount] fails with [ErrLinuxOnly].

func linuxOnly() error { return ErrLinuxOnly }

func ignoringEINTR(fn func() error) error { return fn() }

func openDev(string) (int, error) { return -1, ErrLinuxOnly }

func closeFD(fd int) error { return unix.Close(fd) }

func sysMount(string, string, string, uintptr, string) error { return ErrLinuxOnly }

func sysUnmount(string, int) error { return ErrLinuxOnly }

func writeCtl(string, string) error { return ErrLinuxOnly }

const msgCmsgCloexec = 0

func socketpair() ([2]int, error) { return [2]int{-1, -1}, ErrLinuxOnly }

// Linux's values, which nothing here passes to a kernel.
const (
	msNosuid  = 0x2
	msNodev   = 0x4
	msRdonly  = 0x1
	msNoexec  = 0x8
	msNoatime = 0x400
	mntDetach = 0x2
)
