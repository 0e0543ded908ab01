package main

import "github.com/ringfuse/ringfuse/channel/ring"

// applyUring selects the io_uring transport when -o io_uring was given.
// The daemon serves the passthrough and nothing that wraps it, so it does
// the passthrough's reads and writes on the rings (ring.Options.FileIO)
// unless -o io_uring_no_file_io says otherwise.
func applyUring(c *config) error {
	if !c.uring {
		return nil
	}
	o := &ring.Options{QueueDepth: c.uringDepth, Threads: c.uringThreads, ForgetCommit: c.uringForgt,
		SmallEntries: c.uringSmall, SmallPayload: c.uringSmallSz, FileIO: true}
	for _, f := range c.uringSetup {
		switch f {
		case "io_uring_single_issuer":
			o.SingleIssuer = true
		case "io_uring_defer_taskrun":
			o.SingleIssuer, o.DeferTaskrun = true, true
		case "io_uring_coop_taskrun":
			o.CoopTaskrun = true
		case "io_uring_sqpoll":
			o.SQPoll = true
		case "io_uring_no_affinity":
			o.NoAffinity = true
		case "io_uring_sched_idle":
			o.SchedIdle = true
		case "io_uring_file_io":
			o.FileIO = true
		case "io_uring_no_file_io":
			o.FileIO = false
		}
	}
	c.session.Uring = o
	return nil
}
