package session

import (
	"strings"
	"testing"

	"github.com/ringfuse/ringfuse/mount"
)

// TestHostHint: a kernel that did not offer the ring is explained with the
// state of enable_uring.
func TestHostHint(t *testing.T) {
	if h := (host{}).WhyNotOffered(); !strings.Contains(h, mount.EnableUringParam) {
		t.Errorf("hint %q does not name %s", h, mount.EnableUringParam)
	}
}
