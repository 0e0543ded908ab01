package kmodel

import "time"

// Stats is a snapshot of the model's counters.
type Stats struct {
	// Ready reports whether the ring is ready.
	Ready bool
	// Dev counts the /dev/fuse side.
	Dev DevStats
	// Queues has one element per ring queue, in qid order; empty before
	// the first REGISTER. A queue no entry was registered for has zeros.
	Queues []QueueStats

	// ForgetsQueued counts forgets queued by evictions; ForgetsDelivered
	// those the server received (on either channel); ForgetsDropped those
	// lost at unmount or abort; ForgetsToRing those routed to a ring queue
	// (a Patched kernel).
	ForgetsQueued, ForgetsDelivered, ForgetsDropped uint64
	ForgetsToRing                                   uint64
	// ForgetsOutstanding counts forgets queued and not yet drained.
	ForgetsOutstanding int
	// ForgetListLen is the length of the /dev/fuse forget list.
	ForgetListLen int
}

// DevStats count what crossed /dev/fuse.
type DevStats struct {
	// Requests counts ordinary requests read (INIT included).
	Requests uint64
	// Replies counts replies matched to a request.
	Replies uint64
	// WriteErrors counts writes that failed (ENOENT, EINVAL).
	WriteErrors uint64
	// Interrupts counts INTERRUPT messages read.
	Interrupts uint64
	// ForgetMsgs and BatchForgetMsgs count FORGET and BATCH_FORGET
	// messages read; Forgets the forgets they carried.
	ForgetMsgs, BatchForgetMsgs, Forgets uint64
	// Reads counts read(2) calls on /dev/fuse, one system call each;
	// Sleeps the times a reader blocked for want of a message (a task
	// switch each, and another when it is woken).
	Reads, Sleeps uint64
}

// QueueStats count one ring queue.
type QueueStats struct {
	Qid int
	// Entries counts registered entries; States counts them by state
	// (indexed by EntryState).
	Entries int
	States  [numStates]int
	// SmallEntries counts the registered entries with a payload buffer
	// below max_payload_sz (uring_small_ents).
	SmallEntries int
	// Backlog counts requests waiting for an entry; ForgetBacklog forgets
	// waiting on the queue's forget list (patches 0002-0004).
	Backlog, ForgetBacklog int

	// Requests counts requests delivered into entries (forget messages
	// included); CQEs every completion posted for the queue's entries;
	// Commits the COMMIT_AND_FETCH commands accepted; CommitErrors those
	// refused (-ENOENT: unknown commit id, -EIO); ReplyErrors the replies
	// that failed validation, whose client got an error.
	Requests, CQEs, Commits, CommitErrors, ReplyErrors uint64

	// ForgetMsgs counts FORGET and BATCH_FORGET messages delivered on the
	// queue and Forgets the forgets they carried. ForgetCommits counts
	// their commits, ForgetBadCommits those whose reply was not empty
	// (error 0, the request's unique, payload_sz 0): the kernel ignores
	// the reply, but it is a server bug.
	ForgetMsgs, Forgets, ForgetCommits, ForgetBadCommits uint64

	// ForgetHeld is the number of entries holding a forget message now,
	// ForgetHeldMax the most at once, ForgetHeldMean the time-weighted mean
	// since the queue's first REGISTER.
	ForgetHeld, ForgetHeldMax int
	ForgetHeldMean            float64
	// ForgetHeldSeconds is ForgetHeld integrated over time (entry-seconds)
	// since the queue's first REGISTER: two snapshots give the mean over
	// the time between them.
	ForgetHeldSeconds float64

	// Enters counts io_uring_enter calls (SubmitAndWait) of the rings
	// made for this qid: one system call each, however many commands it
	// submits and completions it returns. ForgetEnters counts those that
	// carried forget work: that submitted the commit of a forget message
	// or returned with the completion of one posted. Sleeps counts the
	// calls that blocked for want of a completion (a task switch each).
	Enters, ForgetEnters, Sleeps uint64
}

// queueCounters are a queue's counters, under the connection's lock.
type queueCounters struct {
	states                          [numStates]int
	requests, cqes, commits         uint64
	commitErrors, replyErrors       uint64
	forgetMsgs, forgets             uint64
	forgetCommits, forgetBadCommits uint64
	held, heldMax                   int
	heldArea                        float64 // entry-seconds
	since, last                     time.Time
}

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{
		Ready:              c.ringReady(),
		Dev:                c.dev,
		ForgetsQueued:      c.fg.queued,
		ForgetsDelivered:   c.fg.delivered,
		ForgetsDropped:     c.fg.dropped,
		ForgetsToRing:      c.fg.toRing,
		ForgetsOutstanding: c.outstanding,
		ForgetListLen:      c.forgets.len(),
	}
	if c.ring == nil {
		return st
	}
	now := time.Now()
	st.Queues = make([]QueueStats, len(c.ring.queues))
	for i, q := range c.ring.queues {
		qs := &st.Queues[i]
		qs.Qid = i
		if q == nil {
			continue
		}
		s := &q.st
		qs.Entries = len(q.ents)
		qs.SmallEntries = q.nrSmall
		qs.States = s.states
		qs.Backlog = q.reqs.len()
		qs.ForgetBacklog = q.forgets.len()
		qs.Requests, qs.CQEs, qs.Commits = s.requests, s.cqes, s.commits
		qs.CommitErrors, qs.ReplyErrors = s.commitErrors, s.replyErrors
		qs.ForgetMsgs, qs.Forgets = s.forgetMsgs, s.forgets
		qs.ForgetCommits, qs.ForgetBadCommits = s.forgetCommits, s.forgetBadCommits
		qs.ForgetHeld, qs.ForgetHeldMax = s.held, s.heldMax
		qs.ForgetHeldSeconds = s.heldArea + float64(s.held)*now.Sub(s.last).Seconds()
		if span := now.Sub(s.since).Seconds(); span > 0 {
			qs.ForgetHeldMean = qs.ForgetHeldSeconds / span
		}
	}
	c.ringCounts(st.Queues)
	return st
}

// ringCounts adds the io_uring_enter counts of the rings to qs, by qid.
func (c *Conn) ringCounts(qs []QueueStats) {
	for _, r := range c.rings {
		if r.qid >= 0 && r.qid < len(qs) {
			q := &qs[r.qid]
			q.Enters += r.enters
			q.ForgetEnters += r.forgetEnters
			q.Sleeps += r.sleeps
		}
	}
}
