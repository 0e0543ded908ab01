package kmodel_test

import (
	"testing"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/kmodel"
	"github.com/ringfuse/ringfuse/wire"
)

// BenchmarkRoundTrip is one client GETATTR through the model and the real
// server, channels included.
func BenchmarkRoundTrip(b *testing.B) {
	for _, tc := range []struct {
		name string
		ring *ring.Options
	}{
		{"devfuse", nil},
		{"uring", &ring.Options{QueueDepth: 4}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := startRig(b, rigOptions{ring: tc.ring})
			req := kmodel.Getattr(wire.FUSE_ROOT_ID)
			req.Out = make([]byte, 4096)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.m.Do(0, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
