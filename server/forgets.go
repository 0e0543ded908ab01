package server

import (
	"math/bits"

	"github.com/ringfuse/ringfuse/wire"
)

// Forgets holds the forgets of FORGET and BATCH_FORGET messages, and the
// count of those messages, until a worker applies them with
// [Worker.ApplyForgets]. Every forget the kernel sends, over any channel,
// goes through one Forgets value and ApplyForgets, the one place forgets
// are applied and counted. The zero value is empty and ready.
type Forgets struct {
	ones []wire.ForgetOne
	// msgs counts the messages by kind: FORGET, BATCH_FORGET.
	msgs [2]uint64
	// sizes is the batch-size histogram of those messages.
	sizes [forgetBuckets]uint64
}

// Add takes the forgets of r, a decoded FORGET or BATCH_FORGET, and counts
// the message. It reports false, taking nothing, for any other request.
// The forgets are copied: r's buffer may be reused at once.
func (f *Forgets) Add(r *wire.Request) bool {
	op := r.Header.Opcode
	n := 1
	switch op {
	case wire.FUSE_FORGET:
		f.ones = append(f.ones, wire.ForgetOne{NodeID: r.Header.NodeID, Nlookup: wire.ArgAs[wire.ForgetIn](r).Nlookup})
	case wire.FUSE_BATCH_FORGET:
		ones := r.ForgetOnes()
		n = len(ones)
		f.ones = append(f.ones, ones...)
	default:
		return false
	}
	f.count(op, n)
	return true
}

// borrow makes f hold the forgets of r, a decoded FORGET or BATCH_FORGET,
// without copying them: a BATCH_FORGET's stay in r's buffer, a FORGET's
// goes to one. The caller applies f and sets f.ones to nil before either
// is reused.
func (f *Forgets) borrow(r *wire.Request, one *[1]wire.ForgetOne) {
	f.ones = nil
	if r.Header.Opcode == wire.FUSE_FORGET {
		one[0] = wire.ForgetOne{NodeID: r.Header.NodeID, Nlookup: wire.ArgAs[wire.ForgetIn](r).Nlookup}
		f.ones = one[:]
		f.count(wire.FUSE_FORGET, 1)
		return
	}
	f.ones = r.ForgetOnes()
	f.count(wire.FUSE_BATCH_FORGET, len(f.ones))
}

// count counts one message of n forgets.
func (f *Forgets) count(op wire.Opcode, n int) {
	if op == wire.FUSE_FORGET {
		f.msgs[0]++
	} else {
		f.msgs[1]++
	}
	if n > 0 {
		f.sizes[batchBucket(n)]++
	}
}

// Len returns the number of forgets held.
func (f *Forgets) Len() int { return len(f.ones) }

// Messages returns the number of messages the forgets held came in.
func (f *Forgets) Messages() int { return int(f.msgs[0] + f.msgs[1]) }

// Move moves what f holds to the end of dst and empties f. Both keep
// their storage.
func (f *Forgets) Move(dst *Forgets) {
	dst.ones = append(dst.ones, f.ones...)
	for i := range f.msgs {
		dst.msgs[i] += f.msgs[i]
	}
	for i := range f.sizes {
		dst.sizes[i] += f.sizes[i]
	}
	f.reset()
}

func (f *Forgets) reset() {
	f.ones = f.ones[:0]
	f.msgs = [2]uint64{}
	f.sizes = [forgetBuckets]uint64{}
}

// ApplyForgets drops the lookups f holds, counts them and the messages
// they came in, and empties f (which keeps its storage).
func (w *Worker) ApplyForgets(f *Forgets) {
	for i := range f.ones {
		w.s.forgetNode(f.ones[i].NodeID, f.ones[i].Nlookup)
	}
	st := &w.stats
	st.forgets.Add(uint64(len(f.ones)))
	st.forgetMsgs.Add(f.msgs[0] + f.msgs[1])
	if f.msgs[0] > 0 {
		st.ops[wire.FUSE_FORGET].Add(f.msgs[0])
	}
	if f.msgs[1] > 0 {
		st.ops[wire.FUSE_BATCH_FORGET].Add(f.msgs[1])
	}
	for i, n := range f.sizes {
		if n > 0 {
			st.forgetBatches[i].Add(n)
		}
	}
	f.reset()
	w.s.maybeCompact()
}

// batchBucket returns the histogram bucket of a message of n > 0 forgets.
func batchBucket(n int) int {
	return min(bits.Len(uint(n))-1, forgetBuckets-1)
}

// TakeForgetsDev moves the forgets of msg, a message read from /dev/fuse,
// into f if it is a FORGET or BATCH_FORGET, to be applied later with
// ApplyForgets (on any worker), and reports whether it did. Other
// messages, and forgets that do not decode, are left to HandleDev, which
// serves or reports them.
func (w *Worker) TakeForgetsDev(msg []byte, f *Forgets) bool {
	if len(msg) < wire.SizeofInHeader {
		return false
	}
	if op := wire.View[wire.InHeader](msg).Opcode; op != wire.FUSE_FORGET && op != wire.FUSE_BATCH_FORGET {
		return false
	}
	c := w.conn()
	if c == nil {
		return false // before INIT: HandleDev says so
	}
	if err := wire.ParseDev(msg, c, &w.req); err != nil {
		return false
	}
	f.Add(&w.req)
	w.req = wire.Request{} // drop the references into msg
	return true
}

// Use makes f keep its forgets in buf, memory the caller owns (such as
// an anonymous mapping outside the Go heap), and empties f. Add appends
// past cap(buf) into the Go heap; a caller that must stay in buf checks
// Room first.
func (f *Forgets) Use(buf []wire.ForgetOne) {
	f.reset()
	f.ones = buf[:0]
}

// Room returns how many forgets f can take before it outgrows its storage.
func (f *Forgets) Room() int { return cap(f.ones) - len(f.ones) }

// Storage returns the storage f keeps its forgets in, up to its capacity.
func (f *Forgets) Storage() []wire.ForgetOne { return f.ones[:cap(f.ones)] }

// Swap exchanges the contents of f and g.
func (f *Forgets) Swap(g *Forgets) { *f, *g = *g, *f }
