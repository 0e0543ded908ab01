//go:build !linux

package devfuse

import (
	"errors"
	"time"
)

// /dev/fuse exists only on Linux: elsewhere FD compiles and fails.

var errLinuxOnly = errors.New("devfuse: ringfuse: Linux only")

// FD is a /dev/fuse descriptor used as a Device; on this system every call
// fails.
type FD int

// Read implements Device.
func (fd FD) Read([]byte) (int, error) { return 0, errLinuxOnly }

// Writev implements Device.
func (fd FD) Writev([][]byte) (int, error) { return 0, errLinuxOnly }

// BackingOpen fails.
func (fd FD) BackingOpen(int) (int32, error) { return 0, errLinuxOnly }

// BackingClose fails.
func (fd FD) BackingClose(int32) error { return errLinuxOnly }

// sleepThread sleeps for d.
func sleepThread(d time.Duration) { time.Sleep(d) }

// setThreadNice does nothing here.
func setThreadNice(int) {}
