package ring

import "sync/atomic"

// Stats are the channel's counters, summed over its queues.
type Stats struct {
	// Queues counts the queue threads: the possible CPUs times
	// Options.Threads; 0 before Prepare or after it failed.
	Queues int
	Depth  int // entries per queue

	// Registered counts entries handed to the kernel with REGISTER and not
	// refused.
	Registered uint64
	// RegisterFailures counts REGISTERs the kernel refused (the kernel then
	// serves over /dev/fuse).
	RegisterFailures uint64
	// Dead counts entries the kernel ended with -ENOTCONN, -ECONNABORTED or
	// -ECANCELED: unmount, abort, or a dying thread.
	Dead uint64
	// Stranded counts entries lost to a failed commit (-ENOENT: unknown
	// commit id), which stay with the kernel, unusable.
	Stranded uint64
	// Commits counts COMMIT_AND_FETCH commands, one per request served.
	Commits uint64
	// CQEs counts completions reaped, not counting wake-ups.
	CQEs uint64
	// Enters counts submit-and-wait calls, one io_uring_enter each
	// (plus a retry when a signal interrupts it).
	Enters uint64
	// Retries counts commands repeated after -EAGAIN or -EINTR.
	Retries uint64
	// Refused counts replies carrying lookups or an open handle whose
	// commit the kernel refused (-ECONNABORTED after an abort, -ENOENT
	// and the like) or that were never committed: the server gave back
	// what they carried.
	Refused uint64
	// Unsettled counts replies carrying lookups or an open handle whose
	// commit ended with -ENOTCONN or -ECANCELED. The kernel answers both a
	// commit it refused after the connection ended and the cancelled
	// fetch of one it took that way, so the server cannot tell whether
	// the reply arrived; it keeps what the reply carried.
	Unsettled uint64
	// Forgets and ForgetMsgs count the forgets, and the FORGET and
	// BATCH_FORGET messages carrying them, that arrived on the ring and
	// were committed there (a kernel with the 7.46 FORGET patch).
	Forgets, ForgetMsgs uint64
	// ForgetErrors counts forget messages on the ring that could not be
	// decoded; they are committed and dropped.
	ForgetErrors uint64
	// Pooled counts requests a queue handed to its pool because more than
	// one was pending; the rest were served on the queue's own thread.
	Pooled uint64
	// FileIO counts READ and WRITE requests served with reads and writes
	// on the ring (Options.FileIO).
	FileIO uint64
	// Demotions counts the times the starvation guard moved an idle-class
	// queue thread (Options.SchedIdle) back to the normal class.
	Demotions uint64
	// QueueCommits counts Commits per queue thread, indexed by
	// qid*Threads plus the thread's number: which CPUs' requests the ring
	// carried.
	QueueCommits []uint64
}

// queueStats are one queue's counters. Only the queue goroutine writes
// them; Stats sums them.
type queueStats struct {
	registered, registerFailures, dead, stranded atomic.Uint64
	commits, cqes, enters, retries               atomic.Uint64
	refused, unsettled                           atomic.Uint64
	forgets, forgetMsgs, forgetErrors, pooled    atomic.Uint64
	fileIO                                       atomic.Uint64
	demotions                                    atomic.Uint64
	_                                            [64]byte // keep queues' counters off each other's cache lines
}

// Stats returns the channel's counters. It is safe to call at any time.
func (c *Channel) Stats() Stats {
	c.mu.Lock()
	qs := c.queues
	c.mu.Unlock()
	var st Stats
	st.Queues = len(qs)
	st.QueueCommits = make([]uint64, len(qs))
	for i, q := range qs {
		st.QueueCommits[i] = q.stats.commits.Load()
		st.Depth = len(q.ents)
		s := &q.stats
		st.Registered += s.registered.Load()
		st.RegisterFailures += s.registerFailures.Load()
		st.Dead += s.dead.Load()
		st.Stranded += s.stranded.Load()
		st.Commits += s.commits.Load()
		st.CQEs += s.cqes.Load()
		st.Enters += s.enters.Load()
		st.Retries += s.retries.Load()
		st.Refused += s.refused.Load()
		st.Unsettled += s.unsettled.Load()
		st.Forgets += s.forgets.Load()
		st.ForgetMsgs += s.forgetMsgs.Load()
		st.ForgetErrors += s.forgetErrors.Load()
		st.Pooled += s.pooled.Load()
		st.FileIO += s.fileIO.Load()
		st.Demotions += s.demotions.Load()
	}
	return st
}
