//go:build !linux

package osthread

import "time"

// SetName does nothing off Linux.
func SetName(name string) {}

// SetTimerSlack does nothing off Linux.
func SetTimerSlack(d time.Duration) {}
