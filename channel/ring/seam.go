package ring

import (
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// Entry is one ring entry: a header buffer and a payload buffer that the
// channel maps (anonymous mmap, never Go heap) and keeps mapped until every
// queue has exited. While the kernel owns the entry (from a REGISTER or
// COMMIT_AND_FETCH until its completion) only the kernel touches the
// buffers; afterwards only the queue goroutine does.
//
// On delivery the kernel writes fuse_in_header into Header.InOut, the
// per-op header into Header.OpIn, Header.RingEnt.CommitID (the request's
// unique) and Header.RingEnt.PayloadSz, and the rest of the request into
// Payload. On commit the channel writes fuse_out_header into Header.InOut,
// the reply's out-args into Payload and their length into
// Header.RingEnt.PayloadSz.
type Entry struct {
	// Qid is the queue the entry belongs to (fuse_uring_cmd_req.qid).
	Qid uint16
	// Index is the entry's position in its queue, 0 to depth-1. A
	// [QueueRing] reports completions by it.
	Index int
	// Header is struct fuse_uring_req_header (iov[0] of REGISTER).
	Header *wire.UringReqHeader
	// Payload is the payload buffer (iov[1] of REGISTER), exactly
	// max_payload_sz bytes: max(8192, max_write, max_pages*page size), or
	// Options.SmallPayload for the first Options.SmallEntries entries.
	Payload []byte

	state    entryState
	commitID uint64 // of the COMMIT_AND_FETCH in flight, for resubmission
	psz      int    // the used part of Payload, for the pool
	// handout is what the reply being committed hands the kernel, given
	// back if the kernel refuses the commit.
	handout server.Handout
}

// entryState is where an entry is, as the queue sees it.
type entryState uint8

const (
	entryIdle     entryState = iota // not handed to the kernel yet
	entryRegister                   // REGISTER in flight
	entryCommit                     // COMMIT_AND_FETCH in flight
	entryAsync                      // being served by the queue's pool
	entryIO                         // its READ or WRITE is on the ring (FileIORing)
	entryDead                       // ended by the kernel, refused or stranded
)

// Completion is the result of one command: the CQE of a REGISTER or
// COMMIT_AND_FETCH.
type Completion struct {
	// Entry is the [Entry.Index] of the entry the command was for.
	Entry int
	// Res is 0 when a request has been delivered into the entry, or a
	// negative errno as the kernel reports it: -ENOTCONN, -ECONNABORTED
	// and -ECANCELED end the entry, -EAGAIN and -EINTR ask for the same
	// command again, anything else is a refusal (REGISTER) or a lost
	// commit (COMMIT_AND_FETCH).
	Res int32
	// IO marks the completion of a read or write queued by
	// [FileIORing.StartIO]; Res is then its byte count or a negative errno.
	IO bool
}

// FileIORing is implemented by a [QueueRing] that can also read and write
// files. With [Options.FileIO] the queue then serves the READ and WRITE
// requests of a filesystem that implements ringfuse.FdFiler as
// asynchronous reads and writes on the same ring, so that one thread keeps
// many in flight without handing them to other threads.
type FileIORing interface {
	// StartIO queues a read into buf (or, with write, a write of buf) at
	// off on fd for entry e. It completes with a Completion for e whose
	// IO is set. At most one command per entry is queued or in flight,
	// so the ring's room for Depth commands covers it.
	StartIO(e *Entry, write bool, fd int, buf []byte, off int64) error
}

// RingConfig describes the queue a [QueueRing] is made for.
type RingConfig struct {
	// Fd is the /dev/fuse descriptor given to [New].
	Fd int
	// Qid is the queue number, 0 to the number of possible CPUs - 1.
	Qid int
	// Depth is the number of entries the queue registers. At most one
	// command per entry is queued or in flight at any time, so a ring
	// needs room for Depth commands plus whatever it uses internally.
	Depth int
	// Options are the channel's options, for the ring setup flags.
	Options *Options
}

// QueueRing is everything a queue needs from the kernel: the seam between
// the channel and the kernel. [NewKernelRing] implements it with io_uring on
// /dev/fuse; an in-process kernel model implements it in memory, delivering
// requests into the entries' buffers as the kernel does.
//
// The queue goroutine that created a QueueRing (locked to its OS thread) is
// the only caller of every method except Wake. Register and Commit only
// queue a command; SubmitAndWait hands all queued commands over at once.
type QueueRing interface {
	// Register queues FUSE_IO_URING_CMD_REGISTER for e: iov[0] =
	// e.Header (288 bytes), iov[1] = e.Payload, cmd_req = {flags, qid =
	// e.Qid}. The kernel keeps both buffer addresses and, once a request
	// arrives, writes it into them and completes the command with res 0.
	// A refused REGISTER completes with a negative errno.
	Register(e *Entry, flags uint64) error

	// Commit queues FUSE_IO_URING_CMD_COMMIT_AND_FETCH for e: cmd_req =
	// {commit_id = commitID, qid = e.Qid}. The reply is already in e's
	// buffers. The command completes when the next request has been
	// delivered into e, or with a negative errno.
	Commit(e *Entry, commitID uint64) error

	// SubmitAndWait hands over every queued command and blocks until at
	// least one completion can be reaped or Wake was called. It retries
	// a wait that a signal interrupts (EINTR) itself. Errors wrapping
	// unix.EAGAIN or unix.EBUSY are transient: the caller reaps and calls
	// again. Any other error ends the queue.
	SubmitAndWait() error

	// Reap moves up to len(dst) completions into dst and returns how many.
	// It does not block or allocate. Wake-ups are not completions.
	Reap(dst []Completion) int

	// Wake makes a SubmitAndWait blocked on another goroutine return soon.
	// A Wake is never lost: one made after a Reap ends the next
	// SubmitAndWait even if it comes before that call. It is safe to call
	// from any goroutine; the channel never calls it after Close.
	Wake() error

	// Close releases the ring. Commands still with the kernel are
	// cancelled; on a live connection that strands their entries, so the
	// channel closes its rings only once it is told to stop or every entry
	// has ended.
	Close() error
}
