package testmount

import (
	"testing"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/session"
)

// setUring selects the io_uring transport.
func setUring(t testing.TB, so *session.Options) {
	if so.Uring == nil {
		so.Uring = &ring.Options{}
	}
}
