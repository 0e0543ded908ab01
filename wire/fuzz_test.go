package wire

import (
	"bytes"
	"errors"
	"testing"
)

// Opcodes whose body the decoder does not validate (ringfuse answers them
// with ENOSYS): everything after the header is Data.
var opaqueOps = map[Opcode]bool{
	FUSE_BMAP: true, FUSE_IOCTL: true, FUSE_POLL: true, FUSE_NOTIFY_REPLY: true,
	FUSE_SETUPMAPPING: true, FUSE_REMOVEMAPPING: true, FUSE_SYNCFS: true, FUSE_TMPFILE: true,
}

func connFor(ext bool) *Conn {
	if ext {
		return connExt
	}
	return connCompat
}

// devSeeds are valid messages of every opcode under both SETXATTR layouts,
// with and without extension headers, and the malformed table cases.
func devSeeds() (msgs [][]byte, exts []bool) {
	for _, ext := range []bool{false, true} {
		for _, o := range allOpcodes {
			s, _ := validSpec(o.op, connFor(ext))
			msgs, exts = append(msgs, s.dev()), append(exts, ext)
			s.ext = []byte{16, 0, 0, 0, 32, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}
			msgs, exts = append(msgs, s.dev()), append(exts, ext)
		}
	}
	for _, c := range devErrorCases() {
		msgs, exts = append(msgs, c.msg), append(exts, c.conn != nil && c.conn.SetxattrExt)
	}
	return msgs, exts
}

func FuzzParseDev(f *testing.F) {
	msgs, exts := devSeeds()
	for i := range msgs {
		f.Add(msgs[i], exts[i])
	}
	f.Fuzz(func(t *testing.T, msg []byte, ext bool) {
		c := connFor(ext)
		var r Request
		err := ParseDev(msg, c, &r)
		if err != nil {
			checkFuzzErr(t, err)
			return
		}
		if int(r.Header.Len) != len(msg) {
			t.Fatalf("decoded with len %d, read %d", r.Header.Len, len(msg))
		}
		if r.Header != *View[InHeader](msg) {
			t.Fatalf("header %+v differs from the message's", r.Header)
		}
		checkRequest(t, &r, c, false)
	})
}

// FuzzParseRing fuzzes a request laid out as on /dev/fuse, split into a ring
// entry: the first 40 bytes go to in_out, the next opLen (at most 128) to
// op_in, the rest to the payload. in.len is passed through unchanged. A msg
// shorter than the header is passed as a short in_out.
func FuzzParseRing(f *testing.F) {
	for _, ext := range []bool{false, true} {
		for _, o := range allOpcodes {
			s, _ := validSpec(o.op, connFor(ext))
			f.Add(s.dev(), uint8(len(s.arg)), ext)
		}
	}
	for _, c := range ringErrorCases() {
		inOut, opIn, payload := c.ring()
		ext := c.conn != nil && c.conn.SetxattrExt
		if c.inOutLen >= 0 {
			f.Add(inOut, uint8(0), ext)
			continue
		}
		msg := append(append(append([]byte{}, inOut[:SizeofInHeader]...), opIn[:len(c.arg)]...), payload...)
		f.Add(msg, uint8(len(c.arg)), ext)
	}
	f.Fuzz(func(t *testing.T, msg []byte, opLen uint8, ext bool) {
		c := connFor(ext)
		var r Request
		if len(msg) < SizeofInHeader {
			if err := ParseRing(msg, make([]byte, FUSE_URING_OP_IN_OUT_SZ), nil, c, &r); !errors.Is(err, ErrTruncated) {
				t.Fatalf("short in_out: err = %v, want ErrTruncated", err)
			}
			return
		}
		hdr := new(UringReqHeader)
		for i := range hdr.OpIn {
			hdr.OpIn[i] = 0xa5
		}
		copy(hdr.InOut[:], msg[:SizeofInHeader])
		rest := msg[SizeofInHeader:]
		k := min(int(opLen), len(rest), FUSE_URING_OP_IN_OUT_SZ)
		copy(hdr.OpIn[:], rest[:k])
		payload := append([]byte(nil), rest[k:]...) // exact allocation

		err := ParseRing(hdr.InOut[:], hdr.OpIn[:], payload, c, &r)
		if err != nil {
			checkFuzzErr(t, err)
			return
		}
		if r.Header != *View[InHeader](msg) {
			t.Fatalf("header %+v differs from the message's", r.Header)
		}
		if r.Header.Opcode == FUSE_INIT {
			t.Fatal("INIT decoded from a ring entry")
		}
		if n := int(r.Header.Len) - SizeofInHeader - len(payload); n < 0 || n > FUSE_URING_OP_IN_OUT_SZ {
			t.Fatalf("in.len %d inconsistent with payload %d", r.Header.Len, len(payload))
		}
		checkRequest(t, &r, c, true)
	})
}

// checkFuzzErr: every failure is a *DecodeError wrapping a sentinel.
func checkFuzzErr(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("err %T (%v) is not a *DecodeError", err, err)
	}
	for _, s := range []error{ErrTruncated, ErrOversized, ErrBadLength, ErrBadName, ErrUnknownOpcode} {
		if errors.Is(err, s) {
			_ = de.Error()
			return
		}
	}
	t.Fatalf("err %v wraps no sentinel", err)
}

// checkRequest checks the invariants of a successfully decoded request and
// touches every byte it exposes.
func checkRequest(t *testing.T, r *Request, c *Conn, ring bool) {
	t.Helper()
	h := &r.Header
	op := h.Opcode
	if !op.Known() {
		t.Fatalf("decoded unknown opcode %v", op)
	}
	spec, ok := validSpec(op, c)
	if !ok {
		t.Fatalf("decoded %v, which has no valid form", op)
	}

	// The fixed struct has the negotiated size.
	switch {
	case op == FUSE_INIT:
		if len(r.Arg) < 16 || len(r.Arg) > SizeofInitIn {
			t.Fatalf("INIT Arg is %d bytes", len(r.Arg))
		}
	case opaqueOps[op]:
		if len(r.Arg) != 0 {
			t.Fatalf("%v: Arg is %d bytes, want 0", op, len(r.Arg))
		}
	default:
		if len(r.Arg) != ArgSize(op, c) || len(r.Arg) != len(spec.arg) {
			t.Fatalf("%v: Arg is %d bytes, want %d", op, len(r.Arg), len(spec.arg))
		}
	}

	// Names: as many as the opcode carries, non-empty, without NUL.
	for i, name := range [][]byte{r.Name, r.Name2} {
		if i < len(spec.names) {
			if len(name) == 0 || bytes.IndexByte(name, 0) >= 0 {
				t.Fatalf("%v: name %d is %q", op, i, name)
			}
		} else if name != nil {
			t.Fatalf("%v: unexpected name %d %q", op, i, name)
		}
	}

	// Data agrees with the sizes the fixed struct announces.
	switch op {
	case FUSE_WRITE:
		if w := ArgAs[WriteIn](r); uint64(len(r.Data)) != uint64(w.Size) {
			t.Fatalf("WRITE: %d data bytes, size %d", len(r.Data), w.Size)
		}
	case FUSE_SETXATTR:
		if x := ArgAs[SetxattrIn](r); uint64(len(r.Data)) != uint64(x.Size) {
			t.Fatalf("SETXATTR: %d value bytes, size %d", len(r.Data), x.Size)
		}
	case FUSE_BATCH_FORGET:
		n := ArgAs[BatchForgetIn](r).Count
		if uint64(len(r.Data)) != uint64(n)*SizeofForgetOne || uint64(len(r.ForgetOnes())) != uint64(n) {
			t.Fatalf("BATCH_FORGET: count %d, %d data bytes, %d entries", n, len(r.Data), len(r.ForgetOnes()))
		}
		for _, one := range r.ForgetOnes() {
			_ = one.NodeID + one.Nlookup
		}
	default:
		if !opaqueOps[op] && op != FUSE_INIT && len(r.Data) != 0 {
			t.Fatalf("%v: unexpected %d data bytes", op, len(r.Data))
		}
	}

	// Every byte of the message is accounted for.
	used := SizeofInHeader + len(r.Arg) + len(r.Data)
	for _, n := range [][]byte{r.Name, r.Name2} {
		if n != nil {
			used += len(n) + 1
		}
	}
	if op != FUSE_INIT {
		used += 8 * int(h.TotalExtlen)
	}
	switch {
	case op == FUSE_INIT, ring && opaqueOps[op]:
		// INIT may be longer than fuse_init_in; an opaque op's op header
		// is not exposed.
		if used > int(h.Len) {
			t.Fatalf("%v: %d bytes decoded from a %d-byte message", op, used, h.Len)
		}
	default:
		if used != int(h.Len) {
			t.Fatalf("%v: %d bytes decoded from a %d-byte message", op, used, h.Len)
		}
	}

	var sum byte
	for _, b := range [][]byte{r.Arg, r.Name, r.Name2, r.Data} {
		for _, x := range b {
			sum += x
		}
	}
	_ = sum + byte(touchArg(r))
}

// touchArg reads the opcode's fixed struct through ArgAs.
func touchArg(r *Request) uint64 {
	switch r.Header.Opcode {
	case FUSE_FORGET:
		return ArgAs[ForgetIn](r).Nlookup
	case FUSE_GETATTR:
		a := ArgAs[GetattrIn](r)
		return uint64(a.GetattrFlags) + a.Fh
	case FUSE_SETATTR:
		a := ArgAs[SetattrIn](r)
		return uint64(a.Valid) + a.Size + uint64(a.GID)
	case FUSE_MKNOD:
		a := ArgAs[MknodIn](r)
		return uint64(a.Mode + a.Rdev + a.Umask)
	case FUSE_MKDIR:
		a := ArgAs[MkdirIn](r)
		return uint64(a.Mode + a.Umask)
	case FUSE_RENAME:
		return ArgAs[RenameIn](r).Newdir
	case FUSE_RENAME2:
		a := ArgAs[Rename2In](r)
		return a.Newdir + uint64(a.Flags)
	case FUSE_LINK:
		return ArgAs[LinkIn](r).Oldnodeid
	case FUSE_OPEN, FUSE_OPENDIR:
		a := ArgAs[OpenIn](r)
		return uint64(a.Flags + a.OpenFlags)
	case FUSE_READ, FUSE_READDIR, FUSE_READDIRPLUS:
		a := ArgAs[ReadIn](r)
		return a.Fh + a.Offset + uint64(a.Size) + a.LockOwner + uint64(a.Flags)
	case FUSE_WRITE:
		a := ArgAs[WriteIn](r)
		return a.Fh + a.Offset + uint64(a.Size) + uint64(a.Flags)
	case FUSE_RELEASE, FUSE_RELEASEDIR:
		a := ArgAs[ReleaseIn](r)
		return a.Fh + a.LockOwner
	case FUSE_FSYNC, FUSE_FSYNCDIR:
		a := ArgAs[FsyncIn](r)
		return a.Fh + uint64(a.FsyncFlags)
	case FUSE_SETXATTR:
		a := ArgAs[SetxattrIn](r)
		return uint64(a.Size + a.Flags + a.SetxattrFlags)
	case FUSE_GETXATTR, FUSE_LISTXATTR:
		return uint64(ArgAs[GetxattrIn](r).Size)
	case FUSE_FLUSH:
		return ArgAs[FlushIn](r).LockOwner
	case FUSE_INIT:
		a := ArgAs[InitIn](r)
		return uint64(a.Major + a.Minor + a.Flags + a.Flags2)
	case FUSE_GETLK, FUSE_SETLK, FUSE_SETLKW:
		a := ArgAs[LkIn](r)
		return a.Owner + a.Lk.End + uint64(a.LkFlags)
	case FUSE_ACCESS:
		return uint64(ArgAs[AccessIn](r).Mask)
	case FUSE_CREATE:
		a := ArgAs[CreateIn](r)
		return uint64(a.Flags + a.OpenFlags)
	case FUSE_INTERRUPT:
		return ArgAs[InterruptIn](r).Unique
	case FUSE_BATCH_FORGET:
		return uint64(ArgAs[BatchForgetIn](r).Count)
	case FUSE_FALLOCATE:
		a := ArgAs[FallocateIn](r)
		return a.Length + uint64(a.Mode)
	case FUSE_LSEEK:
		a := ArgAs[LseekIn](r)
		return a.Offset + uint64(a.Whence)
	case FUSE_COPY_FILE_RANGE, FUSE_COPY_FILE_RANGE_64:
		a := ArgAs[CopyFileRangeIn](r)
		return a.Len + a.Flags + a.NodeidOut
	case FUSE_STATX:
		a := ArgAs[StatxIn](r)
		return a.Fh + uint64(a.SxMask)
	}
	return 0
}
