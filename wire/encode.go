package wire

import "unsafe"

// AsBytes views an ABI struct as its bytes, without copying.
func AsBytes[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// Put copies v into b at offset 0 and returns the number of bytes written,
// or 0 if b is too short.
func Put[T any](b []byte, v *T) int {
	n := int(unsafe.Sizeof(*v))
	if len(b) < n {
		return 0
	}
	copy(b, AsBytes(v))
	return n
}

// View returns b viewed as *T, or nil if b is too short. The result aliases
// b.
func View[T any](b []byte) *T {
	var t T
	if len(b) < int(unsafe.Sizeof(t)) {
		return nil
	}
	return (*T)(unsafe.Pointer(&b[0]))
}

// AppendRequest appends a complete /dev/fuse request to dst: h (whose Len
// is set here), then each part as given. Names must include their NUL.
// Tests, fuzz seeds and the kernel model build messages with it.
func AppendRequest(dst []byte, h InHeader, parts ...[]byte) []byte {
	n := SizeofInHeader
	for _, p := range parts {
		n += len(p)
	}
	h.Len = uint32(n)
	dst = append(dst, AsBytes(&h)...)
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return dst
}

// CString returns s as a NUL-terminated byte slice.
func CString(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}

// DirentSize is the space one fuse_dirent with a name of n bytes takes.
func DirentSize(n int) int { return (SizeofDirent + n + 7) &^ 7 }

// DirentplusSize is the space one fuse_direntplus with a name of n bytes
// takes.
func DirentplusSize(n int) int { return (SizeofDirentplus + n + 7) &^ 7 }

// PutDirent writes one fuse_dirent at the start of b and returns its size,
// or 0 if b is too short.
func PutDirent(b []byte, d *Dirent, name string) int {
	size := DirentSize(len(name))
	if len(b) < size {
		return 0
	}
	d.Namelen = uint32(len(name))
	copy(b, AsBytes(d))
	copy(b[SizeofDirent:], name)
	clear(b[SizeofDirent+len(name) : size])
	return size
}

// PutDirentplus writes one fuse_direntplus at the start of b and returns its
// size, or 0 if b is too short.
func PutDirentplus(b []byte, d *Direntplus, name string) int {
	size := DirentplusSize(len(name))
	if len(b) < size {
		return 0
	}
	d.Dirent.Namelen = uint32(len(name))
	copy(b, AsBytes(d))
	copy(b[SizeofDirentplus:], name)
	clear(b[SizeofDirentplus+len(name) : size])
	return size
}
