package wire

import (
	"bytes"
	"strings"
	"testing"
)

func fill(n int, v byte) []byte { return bytes.Repeat([]byte{v}, n) }

func TestPutDirent(t *testing.T) {
	for n := 0; n <= 17; n++ {
		name := strings.Repeat("x", n)
		want := (SizeofDirent + n + 7) &^ 7 // FUSE_DIRENT_SIZE
		if got := DirentSize(n); got != want {
			t.Errorf("DirentSize(%d) = %d, want %d", n, got, want)
		}
		if want%8 != 0 {
			t.Fatalf("size %d not 8-byte aligned", want)
		}
		b := fill(want+8, 0xff)
		d := Dirent{Ino: 42, Off: 7, Type: 4}
		if got := PutDirent(b, &d, name); got != want {
			t.Fatalf("PutDirent(%q) = %d, want %d", name, got, want)
		}
		v := View[Dirent](b)
		if v.Ino != 42 || v.Off != 7 || v.Type != 4 || v.Namelen != uint32(n) {
			t.Errorf("%q: dirent = %+v", name, *v)
		}
		if got := string(b[SizeofDirent : SizeofDirent+n]); got != name { // FUSE_NAME_OFFSET
			t.Errorf("name = %q, want %q", got, name)
		}
		if pad := b[SizeofDirent+n : want]; !bytes.Equal(pad, make([]byte, len(pad))) {
			t.Errorf("%q: padding %x not zeroed", name, pad)
		}
		if !bytes.Equal(b[want:], fill(8, 0xff)) {
			t.Errorf("%q: wrote past its size", name)
		}

		// One byte short: nothing written.
		short := fill(want-1, 0xee)
		if got := PutDirent(short, &d, name); got != 0 {
			t.Errorf("PutDirent into %d bytes = %d, want 0", len(short), got)
		}
		if !bytes.Equal(short, fill(want-1, 0xee)) {
			t.Errorf("PutDirent into a short buffer changed it")
		}
	}
	if got := PutDirent(nil, &Dirent{}, "a"); got != 0 {
		t.Errorf("PutDirent(nil) = %d", got)
	}
}

func TestPutDirentplus(t *testing.T) {
	for n := 0; n <= 17; n++ {
		name := strings.Repeat("y", n)
		want := (SizeofDirentplus + n + 7) &^ 7 // FUSE_DIRENTPLUS_SIZE
		if got := DirentplusSize(n); got != want {
			t.Errorf("DirentplusSize(%d) = %d, want %d", n, got, want)
		}
		if want%8 != 0 {
			t.Fatalf("size %d not 8-byte aligned", want)
		}
		b := fill(want+8, 0xff)
		d := Direntplus{
			Entry:  EntryOut{NodeID: 42, Generation: 1, Attr: Attr{Ino: 42, Mode: 0o100644}},
			Dirent: Dirent{Ino: 42, Off: 9, Type: 8},
		}
		if got := PutDirentplus(b, &d, name); got != want {
			t.Fatalf("PutDirentplus(%q) = %d, want %d", name, got, want)
		}
		v := View[Direntplus](b)
		if v.Entry.NodeID != 42 || v.Entry.Attr.Mode != 0o100644 || v.Dirent.Off != 9 ||
			v.Dirent.Type != 8 || v.Dirent.Namelen != uint32(n) {
			t.Errorf("%q: direntplus = %+v", name, *v)
		}
		// The dirent follows the entry_out at 128 and the name at 152
		// (FUSE_NAME_OFFSET_DIRENTPLUS).
		if got := View[Dirent](b[SizeofEntryOut:]); got.Namelen != uint32(n) || got.Ino != 42 {
			t.Errorf("%q: dirent at %d = %+v", name, SizeofEntryOut, *got)
		}
		if got := string(b[SizeofDirentplus : SizeofDirentplus+n]); got != name {
			t.Errorf("name = %q, want %q", got, name)
		}
		if pad := b[SizeofDirentplus+n : want]; !bytes.Equal(pad, make([]byte, len(pad))) {
			t.Errorf("%q: padding %x not zeroed", name, pad)
		}
		if !bytes.Equal(b[want:], fill(8, 0xff)) {
			t.Errorf("%q: wrote past its size", name)
		}

		short := fill(want-1, 0xee)
		if got := PutDirentplus(short, &d, name); got != 0 {
			t.Errorf("PutDirentplus into %d bytes = %d, want 0", len(short), got)
		}
		if !bytes.Equal(short, fill(want-1, 0xee)) {
			t.Errorf("PutDirentplus into a short buffer changed it")
		}
	}
}

// TestPutDirentSequence packs several entries back to back, as a READDIR
// reply does, and walks them with FUSE_DIRENT_SIZE.
func TestPutDirentSequence(t *testing.T) {
	names := []string{".", "..", "a", "longer-name.txt", "12345678"}
	buf := make([]byte, 256)
	off := 0
	for i, name := range names {
		n := PutDirent(buf[off:], &Dirent{Ino: uint64(i + 1), Off: uint64(i + 1)}, name)
		if n == 0 {
			t.Fatalf("no room for %q at %d", name, off)
		}
		off += n
	}
	for i, p := 0, 0; p < off; i++ {
		d := View[Dirent](buf[p:])
		if got := string(buf[p+SizeofDirent : p+SizeofDirent+int(d.Namelen)]); got != names[i] || d.Ino != uint64(i+1) {
			t.Errorf("entry %d: ino %d name %q, want %q", i, d.Ino, got, names[i])
		}
		p += (SizeofDirent + int(d.Namelen) + 7) &^ 7
	}
	// A full buffer refuses the next entry.
	if n := PutDirent(buf[off:], &Dirent{}, strings.Repeat("z", 256)); n != 0 {
		t.Errorf("PutDirent past the end = %d", n)
	}
}

func TestEncodeHelpers(t *testing.T) {
	if got := CString("abc"); !bytes.Equal(got, []byte("abc\x00")) {
		t.Errorf("CString = %q", got)
	}
	if got := CString(""); !bytes.Equal(got, []byte{0}) {
		t.Errorf("CString(\"\") = %q", got)
	}

	h := InHeader{Len: 999, Opcode: FUSE_LOOKUP, Unique: 5}
	msg := AppendRequest([]byte("prefix"), h, CString("a"), nil, []byte("bc"))
	if !bytes.HasPrefix(msg, []byte("prefix")) {
		t.Fatal("AppendRequest dropped dst")
	}
	msg = msg[len("prefix"):]
	got := View[InHeader](msg)
	if got.Len != uint32(len(msg)) || got.Len != SizeofInHeader+4 || got.Opcode != FUSE_LOOKUP || got.Unique != 5 {
		t.Errorf("header = %+v", *got)
	}
	if string(msg[SizeofInHeader:]) != "a\x00bc" {
		t.Errorf("body = %q", msg[SizeofInHeader:])
	}

	out := OutHeader{Len: 16, Error: -2, Unique: 9}
	b := make([]byte, 20)
	if n := Put(b, &out); n != SizeofOutHeader || *View[OutHeader](b) != out {
		t.Errorf("Put/View round trip: n=%d %+v", n, *View[OutHeader](b))
	}
	if n := Put(b[:15], &out); n != 0 {
		t.Errorf("Put into 15 bytes = %d", n)
	}
	if v := View[OutHeader](b[:15]); v != nil {
		t.Error("View of a short buffer is not nil")
	}
	if len(AsBytes(&out)) != SizeofOutHeader {
		t.Error("AsBytes length")
	}
}
