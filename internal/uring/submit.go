package uring

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// NextSQE returns the next free SQE slot, zeroed, or nil when the SQ is full
// (or the ring is closed). The SQE belongs to the caller until the next
// Submit or SubmitAndWait publishes it to the kernel; SQEs are published in
// the order NextSQE returned them.
func (r *Ring) NextSQE() *SQE {
	if r.sqes == nil {
		return nil
	}
	// The kernel advances sqHead as it consumes SQEs; a slot below head is
	// free to reuse (IORING_FEAT_SUBMIT_STABLE: the kernel has copied what
	// it needs by then).
	if r.sqeTail-atomic.LoadUint32(r.sqHead) >= r.sqEntries {
		return nil
	}
	sqe := &r.sqes[r.sqeTail&r.sqMask]
	*sqe = SQE{}
	r.sqeTail++
	return sqe
}

// Submit publishes the SQEs taken with NextSQE and tells the kernel about
// them. It returns how many SQEs the kernel consumed (under SQPOLL: how many
// were published). It makes no system call when there is nothing to do.
//
// Submit also enters the kernel, without waiting, when the kernel flags that
// completions are held back (IORING_SQ_CQ_OVERFLOW after the CQ filled up, or
// IORING_SQ_TASKRUN with DeferTaskrun/CoopTaskrun), so that they reach the CQ.
//
// Errors wrap the errno of io_uring_enter, and the count is then what was
// consumed before the error. EINTR is retried internally. EBUSY and EAGAIN
// mean the kernel is short of CQ space or memory: reap CQEs and call Submit
// again. SQEs the kernel did not consume stay queued for the next call; none
// is lost or submitted twice.
func (r *Ring) Submit() (int, error) {
	return r.submit(0)
}

// SubmitAndWait is Submit followed by a wait until at least waitNr CQEs are
// ready in the CQ (waitNr is capped at the CQ size). It retries when a signal
// interrupts the wait, so it returns early only with an error. With
// waitNr == 0 it is Submit.
func (r *Ring) SubmitAndWait(waitNr uint32) (int, error) {
	return r.submit(waitNr)
}

func (r *Ring) submit(waitNr uint32) (int, error) {
	if r.sqes == nil {
		return 0, ErrClosed
	}
	published := r.flushSQ()
	waitNr = min(waitNr, r.cqEntries)
	sqpoll := r.flags&IORING_SETUP_SQPOLL != 0
	submitted := 0
	for {
		var toSubmit, flags uint32
		// A sequentially consistent load after the tail store in flushSQ
		// is the full barrier that IORING_SQ_NEED_WAKEUP requires.
		sqFlags := atomic.LoadUint32(r.sqFlags)
		if sqpoll {
			// The SQPOLL thread ignores to_submit; it only needs a
			// wake-up if it went to sleep.
			if sqFlags&IORING_SQ_NEED_WAKEUP != 0 {
				flags |= IORING_ENTER_SQ_WAKEUP
			}
		} else {
			// Count what the kernel has not consumed yet rather than
			// what this call published: after a partial submission,
			// an error or EINTR, the rest is still pending and must be
			// neither lost nor submitted twice.
			toSubmit = atomic.LoadUint32(r.sqTail) - atomic.LoadUint32(r.sqHead)
		}
		if waitNr > 0 || sqFlags&(IORING_SQ_CQ_OVERFLOW|IORING_SQ_TASKRUN) != 0 {
			flags |= IORING_ENTER_GETEVENTS
		}
		if toSubmit == 0 && flags == 0 {
			break
		}
		n, errno := r.enter(toSubmit, waitNr, flags)
		if errno == unix.EINTR {
			// Go's runtime signals its threads (SIGURG preemption,
			// SIGPROF, ...). The kernel returns EINTR only when it
			// consumed no SQE, so just go around.
			r.eintr++
			continue
		}
		if errno != 0 {
			return submitted, enterError(errno)
		}
		if !sqpoll {
			submitted += n
		}
		// The kernel skips the wait when it consumed fewer SQEs than
		// asked, and returns the submitted count when a signal ends the
		// wait after a submission. Go around until the wait is satisfied.
		if waitNr == 0 || r.cqReady() >= waitNr {
			break
		}
	}
	if sqpoll {
		submitted = int(published)
	}
	return submitted, nil
}

// flushSQ publishes the SQEs handed out since the last flush by storing the
// local tail into the shared SQ tail, and returns how many it published. The
// atomic store orders the plain stores into the SQEs before the tail.
func (r *Ring) flushSQ() uint32 {
	old := atomic.LoadUint32(r.sqTail)
	if old != r.sqeTail {
		atomic.StoreUint32(r.sqTail, r.sqeTail)
	}
	return r.sqeTail - old
}

// enter calls io_uring_enter(2). It uses Syscall6, not RawSyscall6, because
// the call may block: the runtime must be able to hand the P to another
// thread meanwhile.
func (r *Ring) enter(toSubmit, minComplete, flags uint32) (int, unix.Errno) {
	return sysEnter(r.fd, toSubmit, minComplete, flags)
}

// cqReady returns the number of CQEs ready to be reaped.
func (r *Ring) cqReady() uint32 {
	if r.cqes == nil {
		return 0
	}
	return atomic.LoadUint32(r.cqTail) - atomic.LoadUint32(r.cqHead)
}

// peekCQE returns a copy of the oldest ready CQE without consuming it, and
// false when the CQ is empty. Call advanceCQ to consume it. It makes no system
// call; see Submit for when completions need one to become visible.
func (r *Ring) peekCQE() (CQE, bool) {
	if r.cqes == nil {
		return CQE{}, false
	}
	head := atomic.LoadUint32(r.cqHead)
	// Load the tail before reading the entry it covers.
	if head == atomic.LoadUint32(r.cqTail) {
		return CQE{}, false
	}
	return r.cqes[head&r.cqMask], true
}

// advanceCQ consumes n CQEs (at most the number ready), handing their slots
// back to the kernel.
func (r *Ring) advanceCQ(n uint32) {
	if r.cqes == nil {
		return
	}
	head := atomic.LoadUint32(r.cqHead)
	n = min(n, atomic.LoadUint32(r.cqTail)-head)
	// The store releases the slots only after the entries were read.
	atomic.StoreUint32(r.cqHead, head+n)
}

// ReapCQEs copies up to len(dst) ready CQEs into dst, consumes them and
// returns how many it copied. It makes no system call and does not allocate.
func (r *Ring) ReapCQEs(dst []CQE) int {
	if r.cqes == nil {
		return 0
	}
	head := atomic.LoadUint32(r.cqHead)
	n := min(atomic.LoadUint32(r.cqTail)-head, uint32(len(dst)))
	for i := range n {
		dst[i] = r.cqes[(head+i)&r.cqMask]
	}
	if n > 0 {
		atomic.StoreUint32(r.cqHead, head+n)
	}
	return int(n)
}

// Overflow returns the kernel's count of CQEs dropped because the CQ was full.
// With IORING_FEAT_NODROP the kernel keeps such CQEs in an overflow list
// instead (see Submit), so this stays 0 unless that list could not be
// allocated.
func (r *Ring) overflow() uint32 {
	if r.cqes == nil {
		return 0
	}
	return atomic.LoadUint32(r.cqOverflow)
}
