package devfuse

import (
	"io"
	"log"
	"sync"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse/fs/hello"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// What a fuzzed read(2) does: return the next message, return it cut
// short, or fail with an error the reader retries.
const (
	readWhole = iota
	readShort
	readEINTR
	readEAGAIN
	readENOENT
	readKinds
)

// What a fuzzed writev(2) of a reply does.
const (
	writeOK     = iota
	writeENOENT // the request was interrupted: the server takes back what the reply handed out
	writeEINVAL // refused: logged, served on
	writeKinds
)

// Messages a program picks from.
const (
	msgInit = iota
	msgLookup
	msgLookupMissing
	msgGetattr
	msgForget
	msgBatchForget
	msgInterrupt
	msgRaw
	msgKinds
)

// noFileID is the file's node ID in forgets until a LOOKUP reply has
// told the real one: the server makes node IDs of its own.
const noFileID = wire.FUSE_ROOT_ID + 1

// pollHackNodeID is the server's ID for the poll-hack node, which no
// program looks up; a reply with it is not the file's.
const pollHackNodeID = 1<<63 + 1

// fuzzDev is a Device whose reads and write results come from a fuzz
// program. It checks every reply the way fuse_dev_do_write does and keeps
// the kernel's view of the file's lookup count.
type fuzzDev struct {
	t  *testing.T
	mu sync.Mutex
	p  []byte

	unique   uint64
	waiting  map[uint64]wire.Opcode // requests read that await a reply
	fileID   uint64                 // the file's node ID, from the last LOOKUP reply
	lookups  uint64                 // of fileID, as the kernel counts them
	finished bool
}

func (d *fuzzDev) u8() byte {
	if len(d.p) == 0 {
		return 0
	}
	v := d.p[0]
	d.p = d.p[1:]
	return v
}

// next builds the next message of the program.
func (d *fuzzDev) next() []byte {
	d.unique += 2
	h := wire.InHeader{Unique: d.unique, NodeID: wire.FUSE_ROOT_ID, UID: 1, GID: 1, PID: 1}
	switch d.u8() % msgKinds {
	case msgInit:
		h.Opcode, h.NodeID = wire.FUSE_INIT, 0
		in := wire.InitIn{Major: 7, Minor: 45, MaxReadahead: 1 << 17}
		return wire.AppendRequest(nil, h, wire.AsBytes(&in))
	case msgLookup:
		h.Opcode = wire.FUSE_LOOKUP
		return wire.AppendRequest(nil, h, wire.CString("greeting"))
	case msgLookupMissing:
		h.Opcode = wire.FUSE_LOOKUP
		return wire.AppendRequest(nil, h, wire.CString("missing"))
	case msgGetattr:
		h.Opcode, h.NodeID = wire.FUSE_GETATTR, []uint64{wire.FUSE_ROOT_ID, d.fileID, 3}[d.u8()%3]
		return wire.AppendRequest(nil, h, make([]byte, wire.SizeofGetattrIn))
	case msgForget:
		h.Opcode, h.NodeID = wire.FUSE_FORGET, d.fileID
		n := uint64(d.u8() % 3)
		in := wire.ForgetIn{Nlookup: n}
		return wire.AppendRequest(nil, h, wire.AsBytes(&in))
	case msgBatchForget:
		h.Opcode, h.NodeID = wire.FUSE_BATCH_FORGET, 0
		n := uint64(d.u8() % 3)
		in := wire.BatchForgetIn{Count: 1}
		one := wire.ForgetOne{NodeID: d.fileID, Nlookup: n}
		return wire.AppendRequest(nil, h, wire.AsBytes(&in), wire.AsBytes(&one))
	case msgInterrupt:
		h.Opcode, h.NodeID, h.Unique = wire.FUSE_INTERRUPT, 0, (d.unique-2)|1
		in := wire.InterruptIn{Unique: d.unique - 2}
		return wire.AppendRequest(nil, h, wire.AsBytes(&in))
	}
	n := int(d.u8())
	msg := make([]byte, n)
	k := copy(msg, d.p)
	d.p = d.p[k:]
	return msg
}

// Read implements Device.
func (d *fuzzDev) Read(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.p) == 0 {
		d.finished = true
		return 0, syscall.ENODEV // unmounted
	}
	kind := d.u8() % readKinds
	switch kind {
	case readEINTR:
		return 0, syscall.EINTR
	case readEAGAIN:
		return 0, syscall.EAGAIN
	case readENOENT:
		return 0, syscall.ENOENT
	}
	msg := d.next()
	if kind == readShort && len(msg) > 0 {
		msg = msg[:int(d.u8())%len(msg)]
	}
	n := copy(p, msg)
	if n < wire.SizeofInHeader {
		return n, nil
	}
	if h := wire.View[wire.InHeader](msg); !h.Opcode.NoReply() && h.Unique != 0 {
		d.waiting[h.Unique] = h.Opcode
	}
	// The forgets the server can decode are the ones it applies.
	var r wire.Request
	if wire.ParseDev(msg[:n], nil, &r) == nil {
		switch r.Header.Opcode {
		case wire.FUSE_FORGET:
			d.forget(r.Header.NodeID, wire.ArgAs[wire.ForgetIn](&r).Nlookup)
		case wire.FUSE_BATCH_FORGET:
			for _, one := range r.ForgetOnes() {
				d.forget(one.NodeID, one.Nlookup)
			}
		}
	}
	return n, nil
}

func (d *fuzzDev) forget(id, n uint64) {
	if id == d.fileID {
		d.lookups -= min(d.lookups, n)
	}
}

// Writev implements Device.
func (d *fuzzDev) Writev(bufs [][]byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var msg []byte
	for _, b := range bufs {
		msg = append(msg, b...)
	}
	t := d.t
	if len(msg) < wire.SizeofOutHeader {
		t.Fatalf("a %d-byte reply", len(msg))
	}
	oh := wire.View[wire.OutHeader](msg)
	if int(oh.Len) != len(msg) || oh.Error > 0 || oh.Error < -wire.MaxErrno || (oh.Error != 0 && len(msg) != wire.SizeofOutHeader) {
		t.Fatalf("malformed reply header %+v for %d bytes", *oh, len(msg))
	}
	op, ok := d.waiting[oh.Unique]
	if !ok {
		t.Fatalf("reply to unique %d, which awaits none", oh.Unique)
	}
	delete(d.waiting, oh.Unique)
	res := d.u8() % writeKinds
	switch res {
	case writeENOENT:
		return 0, syscall.ENOENT
	case writeEINVAL:
		return 0, syscall.EINVAL
	}
	if op == wire.FUSE_LOOKUP && oh.Error == 0 {
		eo := wire.View[wire.EntryOut](msg[wire.SizeofOutHeader:])
		if eo == nil || eo.NodeID <= wire.FUSE_ROOT_ID {
			t.Fatalf("LOOKUP answered %d bytes: %+v", len(msg)-wire.SizeofOutHeader, eo)
		}
		if eo.NodeID != pollHackNodeID {
			if eo.NodeID != d.fileID && d.lookups != 0 {
				t.Fatalf("LOOKUP gave the file node %d while the kernel holds %d lookups of node %d", eo.NodeID, d.lookups, d.fileID)
			}
			d.fileID = eo.NodeID
			d.lookups++
		}
	}
	return len(msg), nil
}

// FuzzServe runs the /dev/fuse channel, with one reader, on a device that
// replays a fuzzed program of messages (INIT, lookups, getattrs, forgets,
// interrupts, raw bytes), each read whole or cut short, with read errors
// the reader must retry and reply writes that fail. Every reply must be
// well formed and answer a request read that awaits one, exactly once;
// Serve must return nil at ENODEV; and the server's lookup count of the
// file must equal the kernel's: replies written minus forgets read.
func FuzzServe(f *testing.F) {
	f.Add([]byte{readWhole, msgInit, writeOK, readWhole, msgLookup, writeOK, readWhole, msgGetattr, 1, writeOK, readWhole, msgForget, 1})
	f.Add([]byte{readWhole, msgInit, writeOK, readWhole, msgLookup, writeENOENT, readWhole, msgLookup, writeOK, readWhole, msgLookup, writeEINVAL, readWhole, msgBatchForget, 1})
	f.Add([]byte{readShort, msgInit, 10, readWhole, msgInit, writeOK, readShort, msgLookup, 41, writeOK, readShort, msgLookup, 39, readEINTR, readEAGAIN, readENOENT, readWhole, msgInterrupt, readWhole, msgRaw, 3, 1, 2, 3, writeOK})
	f.Add([]byte{readWhole, msgGetattr, 0, writeOK, readWhole, msgLookup, writeOK, readWhole, msgInit, writeOK, readWhole, msgLookupMissing, writeOK, readWhole, msgForget, 2})
	f.Fuzz(func(t *testing.T, prog []byte) {
		d := &fuzzDev{t: t, p: prog, waiting: map[uint64]wire.Opcode{}, fileID: noFileID}
		fsys := &hello.FS{Name: "greeting", Data: []byte("hello\n")}
		srv := server.New(fsys, &server.Options{MaxWrite: 8192, ErrorLog: log.New(io.Discard, "", 0)})
		done := make(chan error, 1)
		go func() { done <- Serve(srv, d, &Options{Readers: 1}) }()
		if err := <-done; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if !d.finished {
			t.Fatalf("Serve returned before the device reported ENODEV")
		}
		if len(d.waiting) != 0 {
			t.Fatalf("requests left unanswered: %v", d.waiting)
		}
		if got := srv.Lookups(d.fileID); got != d.lookups {
			t.Fatalf("server holds %d lookups of the file, the kernel %d", got, d.lookups)
		}
	})
}
