package wire

import "strconv"

// Opcode is a FUSE request opcode (enum fuse_opcode).
type Opcode uint32

// Opcodes from enum fuse_opcode.
const (
	FUSE_LOOKUP          Opcode = 1
	FUSE_FORGET          Opcode = 2 // no reply
	FUSE_GETATTR         Opcode = 3
	FUSE_SETATTR         Opcode = 4
	FUSE_READLINK        Opcode = 5
	FUSE_SYMLINK         Opcode = 6
	FUSE_MKNOD           Opcode = 8
	FUSE_MKDIR           Opcode = 9
	FUSE_UNLINK          Opcode = 10
	FUSE_RMDIR           Opcode = 11
	FUSE_RENAME          Opcode = 12
	FUSE_LINK            Opcode = 13
	FUSE_OPEN            Opcode = 14
	FUSE_READ            Opcode = 15
	FUSE_WRITE           Opcode = 16
	FUSE_STATFS          Opcode = 17
	FUSE_RELEASE         Opcode = 18
	FUSE_FSYNC           Opcode = 20
	FUSE_SETXATTR        Opcode = 21
	FUSE_GETXATTR        Opcode = 22
	FUSE_LISTXATTR       Opcode = 23
	FUSE_REMOVEXATTR     Opcode = 24
	FUSE_FLUSH           Opcode = 25
	FUSE_INIT            Opcode = 26
	FUSE_OPENDIR         Opcode = 27
	FUSE_READDIR         Opcode = 28
	FUSE_RELEASEDIR      Opcode = 29
	FUSE_FSYNCDIR        Opcode = 30
	FUSE_GETLK           Opcode = 31
	FUSE_SETLK           Opcode = 32
	FUSE_SETLKW          Opcode = 33
	FUSE_ACCESS          Opcode = 34
	FUSE_CREATE          Opcode = 35
	FUSE_INTERRUPT       Opcode = 36 // no reply
	FUSE_BMAP            Opcode = 37
	FUSE_DESTROY         Opcode = 38
	FUSE_IOCTL           Opcode = 39
	FUSE_POLL            Opcode = 40
	FUSE_NOTIFY_REPLY    Opcode = 41 // no reply
	FUSE_BATCH_FORGET    Opcode = 42 // no reply
	FUSE_FALLOCATE       Opcode = 43
	FUSE_READDIRPLUS     Opcode = 44
	FUSE_RENAME2         Opcode = 45
	FUSE_LSEEK           Opcode = 46
	FUSE_COPY_FILE_RANGE Opcode = 47
	FUSE_SETUPMAPPING    Opcode = 48
	FUSE_REMOVEMAPPING   Opcode = 49
	FUSE_SYNCFS          Opcode = 50
	FUSE_TMPFILE         Opcode = 51
	FUSE_STATX           Opcode = 52
	// FUSE_COPY_FILE_RANGE_64 (7.45) replies with fuse_copy_file_range_out.
	FUSE_COPY_FILE_RANGE_64 Opcode = 53

	// CUSE_INIT is the CUSE handshake; ringfuse does not serve CUSE.
	CUSE_INIT Opcode = 4096
)

// OpcodeMax bounds the dispatch tables: every FUSE opcode is below it.
const OpcodeMax = 54

// String returns the opcode's name without the FUSE_ prefix, or a number.
func (o Opcode) String() string {
	if o.Known() {
		return opcodes[o].name
	}
	if o == CUSE_INIT {
		return "CUSE_INIT"
	}
	return "OPCODE(" + strconv.FormatUint(uint64(o), 10) + ")"
}

// Known reports whether o is an opcode of protocol 7.45.
func (o Opcode) Known() bool { return o < OpcodeMax && opcodes[o].name != "" }

// NoReply reports whether the kernel expects no reply on /dev/fuse. On the
// io_uring channel such requests must still be committed, with an empty
// reply, or their ring entry is stranded.
func (o Opcode) NoReply() bool { return o.Known() && opcodes[o].flags&opNoReply != 0 }

// MayBlock reports whether serving o may wait on I/O (file data, a sync, a
// lock) long enough that a channel serving requests one at a time on a
// thread should hand it to another thread when more requests are pending.
// Metadata requests are short on a local filesystem: handing them off
// costs a serial client more than it gains.
func (o Opcode) MayBlock() bool { return o.Known() && opcodes[o].flags&opMayBlock != 0 }
