package forgetstudy

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/server"
)

// Counters are what this process (the daemon, and the study's own
// goroutines, the same for every policy) did in one span of the storm
// run. The span before the trigger carries reads alone; the storm's span
// less the same length of it is what the forgets cost.
type Counters struct {
	Span time.Duration
	// CPU is user plus system time; VolCSw and InvolCSw are voluntary and
	// involuntary context switches (getrusage(RUSAGE_SELF)).
	CPU              time.Duration
	VolCSw, InvolCSw int64
	// Ring CQEs reaped, commits sent and io_uring_enter calls, for every
	// request; 0 on /dev/fuse.
	RingCQEs, RingCommits, RingEnters uint64
	// DevMsgs is the messages read from /dev/fuse: one read(2) and one
	// reader wake-up each.
	DevMsgs uint64
}

// snapshot is the absolute counters at a moment.
type snapshot struct {
	at time.Time
	ru unix.Rusage
	rs ring.Stats
	st server.Stats
}

func takeSnapshot(srv *server.Server, r *ring.Channel) snapshot {
	s := snapshot{at: time.Now(), st: srv.Stats()}
	_ = unix.Getrusage(unix.RUSAGE_SELF, &s.ru)
	if r != nil {
		s.rs = r.Stats()
	}
	return s
}

// countersBetween returns what happened from a to b.
func countersBetween(a, b snapshot) Counters {
	cpu := func(ru unix.Rusage) time.Duration {
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return Counters{
		Span:        b.at.Sub(a.at),
		CPU:         cpu(b.ru) - cpu(a.ru),
		VolCSw:      b.ru.Nvcsw - a.ru.Nvcsw,
		InvolCSw:    b.ru.Nivcsw - a.ru.Nivcsw,
		RingCQEs:    b.rs.CQEs - a.rs.CQEs,
		RingCommits: b.rs.Commits - a.rs.Commits,
		RingEnters:  b.rs.Enters - a.rs.Enters,
		DevMsgs:     devMsgs(b.st) - devMsgs(a.st),
	}
}

// devMsgs counts the requests read from /dev/fuse.
func devMsgs(st server.Stats) uint64 {
	var n uint64
	if d := st.Channels["devfuse"]; d != nil {
		for _, v := range d.Requests {
			n += v
		}
	}
	return n
}

// Excess returns what the storm span did beyond the pre-trigger rate, per
// forget: storm - pre*storm.Span/pre.Span, over forgets (NaN without
// forgets or a pre-trigger span).
func Excess(storm, pre float64, stormSpan, preSpan time.Duration, forgets uint64) float64 {
	if forgets == 0 || preSpan <= 0 {
		return math.NaN()
	}
	return (storm - pre*float64(stormSpan)/float64(preSpan)) / float64(forgets)
}

// meminfoKB returns the fields of /proc/meminfo text in kB.
func meminfoKB(b []byte, keys ...string) []int64 {
	out := make([]int64, len(keys))
	for i := range out {
		out[i] = -1
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for i, k := range keys {
			if name == k {
				f := strings.Fields(rest)
				if len(f) > 0 {
					out[i], _ = strconv.ParseInt(f[0], 10, 64)
				}
			}
		}
	}
	return out
}

// sunreclaim returns the kernel's unreclaimable slab in bytes (-1 if
// unknown): where forget requests and links live.
func sunreclaim() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	v := meminfoKB(b, "SUnreclaim")[0]
	if v < 0 {
		return -1
	}
	return v << 10
}

// parseThreads finds "Threads: N" in /proc/PID/status text (0 if absent).
func parseThreads(b []byte) int {
	i := bytes.Index(b, []byte("Threads:"))
	if i < 0 {
		return 0
	}
	b = b[i+len("Threads:"):]
	if j := bytes.IndexByte(b, '\n'); j >= 0 {
		b = b[:j]
	}
	n, _ := strconv.Atoi(string(bytes.TrimSpace(b)))
	return n
}
