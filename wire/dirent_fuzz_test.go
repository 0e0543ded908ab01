package wire

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// direntSentinel fills reply buffers, to catch bytes an encoder writes
// beyond the entry it reports.
const direntSentinel = 0xc3

// direntIn is one entry a FuzzDirent input asks to encode.
type direntIn struct {
	name  string
	d     Dirent
	entry EntryOut
}

// decodeDirentInputs cuts data into entries: a length byte, that many
// name bytes, then 8 bytes that seed the numeric fields.
func decodeDirentInputs(data []byte) []direntIn {
	var out []direntIn
	for len(data) > 0 {
		n := int(data[0])
		data = data[1:]
		if n > len(data) {
			n = len(data)
		}
		name := string(data[:n])
		data = data[n:]
		var seed [8]byte
		k := copy(seed[:], data)
		data = data[k:]
		v := binary.LittleEndian.Uint64(seed[:])
		out = append(out, direntIn{
			name:  name,
			d:     Dirent{Ino: v, Off: v ^ 0x5555, Type: uint32(v>>60) & 0xf},
			entry: EntryOut{NodeID: v >> 3, Generation: v, EntryValid: 1, AttrValid: 2, Attr: Attr{Ino: v, Mode: uint32(v)}},
		})
	}
	return out
}

// FuzzDirent encodes entries with PutDirent or PutDirentplus into a buffer
// of fuzzed size until one does not fit, then decodes the buffer as the
// kernel's parse_dirfile and parse_dirplusfile do: every entry written
// must come back with its name and fields, 8-byte aligned, zero padded,
// and no byte past the reported sizes may change. An entry must be
// refused exactly when it does not fit.
func FuzzDirent(f *testing.F) {
	f.Add([]byte("\x01.\x01\x00\x00\x00\x00\x00\x00\x00\x02..\x01\x00\x00\x00\x00\x00\x00\x00\x05hello\xff\xff\xff\xff\xff\xff\xff\xff"), uint16(4096), false)
	f.Add([]byte("\x01.\x01\x00\x00\x00\x00\x00\x00\x00\x02..\x01\x00\x00\x00\x00\x00\x00\x00\x05hello\xff\xff\xff\xff\xff\xff\xff\xff"), uint16(4096), true)
	f.Add([]byte("\x08abcdefgh\x01\x02\x03\x04\x05\x06\x07\x08\x07abcdefg"), uint16(SizeofDirent+8+SizeofDirent+7), false)
	f.Add([]byte("\x08abcdefgh\x01\x02\x03\x04\x05\x06\x07\x08\x07abcdefg"), uint16(SizeofDirentplus+8+SizeofDirentplus+7), true)
	f.Add([]byte("\x00"), uint16(64), false)
	f.Add([]byte("\xffxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), uint16(300), true)
	f.Add([]byte("\x03a\x00b"), uint16(SizeofDirent), false)
	f.Fuzz(func(t *testing.T, data []byte, bufLen uint16, plus bool) {
		ins := decodeDirentInputs(data)
		buf := bytes.Repeat([]byte{direntSentinel}, int(bufLen))
		var written []direntIn
		n := 0
		for _, in := range ins {
			var size, want int
			if plus {
				want = DirentplusSize(len(in.name))
				dp := Direntplus{Entry: in.entry, Dirent: in.d}
				size = PutDirentplus(buf[n:], &dp, in.name)
			} else {
				want = DirentSize(len(in.name))
				d := in.d
				size = PutDirent(buf[n:], &d, in.name)
			}
			if want%8 != 0 || want < len(in.name) {
				t.Fatalf("size %d for a %d-byte name", want, len(in.name))
			}
			if fits := want <= len(buf)-n; (size != 0) != fits || (fits && size != want) {
				t.Fatalf("entry %q: wrote %d bytes, need %d, %d left", in.name, size, want, len(buf)-n)
			}
			if size == 0 {
				break
			}
			n += size
			written = append(written, in)
		}
		for i, b := range buf[n:] {
			if b != direntSentinel {
				t.Fatalf("byte %d past the %d written changed to %#x", n+i, n, b)
			}
		}
		got := parseDirents(t, buf[:n], plus)
		if len(got) != len(written) {
			t.Fatalf("decoded %d entries, wrote %d", len(got), len(written))
		}
		for i, w := range written {
			g := got[i]
			wd := w.d
			wd.Namelen = uint32(len(w.name))
			if g.name != w.name || g.d != wd {
				t.Fatalf("entry %d: decoded %q %+v, wrote %q %+v", i, g.name, g.d, w.name, wd)
			}
			if plus && g.entry != w.entry {
				t.Fatalf("entry %d: decoded entry_out %+v, wrote %+v", i, g.entry, w.entry)
			}
		}
	})
}

// parseDirents decodes a READDIR or READDIRPLUS buffer holding whole
// entries, as the kernel reads it.
func parseDirents(t *testing.T, b []byte, plus bool) []direntIn {
	t.Helper()
	fixed := SizeofDirent
	if plus {
		fixed = SizeofDirentplus
	}
	var out []direntIn
	for len(b) > 0 {
		if len(b) < fixed {
			t.Fatalf("%d trailing bytes", len(b))
		}
		var in direntIn
		if plus {
			dp := View[Direntplus](b)
			in.d, in.entry = dp.Dirent, dp.Entry
		} else {
			in.d = *View[Dirent](b)
		}
		nl := int(in.d.Namelen)
		size := (fixed + nl + 7) &^ 7
		if uint64(in.d.Namelen) > uint64(len(b)) || size > len(b) {
			t.Fatalf("entry of %d bytes (name %d) in %d", size, nl, len(b))
		}
		in.name = string(b[fixed : fixed+nl])
		for _, p := range b[fixed+nl : size] {
			if p != 0 {
				t.Fatalf("entry %q: padding % x", in.name, b[fixed+nl:size])
			}
		}
		out = append(out, in)
		b = b[size:]
	}
	return out
}
