package wire

// This file is the one place that describes each opcode: its name, whether
// it takes a reply, how its input decodes, the reply the kernel expects and
// whether serving it may block. Decoders, the server, the channels and the
// kernel model all ask it; none keeps a list of its own.

// opInfo is one row of the opcode table.
type opInfo struct {
	name  string
	arg   uint16 // size of the fixed struct (fuse_xxx_in); see ArgSize
	body  uint8  // what follows the fixed struct: one of the body kinds
	flags uint8  // opNoReply, opMayBlock
	reply uint8  // how the kernel sizes the reply: one of the reply kinds
	out   uint16 // the reply's fixed size, for replyFixed and replyUpTo
}

// Opcode flags.
const (
	opNoReply  = 1 << iota // the kernel expects no reply on /dev/fuse
	opMayBlock             // serving it may wait on I/O (see Opcode.MayBlock)
)

// body kinds: what follows the fixed struct.
const (
	bodyNone        = iota // nothing
	bodyName               // name\0
	bodyTwoNames           // name\0name\0
	bodyWrite              // fuse_write_in.size bytes
	bodySetxattr           // name\0 value
	bodyBatchForget        // count * fuse_forget_one
	bodyAny                // not validated: opcodes answered with ENOSYS
)

// reply kinds: the out-args the kernel sets up (fuse_args.out_args).
const (
	replyNone  = iota // no out-args
	replyFixed        // out bytes
	replyUpTo         // up to out bytes (out_argvar)
	replyRead         // up to fuse_read_in.size bytes (out_argvar)
	replyXattr        // fuse_getxattr_out for a size query, else up to size bytes
)

// readlinkMax is the reply size the kernel gives READLINK: a page less the
// NUL it appends.
const readlinkMax = 4095

// sizeofBmapOut is the size of struct fuse_bmap_out (ringfuse answers BMAP
// with ENOSYS, so the struct itself is not declared).
const sizeofBmapOut = 8

var opcodes = [OpcodeMax]opInfo{
	FUSE_LOOKUP:             {name: "LOOKUP", body: bodyName, reply: replyFixed, out: SizeofEntryOut},
	FUSE_FORGET:             {name: "FORGET", arg: SizeofForgetIn, flags: opNoReply},
	FUSE_GETATTR:            {name: "GETATTR", arg: SizeofGetattrIn, reply: replyFixed, out: SizeofAttrOut},
	FUSE_SETATTR:            {name: "SETATTR", arg: SizeofSetattrIn, reply: replyFixed, out: SizeofAttrOut},
	FUSE_READLINK:           {name: "READLINK", reply: replyUpTo, out: readlinkMax},
	FUSE_SYMLINK:            {name: "SYMLINK", body: bodyTwoNames, reply: replyFixed, out: SizeofEntryOut},
	FUSE_MKNOD:              {name: "MKNOD", arg: SizeofMknodIn, body: bodyName, reply: replyFixed, out: SizeofEntryOut},
	FUSE_MKDIR:              {name: "MKDIR", arg: SizeofMkdirIn, body: bodyName, reply: replyFixed, out: SizeofEntryOut},
	FUSE_UNLINK:             {name: "UNLINK", body: bodyName},
	FUSE_RMDIR:              {name: "RMDIR", body: bodyName},
	FUSE_RENAME:             {name: "RENAME", arg: SizeofRenameIn, body: bodyTwoNames},
	FUSE_LINK:               {name: "LINK", arg: SizeofLinkIn, body: bodyName, reply: replyFixed, out: SizeofEntryOut},
	FUSE_OPEN:               {name: "OPEN", arg: SizeofOpenIn, reply: replyFixed, out: SizeofOpenOut},
	FUSE_READ:               {name: "READ", arg: SizeofReadIn, flags: opMayBlock, reply: replyRead},
	FUSE_WRITE:              {name: "WRITE", arg: SizeofWriteIn, body: bodyWrite, flags: opMayBlock, reply: replyFixed, out: SizeofWriteOut},
	FUSE_STATFS:             {name: "STATFS", reply: replyFixed, out: SizeofStatfsOut},
	FUSE_RELEASE:            {name: "RELEASE", arg: SizeofReleaseIn},
	FUSE_FSYNC:              {name: "FSYNC", arg: SizeofFsyncIn, flags: opMayBlock},
	FUSE_SETXATTR:           {name: "SETXATTR", arg: SizeofSetxattrIn, body: bodySetxattr},
	FUSE_GETXATTR:           {name: "GETXATTR", arg: SizeofGetxattrIn, body: bodyName, reply: replyXattr},
	FUSE_LISTXATTR:          {name: "LISTXATTR", arg: SizeofGetxattrIn, reply: replyXattr},
	FUSE_REMOVEXATTR:        {name: "REMOVEXATTR", body: bodyName},
	FUSE_FLUSH:              {name: "FLUSH", arg: SizeofFlushIn},
	FUSE_INIT:               {name: "INIT", arg: FUSE_COMPAT_INIT_IN_SIZE, body: bodyAny, reply: replyUpTo, out: SizeofInitOut},
	FUSE_OPENDIR:            {name: "OPENDIR", arg: SizeofOpenIn, reply: replyFixed, out: SizeofOpenOut},
	FUSE_READDIR:            {name: "READDIR", arg: SizeofReadIn, reply: replyRead},
	FUSE_RELEASEDIR:         {name: "RELEASEDIR", arg: SizeofReleaseIn},
	FUSE_FSYNCDIR:           {name: "FSYNCDIR", arg: SizeofFsyncIn, flags: opMayBlock},
	FUSE_GETLK:              {name: "GETLK", arg: SizeofLkIn, reply: replyFixed, out: SizeofLkOut},
	FUSE_SETLK:              {name: "SETLK", arg: SizeofLkIn},
	FUSE_SETLKW:             {name: "SETLKW", arg: SizeofLkIn, flags: opMayBlock},
	FUSE_ACCESS:             {name: "ACCESS", arg: SizeofAccessIn},
	FUSE_CREATE:             {name: "CREATE", arg: SizeofCreateIn, body: bodyName, reply: replyFixed, out: SizeofEntryOut + SizeofOpenOut},
	FUSE_INTERRUPT:          {name: "INTERRUPT", arg: SizeofInterruptIn, flags: opNoReply},
	FUSE_BMAP:               {name: "BMAP", body: bodyAny, reply: replyFixed, out: sizeofBmapOut},
	FUSE_DESTROY:            {name: "DESTROY"},
	FUSE_IOCTL:              {name: "IOCTL", body: bodyAny},
	FUSE_POLL:               {name: "POLL", body: bodyAny},
	FUSE_NOTIFY_REPLY:       {name: "NOTIFY_REPLY", body: bodyAny, flags: opNoReply},
	FUSE_BATCH_FORGET:       {name: "BATCH_FORGET", arg: SizeofBatchForgetIn, body: bodyBatchForget, flags: opNoReply},
	FUSE_FALLOCATE:          {name: "FALLOCATE", arg: SizeofFallocateIn, flags: opMayBlock},
	FUSE_READDIRPLUS:        {name: "READDIRPLUS", arg: SizeofReadIn, reply: replyRead},
	FUSE_RENAME2:            {name: "RENAME2", arg: SizeofRename2In, body: bodyTwoNames},
	FUSE_LSEEK:              {name: "LSEEK", arg: SizeofLseekIn, reply: replyFixed, out: SizeofLseekOut},
	FUSE_COPY_FILE_RANGE:    {name: "COPY_FILE_RANGE", arg: SizeofCopyFileRangeIn, flags: opMayBlock, reply: replyFixed, out: SizeofWriteOut},
	FUSE_SETUPMAPPING:       {name: "SETUPMAPPING", body: bodyAny},
	FUSE_REMOVEMAPPING:      {name: "REMOVEMAPPING", body: bodyAny},
	FUSE_SYNCFS:             {name: "SYNCFS", body: bodyAny},
	FUSE_TMPFILE:            {name: "TMPFILE", body: bodyAny},
	FUSE_STATX:              {name: "STATX", arg: SizeofStatxIn, reply: replyFixed, out: SizeofStatxOut},
	FUSE_COPY_FILE_RANGE_64: {name: "COPY_FILE_RANGE_64", arg: SizeofCopyFileRangeIn, flags: opMayBlock, reply: replyFixed, out: SizeofCopyFileRangeOut},
}

// ReplySize returns the size of the reply the kernel sets up for op
// (fuse_args.out_args) and whether it is variable (out_argvar: a shorter
// reply is accepted). arg is the request's fixed struct, which sizes READ,
// READDIR and the xattr reads. Opcodes without a reply give 0, false.
func ReplySize(op Opcode, arg []byte) (size int, variable bool) {
	if !op.Known() {
		return 0, false
	}
	o := &opcodes[op]
	switch o.reply {
	case replyFixed:
		return int(o.out), false
	case replyUpTo:
		return int(o.out), true
	case replyRead:
		if in := View[ReadIn](arg); in != nil {
			return int(in.Size), true
		}
		return 0, true
	case replyXattr:
		if in := View[GetxattrIn](arg); in != nil && in.Size != 0 {
			return int(in.Size), true
		}
		return SizeofGetxattrOut, false
	}
	return 0, false
}
