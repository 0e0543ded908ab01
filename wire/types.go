package wire

import (
	"structs"
	"unsafe"
)

// InHeader is struct fuse_in_header: the first 40 bytes of every request.
type InHeader struct {
	_      structs.HostLayout
	Len    uint32
	Opcode Opcode
	Unique uint64
	NodeID uint64
	UID    uint32
	GID    uint32
	PID    uint32
	// TotalExtlen is the length of extension headers at the end of the
	// request, in units of 8 bytes (7.38).
	TotalExtlen uint16
	_           uint16
}

// OutHeader is struct fuse_out_header: the first 16 bytes of every reply.
type OutHeader struct {
	_      structs.HostLayout
	Len    uint32
	Error  int32
	Unique uint64
}

// Attr is struct fuse_attr.
type Attr struct {
	_         structs.HostLayout
	Ino       uint64
	Size      uint64
	Blocks    uint64
	Atime     uint64
	Mtime     uint64
	Ctime     uint64
	Atimensec uint32
	Mtimensec uint32
	Ctimensec uint32
	Mode      uint32
	Nlink     uint32
	UID       uint32
	GID       uint32
	Rdev      uint32
	Blksize   uint32
	Flags     uint32
}

// EntryOut is struct fuse_entry_out, the reply to LOOKUP, MKNOD, MKDIR,
// SYMLINK, LINK and (with OpenOut) CREATE.
type EntryOut struct {
	_              structs.HostLayout
	NodeID         uint64
	Generation     uint64
	EntryValid     uint64
	AttrValid      uint64
	EntryValidNsec uint32
	AttrValidNsec  uint32
	Attr           Attr
}

// ForgetIn is struct fuse_forget_in.
type ForgetIn struct {
	_       structs.HostLayout
	Nlookup uint64
}

// ForgetOne is struct fuse_forget_one, one element of a BATCH_FORGET.
type ForgetOne struct {
	_       structs.HostLayout
	NodeID  uint64
	Nlookup uint64
}

// BatchForgetIn is struct fuse_batch_forget_in; Count ForgetOne follow it.
type BatchForgetIn struct {
	_     structs.HostLayout
	Count uint32
	_     uint32
}

// GetattrIn is struct fuse_getattr_in (7.9).
type GetattrIn struct {
	_            structs.HostLayout
	GetattrFlags uint32
	_            uint32
	Fh           uint64
}

// AttrOut is struct fuse_attr_out, the reply to GETATTR and SETATTR.
type AttrOut struct {
	_             structs.HostLayout
	AttrValid     uint64
	AttrValidNsec uint32
	_             uint32
	Attr          Attr
}

// SxTime is struct fuse_sx_time.
type SxTime struct {
	_    structs.HostLayout
	Sec  int64
	Nsec uint32
	_    int32
}

// Statx is struct fuse_statx.
type Statx struct {
	_              structs.HostLayout
	Mask           uint32
	Blksize        uint32
	Attributes     uint64
	Nlink          uint32
	UID            uint32
	GID            uint32
	Mode           uint16
	_              uint16
	Ino            uint64
	Size           uint64
	Blocks         uint64
	AttributesMask uint64
	Atime          SxTime
	Btime          SxTime
	Ctime          SxTime
	Mtime          SxTime
	RdevMajor      uint32
	RdevMinor      uint32
	DevMajor       uint32
	DevMinor       uint32
	_              [14]uint64
}

// StatxIn is struct fuse_statx_in (7.39).
type StatxIn struct {
	_            structs.HostLayout
	GetattrFlags uint32
	_            uint32
	Fh           uint64
	SxFlags      uint32
	SxMask       uint32
}

// StatxOut is struct fuse_statx_out (7.39).
type StatxOut struct {
	_             structs.HostLayout
	AttrValid     uint64
	AttrValidNsec uint32
	Flags         uint32
	_             [2]uint64
	Stat          Statx
}

// MknodIn is struct fuse_mknod_in (umask since 7.12).
type MknodIn struct {
	_     structs.HostLayout
	Mode  uint32
	Rdev  uint32
	Umask uint32
	_     uint32
}

// MkdirIn is struct fuse_mkdir_in.
type MkdirIn struct {
	_     structs.HostLayout
	Mode  uint32
	Umask uint32
}

// RenameIn is struct fuse_rename_in.
type RenameIn struct {
	_      structs.HostLayout
	Newdir uint64
}

// Rename2In is struct fuse_rename2_in (7.23).
type Rename2In struct {
	_      structs.HostLayout
	Newdir uint64
	Flags  uint32
	_      uint32
}

// LinkIn is struct fuse_link_in.
type LinkIn struct {
	_         structs.HostLayout
	Oldnodeid uint64
}

// SetattrIn is struct fuse_setattr_in.
type SetattrIn struct {
	_         structs.HostLayout
	Valid     uint32
	_         uint32
	Fh        uint64
	Size      uint64
	LockOwner uint64
	Atime     uint64
	Mtime     uint64
	Ctime     uint64
	Atimensec uint32
	Mtimensec uint32
	Ctimensec uint32
	Mode      uint32
	_         uint32
	UID       uint32
	GID       uint32
	_         uint32
}

// OpenIn is struct fuse_open_in, for OPEN and OPENDIR.
type OpenIn struct {
	_         structs.HostLayout
	Flags     uint32
	OpenFlags uint32
}

// CreateIn is struct fuse_create_in.
type CreateIn struct {
	_         structs.HostLayout
	Flags     uint32
	Mode      uint32
	Umask     uint32
	OpenFlags uint32
}

// OpenOut is struct fuse_open_out.
type OpenOut struct {
	_         structs.HostLayout
	Fh        uint64
	OpenFlags uint32
	BackingID int32
}

// ReleaseIn is struct fuse_release_in, for RELEASE and RELEASEDIR.
type ReleaseIn struct {
	_            structs.HostLayout
	Fh           uint64
	Flags        uint32
	ReleaseFlags uint32
	LockOwner    uint64
}

// FlushIn is struct fuse_flush_in.
type FlushIn struct {
	_         structs.HostLayout
	Fh        uint64
	_         uint32
	_         uint32
	LockOwner uint64
}

// ReadIn is struct fuse_read_in, for READ, READDIR and READDIRPLUS.
type ReadIn struct {
	_         structs.HostLayout
	Fh        uint64
	Offset    uint64
	Size      uint32
	ReadFlags uint32
	LockOwner uint64
	Flags     uint32
	_         uint32
}

// WriteIn is struct fuse_write_in; Size bytes of data follow it.
type WriteIn struct {
	_          structs.HostLayout
	Fh         uint64
	Offset     uint64
	Size       uint32
	WriteFlags uint32
	LockOwner  uint64
	Flags      uint32
	_          uint32
}

// WriteOut is struct fuse_write_out.
type WriteOut struct {
	_    structs.HostLayout
	Size uint32
	_    uint32
}

// Kstatfs is struct fuse_kstatfs.
type Kstatfs struct {
	_       structs.HostLayout
	Blocks  uint64
	Bfree   uint64
	Bavail  uint64
	Files   uint64
	Ffree   uint64
	Bsize   uint32
	Namelen uint32
	Frsize  uint32
	_       uint32
	_       [6]uint32
}

// StatfsOut is struct fuse_statfs_out.
type StatfsOut struct {
	_  structs.HostLayout
	St Kstatfs
}

// FsyncIn is struct fuse_fsync_in, for FSYNC and FSYNCDIR.
type FsyncIn struct {
	_          structs.HostLayout
	Fh         uint64
	FsyncFlags uint32
	_          uint32
}

// SetxattrIn is struct fuse_setxattr_in. Without FUSE_SETXATTR_EXT the
// kernel sends only the first FUSE_COMPAT_SETXATTR_IN_SIZE bytes.
type SetxattrIn struct {
	_             structs.HostLayout
	Size          uint32
	Flags         uint32
	SetxattrFlags uint32
	_             uint32
}

// GetxattrIn is struct fuse_getxattr_in, for GETXATTR and LISTXATTR.
type GetxattrIn struct {
	_    structs.HostLayout
	Size uint32
	_    uint32
}

// GetxattrOut is struct fuse_getxattr_out: the size answer to a size query.
type GetxattrOut struct {
	_    structs.HostLayout
	Size uint32
	_    uint32
}

// FileLock is struct fuse_file_lock.
type FileLock struct {
	_     structs.HostLayout
	Start uint64
	End   uint64
	Type  uint32
	PID   uint32
}

// LkIn is struct fuse_lk_in, for GETLK, SETLK and SETLKW.
type LkIn struct {
	_       structs.HostLayout
	Fh      uint64
	Owner   uint64
	Lk      FileLock
	LkFlags uint32
	_       uint32
}

// LkOut is struct fuse_lk_out.
type LkOut struct {
	_  structs.HostLayout
	Lk FileLock
}

// AccessIn is struct fuse_access_in.
type AccessIn struct {
	_    structs.HostLayout
	Mask uint32
	_    uint32
}

// InitIn is struct fuse_init_in. Kernels before 7.36 send only the first
// FUSE_COMPAT_INIT_IN_SIZE bytes.
type InitIn struct {
	_            structs.HostLayout
	Major        uint32
	Minor        uint32
	MaxReadahead uint32
	Flags        uint32
	Flags2       uint32
	_            [11]uint32
}

// InitOut is struct fuse_init_out. Kernels before 7.23 read only the first
// FUSE_COMPAT_22_INIT_OUT_SIZE bytes.
type InitOut struct {
	_                   structs.HostLayout
	Major               uint32
	Minor               uint32
	MaxReadahead        uint32
	Flags               uint32
	MaxBackground       uint16
	CongestionThreshold uint16
	MaxWrite            uint32
	TimeGran            uint32
	MaxPages            uint16
	MapAlignment        uint16
	Flags2              uint32
	MaxStackDepth       uint32
	RequestTimeout      uint16
	_                   [11]uint16
}

// InterruptIn is struct fuse_interrupt_in.
type InterruptIn struct {
	_      structs.HostLayout
	Unique uint64
}

// FallocateIn is struct fuse_fallocate_in.
type FallocateIn struct {
	_      structs.HostLayout
	Fh     uint64
	Offset uint64
	Length uint64
	Mode   uint32
	_      uint32
}

// LseekIn is struct fuse_lseek_in.
type LseekIn struct {
	_      structs.HostLayout
	Fh     uint64
	Offset uint64
	Whence uint32
	_      uint32
}

// LseekOut is struct fuse_lseek_out.
type LseekOut struct {
	_      structs.HostLayout
	Offset uint64
}

// CopyFileRangeIn is struct fuse_copy_file_range_in.
type CopyFileRangeIn struct {
	_         structs.HostLayout
	FhIn      uint64
	OffIn     uint64
	NodeidOut uint64
	FhOut     uint64
	OffOut    uint64
	Len       uint64
	Flags     uint64
}

// CopyFileRangeOut is struct fuse_copy_file_range_out (7.45), the reply to
// FUSE_COPY_FILE_RANGE_64.
type CopyFileRangeOut struct {
	_           structs.HostLayout
	BytesCopied uint64
}

// Dirent is struct fuse_dirent without its name; the name follows, padded
// to a multiple of 8 bytes.
type Dirent struct {
	_       structs.HostLayout
	Ino     uint64
	Off     uint64
	Namelen uint32
	Type    uint32
}

// Direntplus is struct fuse_direntplus without its name.
type Direntplus struct {
	_      structs.HostLayout
	Entry  EntryOut
	Dirent Dirent
}

// Sizes of the ABI structs, as in the kernel header.
const (
	SizeofInHeader         = 40
	SizeofOutHeader        = 16
	SizeofAttr             = 88
	SizeofEntryOut         = 128
	SizeofForgetIn         = 8
	SizeofForgetOne        = 16
	SizeofBatchForgetIn    = 8
	SizeofGetattrIn        = 16
	SizeofAttrOut          = 104
	SizeofSxTime           = 16
	SizeofStatx            = 256
	SizeofStatxIn          = 24
	SizeofStatxOut         = 288
	SizeofMknodIn          = 16
	SizeofMkdirIn          = 8
	SizeofRenameIn         = 8
	SizeofRename2In        = 16
	SizeofLinkIn           = 8
	SizeofSetattrIn        = 88
	SizeofOpenIn           = 8
	SizeofCreateIn         = 16
	SizeofOpenOut          = 16
	SizeofReleaseIn        = 24
	SizeofFlushIn          = 24
	SizeofReadIn           = 40
	SizeofWriteIn          = 40
	SizeofWriteOut         = 8
	SizeofKstatfs          = 80
	SizeofStatfsOut        = 80
	SizeofFsyncIn          = 16
	SizeofSetxattrIn       = 16
	SizeofGetxattrIn       = 8
	SizeofGetxattrOut      = 8
	SizeofFileLock         = 24
	SizeofLkIn             = 48
	SizeofLkOut            = 24
	SizeofAccessIn         = 8
	SizeofInitIn           = 64
	SizeofInitOut          = 64
	SizeofInterruptIn      = 8
	SizeofFallocateIn      = 32
	SizeofLseekIn          = 24
	SizeofLseekOut         = 8
	SizeofCopyFileRangeIn  = 56
	SizeofCopyFileRangeOut = 8
	SizeofDirent           = 24
	SizeofDirentplus       = 152
)

// Compile-time layout checks: each line fails to build if the Go struct is
// larger, and its mirror if it is smaller, than the kernel's.
var (
	_ [SizeofInHeader - unsafe.Sizeof(InHeader{})]byte
	_ [unsafe.Sizeof(InHeader{}) - SizeofInHeader]byte
	_ [SizeofOutHeader - unsafe.Sizeof(OutHeader{})]byte
	_ [unsafe.Sizeof(OutHeader{}) - SizeofOutHeader]byte
	_ [SizeofAttr - unsafe.Sizeof(Attr{})]byte
	_ [unsafe.Sizeof(Attr{}) - SizeofAttr]byte
	_ [SizeofEntryOut - unsafe.Sizeof(EntryOut{})]byte
	_ [unsafe.Sizeof(EntryOut{}) - SizeofEntryOut]byte
	_ [SizeofForgetIn - unsafe.Sizeof(ForgetIn{})]byte
	_ [unsafe.Sizeof(ForgetIn{}) - SizeofForgetIn]byte
	_ [SizeofForgetOne - unsafe.Sizeof(ForgetOne{})]byte
	_ [unsafe.Sizeof(ForgetOne{}) - SizeofForgetOne]byte
	_ [SizeofBatchForgetIn - unsafe.Sizeof(BatchForgetIn{})]byte
	_ [unsafe.Sizeof(BatchForgetIn{}) - SizeofBatchForgetIn]byte
	_ [SizeofGetattrIn - unsafe.Sizeof(GetattrIn{})]byte
	_ [unsafe.Sizeof(GetattrIn{}) - SizeofGetattrIn]byte
	_ [SizeofAttrOut - unsafe.Sizeof(AttrOut{})]byte
	_ [unsafe.Sizeof(AttrOut{}) - SizeofAttrOut]byte
	_ [SizeofSxTime - unsafe.Sizeof(SxTime{})]byte
	_ [unsafe.Sizeof(SxTime{}) - SizeofSxTime]byte
	_ [SizeofStatx - unsafe.Sizeof(Statx{})]byte
	_ [unsafe.Sizeof(Statx{}) - SizeofStatx]byte
	_ [SizeofStatxIn - unsafe.Sizeof(StatxIn{})]byte
	_ [unsafe.Sizeof(StatxIn{}) - SizeofStatxIn]byte
	_ [SizeofStatxOut - unsafe.Sizeof(StatxOut{})]byte
	_ [unsafe.Sizeof(StatxOut{}) - SizeofStatxOut]byte
	_ [SizeofMknodIn - unsafe.Sizeof(MknodIn{})]byte
	_ [unsafe.Sizeof(MknodIn{}) - SizeofMknodIn]byte
	_ [SizeofMkdirIn - unsafe.Sizeof(MkdirIn{})]byte
	_ [unsafe.Sizeof(MkdirIn{}) - SizeofMkdirIn]byte
	_ [SizeofRenameIn - unsafe.Sizeof(RenameIn{})]byte
	_ [unsafe.Sizeof(RenameIn{}) - SizeofRenameIn]byte
	_ [SizeofRename2In - unsafe.Sizeof(Rename2In{})]byte
	_ [unsafe.Sizeof(Rename2In{}) - SizeofRename2In]byte
	_ [SizeofLinkIn - unsafe.Sizeof(LinkIn{})]byte
	_ [unsafe.Sizeof(LinkIn{}) - SizeofLinkIn]byte
	_ [SizeofSetattrIn - unsafe.Sizeof(SetattrIn{})]byte
	_ [unsafe.Sizeof(SetattrIn{}) - SizeofSetattrIn]byte
	_ [SizeofOpenIn - unsafe.Sizeof(OpenIn{})]byte
	_ [unsafe.Sizeof(OpenIn{}) - SizeofOpenIn]byte
	_ [SizeofCreateIn - unsafe.Sizeof(CreateIn{})]byte
	_ [unsafe.Sizeof(CreateIn{}) - SizeofCreateIn]byte
	_ [SizeofOpenOut - unsafe.Sizeof(OpenOut{})]byte
	_ [unsafe.Sizeof(OpenOut{}) - SizeofOpenOut]byte
	_ [SizeofReleaseIn - unsafe.Sizeof(ReleaseIn{})]byte
	_ [unsafe.Sizeof(ReleaseIn{}) - SizeofReleaseIn]byte
	_ [SizeofFlushIn - unsafe.Sizeof(FlushIn{})]byte
	_ [unsafe.Sizeof(FlushIn{}) - SizeofFlushIn]byte
	_ [SizeofReadIn - unsafe.Sizeof(ReadIn{})]byte
	_ [unsafe.Sizeof(ReadIn{}) - SizeofReadIn]byte
	_ [SizeofWriteIn - unsafe.Sizeof(WriteIn{})]byte
	_ [unsafe.Sizeof(WriteIn{}) - SizeofWriteIn]byte
	_ [SizeofWriteOut - unsafe.Sizeof(WriteOut{})]byte
	_ [unsafe.Sizeof(WriteOut{}) - SizeofWriteOut]byte
	_ [SizeofKstatfs - unsafe.Sizeof(Kstatfs{})]byte
	_ [unsafe.Sizeof(Kstatfs{}) - SizeofKstatfs]byte
	_ [SizeofStatfsOut - unsafe.Sizeof(StatfsOut{})]byte
	_ [unsafe.Sizeof(StatfsOut{}) - SizeofStatfsOut]byte
	_ [SizeofFsyncIn - unsafe.Sizeof(FsyncIn{})]byte
	_ [unsafe.Sizeof(FsyncIn{}) - SizeofFsyncIn]byte
	_ [SizeofSetxattrIn - unsafe.Sizeof(SetxattrIn{})]byte
	_ [unsafe.Sizeof(SetxattrIn{}) - SizeofSetxattrIn]byte
	_ [SizeofGetxattrIn - unsafe.Sizeof(GetxattrIn{})]byte
	_ [unsafe.Sizeof(GetxattrIn{}) - SizeofGetxattrIn]byte
	_ [SizeofGetxattrOut - unsafe.Sizeof(GetxattrOut{})]byte
	_ [unsafe.Sizeof(GetxattrOut{}) - SizeofGetxattrOut]byte
	_ [SizeofFileLock - unsafe.Sizeof(FileLock{})]byte
	_ [unsafe.Sizeof(FileLock{}) - SizeofFileLock]byte
	_ [SizeofLkIn - unsafe.Sizeof(LkIn{})]byte
	_ [unsafe.Sizeof(LkIn{}) - SizeofLkIn]byte
	_ [SizeofLkOut - unsafe.Sizeof(LkOut{})]byte
	_ [unsafe.Sizeof(LkOut{}) - SizeofLkOut]byte
	_ [SizeofAccessIn - unsafe.Sizeof(AccessIn{})]byte
	_ [unsafe.Sizeof(AccessIn{}) - SizeofAccessIn]byte
	_ [SizeofInitIn - unsafe.Sizeof(InitIn{})]byte
	_ [unsafe.Sizeof(InitIn{}) - SizeofInitIn]byte
	_ [SizeofInitOut - unsafe.Sizeof(InitOut{})]byte
	_ [unsafe.Sizeof(InitOut{}) - SizeofInitOut]byte
	_ [SizeofInterruptIn - unsafe.Sizeof(InterruptIn{})]byte
	_ [unsafe.Sizeof(InterruptIn{}) - SizeofInterruptIn]byte
	_ [SizeofFallocateIn - unsafe.Sizeof(FallocateIn{})]byte
	_ [unsafe.Sizeof(FallocateIn{}) - SizeofFallocateIn]byte
	_ [SizeofLseekIn - unsafe.Sizeof(LseekIn{})]byte
	_ [unsafe.Sizeof(LseekIn{}) - SizeofLseekIn]byte
	_ [SizeofLseekOut - unsafe.Sizeof(LseekOut{})]byte
	_ [unsafe.Sizeof(LseekOut{}) - SizeofLseekOut]byte
	_ [SizeofCopyFileRangeIn - unsafe.Sizeof(CopyFileRangeIn{})]byte
	_ [unsafe.Sizeof(CopyFileRangeIn{}) - SizeofCopyFileRangeIn]byte
	_ [SizeofCopyFileRangeOut - unsafe.Sizeof(CopyFileRangeOut{})]byte
	_ [unsafe.Sizeof(CopyFileRangeOut{}) - SizeofCopyFileRangeOut]byte
	_ [SizeofDirent - unsafe.Sizeof(Dirent{})]byte
	_ [unsafe.Sizeof(Dirent{}) - SizeofDirent]byte
	_ [SizeofDirentplus - unsafe.Sizeof(Direntplus{})]byte
	_ [unsafe.Sizeof(Direntplus{}) - SizeofDirentplus]byte
)
