package wire

import (
	"errors"
	"strconv"
	"strings"
	"structs"
	"unsafe"
)

// Notifications are messages the server writes to /dev/fuse unasked: a
// fuse_out_header with unique 0 whose error field holds the notify code,
// then the code's struct (and a name or data). The kernel parses them in
// fs/fuse/notify.c (fs/fuse/dev.c before 6.19) and fails the write(2)
// with the notification's result.

// NotifyCode is enum fuse_notify_code: what a notification asks.
type NotifyCode int32

// Notify codes from enum fuse_notify_code.
const (
	FUSE_NOTIFY_POLL        NotifyCode = 1
	FUSE_NOTIFY_INVAL_INODE NotifyCode = 2 // 7.12
	FUSE_NOTIFY_INVAL_ENTRY NotifyCode = 3 // 7.12
	FUSE_NOTIFY_STORE       NotifyCode = 4 // 7.15
	FUSE_NOTIFY_RETRIEVE    NotifyCode = 5 // 7.15
	FUSE_NOTIFY_DELETE      NotifyCode = 6 // 7.18
	FUSE_NOTIFY_RESEND      NotifyCode = 7 // 7.40
	FUSE_NOTIFY_INC_EPOCH   NotifyCode = 8 // 7.44
	FUSE_NOTIFY_PRUNE       NotifyCode = 9 // 7.45
)

// FUSE_EXPIRE_ONLY (fuse_notify_inval_entry_out.flags, 7.38, with
// FUSE_HAS_EXPIRE_ONLY): expire the dentry's timeout instead of dropping
// it, so that a mount on it stays.
const FUSE_EXPIRE_ONLY = 1 << 0

// FUSE_NAME_MAX is the kernel's fc->name_max for /dev/fuse mounts: a
// longer name in INVAL_ENTRY or DELETE fails with ENAMETOOLONG.
const FUSE_NAME_MAX = 1024

// NotifyInvalInodeOut is struct fuse_notify_inval_inode_out (7.12): drop
// the attributes and, from Off, Len bytes of cached data of node Ino. A
// negative Off keeps the data; a Len of 0 or less means to the end.
type NotifyInvalInodeOut struct {
	_   structs.HostLayout
	Ino uint64
	Off int64
	Len int64
}

// NotifyInvalEntryOut is struct fuse_notify_inval_entry_out (7.12), followed
// by a name of Namelen bytes and a NUL: drop the name from directory
// Parent's cache. Flags (7.38) may be FUSE_EXPIRE_ONLY.
type NotifyInvalEntryOut struct {
	_       structs.HostLayout
	Parent  uint64
	Namelen uint32
	Flags   uint32
}

// NotifyDeleteOut is struct fuse_notify_delete_out (7.18), followed by a
// name and a NUL: the name in Parent that named node Child is gone.
type NotifyDeleteOut struct {
	_       structs.HostLayout
	Parent  uint64
	Child   uint64
	Namelen uint32
	_       uint32
}

// NotifyStoreOut is struct fuse_notify_store_out (7.15), followed by Size
// bytes that the kernel puts in node NodeID's page cache at Offset.
type NotifyStoreOut struct {
	_      structs.HostLayout
	NodeID uint64
	Offset uint64
	Size   uint32
	_      uint32
}

// NotifyRetrieveOut is struct fuse_notify_retrieve_out (7.15): send back,
// in a FUSE_NOTIFY_REPLY request whose unique is NotifyUnique, up to Size
// bytes of node NodeID's page cache from Offset.
type NotifyRetrieveOut struct {
	_            structs.HostLayout
	NotifyUnique uint64
	NodeID       uint64
	Offset       uint64
	Size         uint32
	_            uint32
}

// NotifyRetrieveIn is struct fuse_notify_retrieve_in (7.15), the argument
// of FUSE_NOTIFY_REPLY, followed by Size bytes of data. It has the size of
// fuse_write_in.
type NotifyRetrieveIn struct {
	_      structs.HostLayout
	_      uint64 // dummy1
	Offset uint64
	Size   uint32
	_      uint32 // dummy2
	_      uint64 // dummy3
	_      uint64 // dummy4
}

// Sizes of the notify structs, as in the kernel header.
const (
	SizeofNotifyInvalInodeOut = 24
	SizeofNotifyInvalEntryOut = 16
	SizeofNotifyDeleteOut     = 24
	SizeofNotifyStoreOut      = 24
	SizeofNotifyRetrieveOut   = 32
	SizeofNotifyRetrieveIn    = 40

	// MaxNotifyHeader is the most bytes any notification puts before its
	// name or data: a buffer this long holds every header Put writes.
	MaxNotifyHeader = SizeofOutHeader + SizeofNotifyRetrieveOut
)

// Compile-time layout checks, both ways, as in types.go.
var (
	_ [SizeofNotifyInvalInodeOut - unsafe.Sizeof(NotifyInvalInodeOut{})]byte
	_ [unsafe.Sizeof(NotifyInvalInodeOut{}) - SizeofNotifyInvalInodeOut]byte
	_ [SizeofNotifyInvalEntryOut - unsafe.Sizeof(NotifyInvalEntryOut{})]byte
	_ [unsafe.Sizeof(NotifyInvalEntryOut{}) - SizeofNotifyInvalEntryOut]byte
	_ [SizeofNotifyDeleteOut - unsafe.Sizeof(NotifyDeleteOut{})]byte
	_ [unsafe.Sizeof(NotifyDeleteOut{}) - SizeofNotifyDeleteOut]byte
	_ [SizeofNotifyStoreOut - unsafe.Sizeof(NotifyStoreOut{})]byte
	_ [unsafe.Sizeof(NotifyStoreOut{}) - SizeofNotifyStoreOut]byte
	_ [SizeofNotifyRetrieveOut - unsafe.Sizeof(NotifyRetrieveOut{})]byte
	_ [unsafe.Sizeof(NotifyRetrieveOut{}) - SizeofNotifyRetrieveOut]byte
	_ [SizeofNotifyRetrieveIn - unsafe.Sizeof(NotifyRetrieveIn{})]byte
	_ [unsafe.Sizeof(NotifyRetrieveIn{}) - SizeofNotifyRetrieveIn]byte
	_ [SizeofNotifyRetrieveIn - SizeofWriteIn]byte
	_ [SizeofWriteIn - SizeofNotifyRetrieveIn]byte
)

// Encoding errors. The kernel would fail such a notification with EINVAL
// or ENAMETOOLONG; the encoders refuse it before it is written.
var (
	// ErrNameTooLong: a name longer than FUSE_NAME_MAX bytes.
	ErrNameTooLong = errors.New("name longer than FUSE_NAME_MAX")
	// ErrShortBuffer: the buffer cannot hold the notification's header.
	ErrShortBuffer = errors.New("buffer too short for the notification")
	// ErrTooLarge: the notification's data would not fit its 32-bit length.
	ErrTooLarge = errors.New("notification data too large")
)

// CheckName reports whether name can travel in an INVAL_ENTRY or DELETE
// notification: one path component, not empty, without NUL or '/', at
// most FUSE_NAME_MAX bytes. It returns ErrBadName or ErrNameTooLong.
func CheckName(name string) error {
	switch {
	case name == "" || strings.ContainsAny(name, "\x00/"):
		return ErrBadName
	case len(name) > FUSE_NAME_MAX:
		return ErrNameTooLong
	}
	return nil
}

// putNotify writes the out header and arg at the start of b; the message
// is total bytes long, counting what the caller sends after arg.
func putNotify[T any](b []byte, code NotifyCode, arg *T, total int) (int, error) {
	n := SizeofOutHeader + int(unsafe.Sizeof(*arg))
	if len(b) < n {
		return 0, ErrShortBuffer
	}
	if uint64(total) > 1<<32-1 {
		return 0, ErrTooLarge
	}
	h := OutHeader{Len: uint32(total), Error: int32(code)}
	copy(b, AsBytes(&h))
	copy(b[SizeofOutHeader:], AsBytes(arg))
	return n, nil
}

// PutNotifyInvalInode writes a complete FUSE_NOTIFY_INVAL_INODE message at
// the start of b and returns its length.
func PutNotifyInvalInode(b []byte, ino uint64, off, length int64) (int, error) {
	a := NotifyInvalInodeOut{Ino: ino, Off: off, Len: length}
	return putNotify(b, FUSE_NOTIFY_INVAL_INODE, &a, SizeofOutHeader+SizeofNotifyInvalInodeOut)
}

// PutNotifyInvalEntry writes the header of a FUSE_NOTIFY_INVAL_ENTRY
// message at the start of b and returns its length; name and a NUL must
// follow it in the same write.
func PutNotifyInvalEntry(b []byte, parent uint64, name string, flags uint32) (int, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	a := NotifyInvalEntryOut{Parent: parent, Namelen: uint32(len(name)), Flags: flags}
	return putNotify(b, FUSE_NOTIFY_INVAL_ENTRY, &a, SizeofOutHeader+SizeofNotifyInvalEntryOut+len(name)+1)
}

// PutNotifyDelete writes the header of a FUSE_NOTIFY_DELETE message at the
// start of b and returns its length; name and a NUL must follow it in the
// same write.
func PutNotifyDelete(b []byte, parent, child uint64, name string) (int, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	a := NotifyDeleteOut{Parent: parent, Child: child, Namelen: uint32(len(name))}
	return putNotify(b, FUSE_NOTIFY_DELETE, &a, SizeofOutHeader+SizeofNotifyDeleteOut+len(name)+1)
}

// PutNotifyStore writes the header of a FUSE_NOTIFY_STORE message at the
// start of b and returns its length; size bytes of data must follow it in
// the same write.
func PutNotifyStore(b []byte, nodeid, off uint64, size int) (int, error) {
	if size < 0 || uint64(size) > 1<<32-1 {
		return 0, ErrTooLarge
	}
	a := NotifyStoreOut{NodeID: nodeid, Offset: off, Size: uint32(size)}
	return putNotify(b, FUSE_NOTIFY_STORE, &a, SizeofOutHeader+SizeofNotifyStoreOut+size)
}

// PutNotifyRetrieve writes a complete FUSE_NOTIFY_RETRIEVE message at the
// start of b and returns its length.
func PutNotifyRetrieve(b []byte, unique, nodeid, off uint64, size uint32) (int, error) {
	a := NotifyRetrieveOut{NotifyUnique: unique, NodeID: nodeid, Offset: off, Size: size}
	return putNotify(b, FUSE_NOTIFY_RETRIEVE, &a, SizeofOutHeader+SizeofNotifyRetrieveOut)
}

// ParseNotifyReply decodes the body of a FUSE_NOTIFY_REPLY request (r.Data
// of a decoded request: the fuse_notify_retrieve_in and the data after
// it). The results alias r's buffer.
func ParseNotifyReply(r *Request) (*NotifyRetrieveIn, []byte, error) {
	h := &r.Header
	if len(r.Data) < SizeofNotifyRetrieveIn {
		return nil, nil, decodeErr(h, ErrTruncated, "fuse_notify_retrieve_in: "+strconv.Itoa(len(r.Data))+" bytes")
	}
	in := (*NotifyRetrieveIn)(unsafe.Pointer(&r.Data[0]))
	data := r.Data[SizeofNotifyRetrieveIn:]
	switch {
	case uint64(len(data)) < uint64(in.Size):
		return nil, nil, decodeErr(h, ErrTruncated, "retrieved data")
	case uint64(len(data)) > uint64(in.Size):
		return nil, nil, decodeErr(h, ErrOversized, "retrieved data")
	}
	return in, data, nil
}
