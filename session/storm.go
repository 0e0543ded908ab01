package session

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/channel/devfuse"
	"github.com/ringfuse/ringfuse/channel/ring"
)

// Default forget-coalescing windows (Options.Coalesce), chosen by
// measurement (docs/storm-shield.md).
const (
	// DevFuseCoalesce is the window over /dev/fuse alone: requests share
	// the reads with forgets, and a wait is cut short when fusectl says
	// a request is waiting.
	DevFuseCoalesce = 500 * time.Microsecond
	// UringCoalesce is the window with io_uring serving the requests:
	// the /dev/fuse readers carry only forgets and interrupts, so an
	// INTERRUPT waits at most this long for a reader.
	UringCoalesce = 2 * time.Millisecond
	// forgetNice is the nice value of the thread that applies the
	// forgets the readers take. Not lower than the readers': a Go thread
	// that the kernel leaves waiting holds up every stop-the-world
	// pause and every lock it holds (docs/storm-shield.md).
	forgetNice = 0
)

// coalesce returns the readers' forget-coalescing settings for o, or nil.
// Over /dev/fuse alone a waiting reader asks fusectl (wf) whether a
// request waits. With the ring it does not: requests come over the ring,
// unless the ring failed at INIT. (After a REGISTER refused later, the
// kernel sends requests to /dev/fuse again; during a storm they then wait
// up to the window.)
func coalesce(o *Options, rc *ring.Channel, wf *waitingFile) *devfuse.Coalesce {
	w := o.Coalesce
	if w < 0 {
		return nil
	}
	if w == 0 {
		w = DevFuseCoalesce
		if rc != nil {
			w = UringCoalesce
		}
	}
	poll := time.Duration(0) // devfuse's default: Window/8
	if rc != nil {
		poll = w // one look before each wait: is the ring still there?
	}
	return &devfuse.Coalesce{
		Window: w,
		Poll:   poll,
		Nice:   forgetNice,
		Pending: func(held int) bool {
			if rc != nil && ringServing(rc) {
				return false
			}
			// Unknown: assume a request may wait, and read.
			n, ok := wf.read()
			return !ok || n > held
		},
	}
}

// ringServing reports whether the ring serves the requests: it was
// prepared and has not ended.
func ringServing(rc *ring.Channel) bool {
	select {
	case <-rc.Done():
		return false
	default:
	}
	return rc.Err() == nil
}

// newWaitingFile returns the reader of connection connID's fusectl
// waiting file, or nil if the connection number is unknown.
func newWaitingFile(connID uint32) *waitingFile {
	if connID == 0 {
		return nil
	}
	return &waitingFile{path: fmt.Sprintf("/sys/fs/fuse/connections/%d/waiting", connID)}
}

// waitingFile reads fusectl's count of the requests the kernel holds for
// a connection: queued, being served, or answered but not yet collected
// by the caller. The file is not seekable (nonseekable_open) and computes
// the count only at offset 0: every reading opens it anew.
type waitingFile struct{ path string }

func (f *waitingFile) read() (int, bool) {
	if f == nil {
		return 0, false
	}
	fd, err := unix.Open(f.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	var buf [24]byte
	n, err := unix.Read(fd, buf[:])
	unix.Close(fd)
	if err != nil {
		return 0, false
	}
	v, i := 0, 0
	for ; i < n && buf[i] >= '0' && buf[i] <= '9'; i++ {
		v = v*10 + int(buf[i]-'0')
	}
	return v, i > 0
}
