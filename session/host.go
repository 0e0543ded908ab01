package session

import (
	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/mount"
)

// host is the ring channel's [ring.Host]: the machine, with the hint that
// only the fuse module's parameters give.
type host struct{ ring.Machine }

// WhyNotOffered names the enable_uring parameter and its state now.
func (host) WhyNotOffered() string {
	on, err := mount.UringEnabled()
	switch {
	case err != nil:
		return "is " + mount.EnableUringParam + " Y? " + err.Error()
	case on:
		return mount.EnableUringParam + " is Y now, but was not when the connection was made?"
	}
	return "is " + mount.EnableUringParam + " Y? it is N"
}
