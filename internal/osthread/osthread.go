// Package osthread sets attributes of the calling OS thread: its name, so
// that perf, top and /proc/PID/task show which of a daemon's threads is
// which, and its timer slack. The goroutine should have locked its thread
// (runtime.LockOSThread), or the setting lands on whichever thread runs it
// now.
package osthread
