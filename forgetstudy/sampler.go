package forgetstudy

import (
	"bytes"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/server"
)

// Sampling periods: the live node count is an atomic load, so it is polled
// often enough to time a drain to the millisecond; a full sample (server
// statistics, VmRSS, heap) is taken every 10 ms.
const (
	pollPeriod   = time.Millisecond
	samplePeriod = 10 * time.Millisecond
)

// rawSample is a Sample with an absolute time (Unix ns).
type rawSample struct {
	t       int64
	nodes   int64
	forgets uint64
	rss     uint64
	heap    uint64
	slab    int64 // SUnreclaim, bytes (-1 unknown)
	threads int
}

// sampler watches a server during a storm.
type sampler struct {
	srv  *server.Server
	base int64 // drain target: the live node count before instantiation

	// Set before start, read by the loop.
	forgets0 uint64 // forgets counted before the sampler started

	trigger   atomic.Int64 // Unix ns of the drop_caches write; 0 before
	drainedAt atomic.Int64 // Unix ns the live count reached base; 0 before
	changedAt atomic.Int64 // Unix ns of the last live-count change after the trigger
	drained   chan struct{}

	stop chan struct{}
	done chan struct{}

	// Owned by the loop until done is closed.
	samples     []rawSample
	nodePts     []NodePoint // T holds Unix ns until the caller rebases it
	firstChange int64       // Unix ns of the first live-count change after the trigger
	lastChange  int64       // Unix ns of the last one

	status *procStatus
	heapM  []metrics.Sample
}

func newSampler(srv *server.Server, base int64, capacity int) *sampler {
	return &sampler{
		srv:      srv,
		base:     base,
		forgets0: totalForgets(srv.Stats()),
		drained:  make(chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		samples:  make([]rawSample, 0, capacity),
		nodePts:  make([]NodePoint, 0, 4096),
		status:   openProcStatus(),
		heapM:    []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}},
	}
}

func (s *sampler) start() { go s.loop() }

// setTrigger records the drop_caches write time.
func (s *sampler) setTrigger(t time.Time) { s.trigger.Store(t.UnixNano()) }

// finish stops the loop and returns its samples.
func (s *sampler) finish() []rawSample {
	close(s.stop)
	<-s.done
	s.status.close()
	return s.samples
}

func (s *sampler) loop() {
	defer close(s.done)
	tick := time.NewTicker(pollPeriod)
	defer tick.Stop()
	prev := s.srv.NodesAlive()
	var lastSample int64
	s.take(time.Now().UnixNano(), prev)
	for {
		select {
		case <-s.stop:
			s.take(time.Now().UnixNano(), s.srv.NodesAlive())
			return
		case <-tick.C:
		}
		now := time.Now().UnixNano()
		n := s.srv.NodesAlive()
		if trig := s.trigger.Load(); trig != 0 && now >= trig {
			if len(s.nodePts) == 0 {
				// The count as the trigger found it.
				s.nodePts = append(s.nodePts, NodePoint{T: time.Duration(trig), Nodes: prev})
			}
			if n != prev {
				if s.firstChange == 0 {
					s.firstChange = now
				}
				s.lastChange = now
				s.changedAt.Store(now)
				s.nodePts = append(s.nodePts, NodePoint{T: time.Duration(now), Nodes: n})
			}
			if n <= s.base && s.drainedAt.Load() == 0 {
				s.drainedAt.Store(now)
				close(s.drained)
			}
		}
		prev = n
		if now-lastSample >= int64(samplePeriod) {
			s.take(now, n)
			lastSample = now
		}
	}
}

func (s *sampler) take(now, nodes int64) {
	metrics.Read(s.heapM)
	var heap uint64
	if s.heapM[0].Value.Kind() == metrics.KindUint64 {
		heap = s.heapM[0].Value.Uint64()
	}
	f := totalForgets(s.srv.Stats())
	if f >= s.forgets0 {
		f -= s.forgets0
	}
	rss, threads := s.status.read()
	s.samples = append(s.samples, rawSample{t: now, nodes: nodes, forgets: f, rss: rss, heap: heap, slab: sunreclaim(), threads: threads})
}

func totalForgets(st server.Stats) uint64 {
	var n uint64
	for _, c := range st.Channels {
		n += c.Forgets
	}
	return n
}

// procStatus reads VmRSS from /proc/self/status through one descriptor
// and one buffer, so that sampling allocates nothing.
type procStatus struct {
	fd  int
	buf []byte
}

func openProcStatus() *procStatus {
	fd, err := unix.Open("/proc/self/status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fd = -1
	}
	return &procStatus{fd: fd, buf: make([]byte, 8192)}
}

// read returns VmRSS in bytes and the thread count, 0 if unknown.
func (p *procStatus) read() (rss uint64, threads int) {
	if p.fd < 0 {
		return 0, 0
	}
	n, err := unix.Pread(p.fd, p.buf, 0)
	if err != nil || n <= 0 {
		return 0, 0
	}
	return parseVmRSS(p.buf[:n]), parseThreads(p.buf[:n])
}

func (p *procStatus) close() {
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}

// parseVmRSS finds "VmRSS:   1234 kB" in the text of /proc/PID/status and
// returns it in bytes (0 if absent).
func parseVmRSS(b []byte) uint64 {
	i := bytes.Index(b, []byte("VmRSS:"))
	if i < 0 {
		return 0
	}
	b = b[i+len("VmRSS:"):]
	if j := bytes.IndexByte(b, '\n'); j >= 0 {
		b = b[:j]
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0
	}
	kb, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0
	}
	return kb << 10
}
