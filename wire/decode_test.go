package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// msgSpec is one request as the kernel builds it: the opcode's fixed struct
// (in_args[0]), then NUL-terminated names, then variable data, then
// extension headers.
type msgSpec struct {
	op    Opcode
	arg   []byte
	names []string
	data  []byte
	ext   []byte // a multiple of 8 bytes; sets TotalExtlen
}

const testUnique = 0x1234_5678_9abc

func (s msgSpec) header() InHeader {
	return InHeader{
		Opcode: s.op, Unique: testUnique, NodeID: 7,
		UID: 1000, GID: 100, PID: 4242, TotalExtlen: uint16(len(s.ext) / 8),
	}
}

// after returns what follows the fixed struct: names, data, extensions.
func (s msgSpec) after() []byte {
	var b []byte
	for _, n := range s.names {
		b = append(b, CString(n)...)
	}
	b = append(b, s.data...)
	return append(b, s.ext...)
}

// dev encodes s as read(2) on /dev/fuse returns it.
func (s msgSpec) dev() []byte {
	return exact(AppendRequest(nil, s.header(), s.arg, s.after()))
}

// exact copies b into an allocation of exactly len(b) bytes, so that an
// over-long unsafe view of the message is caught by checkptr (-race).
func exact(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

// ring splits s as fuse_uring_args_to_ring does: fuse_in_header in
// in_out[:40], in_args[0] in op_in, everything else in the payload, and
// in.len = 40 + len(arg) + payload_sz. The rest of op_in is left as garbage,
// as the kernel does not clear it.
func (s msgSpec) ring() (inOut, opIn, payload []byte) {
	return ringMsg(s.header(), s.arg, s.after(), -1)
}

// ringMsg fills a ring entry. If hlen >= 0 it overrides in.len.
func ringMsg(h InHeader, arg, after []byte, hlen int) (inOut, opIn, payload []byte) {
	hdr := new(UringReqHeader)
	for i := range hdr.InOut {
		hdr.InOut[i] = 0x5a
	}
	for i := range hdr.OpIn {
		hdr.OpIn[i] = 0xa5
	}
	h.Len = uint32(SizeofInHeader + len(arg) + len(after))
	if hlen >= 0 {
		h.Len = uint32(hlen)
	}
	copy(hdr.InOut[:], AsBytes(&h))
	copy(hdr.OpIn[:], arg)
	buf := make([]byte, 4096)
	hdr.RingEnt.CommitID = h.Unique
	hdr.RingEnt.PayloadSz = uint32(copy(buf, after))
	return hdr.InOut[:], hdr.OpIn[:], buf[:hdr.RingEnt.PayloadSz]
}

func forgetOnes(ones ...ForgetOne) []byte {
	var b []byte
	for i := range ones {
		b = append(b, AsBytes(&ones[i])...)
	}
	return b
}

// validSpec returns a well-formed request for op under c, or false if op is
// not a 7.45 opcode.
func validSpec(op Opcode, c *Conn) (msgSpec, bool) {
	s := msgSpec{op: op}
	switch op {
	case FUSE_LOOKUP, FUSE_UNLINK, FUSE_RMDIR:
		s.names = []string{"file.txt"}
	case FUSE_REMOVEXATTR:
		s.names = []string{"user.comment"}
	case FUSE_FORGET:
		s.arg = AsBytes(&ForgetIn{Nlookup: 3})
	case FUSE_GETATTR:
		s.arg = AsBytes(&GetattrIn{GetattrFlags: FUSE_GETATTR_FH, Fh: 11})
	case FUSE_SETATTR:
		s.arg = AsBytes(&SetattrIn{Valid: FATTR_SIZE | FATTR_MODE, Size: 4096, Mode: 0o644, UID: 1, GID: 2})
	case FUSE_READLINK, FUSE_STATFS, FUSE_DESTROY:
	case FUSE_SYMLINK:
		s.names = []string{"link", "../target/file"}
	case FUSE_MKNOD:
		s.arg = AsBytes(&MknodIn{Mode: 0o10644, Rdev: 0, Umask: 0o22})
		s.names = []string{"fifo"}
	case FUSE_MKDIR:
		s.arg = AsBytes(&MkdirIn{Mode: 0o755, Umask: 0o22})
		s.names = []string{"dir"}
	case FUSE_RENAME:
		s.arg = AsBytes(&RenameIn{Newdir: 9})
		s.names = []string{"old", "new"}
	case FUSE_RENAME2:
		s.arg = AsBytes(&Rename2In{Newdir: 9, Flags: 1})
		s.names = []string{"old", "new"}
	case FUSE_LINK:
		s.arg = AsBytes(&LinkIn{Oldnodeid: 5})
		s.names = []string{"hardlink"}
	case FUSE_OPEN, FUSE_OPENDIR:
		s.arg = AsBytes(&OpenIn{Flags: 2, OpenFlags: FUSE_OPEN_KILL_SUIDGID})
	case FUSE_READ, FUSE_READDIR, FUSE_READDIRPLUS:
		s.arg = AsBytes(&ReadIn{Fh: 3, Offset: 8192, Size: 4096, Flags: 2})
	case FUSE_WRITE:
		s.data = []byte("hello, world")
		s.arg = AsBytes(&WriteIn{Fh: 3, Offset: 100, Size: uint32(len(s.data))})
	case FUSE_RELEASE, FUSE_RELEASEDIR:
		s.arg = AsBytes(&ReleaseIn{Fh: 3, Flags: 2, ReleaseFlags: FUSE_RELEASE_FLUSH, LockOwner: 77})
	case FUSE_FSYNC, FUSE_FSYNCDIR:
		s.arg = AsBytes(&FsyncIn{Fh: 3, FsyncFlags: FUSE_FSYNC_FDATASYNC})
	case FUSE_SETXATTR:
		s.data = []byte("value\x00with\x00nuls")
		s.arg = AsBytes(&SetxattrIn{Size: uint32(len(s.data)), Flags: 1, SetxattrFlags: 0})[:ArgSize(op, c)]
		s.names = []string{"user.key"}
	case FUSE_GETXATTR:
		s.arg = AsBytes(&GetxattrIn{Size: 256})
		s.names = []string{"user.key"}
	case FUSE_LISTXATTR:
		s.arg = AsBytes(&GetxattrIn{Size: 0})
	case FUSE_FLUSH:
		s.arg = AsBytes(&FlushIn{Fh: 3, LockOwner: 77})
	case FUSE_INIT:
		s.arg = AsBytes(&InitIn{Major: 7, Minor: 45, MaxReadahead: 1 << 17,
			Flags: FUSE_ASYNC_READ | FUSE_INIT_EXT, Flags2: FUSE_OVER_IO_URING >> 32})
	case FUSE_GETLK, FUSE_SETLK, FUSE_SETLKW:
		s.arg = AsBytes(&LkIn{Fh: 3, Owner: 77, Lk: FileLock{Start: 0, End: 99, Type: 1, PID: 4242}})
	case FUSE_ACCESS:
		s.arg = AsBytes(&AccessIn{Mask: 4})
	case FUSE_CREATE:
		s.arg = AsBytes(&CreateIn{Flags: 0o100, Mode: 0o644, Umask: 0o22})
		s.names = []string{"new.txt"}
	case FUSE_INTERRUPT:
		s.arg = AsBytes(&InterruptIn{Unique: 42})
	case FUSE_BATCH_FORGET:
		s.arg = AsBytes(&BatchForgetIn{Count: 3})
		s.data = forgetOnes(ForgetOne{NodeID: 2, Nlookup: 1}, ForgetOne{NodeID: 3, Nlookup: 5}, ForgetOne{NodeID: 4, Nlookup: 1 << 40})
	case FUSE_FALLOCATE:
		s.arg = AsBytes(&FallocateIn{Fh: 3, Offset: 1, Length: 2, Mode: 1})
	case FUSE_LSEEK:
		s.arg = AsBytes(&LseekIn{Fh: 3, Offset: 10, Whence: 3})
	case FUSE_COPY_FILE_RANGE, FUSE_COPY_FILE_RANGE_64:
		s.arg = AsBytes(&CopyFileRangeIn{FhIn: 3, OffIn: 1, NodeidOut: 8, FhOut: 4, OffOut: 2, Len: 1 << 33})
	case FUSE_STATX:
		s.arg = AsBytes(&StatxIn{Fh: 3, SxFlags: 0x800, SxMask: 0xfff})
	case FUSE_BMAP, FUSE_IOCTL, FUSE_POLL, FUSE_NOTIFY_REPLY,
		FUSE_SETUPMAPPING, FUSE_REMOVEMAPPING, FUSE_SYNCFS, FUSE_TMPFILE:
		// Not validated (answered with ENOSYS): everything is Data.
		s.data = []byte("opaque\x00bytes\x00\x01\x02")
	default:
		return s, false
	}
	return s, true
}

// checkDecoded compares r with what s encoded.
func checkDecoded(t *testing.T, s msgSpec, r *Request) {
	t.Helper()
	h := s.header()
	if r.Header.Opcode != s.op || r.Header.Unique != h.Unique || r.Header.NodeID != h.NodeID ||
		r.Header.UID != h.UID || r.Header.GID != h.GID || r.Header.PID != h.PID ||
		r.Header.TotalExtlen != h.TotalExtlen {
		t.Errorf("header = %+v, want %+v", r.Header, h)
	}
	if !bytes.Equal(r.Arg, s.arg) || len(r.Arg) != len(s.arg) {
		t.Errorf("Arg = %x (%d bytes), want %x (%d bytes)", r.Arg, len(r.Arg), s.arg, len(s.arg))
	}
	var name, name2 string
	if len(s.names) > 0 {
		name = s.names[0]
	}
	if len(s.names) > 1 {
		name2 = s.names[1]
	}
	if string(r.Name) != name {
		t.Errorf("Name = %q, want %q", r.Name, name)
	}
	if string(r.Name2) != name2 {
		t.Errorf("Name2 = %q, want %q", r.Name2, name2)
	}
	if !bytes.Equal(r.Data, s.data) {
		t.Errorf("Data = %q, want %q", r.Data, s.data)
	}
}

// checkErr checks that err wraps want in a *DecodeError naming op.
func checkErr(t *testing.T, err, want error, op Opcode) {
	t.Helper()
	if err == nil {
		t.Fatalf("decoded without error, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("err = %T, want *DecodeError", err)
	}
	if de.Opcode != op {
		t.Errorf("DecodeError.Opcode = %v, want %v", de.Opcode, op)
	}
	if op != 0 && de.Unique != testUnique {
		t.Errorf("DecodeError.Unique = %#x, want %#x", de.Unique, uint64(testUnique))
	}
	if !strings.HasPrefix(de.Error(), "wire: ") {
		t.Errorf("Error() = %q, want a wire: prefix", de.Error())
	}
}

var (
	connCompat = &Conn{Minor: 45}
	connExt    = &Conn{Minor: 45, SetxattrExt: true}
)

func TestParseDevValid(t *testing.T) {
	for _, c := range []*Conn{connCompat, connExt, nil} {
		for _, o := range allOpcodes {
			s, ok := validSpec(o.op, c)
			if !ok {
				t.Errorf("no valid message for %v", o.op)
				continue
			}
			name := o.name
			if c != nil && c.SetxattrExt {
				name += "/setxattr_ext"
			}
			t.Run(name, func(t *testing.T) {
				var r Request
				if err := ParseDev(s.dev(), c, &r); err != nil {
					t.Fatalf("ParseDev: %v", err)
				}
				checkDecoded(t, s, &r)
			})
		}
	}
}

// TestArgSizeMatchesKernel checks the per-op fixed struct sizes the decoder
// expects against the sizes the kernel sends (the validSpec table).
func TestArgSizeMatchesKernel(t *testing.T) {
	for _, c := range []*Conn{connCompat, connExt} {
		for _, o := range allOpcodes {
			s, _ := validSpec(o.op, c)
			if o.op == FUSE_INIT {
				if got := ArgSize(o.op, c); got != 16 {
					t.Errorf("ArgSize(INIT) = %d, want the pre-7.36 16", got)
				}
				continue
			}
			if got := ArgSize(o.op, c); got != len(s.arg) {
				t.Errorf("ArgSize(%v, ext=%v) = %d, want %d", o.op, c.SetxattrExt, got, len(s.arg))
			}
		}
	}
	if got := ArgSize(CUSE_INIT, nil); got != 0 {
		t.Errorf("ArgSize(CUSE_INIT) = %d", got)
	}
}

func TestParseDevArgAs(t *testing.T) {
	var r Request
	s, _ := validSpec(FUSE_WRITE, connCompat)
	if err := ParseDev(s.dev(), connCompat, &r); err != nil {
		t.Fatal(err)
	}
	if w := ArgAs[WriteIn](&r); w.Fh != 3 || w.Offset != 100 || int(w.Size) != len(r.Data) {
		t.Errorf("WriteIn = %+v", *w)
	}

	s, _ = validSpec(FUSE_BATCH_FORGET, connCompat)
	if err := ParseDev(s.dev(), connCompat, &r); err != nil {
		t.Fatal(err)
	}
	ones := r.ForgetOnes()
	if n := ArgAs[BatchForgetIn](&r).Count; int(n) != len(ones) || n != 3 {
		t.Fatalf("count %d, %d ForgetOnes", n, len(ones))
	}
	if ones[0] != (ForgetOne{NodeID: 2, Nlookup: 1}) || ones[2] != (ForgetOne{NodeID: 4, Nlookup: 1 << 40}) {
		t.Errorf("ForgetOnes = %+v", ones)
	}

	// The 8-byte compat fuse_setxattr_in reads its missing fields as zero.
	s, _ = validSpec(FUSE_SETXATTR, connCompat)
	msg := s.dev()
	if err := ParseDev(msg, connCompat, &r); err != nil {
		t.Fatal(err)
	}
	if x := ArgAs[SetxattrIn](&r); int(x.Size) != len(r.Data) || x.Flags != 1 || x.SetxattrFlags != 0 {
		t.Errorf("compat SetxattrIn = %+v", *x)
	}
	s, _ = validSpec(FUSE_SETXATTR, connExt)
	s.arg = AsBytes(&SetxattrIn{Size: uint32(len(s.data)), Flags: 2, SetxattrFlags: FUSE_SETXATTR_ACL_KILL_SGID})
	if err := ParseDev(s.dev(), connExt, &r); err != nil {
		t.Fatal(err)
	}
	if x := ArgAs[SetxattrIn](&r); x.Flags != 2 || x.SetxattrFlags != FUSE_SETXATTR_ACL_KILL_SGID {
		t.Errorf("SetxattrIn = %+v", *x)
	}
}

func TestParseDevInit(t *testing.T) {
	full := AsBytes(&InitIn{Major: 7, Minor: 45, MaxReadahead: 65536, Flags: FUSE_INIT_EXT, Flags2: 1 << 9})
	tests := []struct {
		name    string
		body    []byte
		wantArg int
		err     error
	}{
		{"empty", nil, 0, ErrTruncated},
		{"15 bytes", full[:15], 0, ErrTruncated},
		{"16 bytes (before 7.36)", full[:16], 16, nil},
		{"64 bytes", full, 64, nil},
		{"longer than fuse_init_in", append(append([]byte{}, full...), make([]byte, 16)...), 64, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			err := ParseDev(AppendRequest(nil, msgSpec{op: FUSE_INIT}.header(), tt.body), nil, &r)
			if tt.err != nil {
				checkErr(t, err, tt.err, FUSE_INIT)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Arg) != tt.wantArg {
				t.Fatalf("len(Arg) = %d, want %d", len(r.Arg), tt.wantArg)
			}
			in := ArgAs[InitIn](&r)
			if in.Major != 7 || in.Minor != 45 || in.MaxReadahead != 65536 || in.Flags != FUSE_INIT_EXT {
				t.Errorf("InitIn = %+v", *in)
			}
			wantFlags2 := uint32(1 << 9)
			if tt.wantArg < 20 {
				wantFlags2 = 0 // not sent: reads as zero
			}
			if in.Flags2 != wantFlags2 {
				t.Errorf("Flags2 = %#x, want %#x", in.Flags2, wantFlags2)
			}
		})
	}
}

func setLen(msg []byte, n uint32) []byte {
	View[InHeader](msg).Len = n
	return msg
}

func dev(op Opcode, parts ...[]byte) []byte {
	return exact(AppendRequest(nil, msgSpec{op: op}.header(), parts...))
}

// TestParseDevSetxattrCompatTight decodes a SETXATTR whose 8-byte compat
// struct ends the allocation. The decoder once viewed it as the 16-byte
// SetxattrIn, which checkptr (-race) reports as straddling allocations.
func TestParseDevSetxattrCompatTight(t *testing.T) {
	for _, n := range []int{0, 8, 24} { // 48, 56, 72-byte messages
		msg := make([]byte, SizeofInHeader+FUSE_COMPAT_SETXATTR_IN_SIZE+n)
		h := msgSpec{op: FUSE_SETXATTR}.header()
		h.Len = uint32(len(msg))
		copy(msg, AsBytes(&h))
		var r Request
		checkErr(t, ParseDev(msg, connCompat, &r), ErrBadName, FUSE_SETXATTR)
	}
}

// devCase is a malformed /dev/fuse message and the error it must give.
type devCase struct {
	name string
	msg  []byte
	conn *Conn
	op   Opcode // expected DecodeError.Opcode
	err  error
}

func devErrorCases() []devCase {
	getattr := AsBytes(&GetattrIn{Fh: 1})
	read := AsBytes(&ReadIn{Size: 10})
	write := func(size uint32) []byte { return AsBytes(&WriteIn{Size: size}) }
	rename := AsBytes(&RenameIn{Newdir: 1})
	mkdir := AsBytes(&MkdirIn{Mode: 0o755})
	sxCompat := func(size uint32) []byte { return AsBytes(&SetxattrIn{Size: size})[:8] }
	sxExt := func(size uint32) []byte { return AsBytes(&SetxattrIn{Size: size}) }
	batch := func(n uint32) []byte { return AsBytes(&BatchForgetIn{Count: n}) }
	one := forgetOnes(ForgetOne{NodeID: 2, Nlookup: 1})
	lookupExt := func(ext uint16, body []byte) []byte {
		h := msgSpec{op: FUSE_LOOKUP}.header()
		h.TotalExtlen = ext
		return AppendRequest(nil, h, body)
	}

	return []devCase{
		{"header/empty", nil, nil, 0, ErrTruncated},
		{"header/39 bytes", dev(FUSE_STATFS)[:39], nil, 0, ErrTruncated},
		{"header/len greater than read", func() []byte { m := dev(FUSE_GETATTR, getattr); return m[:len(m)-1] }(), nil, FUSE_GETATTR, ErrBadLength},
		{"header/len less than read", append(dev(FUSE_GETATTR, getattr), 0), nil, FUSE_GETATTR, ErrBadLength},
		{"header/len zero", setLen(dev(FUSE_STATFS), 0), nil, FUSE_STATFS, ErrBadLength},
		{"header/len max", setLen(dev(FUSE_STATFS), ^uint32(0)), nil, FUSE_STATFS, ErrBadLength},

		{"GETATTR/struct truncated", dev(FUSE_GETATTR, getattr[:8]), nil, FUSE_GETATTR, ErrTruncated},
		{"GETATTR/no struct", dev(FUSE_GETATTR), nil, FUSE_GETATTR, ErrTruncated},
		{"READ/struct one byte short", dev(FUSE_READ, read[:39]), nil, FUSE_READ, ErrTruncated},
		{"SETATTR/struct truncated", dev(FUSE_SETATTR, make([]byte, 80)), nil, FUSE_SETATTR, ErrTruncated},
		{"GETATTR/extra byte", dev(FUSE_GETATTR, getattr, []byte{0}), nil, FUSE_GETATTR, ErrOversized},
		{"READ/extra bytes", dev(FUSE_READ, read, make([]byte, 8)), nil, FUSE_READ, ErrOversized},
		{"FORGET/extra bytes", dev(FUSE_FORGET, make([]byte, 16)), nil, FUSE_FORGET, ErrOversized},
		{"INTERRUPT/extra bytes", dev(FUSE_INTERRUPT, make([]byte, 9)), nil, FUSE_INTERRUPT, ErrOversized},
		{"STATFS/extra byte", dev(FUSE_STATFS, []byte{1}), nil, FUSE_STATFS, ErrOversized},
		{"DESTROY/extra bytes", dev(FUSE_DESTROY, make([]byte, 8)), nil, FUSE_DESTROY, ErrOversized},

		{"LOOKUP/no name", dev(FUSE_LOOKUP), nil, FUSE_LOOKUP, ErrBadName},
		{"LOOKUP/name without NUL", dev(FUSE_LOOKUP, []byte("abc")), nil, FUSE_LOOKUP, ErrBadName},
		{"LOOKUP/empty name", dev(FUSE_LOOKUP, []byte{0}), nil, FUSE_LOOKUP, ErrBadName},
		{"LOOKUP/bytes after name", dev(FUSE_LOOKUP, []byte("a\x00b")), nil, FUSE_LOOKUP, ErrOversized},
		{"LOOKUP/two names", dev(FUSE_LOOKUP, CString("a"), CString("b")), nil, FUSE_LOOKUP, ErrOversized},
		{"UNLINK/empty name", dev(FUSE_UNLINK, []byte{0, 0}), nil, FUSE_UNLINK, ErrBadName},
		{"MKDIR/struct truncated", dev(FUSE_MKDIR, mkdir[:4]), nil, FUSE_MKDIR, ErrTruncated},
		{"MKDIR/name without NUL", dev(FUSE_MKDIR, mkdir, []byte("d")), nil, FUSE_MKDIR, ErrBadName},
		{"CREATE/empty name", dev(FUSE_CREATE, AsBytes(&CreateIn{}), []byte{0}), nil, FUSE_CREATE, ErrBadName},
		{"GETXATTR/no name", dev(FUSE_GETXATTR, AsBytes(&GetxattrIn{})), nil, FUSE_GETXATTR, ErrBadName},

		{"RENAME/missing second name", dev(FUSE_RENAME, rename, CString("old")), nil, FUSE_RENAME, ErrBadName},
		{"RENAME/second name without NUL", dev(FUSE_RENAME, rename, CString("old"), []byte("new")), nil, FUSE_RENAME, ErrBadName},
		{"RENAME/empty second name", dev(FUSE_RENAME, rename, CString("old"), []byte{0}), nil, FUSE_RENAME, ErrBadName},
		{"RENAME/empty first name", dev(FUSE_RENAME, rename, []byte{0}, CString("new")), nil, FUSE_RENAME, ErrBadName},
		{"RENAME/bytes after names", dev(FUSE_RENAME, rename, CString("old"), CString("new"), []byte{1}), nil, FUSE_RENAME, ErrOversized},
		{"RENAME2/missing second name", dev(FUSE_RENAME2, AsBytes(&Rename2In{}), CString("old")), nil, FUSE_RENAME2, ErrBadName},
		{"SYMLINK/missing target", dev(FUSE_SYMLINK, CString("link")), nil, FUSE_SYMLINK, ErrBadName},
		{"SYMLINK/no names", dev(FUSE_SYMLINK), nil, FUSE_SYMLINK, ErrBadName},

		{"WRITE/struct truncated", dev(FUSE_WRITE, write(0)[:24]), nil, FUSE_WRITE, ErrTruncated},
		{"WRITE/data shorter than size", dev(FUSE_WRITE, write(10), make([]byte, 9)), nil, FUSE_WRITE, ErrTruncated},
		{"WRITE/data longer than size", dev(FUSE_WRITE, write(10), make([]byte, 11)), nil, FUSE_WRITE, ErrOversized},
		{"WRITE/size 0 with data", dev(FUSE_WRITE, write(0), []byte{1}), nil, FUSE_WRITE, ErrOversized},
		{"WRITE/size max without data", dev(FUSE_WRITE, write(^uint32(0))), nil, FUSE_WRITE, ErrTruncated},

		{"SETXATTR/value shorter than size", dev(FUSE_SETXATTR, sxCompat(4), CString("user.a"), []byte("abc")), connCompat, FUSE_SETXATTR, ErrTruncated},
		{"SETXATTR/value longer than size", dev(FUSE_SETXATTR, sxCompat(2), CString("user.a"), []byte("abc")), connCompat, FUSE_SETXATTR, ErrOversized},
		{"SETXATTR/ext value shorter than size", dev(FUSE_SETXATTR, sxExt(4), CString("user.a"), []byte("abc")), connExt, FUSE_SETXATTR, ErrTruncated},
		{"SETXATTR/ext value longer than size", dev(FUSE_SETXATTR, sxExt(0), CString("user.a"), []byte("abc")), connExt, FUSE_SETXATTR, ErrOversized},
		{"SETXATTR/name without NUL", dev(FUSE_SETXATTR, sxCompat(0), []byte("user.a")), connCompat, FUSE_SETXATTR, ErrBadName},
		{"SETXATTR/empty name", dev(FUSE_SETXATTR, sxCompat(1), []byte{0, 'v'}), connCompat, FUSE_SETXATTR, ErrBadName},
		{"SETXATTR/compat struct truncated", dev(FUSE_SETXATTR, make([]byte, 7)), connCompat, FUSE_SETXATTR, ErrTruncated},
		// A 16-byte struct where the 8-byte one was negotiated: the
		// zero setxattr_flags reads as an empty name.
		{"SETXATTR/16-byte struct without SETXATTR_EXT", dev(FUSE_SETXATTR, sxExt(1), CString("user.a"), []byte("v")), connCompat, FUSE_SETXATTR, ErrBadName},
		{"SETXATTR/8-byte struct with SETXATTR_EXT", dev(FUSE_SETXATTR, sxCompat(0), CString("a")), connExt, FUSE_SETXATTR, ErrTruncated},
		{"SETXATTR/nil Conn is compat", dev(FUSE_SETXATTR, sxExt(1), CString("user.a"), []byte("v")), nil, FUSE_SETXATTR, ErrBadName},

		{"BATCH_FORGET/count beyond payload", dev(FUSE_BATCH_FORGET, batch(2), one), nil, FUSE_BATCH_FORGET, ErrTruncated},
		{"BATCH_FORGET/count max", dev(FUSE_BATCH_FORGET, batch(^uint32(0)), one), nil, FUSE_BATCH_FORGET, ErrTruncated},
		{"BATCH_FORGET/payload beyond count", dev(FUSE_BATCH_FORGET, batch(1), one, one), nil, FUSE_BATCH_FORGET, ErrOversized},
		{"BATCH_FORGET/partial entry", dev(FUSE_BATCH_FORGET, batch(1), one, make([]byte, 8)), nil, FUSE_BATCH_FORGET, ErrOversized},
		{"BATCH_FORGET/struct truncated", dev(FUSE_BATCH_FORGET, batch(0)[:4]), nil, FUSE_BATCH_FORGET, ErrTruncated},

		{"unknown/0", dev(0), nil, 0, ErrUnknownOpcode},
		{"unknown/7", dev(7, make([]byte, 16)), nil, 7, ErrUnknownOpcode},
		{"unknown/19", dev(19), nil, 19, ErrUnknownOpcode},
		{"unknown/54", dev(OpcodeMax, make([]byte, 8)), nil, OpcodeMax, ErrUnknownOpcode},
		{"unknown/CUSE_INIT", dev(CUSE_INIT, make([]byte, 16)), nil, CUSE_INIT, ErrUnknownOpcode},
		{"unknown/max", dev(^Opcode(0)), nil, ^Opcode(0), ErrUnknownOpcode},

		{"extlen/larger than body", lookupExt(1, CString("a")), nil, FUSE_LOOKUP, ErrTruncated},
		{"extlen/max", lookupExt(^uint16(0), CString("name")), nil, FUSE_LOOKUP, ErrTruncated},
		{"extlen/covers the name", lookupExt(1, append(CString("name"), 1, 2, 3)), nil, FUSE_LOOKUP, ErrBadName},
		{"extlen/larger than WRITE data", func() []byte {
			h := msgSpec{op: FUSE_WRITE}.header()
			h.TotalExtlen = 2
			return AppendRequest(nil, h, write(8), make([]byte, 8))
		}(), nil, FUSE_WRITE, ErrTruncated},

		{"INIT/shorter than 16 bytes", dev(FUSE_INIT, make([]byte, 12)), nil, FUSE_INIT, ErrTruncated},
	}
}

func TestParseDevErrors(t *testing.T) {
	for _, tt := range devErrorCases() {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			checkErr(t, ParseDev(tt.msg, tt.conn, &r), tt.err, tt.op)
		})
	}
}

// TestParseDevExtensions checks that extension headers (7.38) are cut off
// the end of the message before the body is parsed.
func TestParseDevExtensions(t *testing.T) {
	ext := make([]byte, 16)
	for i := range ext {
		ext[i] = byte(i + 1) // no NUL: must not be read as part of a name
	}
	for _, op := range []Opcode{FUSE_LOOKUP, FUSE_MKNOD, FUSE_MKDIR, FUSE_CREATE, FUSE_SYMLINK, FUSE_RENAME2, FUSE_WRITE, FUSE_SETXATTR, FUSE_GETATTR} {
		t.Run(op.String(), func(t *testing.T) {
			s, _ := validSpec(op, connCompat)
			s.ext = ext
			var r Request
			if err := ParseDev(s.dev(), connCompat, &r); err != nil {
				t.Fatal(err)
			}
			checkDecoded(t, s, &r)
			inOut, opIn, payload := s.ring()
			if err := ParseRing(inOut, opIn, payload, connCompat, &r); err != nil {
				t.Fatal(err)
			}
			checkDecoded(t, s, &r)
		})
	}
}

func TestParseRingValid(t *testing.T) {
	for _, c := range []*Conn{connCompat, connExt} {
		for _, o := range allOpcodes {
			s, _ := validSpec(o.op, c)
			name := o.name
			if c.SetxattrExt {
				name += "/setxattr_ext"
			}
			t.Run(name, func(t *testing.T) {
				inOut, opIn, payload := s.ring()
				var r Request
				err := ParseRing(inOut, opIn, payload, c, &r)
				if o.op == FUSE_INIT {
					// INIT only ever comes on /dev/fuse.
					checkErr(t, err, ErrUnknownOpcode, FUSE_INIT)
					return
				}
				if err != nil {
					t.Fatalf("ParseRing: %v", err)
				}
				checkDecoded(t, s, &r)
				if len(r.Arg) > 0 && &r.Arg[0] != &opIn[0] {
					t.Error("Arg does not alias op_in")
				}
				if len(r.Data) > 0 && &r.Data[len(r.Data)-1] != &payload[len(payload)-1] {
					t.Error("Data does not alias the payload")
				}
			})
		}
	}
}

// ringCase is a malformed ring entry and the error it must give. Its
// in_out area is cut to inOutLen bytes when that is >= 0.
type ringCase struct {
	name     string
	h        InHeader
	arg      []byte // goes to op_in
	after    []byte // goes to the payload
	hlen     int    // overrides in.len when >= 0
	inOutLen int
	conn     *Conn
	op       Opcode
	err      error
}

func (c ringCase) ring() (inOut, opIn, payload []byte) {
	inOut, opIn, payload = ringMsg(c.h, c.arg, c.after, c.hlen)
	if c.inOutLen >= 0 {
		inOut = inOut[:c.inOutLen]
	}
	return inOut, opIn, payload
}

func ringErrorCases() []ringCase {
	hdr := func(op Opcode, extlen uint16) InHeader {
		h := msgSpec{op: op}.header()
		h.TotalExtlen = extlen
		return h
	}
	getattr := AsBytes(&GetattrIn{Fh: 1})
	write := func(size uint32) []byte { return AsBytes(&WriteIn{Size: size}) }
	mk := func(name string, h InHeader, arg, after []byte, hlen int, conn *Conn, err error) ringCase {
		return ringCase{name, h, arg, after, hlen, -1, conn, h.Opcode, err}
	}
	return []ringCase{
		{"in_out/shorter than fuse_in_header", hdr(FUSE_STATFS, 0), nil, nil, -1, SizeofInHeader - 1, nil, 0, ErrTruncated},
		{"in_out/empty", hdr(FUSE_STATFS, 0), nil, nil, -1, 0, nil, 0, ErrTruncated},

		mk("op header/longer than fuse_getattr_in", hdr(FUSE_GETATTR, 0), append(getattr, make([]byte, 8)...), nil, -1, nil, ErrOversized),
		mk("op header/one byte too long", hdr(FUSE_READ, 0), make([]byte, SizeofReadIn+1), nil, -1, nil, ErrOversized),
		mk("op header/present for LOOKUP", hdr(FUSE_LOOKUP, 0), make([]byte, 8), CString("a"), -1, nil, ErrOversized),
		mk("op header/16-byte setxattr without SETXATTR_EXT", hdr(FUSE_SETXATTR, 0), AsBytes(&SetxattrIn{Size: 1}), append(CString("user.a"), 'v'), -1, connCompat, ErrOversized),
		mk("op header/shorter than fuse_getattr_in", hdr(FUSE_GETATTR, 0), getattr[:8], nil, -1, nil, ErrTruncated),
		mk("op header/missing for READ", hdr(FUSE_READ, 0), nil, nil, -1, nil, ErrTruncated),
		mk("op header/8-byte setxattr with SETXATTR_EXT", hdr(FUSE_SETXATTR, 0), AsBytes(&SetxattrIn{Size: 1})[:8], append(CString("user.a"), 'v'), -1, connExt, ErrTruncated),

		mk("len/below header+payload", hdr(FUSE_LOOKUP, 0), nil, CString("name"), SizeofInHeader+4, nil, ErrBadLength),
		mk("len/zero", hdr(FUSE_GETATTR, 0), getattr, nil, 0, nil, ErrBadLength),
		mk("len/op header beyond op_in", hdr(FUSE_GETATTR, 0), getattr, nil, SizeofInHeader+FUSE_URING_OP_IN_OUT_SZ+1, nil, ErrBadLength),
		mk("len/max", hdr(FUSE_GETATTR, 0), getattr, nil, int(^uint32(0)), nil, ErrBadLength),

		mk("body/WRITE data shorter", hdr(FUSE_WRITE, 0), write(5), []byte("abcd"), -1, nil, ErrTruncated),
		mk("body/WRITE data longer", hdr(FUSE_WRITE, 0), write(3), []byte("abcd"), -1, nil, ErrOversized),
		mk("body/LOOKUP name without NUL", hdr(FUSE_LOOKUP, 0), nil, []byte("name"), -1, nil, ErrBadName),
		mk("body/LOOKUP empty payload", hdr(FUSE_LOOKUP, 0), nil, nil, -1, nil, ErrBadName),
		mk("body/RENAME missing second name", hdr(FUSE_RENAME, 0), AsBytes(&RenameIn{}), CString("old"), -1, nil, ErrBadName),
		mk("body/GETATTR payload present", hdr(FUSE_GETATTR, 0), getattr, []byte{0}, -1, nil, ErrOversized),
		mk("body/BATCH_FORGET count beyond payload", hdr(FUSE_BATCH_FORGET, 0), AsBytes(&BatchForgetIn{Count: 2}), forgetOnes(ForgetOne{}), -1, nil, ErrTruncated),
		mk("body/SETXATTR value longer", hdr(FUSE_SETXATTR, 0), AsBytes(&SetxattrIn{Size: 0})[:8], append(CString("user.a"), 'v'), -1, connCompat, ErrOversized),
		mk("body/extlen larger than payload", hdr(FUSE_LOOKUP, 1), nil, CString("a"), -1, nil, ErrTruncated),

		mk("opcode/INIT", hdr(FUSE_INIT, 0), AsBytes(&InitIn{Major: 7}), nil, -1, nil, ErrUnknownOpcode),
		mk("opcode/7", hdr(7, 0), nil, nil, -1, nil, ErrUnknownOpcode),
		mk("opcode/7 with op header", hdr(7, 0), make([]byte, 8), nil, -1, nil, ErrUnknownOpcode),
		// Opcodes >= OpcodeMax with an op header once indexed past the
		// layouts table and panicked.
		mk("opcode/54 with op header", hdr(OpcodeMax, 0), make([]byte, 8), nil, -1, nil, ErrUnknownOpcode),
		mk("opcode/CUSE_INIT with op header", hdr(CUSE_INIT, 0), make([]byte, 16), nil, -1, nil, ErrUnknownOpcode),
		mk("opcode/max with op header", hdr(^Opcode(0), 0), make([]byte, 128), make([]byte, 10), -1, nil, ErrUnknownOpcode),
	}
}

func TestParseRingErrors(t *testing.T) {
	for _, tt := range ringErrorCases() {
		t.Run(tt.name, func(t *testing.T) {
			inOut, opIn, payload := tt.ring()
			var r Request
			checkErr(t, ParseRing(inOut, opIn, payload, tt.conn, &r), tt.err, tt.op)
		})
	}
}

// TestParseRingOpaqueOpHeader: opcodes ringfuse answers with ENOSYS accept
// an op header of any size that fits op_in.
func TestParseRingOpaqueOpHeader(t *testing.T) {
	h := msgSpec{op: FUSE_IOCTL}.header()
	inOut, opIn, payload := ringMsg(h, make([]byte, 32), []byte("in data"), -1)
	var r Request
	if err := ParseRing(inOut, opIn, payload, nil, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Arg) != 0 || string(r.Data) != "in data" {
		t.Errorf("Arg %x, Data %q", r.Arg, r.Data)
	}
}

// TestDecodeNoAllocs: decoding a request and viewing its struct is on every
// request's path and must not allocate.
func TestDecodeNoAllocs(t *testing.T) {
	var r Request
	for _, op := range []Opcode{FUSE_READ, FUSE_LOOKUP} {
		s, _ := validSpec(op, connCompat)
		msg := s.dev()
		inOut, opIn, payload := s.ring()
		t.Run(op.String(), func(t *testing.T) {
			var sink uint64
			devAllocs := testing.AllocsPerRun(100, func() {
				if err := ParseDev(msg, connCompat, &r); err != nil {
					t.Fatal(err)
				}
				if op == FUSE_READ {
					sink += uint64(ArgAs[ReadIn](&r).Size)
				} else {
					sink += uint64(len(r.Name))
				}
			})
			ringAllocs := testing.AllocsPerRun(100, func() {
				if err := ParseRing(inOut, opIn, payload, connCompat, &r); err != nil {
					t.Fatal(err)
				}
				if op == FUSE_READ {
					sink += uint64(ArgAs[ReadIn](&r).Size)
				} else {
					sink += uint64(len(r.Name))
				}
			})
			if devAllocs != 0 || ringAllocs != 0 {
				t.Errorf("allocs per decode: ParseDev %v, ParseRing %v; want 0", devAllocs, ringAllocs)
			}
			if sink == 0 {
				t.Error("decoded nothing")
			}
		})
	}
}
