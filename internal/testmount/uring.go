package testmount

import (
	"testing"

	"ringfuse/channel/ring"
	"ringfuse/session"
)

// setUring selects the io_uring transport.
func setUring(t testing.TB, so *session.Options) {
	if so.Uring == nil {
		so.Uring = &ring.Options{}
	}
}
