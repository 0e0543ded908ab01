//go:build !linux

package ring

import "errors"

// FUSE over io_uring exists only on Linux. Elsewhere the package compiles,
// and Prepare fails with errLinuxOnly (a session never gets that far: the
// mount fails first).

var errLinuxOnly = errors.New("ring: FUSE over io_uring: Linux only")

var pageSize = 4096

func roundUp(n, to int) int { return (n + to - 1) / to * to }

func possibleCPUs() (int, error) { return 0, errLinuxOnly }

func mapAnon(int) ([]byte, error) { return nil, errLinuxOnly }

func unmap([]byte) error { return nil }

func pinToCPU(int) error { return errLinuxOnly }

func setSchedIdle(int, bool) error { return errLinuxOnly }

func gettid() int { return 0 }
