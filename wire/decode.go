package wire

import (
	"errors"
	"strconv"
	"unsafe"
)

// Sentinel decode errors. A *DecodeError wraps one of them.
var (
	// ErrTruncated: the message is shorter than its opcode requires.
	ErrTruncated = errors.New("message truncated")
	// ErrOversized: the message carries bytes its opcode does not allow.
	ErrOversized = errors.New("message longer than its opcode allows")
	// ErrBadLength: fuse_in_header.len disagrees with the bytes received.
	ErrBadLength = errors.New("header length does not match message size")
	// ErrBadName: a file name is not NUL-terminated or is empty.
	ErrBadName = errors.New("malformed file name")
	// ErrUnknownOpcode: the opcode is not part of protocol 7.45.
	ErrUnknownOpcode = errors.New("unknown opcode")
)

// DecodeError describes a kernel message that could not be decoded.
type DecodeError struct {
	Opcode Opcode
	Unique uint64
	Err    error // one of the sentinels above
	Detail string
}

func (e *DecodeError) Error() string {
	s := "wire: " + e.Opcode.String() + " (unique " + strconv.FormatUint(e.Unique, 10) + "): " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Conn holds the negotiated facts that change message layouts.
type Conn struct {
	// Minor is the protocol minor agreed at INIT (the smaller of the
	// kernel's and FUSE_KERNEL_MINOR_VERSION).
	Minor uint32
	// SetxattrExt is set when FUSE_SETXATTR_EXT was negotiated, which makes
	// fuse_setxattr_in 16 bytes instead of 8.
	SetxattrExt bool
}

// Request is a decoded kernel message. Its slices alias the buffers it was
// decoded from: they are valid until the channel reuses those buffers.
type Request struct {
	Header InHeader
	// Arg holds the opcode's fixed struct (fuse_xxx_in), exactly as long as
	// the negotiated layout, or empty for opcodes without one.
	Arg []byte
	// Name is the first file name, without its NUL.
	Name []byte
	// Name2 is the second name: the new name of RENAME and RENAME2, the
	// target of SYMLINK.
	Name2 []byte
	// Data is the variable payload: WRITE data, a SETXATTR value, the
	// fuse_forget_one array of BATCH_FORGET.
	Data []byte
}

// ArgSize returns the size of op's fixed struct under c. INIT is special:
// its size depends on the kernel, not on the negotiation, so ArgSize gives
// the oldest accepted size.
func ArgSize(op Opcode, c *Conn) int {
	if op >= OpcodeMax {
		return 0
	}
	if op == FUSE_SETXATTR && (c == nil || !c.SetxattrExt) {
		return FUSE_COMPAT_SETXATTR_IN_SIZE
	}
	return int(opcodes[op].arg)
}

func decodeErr(h *InHeader, err error, detail string) error {
	return &DecodeError{Opcode: h.Opcode, Unique: h.Unique, Err: err, Detail: detail}
}

// ParseHeader copies the fuse_in_header at the start of b into h.
func ParseHeader(b []byte, h *InHeader) error {
	if len(b) < SizeofInHeader {
		return &DecodeError{Err: ErrTruncated, Detail: "short header: " + strconv.Itoa(len(b)) + " bytes"}
	}
	*h = *(*InHeader)(unsafe.Pointer(&b[0]))
	return nil
}

// ParseDev decodes one message read from /dev/fuse into r. msg must be
// exactly the bytes read(2) returned.
func ParseDev(msg []byte, c *Conn, r *Request) error {
	*r = Request{}
	if err := ParseHeader(msg, &r.Header); err != nil {
		return err
	}
	h := &r.Header
	if int(h.Len) != len(msg) {
		return decodeErr(h, ErrBadLength, "len "+strconv.FormatUint(uint64(h.Len), 10)+", read "+strconv.Itoa(len(msg)))
	}
	body := msg[SizeofInHeader:]
	if h.Opcode == FUSE_INIT {
		// INIT grew in 7.36; take whatever the kernel sent, up to our size.
		if len(body) < FUSE_COMPAT_INIT_IN_SIZE {
			return decodeErr(h, ErrTruncated, "")
		}
		r.Arg = body[:min(len(body), SizeofInitIn)]
		return nil
	}
	n := ArgSize(h.Opcode, c)
	if len(body) < n {
		return decodeErr(h, ErrTruncated, "need "+strconv.Itoa(n)+" argument bytes, have "+strconv.Itoa(len(body)))
	}
	return parseBody(r, body[:n], body[n:], c)
}

// ParseRing decodes one request delivered into a ring entry: inOut is the
// entry header's in_out area, opIn its op_in area, payload the first
// payloadSz bytes of the payload buffer.
func ParseRing(inOut, opIn, payload []byte, c *Conn, r *Request) error {
	*r = Request{}
	if err := ParseHeader(inOut, &r.Header); err != nil {
		return err
	}
	h := &r.Header
	opLen := int(h.Len) - SizeofInHeader - len(payload)
	if opLen < 0 || opLen > len(opIn) {
		return decodeErr(h, ErrBadLength, "len "+strconv.FormatUint(uint64(h.Len), 10)+" with payload "+strconv.Itoa(len(payload)))
	}
	if h.Opcode == FUSE_INIT {
		return decodeErr(h, ErrUnknownOpcode, "INIT on the ring")
	}
	n := ArgSize(h.Opcode, c)
	if opLen < n {
		return decodeErr(h, ErrTruncated, "op header "+strconv.Itoa(opLen)+" bytes, need "+strconv.Itoa(n))
	}
	if opLen > n && h.Opcode.Known() && opcodes[h.Opcode].body != bodyAny {
		return decodeErr(h, ErrOversized, "op header "+strconv.Itoa(opLen)+" bytes, expected "+strconv.Itoa(n))
	}
	return parseBody(r, opIn[:n], payload, c)
}

func parseBody(r *Request, arg, rest []byte, c *Conn) error {
	h := &r.Header
	if !h.Opcode.Known() {
		return decodeErr(h, ErrUnknownOpcode, "")
	}
	// Extension headers (7.38) sit at the very end; ringfuse negotiates
	// none, but a kernel may still send them, so strip them.
	if ext := int(h.TotalExtlen) * 8; ext > 0 {
		if ext > len(rest) {
			return decodeErr(h, ErrTruncated, "extension headers")
		}
		rest = rest[:len(rest)-ext]
	}
	r.Arg = arg
	switch opcodes[h.Opcode].body {
	case bodyNone:
		if len(rest) != 0 {
			return decodeErr(h, ErrOversized, strconv.Itoa(len(rest))+" extra bytes")
		}
	case bodyName:
		name, tail, ok := cutName(rest)
		if !ok {
			return decodeErr(h, ErrBadName, "")
		}
		if len(tail) != 0 {
			return decodeErr(h, ErrOversized, "bytes after name")
		}
		r.Name = name
	case bodyTwoNames:
		a, tail, ok := cutName(rest)
		if !ok {
			return decodeErr(h, ErrBadName, "first name")
		}
		b, tail, ok := cutName(tail)
		if !ok {
			return decodeErr(h, ErrBadName, "second name")
		}
		if len(tail) != 0 {
			return decodeErr(h, ErrOversized, "bytes after names")
		}
		r.Name, r.Name2 = a, b
	case bodyWrite:
		w := (*WriteIn)(unsafe.Pointer(&arg[0]))
		if uint64(len(rest)) < uint64(w.Size) {
			return decodeErr(h, ErrTruncated, "write data")
		}
		if uint64(len(rest)) > uint64(w.Size) {
			return decodeErr(h, ErrOversized, "write data")
		}
		r.Data = rest
	case bodySetxattr:
		// Read only size, the first field: arg may be the 8-byte compat
		// layout, too short to view as a whole SetxattrIn.
		size := *(*uint32)(unsafe.Pointer(&arg[0]))
		name, tail, ok := cutName(rest)
		if !ok {
			return decodeErr(h, ErrBadName, "")
		}
		if uint64(len(tail)) != uint64(size) {
			if uint64(len(tail)) < uint64(size) {
				return decodeErr(h, ErrTruncated, "xattr value")
			}
			return decodeErr(h, ErrOversized, "xattr value")
		}
		r.Name, r.Data = name, tail
	case bodyBatchForget:
		b := (*BatchForgetIn)(unsafe.Pointer(&arg[0]))
		want := uint64(b.Count) * SizeofForgetOne
		if uint64(len(rest)) < want {
			return decodeErr(h, ErrTruncated, "count "+strconv.FormatUint(uint64(b.Count), 10)+" beyond payload")
		}
		if uint64(len(rest)) > want {
			return decodeErr(h, ErrOversized, "payload beyond count")
		}
		r.Data = rest
	case bodyAny:
		r.Data = rest
	}
	return nil
}

// cutName splits a NUL-terminated, non-empty name from the front of b.
func cutName(b []byte) (name, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			if i == 0 {
				return nil, nil, false
			}
			return b[:i], b[i+1:], true
		}
	}
	return nil, nil, false
}

// Struct types that Arg may be viewed as.
type argStruct interface {
	ForgetIn | GetattrIn | SetattrIn | MknodIn | MkdirIn | RenameIn | Rename2In |
		LinkIn | OpenIn | CreateIn | ReleaseIn | FlushIn | ReadIn | WriteIn |
		FsyncIn | SetxattrIn | GetxattrIn | LkIn | AccessIn | InitIn |
		InterruptIn | FallocateIn | LseekIn | CopyFileRangeIn | StatxIn |
		BatchForgetIn
}

// ArgAs views r.Arg as the struct T. Fields beyond the received length
// (compat layouts such as the 8-byte fuse_setxattr_in) read as zero. The
// result aliases the request buffer: do not keep it.
func ArgAs[T argStruct](r *Request) *T {
	var t T
	size := int(unsafe.Sizeof(t))
	if len(r.Arg) >= size {
		return (*T)(unsafe.Pointer(&r.Arg[0]))
	}
	// Short compat layout: copy into a scratch value.
	p := new(T)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(p)), size), r.Arg)
	return p
}

// ForgetOnes returns the fuse_forget_one array of a BATCH_FORGET.
func (r *Request) ForgetOnes() []ForgetOne {
	n := len(r.Data) / SizeofForgetOne
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*ForgetOne)(unsafe.Pointer(&r.Data[0])), n)
}
