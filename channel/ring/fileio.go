package ring

import (
	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/server"
)

// The channel's own reads and writes (Options.FileIO): a READ or WRITE of
// a filesystem that lends its descriptors (ringfuse.FdFiler) becomes a
// read or write on the queue's ring instead of a call into the filesystem.

// startIO queues the READ or WRITE decoded from e as a read or write on
// the ring, if the server lets the channel do it; it reports whether it
// did.
func (q *queue) startIO(e *Entry, commitID uint64) bool {
	io := &q.ios[e.Index]
	if !q.w.StartFileIO(len(e.Payload), io) {
		return false
	}
	e.state, e.commitID = entryIO, commitID
	q.stats.fileIO.Add(1)
	buf := e.Payload[:io.Len]
	if io.Write {
		buf = io.Data
	}
	if len(buf) == 0 {
		q.finishIO(e, 0)
		return true
	}
	if err := q.fio.StartIO(e, io.Write, io.Fd, buf, io.Off); err != nil {
		// No room on the ring (never expected: one command per
		// entry); finishIO does the I/O itself after EAGAIN.
		q.finishIO(e, -int32(unix.EAGAIN))
		return true
	}
	q.ioPending++
	return true
}

// finishIO answers the READ or WRITE of e whose I/O ended with res and
// queues its commit. A read or write that did less than asked and failed
// nothing, or was interrupted, is resumed synchronously, as the
// filesystem's own Read and Write would.
func (q *queue) finishIO(e *Entry, res int32) {
	io := &q.ios[e.Index]
	res = resumeIO(io, res, e.Payload)
	putReply(e, e.commitID, q.w.FinishFileIO(io, res, e.Payload))
	q.ios[e.Index] = server.FileIO{}
	q.commit(e, e.commitID)
}

// drainIO waits, once the queue has stopped serving, for the reads and
// writes still on the ring, so that the filesystem gets its descriptors
// back before the ring and the buffers go away. Reads and writes of local
// files end on their own; a failing ring ends the wait.
func (q *queue) drainIO() {
	for q.ioPending > 0 {
		if err := q.ring.SubmitAndWait(); err != nil && !transient(err) {
			q.s.Logf("ring: queue %d: %d reads or writes still on the ring at exit: %v", q.qid, q.ioPending, err)
			return
		}
		n := q.ring.Reap(q.cqes)
		for _, c := range q.cqes[:n] {
			if c.IO && c.Entry >= 0 && c.Entry < len(q.ents) && q.ents[c.Entry].state == entryIO {
				q.ioPending--
				q.ents[c.Entry].state = entryDead
				q.w.AbandonFileIO(&q.ios[c.Entry])
			}
		}
	}
}

// resumeIO completes io, whose read or write on the ring ended with res (a
// byte count or a negative errno), synchronously: again from the start
// after EINTR or EAGAIN, and on after a short count until the end of the
// file or an error. It returns the byte count, or a negative errno if
// nothing was done.
func resumeIO(io *server.FileIO, res int32, out []byte) int32 {
	if res == -int32(unix.EINTR) || res == -int32(unix.EAGAIN) {
		res = syncIO(io, 0, out)
	}
	if res < 0 {
		return res
	}
	done := int(res)
	for done < io.Len && res > 0 {
		if res = syncIO(io, done, out); res < 0 {
			break // report what was done, as Read and Write do
		}
		done += int(res)
	}
	return int32(done)
}

// syncIO reads or writes the rest of io after done bytes with pread or
// pwrite, and returns the byte count (0 at the end of the file) or a
// negative errno. It is the one place that retries EINTR.
func syncIO(io *server.FileIO, done int, out []byte) int32 {
	for {
		var n int
		var err error
		if io.Write {
			n, err = unix.Pwrite(io.Fd, io.Data[done:io.Len], io.Off+int64(done))
		} else {
			n, err = unix.Pread(io.Fd, out[done:io.Len], io.Off+int64(done))
		}
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return -int32(err.(unix.Errno))
		}
		return int32(n)
	}
}
