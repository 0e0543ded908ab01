package main

import "ringfuse/channel/ring"

// applyUring selects the io_uring transport when -o io_uring was given.
func applyUring(c *config) error {
	if c.uring {
		c.session.Uring = &ring.Options{QueueDepth: c.uringDepth, ForgetCommit: c.uringForgt}
	}
	return nil
}
