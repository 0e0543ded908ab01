//go:build race

package faults

// raceEnabled says the tests run under the race detector, so the daemon
// they build is built with it too.
const raceEnabled = true
