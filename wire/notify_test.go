package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// Offsets and sizes from include/uapi/linux/fuse.h (7.45), as TestLayout.
func TestNotifyLayout(t *testing.T) {
	var (
		ii NotifyInvalInodeOut
		ie NotifyInvalEntryOut
		de NotifyDeleteOut
		st NotifyStoreOut
		ro NotifyRetrieveOut
		ri NotifyRetrieveIn
	)
	type field struct {
		name      string
		got, want uintptr
	}
	tests := []struct {
		name       string
		size, want uintptr
		fields     []field
	}{
		{"fuse_notify_inval_inode_out", unsafe.Sizeof(ii), 24, []field{
			{"ino", unsafe.Offsetof(ii.Ino), 0},
			{"off", unsafe.Offsetof(ii.Off), 8},
			{"len", unsafe.Offsetof(ii.Len), 16},
		}},
		{"fuse_notify_inval_entry_out", unsafe.Sizeof(ie), 16, []field{
			{"parent", unsafe.Offsetof(ie.Parent), 0},
			{"namelen", unsafe.Offsetof(ie.Namelen), 8},
			{"flags", unsafe.Offsetof(ie.Flags), 12},
		}},
		{"fuse_notify_delete_out", unsafe.Sizeof(de), 24, []field{
			{"parent", unsafe.Offsetof(de.Parent), 0},
			{"child", unsafe.Offsetof(de.Child), 8},
			{"namelen", unsafe.Offsetof(de.Namelen), 16},
		}},
		{"fuse_notify_store_out", unsafe.Sizeof(st), 24, []field{
			{"nodeid", unsafe.Offsetof(st.NodeID), 0},
			{"offset", unsafe.Offsetof(st.Offset), 8},
			{"size", unsafe.Offsetof(st.Size), 16},
		}},
		{"fuse_notify_retrieve_out", unsafe.Sizeof(ro), 32, []field{
			{"notify_unique", unsafe.Offsetof(ro.NotifyUnique), 0},
			{"nodeid", unsafe.Offsetof(ro.NodeID), 8},
			{"offset", unsafe.Offsetof(ro.Offset), 16},
			{"size", unsafe.Offsetof(ro.Size), 24},
		}},
		{"fuse_notify_retrieve_in", unsafe.Sizeof(ri), 40, []field{
			{"offset", unsafe.Offsetof(ri.Offset), 8},
			{"size", unsafe.Offsetof(ri.Size), 16},
		}},
	}
	for _, tt := range tests {
		if tt.size != tt.want {
			t.Errorf("%s: size %d, want %d", tt.name, tt.size, tt.want)
		}
		for _, f := range tt.fields {
			if f.got != f.want {
				t.Errorf("%s.%s: offset %d, want %d", tt.name, f.name, f.got, f.want)
			}
		}
	}
	codes := []struct {
		got  NotifyCode
		want int32
	}{
		{FUSE_NOTIFY_POLL, 1}, {FUSE_NOTIFY_INVAL_INODE, 2}, {FUSE_NOTIFY_INVAL_ENTRY, 3},
		{FUSE_NOTIFY_STORE, 4}, {FUSE_NOTIFY_RETRIEVE, 5}, {FUSE_NOTIFY_DELETE, 6},
		{FUSE_NOTIFY_RESEND, 7}, {FUSE_NOTIFY_INC_EPOCH, 8}, {FUSE_NOTIFY_PRUNE, 9},
	}
	for _, c := range codes {
		if int32(c.got) != c.want {
			t.Errorf("notify code %d, want %d", c.got, c.want)
		}
	}
	if FUSE_EXPIRE_ONLY != 1 || FUSE_NAME_MAX != 1024 {
		t.Errorf("FUSE_EXPIRE_ONLY %d, FUSE_NAME_MAX %d", FUSE_EXPIRE_ONLY, FUSE_NAME_MAX)
	}
}

// kernelNotify checks a notification as fs/fuse/notify.c and dev.c do
// before acting on it, and returns its code and struct bytes. It is the
// test's model of the kernel: an encoder's output must pass it.
func kernelNotify(msg []byte) (NotifyCode, []byte, error) {
	if len(msg) < SizeofOutHeader {
		return 0, nil, errors.New("EINVAL: short")
	}
	var h OutHeader
	copy(AsBytes(&h), msg)
	if int(h.Len) != len(msg) {
		return 0, nil, errors.New("EINVAL: oh.len != nbytes")
	}
	if h.Unique != 0 {
		return 0, nil, errors.New("not a notification")
	}
	body := msg[SizeofOutHeader:]
	code := NotifyCode(h.Error)
	exact := func(n int) ([]byte, error) {
		if len(body) != n {
			return nil, errors.New("EINVAL: size")
		}
		return body, nil
	}
	named := func(n int, namelen uint32) ([]byte, error) {
		if len(body) < n {
			return nil, errors.New("EINVAL: size")
		}
		if namelen > FUSE_NAME_MAX {
			return nil, errors.New("ENAMETOOLONG")
		}
		if len(body) != n+int(namelen)+1 {
			return nil, errors.New("EINVAL: size with name")
		}
		return body, nil
	}
	var b []byte
	var err error
	switch code {
	case FUSE_NOTIFY_INVAL_INODE:
		b, err = exact(SizeofNotifyInvalInodeOut)
	case FUSE_NOTIFY_RETRIEVE:
		b, err = exact(SizeofNotifyRetrieveOut)
	case FUSE_NOTIFY_INVAL_ENTRY:
		if len(body) >= SizeofNotifyInvalEntryOut {
			b, err = named(SizeofNotifyInvalEntryOut, View[NotifyInvalEntryOut](body).Namelen)
		} else {
			err = errors.New("EINVAL: size")
		}
	case FUSE_NOTIFY_DELETE:
		if len(body) >= SizeofNotifyDeleteOut {
			b, err = named(SizeofNotifyDeleteOut, View[NotifyDeleteOut](body).Namelen)
		} else {
			err = errors.New("EINVAL: size")
		}
	case FUSE_NOTIFY_STORE:
		if len(body) < SizeofNotifyStoreOut || len(body)-SizeofNotifyStoreOut != int(View[NotifyStoreOut](body).Size) {
			err = errors.New("EINVAL: size")
		}
		b = body
	default:
		err = errors.New("EINVAL: code")
	}
	return code, b, err
}

// aligned returns a copy of b in 8-byte aligned memory, so that tests can
// view it as structs.
func aligned(b []byte) []byte {
	u := make([]uint64, (len(b)+7)/8+1)
	a := unsafe.Slice((*byte)(unsafe.Pointer(&u[0])), len(u)*8)[:len(b)]
	copy(a, b)
	return a
}

func TestNotifyEncoders(t *testing.T) {
	var head [MaxNotifyHeader]byte
	msg := func(n int, rest ...[]byte) []byte {
		return aligned(append(append([]byte(nil), head[:n]...), bytes.Join(rest, nil)...))
	}

	n, err := PutNotifyInvalInode(head[:], 7, -1, 4096)
	if err != nil {
		t.Fatal(err)
	}
	code, b, err := kernelNotify(msg(n))
	if err != nil || code != FUSE_NOTIFY_INVAL_INODE {
		t.Fatalf("INVAL_INODE: code %d, %v", code, err)
	}
	if ii := View[NotifyInvalInodeOut](b); ii.Ino != 7 || ii.Off != -1 || ii.Len != 4096 {
		t.Errorf("INVAL_INODE: %+v", *ii)
	}

	n, err = PutNotifyInvalEntry(head[:], 1, "name", FUSE_EXPIRE_ONLY)
	if err != nil {
		t.Fatal(err)
	}
	code, b, err = kernelNotify(msg(n, []byte("name\x00")))
	if err != nil || code != FUSE_NOTIFY_INVAL_ENTRY {
		t.Fatalf("INVAL_ENTRY: code %d, %v", code, err)
	}
	if ie := View[NotifyInvalEntryOut](b); ie.Parent != 1 || ie.Namelen != 4 || ie.Flags != FUSE_EXPIRE_ONLY ||
		string(b[SizeofNotifyInvalEntryOut:]) != "name\x00" {
		t.Errorf("INVAL_ENTRY: %+v %q", *ie, b[SizeofNotifyInvalEntryOut:])
	}

	n, err = PutNotifyDelete(head[:], 1, 9, "gone")
	if err != nil {
		t.Fatal(err)
	}
	code, b, err = kernelNotify(msg(n, []byte("gone\x00")))
	if err != nil || code != FUSE_NOTIFY_DELETE {
		t.Fatalf("DELETE: code %d, %v", code, err)
	}
	if de := View[NotifyDeleteOut](b); de.Parent != 1 || de.Child != 9 || de.Namelen != 4 {
		t.Errorf("DELETE: %+v", *de)
	}

	n, err = PutNotifyStore(head[:], 5, 4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	code, b, err = kernelNotify(msg(n, []byte("abc")))
	if err != nil || code != FUSE_NOTIFY_STORE {
		t.Fatalf("STORE: code %d, %v", code, err)
	}
	if so := View[NotifyStoreOut](b); so.NodeID != 5 || so.Offset != 4096 || so.Size != 3 {
		t.Errorf("STORE: %+v", *so)
	}

	n, err = PutNotifyRetrieve(head[:], 1<<63|1, 5, 8192, 100)
	if err != nil {
		t.Fatal(err)
	}
	code, b, err = kernelNotify(msg(n))
	if err != nil || code != FUSE_NOTIFY_RETRIEVE {
		t.Fatalf("RETRIEVE: code %d, %v", code, err)
	}
	if ro := View[NotifyRetrieveOut](b); ro.NotifyUnique != 1<<63|1 || ro.NodeID != 5 || ro.Offset != 8192 || ro.Size != 100 {
		t.Errorf("RETRIEVE: %+v", *ro)
	}
}

func TestNotifyEncoderErrors(t *testing.T) {
	var head [MaxNotifyHeader]byte
	for name, want := range map[string]error{
		"": ErrBadName, "a/b": ErrBadName, "a\x00": ErrBadName, "/": ErrBadName,
		strings.Repeat("x", FUSE_NAME_MAX+1): ErrNameTooLong,
	} {
		if _, err := PutNotifyInvalEntry(head[:], 1, name, 0); !errors.Is(err, want) {
			t.Errorf("INVAL_ENTRY %.8q: %v, want %v", name, err, want)
		}
		if _, err := PutNotifyDelete(head[:], 1, 2, name); !errors.Is(err, want) {
			t.Errorf("DELETE %.8q: %v, want %v", name, err, want)
		}
	}
	if _, err := PutNotifyInvalEntry(head[:], 1, strings.Repeat("x", FUSE_NAME_MAX), 0); err != nil {
		t.Errorf("INVAL_ENTRY of a FUSE_NAME_MAX name: %v", err)
	}
	if _, err := PutNotifyStore(head[:], 1, 0, -1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("STORE of -1 bytes: %v", err)
	}
	if _, err := PutNotifyStore(head[:], 1, 0, 1<<32); !errors.Is(err, ErrTooLarge) {
		t.Errorf("STORE of 4 GiB: %v", err)
	}
	short := head[:SizeofOutHeader+SizeofNotifyInvalEntryOut-1]
	if _, err := PutNotifyInvalEntry(short, 1, "x", 0); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("INVAL_ENTRY into a short buffer: %v", err)
	}
	if _, err := PutNotifyRetrieve(head[:SizeofOutHeader+SizeofNotifyRetrieveOut-1], 1, 1, 0, 1); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("RETRIEVE into a short buffer: %v", err)
	}
}

// notifyReply builds the body of a FUSE_NOTIFY_REPLY request.
func notifyReply(off uint64, size uint32, data []byte) []byte {
	in := NotifyRetrieveIn{Offset: off, Size: size}
	return append(append([]byte(nil), AsBytes(&in)...), data...)
}

func TestParseNotifyReply(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"exact", notifyReply(4096, 5, []byte("hello")), nil},
		{"empty", notifyReply(0, 0, nil), nil},
		{"no struct", make([]byte, SizeofNotifyRetrieveIn-1), ErrTruncated},
		{"data short", notifyReply(0, 6, []byte("hello")), ErrTruncated},
		{"data long", notifyReply(0, 4, []byte("hello")), ErrOversized},
		{"huge size", notifyReply(0, 1<<32-1, []byte("x")), ErrTruncated},
	}
	for _, tt := range tests {
		r := Request{Header: InHeader{Opcode: FUSE_NOTIFY_REPLY, Unique: 1 << 63}, Data: aligned(tt.body)}
		in, data, err := ParseNotifyReply(&r)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
			continue
		}
		var de *DecodeError
		if err != nil && !errors.As(err, &de) {
			t.Errorf("%s: %T is not a *DecodeError", tt.name, err)
		}
		if err == nil && (uint64(len(data)) != uint64(in.Size) || !bytes.Equal(data, tt.body[SizeofNotifyRetrieveIn:])) {
			t.Errorf("%s: data %q, size %d", tt.name, data, in.Size)
		}
	}
}

// Through a real /dev/fuse read, NOTIFY_REPLY decodes with its body in
// Data, which ParseNotifyReply takes.
func TestParseNotifyReplyFromDev(t *testing.T) {
	msg := AppendRequest(nil, InHeader{Opcode: FUSE_NOTIFY_REPLY, Unique: 1<<63 | 3, NodeID: 9},
		notifyReply(0, 3, []byte("abc")))
	var r Request
	if err := ParseDev(aligned(msg), nil, &r); err != nil {
		t.Fatal(err)
	}
	in, data, err := ParseNotifyReply(&r)
	if err != nil || in.Size != 3 || string(data) != "abc" {
		t.Fatalf("ParseNotifyReply: %v, %q", err, data)
	}
}

// FuzzNotifyEncode: whatever the arguments, an encoder either refuses
// them or writes a message the kernel's checks accept, with the fields
// given.
func FuzzNotifyEncode(f *testing.F) {
	f.Add(uint64(1), uint64(2), "name", int64(0), int64(0), 3)
	f.Add(uint64(0), uint64(0), "", int64(-1), int64(-5), 0)
	f.Add(uint64(1<<63), uint64(7), "a/b", int64(1<<62), int64(1), 70000)
	f.Add(uint64(3), uint64(4), strings.Repeat("z", FUSE_NAME_MAX+1), int64(5), int64(5), -1)
	f.Fuzz(func(t *testing.T, parent, child uint64, name string, off, length int64, size int) {
		var head [MaxNotifyHeader]byte
		if size > 1<<20 {
			size = 1 << 20 // the data itself is not the encoder's business
		}
		nameErr := CheckName(name)
		check := func(what string, n int, err error, tail []byte, wantErr error) {
			if !errors.Is(err, wantErr) {
				t.Fatalf("%s: %v, want %v", what, err, wantErr)
			}
			if err != nil {
				return
			}
			if _, _, kerr := kernelNotify(aligned(append(append([]byte(nil), head[:n]...), tail...))); kerr != nil {
				t.Fatalf("%s: the kernel would refuse: %v", what, kerr)
			}
		}
		nameTail := append([]byte(name), 0)
		n, err := PutNotifyInvalEntry(head[:], parent, name, 0)
		check("INVAL_ENTRY", n, err, nameTail, nameErr)
		n, err = PutNotifyDelete(head[:], parent, child, name)
		check("DELETE", n, err, nameTail, nameErr)
		n, err = PutNotifyInvalInode(head[:], parent, off, length)
		check("INVAL_INODE", n, err, nil, nil)
		n, err = PutNotifyRetrieve(head[:], child, parent, uint64(off), uint32(length))
		check("RETRIEVE", n, err, nil, nil)
		var storeErr error
		if size < 0 {
			storeErr = ErrTooLarge
		}
		n, err = PutNotifyStore(head[:], parent, uint64(off), size)
		check("STORE", n, err, make([]byte, max(size, 0)), storeErr)
	})
}

// FuzzParseNotifyReply: any body decodes without panicking, and an
// accepted one has exactly Size bytes of data.
func FuzzParseNotifyReply(f *testing.F) {
	f.Add(notifyReply(0, 3, []byte("abc")))
	f.Add(notifyReply(4096, 0, nil))
	f.Add(notifyReply(0, 9, []byte("short")))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, body []byte) {
		r := Request{Header: InHeader{Opcode: FUSE_NOTIFY_REPLY}, Data: aligned(body)}
		in, data, err := ParseNotifyReply(&r)
		if err == nil && uint64(len(data)) != uint64(in.Size) {
			t.Fatalf("accepted %d bytes of data for size %d", len(data), in.Size)
		}
	})
}
