package kmodel

import "github.com/ringfuse/ringfuse/channel/ring"

// Host returns the modelled machine as a ring.Options.Host: as many
// possible CPUs as [Config.NrQueues], and thread placement, scheduling
// class and GOMAXPROCS left alone (the model has no scheduler).
func (c *Conn) Host() ring.Host { return modelHost{c} }

type modelHost struct{ c *Conn }

func (h modelHost) PossibleCPUs() (int, error) { return h.c.cfg.NrQueues, nil }
func (modelHost) PinThread(int) error          { return nil }
func (modelHost) SetSchedIdle(int, bool) error { return nil }
func (modelHost) EnsureProcs(int)              {}
func (h modelHost) WhyNotOffered() string {
	if h.c.cfg.DisableUring {
		return "the model's enable_uring is N"
	}
	return ""
}
