package server

import (
	"fmt"
	"io"
	"sort"
	"sync/atomic"

	"github.com/ringfuse/ringfuse/wire"
)

// forgetBuckets is the number of batch-size histogram buckets: bucket i
// counts batches of [2^i, 2^(i+1)) forgets.
const forgetBuckets = 18

// counters are one worker's statistics. Each worker writes only its own,
// so the atomics are uncontended; readers sum them.
type counters struct {
	ops           [wire.OpcodeMax]atomic.Uint64
	unknown       atomic.Uint64 // opcodes outside protocol 7.45
	decodeErrors  atomic.Uint64
	errors        atomic.Uint64 // replies with an error
	forgets       atomic.Uint64 // lookups forgotten (forget_one entries)
	forgetMsgs    atomic.Uint64 // FORGET and BATCH_FORGET messages
	forgetBatches [forgetBuckets]atomic.Uint64
	replyFailed   atomic.Uint64 // reply the kernel no longer wanted (ENOENT)
}

// ChannelStats are the statistics of one channel kind ("devfuse", "uring").
type ChannelStats struct {
	Requests     map[string]uint64 // by opcode name
	Total        uint64
	Unknown      uint64
	DecodeErrors uint64
	Errors       uint64
	Forgets      uint64
	ForgetMsgs   uint64
	ReplyFailed  uint64
	// ForgetBatches[i] counts forget messages carrying [2^i, 2^(i+1))
	// forgets.
	ForgetBatches [forgetBuckets]uint64
}

// Stats is a snapshot of a server's statistics.
type Stats struct {
	Channels map[string]*ChannelStats
	// NodesAlive is the number of kernel nodes the server holds,
	// excluding the root.
	NodesAlive int64
	// ForgetUnknown counts forgets for node IDs the server did not hold.
	ForgetUnknown uint64
}

// Stats returns a snapshot of the statistics. It is safe to call at any
// time, from any goroutine.
func (s *Server) Stats() Stats {
	st := Stats{Channels: map[string]*ChannelStats{}, NodesAlive: s.nodes.live.Load(), ForgetUnknown: s.forgetUnknown.Load()}
	s.workersMu.Lock()
	ws := append([]*Worker(nil), s.workers...)
	s.workersMu.Unlock()
	for _, w := range ws {
		cs := st.Channels[w.channel]
		if cs == nil {
			cs = &ChannelStats{Requests: map[string]uint64{}}
			st.Channels[w.channel] = cs
		}
		c := &w.stats
		for op := range c.ops {
			if n := c.ops[op].Load(); n > 0 {
				cs.Requests[wire.Opcode(op).String()] += n
				cs.Total += n
			}
		}
		cs.Unknown += c.unknown.Load()
		cs.Total += c.unknown.Load()
		cs.DecodeErrors += c.decodeErrors.Load()
		cs.Errors += c.errors.Load()
		cs.Forgets += c.forgets.Load()
		cs.ForgetMsgs += c.forgetMsgs.Load()
		cs.ReplyFailed += c.replyFailed.Load()
		for i := range c.forgetBatches {
			cs.ForgetBatches[i] += c.forgetBatches[i].Load()
		}
	}
	return st
}

// Requests returns the number of requests with opcode name op that arrived
// on channel ch.
func (st Stats) Requests(ch, op string) uint64 {
	if c := st.Channels[ch]; c != nil {
		return c.Requests[op]
	}
	return 0
}

// WriteTo prints the statistics as a human-readable table.
func (st *Stats) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	fmt.Fprintf(cw, "nodes alive: %d  forgets for unknown nodes: %d\n", st.NodesAlive, st.ForgetUnknown)
	chans := make([]string, 0, len(st.Channels))
	for ch := range st.Channels {
		chans = append(chans, ch)
	}
	sort.Strings(chans)
	for _, ch := range chans {
		c := st.Channels[ch]
		fmt.Fprintf(cw, "channel %s: %d requests, %d errors, %d unknown opcodes, %d undecodable, %d late replies\n",
			ch, c.Total, c.Errors, c.Unknown, c.DecodeErrors, c.ReplyFailed)
		ops := make([]string, 0, len(c.Requests))
		for op := range c.Requests {
			ops = append(ops, op)
		}
		sort.Slice(ops, func(i, j int) bool { return c.Requests[ops[i]] > c.Requests[ops[j]] })
		for _, op := range ops {
			fmt.Fprintf(cw, "  %-16s %d\n", op, c.Requests[op])
		}
		if c.ForgetMsgs > 0 {
			fmt.Fprintf(cw, "  forgets: %d in %d messages (%.1f per message); batch sizes:", c.Forgets, c.ForgetMsgs, float64(c.Forgets)/float64(c.ForgetMsgs))
			for i, n := range c.ForgetBatches {
				if n > 0 {
					fmt.Fprintf(cw, " [%d,%d):%d", 1<<i, 1<<(i+1), n)
				}
			}
			fmt.Fprintln(cw)
		}
	}
	return cw.n, cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
