package devfuse

import (
	"errors"
	"io"
	"log"
	"syscall"
	"testing"
	"unsafe"

	"github.com/ringfuse/ringfuse/fs/hello"
	"github.com/ringfuse/ringfuse/internal/offheap"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

func TestAlignedAfter(t *testing.T) {
	for _, hdr := range []int{16, 80} {
		for _, n := range []int{8192, 1<<20 + 4096} {
			b := alignedAfter(n, hdr)
			if len(b) != n {
				t.Errorf("len %d, want %d", len(b), n)
			}
			if a := uintptr(unsafe.Pointer(&b[hdr])) % dataAlign; a != 0 {
				t.Errorf("hdr %d: data at %d mod %d", hdr, a, dataAlign)
			}
		}
	}
}

// scriptDev returns its messages in turn, then ENODEV, and accepts every
// reply.
type scriptDev struct{ msgs [][]byte }

func (d *scriptDev) Read(p []byte) (int, error) {
	if len(d.msgs) == 0 {
		return 0, syscall.ENODEV
	}
	n := copy(p, d.msgs[0])
	d.msgs = d.msgs[1:]
	return n, nil
}

func (d *scriptDev) Writev(bufs [][]byte) (int, error) {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n, nil
}

// errDev fails every read with the next of its errors, then with the
// last one for good.
type errDev struct {
	scriptDev
	errs []error
}

func (d *errDev) Read(p []byte) (int, error) {
	err := d.errs[0]
	if len(d.errs) > 1 {
		d.errs = d.errs[1:]
	}
	return 0, err
}

// TestEndOfConnection: ENODEV is an unmount; ECONNABORTED is an abort only
// if the next read says it again, since a read that races an unmount's
// shutdown gets ECONNABORTED once and then ENODEV (fs/fuse/dev.c).
func TestEndOfConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		errs []error
		want error
	}{
		{"unmount", []error{syscall.ENODEV}, nil},
		{"read racing an unmount", []error{syscall.ECONNABORTED, syscall.ENODEV}, nil},
		{"abort", []error{syscall.ECONNABORTED}, ErrAborted},
		{"interrupted, then abort", []error{syscall.EINTR, syscall.ECONNABORTED}, ErrAborted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := server.New(&hello.FS{Name: "f", Data: []byte("x")}, &server.Options{ErrorLog: log.New(io.Discard, "", 0)})
			err := Serve(srv, &errDev{errs: tc.errs}, &Options{Readers: 1})
			if !errors.Is(err, tc.want) {
				t.Errorf("Serve: %v, want %v", err, tc.want)
			}
		})
	}
}

// residentPages counts the pages of b the kernel holds.
func residentPages(t *testing.T, b []byte) int {
	t.Helper()
	n, err := offheap.Resident(b)
	if err != nil {
		t.Fatalf("mincore: %v", err)
	}
	return n
}

// TestForgetStormPages: a reader gives back the pages a large BATCH_FORGET
// touched in its buffer, and keeps those a large WRITE touched.
func TestForgetStormPages(t *testing.T) {
	const forgets = 8000 // 128 KB, as the kernel sends in a storm
	h := wire.InHeader{Opcode: wire.FUSE_BATCH_FORGET, Unique: 2}
	ones := make([]byte, forgets*int(unsafe.Sizeof(wire.ForgetOne{})))
	for i := range ones {
		ones[i] = 0xff // unknown node IDs: the server counts and drops them
	}
	in := wire.BatchForgetIn{Count: forgets}
	batch := wire.AppendRequest(nil, h, wire.AsBytes(&in), ones)
	write := wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_WRITE, Unique: 4, NodeID: 1},
		wire.AsBytes(&wire.WriteIn{Size: 200 << 10}), make([]byte, 200<<10))
	for i := range write[wire.SizeofInHeader:] {
		write[wire.SizeofInHeader+i] = 1 // touched, as the kernel's copy would
	}

	srv := server.New(&hello.FS{Name: "f", Data: []byte("x")}, &server.Options{ErrorLog: log.New(io.Discard, "", 0)})
	initIn := wire.InitIn{Major: 7, Minor: 45, MaxReadahead: 1 << 17}
	init := wire.AppendRequest(nil, wire.InHeader{Opcode: wire.FUSE_INIT, Unique: 1}, wire.AsBytes(&initIn))
	r := newReader(srv, &scriptDev{msgs: [][]byte{init, batch}})
	if err := r.loop(); err != nil {
		t.Fatal(err)
	}
	beyond := r.in[forgetKeep:len(batch)]
	if got := residentPages(t, beyond); got > 1 {
		t.Errorf("%d pages of the buffer beyond %d bytes resident after a %d-byte BATCH_FORGET", got, forgetKeep, len(batch))
	}
	if srv.Stats().ForgetUnknown != forgets {
		t.Errorf("the server saw %d of %d forgets", srv.Stats().ForgetUnknown, forgets)
	}

	r.dev = &scriptDev{msgs: [][]byte{write}}
	if err := r.loop(); err != nil {
		t.Fatal(err)
	}
	if got, want := residentPages(t, r.in[forgetKeep:len(write)]), (len(write)-forgetKeep)/dataAlign-1; got < want {
		t.Errorf("%d pages resident after a WRITE touched %d", got, want)
	}
}
