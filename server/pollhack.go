package server

import (
	"syscall"

	"github.com/ringfuse/ringfuse/wire"
)

// A process that serves its own mount must never let Go's runtime poll a
// file on it: the runtime registers every file it opens with epoll through
// a raw syscall, and on a FUSE file that becomes a POLL request. The thread
// then waits for the server while holding its P, and the next
// stop-the-world waits forever for that P. The kernel stops sending POLL
// once a server answers it with ENOSYS, so right after INIT the session
// opens PollHackName itself, polls it with a real syscall, and the server
// answers here. The name is never listed and cannot be created.

// PollHackName is the root entry the session opens once to switch the
// kernel's POLL off for the connection.
const PollHackName = ".ringfuse-poll-hack"

// pollHackID is the node ID of PollHackName; the node table never hands it
// out (its IDs keep bit 63 clear, see makeID).
const pollHackID = 1<<63 + 1

func pollHackAttr(a *wire.Attr) {
	*a = wire.Attr{Ino: pollHackID, Mode: syscall.S_IFREG | 0o444, Nlink: 1}
}

// doPollHack serves every request on the poll-hack node.
func (w *Worker) doPollHack(out []byte) (int, syscall.Errno) {
	switch w.req.Header.Opcode {
	case wire.FUSE_GETATTR:
		ao := wire.View[wire.AttrOut](out)
		*ao = wire.AttrOut{}
		pollHackAttr(&ao.Attr)
		return wire.SizeofAttrOut, 0
	case wire.FUSE_OPEN:
		*wire.View[wire.OpenOut](out) = wire.OpenOut{OpenFlags: wire.FOPEN_DIRECT_IO}
		return wire.SizeofOpenOut, 0
	case wire.FUSE_FORGET, wire.FUSE_FLUSH, wire.FUSE_RELEASE:
		return 0, 0
	}
	return 0, syscall.ENOSYS
}

func (w *Worker) lookupPollHack(out []byte) int {
	eo := wire.View[wire.EntryOut](out)
	*eo = wire.EntryOut{NodeID: pollHackID}
	pollHackAttr(&eo.Attr)
	return wire.SizeofEntryOut
}
