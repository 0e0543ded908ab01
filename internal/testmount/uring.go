package testmount

import (
	"testing"

	"ringfuse/session"
)

// setUring selects the io_uring transport.
func setUring(t testing.TB, so *session.Options) {
	t.Fatal("testmount: the io_uring transport is not wired yet")
}
