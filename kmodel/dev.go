package kmodel

import (
	"syscall"

	"github.com/ringfuse/ringfuse/channel/devfuse"
	"github.com/ringfuse/ringfuse/wire"
)

// Dev returns the connection's /dev/fuse descriptor as a devfuse.Device:
// Read and Writev behave as read(2) and writev(2) on /dev/fuse, with the
// kernel's errors (EINVAL, ENOENT, ENODEV, ECONNABORTED). Any number of
// goroutines may read and write at once.
func (c *Conn) Dev() devfuse.Device { return devFile{c} }

type devFile struct{ c *Conn }

var _ devfuse.Device = devFile{}

// Read implements devfuse.Device: fuse_dev_do_read.
func (d devFile) Read(p []byte) (int, error) {
	c := d.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) < max(wire.FUSE_MIN_READ_BUFFER, wire.SizeofInHeader+wire.SizeofWriteIn+int(c.maxWrite)) {
		return 0, syscall.EINVAL
	}
	c.dev.Reads++
	for {
		for c.connected && !c.requestPending() {
			c.dev.Sleeps++
			c.readCond.Wait()
		}
		if !c.connected {
			if c.aborted {
				return 0, syscall.ECONNABORTED
			}
			return 0, syscall.ENODEV
		}
		if c.interrupts.len() > 0 {
			r := c.interrupts.pop()
			r.intrQd = false
			if r.state != reqSent {
				continue // ended meanwhile: the kernel unlinks it then
			}
			return c.readInterrupt(r, p), nil
		}
		if c.forgets.len() > 0 {
			if c.pending.len() == 0 {
				return c.readForget(p)
			}
			fb := c.forgetBatch
			c.forgetBatch--
			if fb > 0 {
				return c.readForget(p)
			}
			if c.forgetBatch <= -8 {
				c.forgetBatch = 16
			}
		}
		r := c.pending.pop()
		if len(p) < int(r.h.Len) {
			errno := syscall.EIO
			if r.h.Opcode == wire.FUSE_SETXATTR {
				errno = syscall.E2BIG
			}
			c.end(r, -int32(errno), nil)
			continue
		}
		n := copy(p, r.msg)
		if t := c.faults.Truncate; t != nil && r.h.Opcode != wire.FUSE_INIT {
			if k := t(r.h.Opcode, r.h.Unique); k > 0 {
				n = max(0, n-k)
			}
		}
		c.dev.Requests++
		if r.noreply {
			c.end(r, 0, nil)
			return n, nil
		}
		r.state = reqSent
		c.processing[r.h.Unique] = r
		if r.interr {
			c.queueInterrupt(r)
		}
		return n, nil
	}
}

// requestPending is request_pending(fiq).
func (c *Conn) requestPending() bool {
	return c.pending.len() > 0 || c.interrupts.len() > 0 || c.forgets.len() > 0
}

// readInterrupt is fuse_read_interrupt.
func (c *Conn) readInterrupt(r *request, p []byte) int {
	h := wire.InHeader{
		Len:    wire.SizeofInHeader + wire.SizeofInterruptIn,
		Opcode: wire.FUSE_INTERRUPT,
		Unique: r.h.Unique | 1,
	}
	in := wire.InterruptIn{Unique: r.h.Unique}
	n := wire.Put(p, &h)
	n += wire.Put(p[n:], &in)
	c.dev.Interrupts++
	return n
}

// readForget is fuse_read_forget: one FORGET if a single forget is queued
// (or the protocol predates BATCH_FORGET), else one BATCH_FORGET of as many
// as fit in the read.
func (c *Conn) readForget(p []byte) (int, error) {
	const hdr = wire.SizeofInHeader + wire.SizeofForgetIn // == 40 + sizeof(fuse_batch_forget_in)
	if len(p) < hdr {
		return 0, syscall.EINVAL
	}
	if c.minor < 16 || c.forgets.len() == 1 {
		f := c.forgets.pop()
		h := wire.InHeader{Len: hdr, Opcode: wire.FUSE_FORGET, Unique: c.nextUnique(), NodeID: f.NodeID}
		in := wire.ForgetIn{Nlookup: f.Nlookup}
		n := wire.Put(p, &h)
		n += wire.Put(p[n:], &in)
		c.forgetsDelivered(f)
		c.forgetDrained(1)
		c.dev.ForgetMsgs++
		c.dev.Forgets++
		return n, nil
	}
	count := min((len(p)-hdr)/wire.SizeofForgetOne, c.forgets.len())
	h := wire.InHeader{Len: uint32(hdr + count*wire.SizeofForgetOne), Opcode: wire.FUSE_BATCH_FORGET, Unique: c.nextUnique()}
	in := wire.BatchForgetIn{Count: uint32(count)}
	n := wire.Put(p, &h)
	n += wire.Put(p[n:], &in)
	for range count {
		f := c.forgets.pop()
		n += wire.Put(p[n:], &f)
		c.forgetsDelivered(f)
	}
	c.forgetDrained(count)
	c.dev.BatchForgetMsgs++
	c.dev.Forgets += uint64(count)
	return n, nil
}

// forgetsDelivered notes that the server now knows of forget f.
func (c *Conn) forgetsDelivered(f wire.ForgetOne) {
	c.fg.delivered++
	if n := c.nodes[f.NodeID]; n != nil {
		n.server -= min(n.server, f.Nlookup)
	}
}

// Writev implements devfuse.Device: fuse_dev_do_write.
func (d devFile) Writev(bufs [][]byte) (int, error) {
	var msg []byte
	switch len(bufs) {
	case 0:
	case 1:
		msg = bufs[0]
	default:
		for _, b := range bufs {
			msg = append(msg, b...)
		}
	}
	c := d.c
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.write(msg)
	if err != nil {
		c.dev.WriteErrors++
	}
	return n, err
}

func (c *Conn) write(msg []byte) (int, error) {
	nbytes := len(msg)
	if nbytes < wire.SizeofOutHeader {
		return 0, syscall.EINVAL
	}
	oh := *wire.View[wire.OutHeader](msg)
	if int(oh.Len) != nbytes {
		return 0, syscall.EINVAL
	}
	if oh.Unique == 0 {
		// A notification: not modelled.
		return 0, syscall.EINVAL
	}
	if oh.Error <= -512 || oh.Error > 0 {
		return 0, syscall.EINVAL
	}
	var r *request
	if c.connected {
		r = c.processing[oh.Unique&^1]
	}
	if r == nil {
		return 0, syscall.ENOENT
	}
	if oh.Unique&1 != 0 {
		// The answer to an INTERRUPT.
		switch {
		case nbytes != wire.SizeofOutHeader:
			return 0, syscall.EINVAL
		case oh.Error == -int32(syscall.ENOSYS):
			c.noInterrupt = true
		case oh.Error == -int32(syscall.EAGAIN):
			c.queueInterrupt(r)
		}
		return nbytes, nil
	}
	delete(c.processing, r.h.Unique)
	var err syscall.Errno
	errno := oh.Error
	payload := msg[wire.SizeofOutHeader:]
	if errno != 0 {
		if nbytes != wire.SizeofOutHeader {
			err = syscall.EINVAL
		}
	} else if !outArgsFit(r, len(payload)) {
		err = syscall.EINVAL
	}
	if err != 0 {
		errno = -int32(syscall.EIO)
	}
	if r.h.Opcode == wire.FUSE_INIT {
		c.processInitReply(errno, payload)
	}
	c.end(r, errno, payload)
	c.dev.Replies++
	if err != 0 {
		return 0, err
	}
	return nbytes, nil
}

// outArgsFit is the length check of fuse_copy_out_args: the reply's
// payload must be the sum of the out-args, or shorter when the last one
// is variable.
func outArgsFit(r *request, n int) bool {
	return n <= r.outSize && (n == r.outSize || r.outVar)
}
