// Package wire is the FUSE wire protocol as spoken by Linux 6.18 (protocol
// 7.45) plus the proposed 7.46 io_uring FORGET flag.
//
// It owns the kernel ABI: opcodes, the in and out structs, INIT flags, the
// io_uring entry header, and bounds-checked decoding of kernel messages.
// Everything known about an opcode (its name, whether it takes a reply, how
// its input decodes, the reply the kernel expects, whether serving it may
// block) is one row of the table in optable.go; the server, the channels
// and the kernel model ask it rather than keep lists of their own. It
// knows nothing of syscalls or goroutines; it imports neither x/sys/unix nor
// sync, so it can be used by the real channels and by the kernel model alike.
//
// Struct layouts mirror include/uapi/linux/fuse.h field by field. Each one
// carries a SizeofX constant and compile-time checks in both directions, so
// a wrong layout fails the build. Constants keep the kernel header's
// spelling so that they can be grepped for in both trees.
package wire
