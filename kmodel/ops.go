package kmodel

import (
	"github.com/ringfuse/ringfuse/wire"
)

// Request builders. Each returns the request as the kernel builds it for
// the system call, with zero credentials; set UID, GID and PID as needed.

// Lookup looks name up in directory parent.
func Lookup(parent uint64, name string) Request {
	return Request{Op: wire.FUSE_LOOKUP, NodeID: parent, Payload: wire.CString(name)}
}

// Getattr is stat(2) of node.
func Getattr(node uint64) Request {
	var in wire.GetattrIn
	return Request{Op: wire.FUSE_GETATTR, NodeID: node, Arg: bytesOf(&in)}
}

// GetattrFh is fstat(2) of open handle fh of node.
func GetattrFh(node, fh uint64) Request {
	in := wire.GetattrIn{GetattrFlags: wire.FUSE_GETATTR_FH, Fh: fh}
	return Request{Op: wire.FUSE_GETATTR, NodeID: node, Arg: bytesOf(&in)}
}

// Open opens node with open(2) flags.
func Open(node uint64, flags uint32) Request {
	in := wire.OpenIn{Flags: flags}
	return Request{Op: wire.FUSE_OPEN, NodeID: node, Arg: bytesOf(&in)}
}

// Opendir opens directory node.
func Opendir(node uint64) Request {
	in := wire.OpenIn{Flags: 0o200000} // O_DIRECTORY
	return Request{Op: wire.FUSE_OPENDIR, NodeID: node, Arg: bytesOf(&in)}
}

// Read reads size bytes at off from handle fh of node.
func Read(node, fh, off uint64, size uint32) Request {
	in := wire.ReadIn{Fh: fh, Offset: off, Size: size, Flags: 0o2} // O_RDWR
	return Request{Op: wire.FUSE_READ, NodeID: node, Arg: bytesOf(&in)}
}

// Write writes data at off to handle fh of node.
func Write(node, fh, off uint64, data []byte) Request {
	in := wire.WriteIn{Fh: fh, Offset: off, Size: uint32(len(data)), Flags: 0o2}
	return Request{Op: wire.FUSE_WRITE, NodeID: node, Arg: bytesOf(&in), Payload: data}
}

// Create creates and opens name in parent with open(2) flags and mode.
func Create(parent uint64, name string, flags, mode uint32) Request {
	in := wire.CreateIn{Flags: flags, Mode: mode, Umask: 0o022}
	return Request{Op: wire.FUSE_CREATE, NodeID: parent, Arg: bytesOf(&in), Payload: wire.CString(name)}
}

// Mkdir makes directory name in parent.
func Mkdir(parent uint64, name string, mode uint32) Request {
	in := wire.MkdirIn{Mode: mode, Umask: 0o022}
	return Request{Op: wire.FUSE_MKDIR, NodeID: parent, Arg: bytesOf(&in), Payload: wire.CString(name)}
}

// Unlink removes name from parent.
func Unlink(parent uint64, name string) Request {
	return Request{Op: wire.FUSE_UNLINK, NodeID: parent, Payload: wire.CString(name)}
}

// Rmdir removes directory name from parent.
func Rmdir(parent uint64, name string) Request {
	return Request{Op: wire.FUSE_RMDIR, NodeID: parent, Payload: wire.CString(name)}
}

// Readdir lists directory handle fh of node from cookie off; plus makes it
// READDIRPLUS.
func Readdir(node, fh, off uint64, size uint32, plus bool) Request {
	in := wire.ReadIn{Fh: fh, Offset: off, Size: size, Flags: 0o200000}
	op := wire.FUSE_READDIR
	if plus {
		op = wire.FUSE_READDIRPLUS
	}
	return Request{Op: op, NodeID: node, Arg: bytesOf(&in)}
}

// Flush is close(2) of a descriptor of handle fh.
func Flush(node, fh uint64) Request {
	in := wire.FlushIn{Fh: fh}
	return Request{Op: wire.FUSE_FLUSH, NodeID: node, Arg: bytesOf(&in)}
}

// Release is the last close of handle fh of node.
func Release(node, fh uint64) Request {
	in := wire.ReleaseIn{Fh: fh, Flags: 0o2}
	return Request{Op: wire.FUSE_RELEASE, NodeID: node, Arg: bytesOf(&in)}
}

// Releasedir is the last close of directory handle fh of node.
func Releasedir(node, fh uint64) Request {
	in := wire.ReleaseIn{Fh: fh, Flags: 0o200000}
	return Request{Op: wire.FUSE_RELEASEDIR, NodeID: node, Arg: bytesOf(&in)}
}

// Statfs is statfs(2) on node.
func Statfs(node uint64) Request {
	return Request{Op: wire.FUSE_STATFS, NodeID: node}
}

// bytesOf returns a copy of an ABI struct's bytes.
func bytesOf[T any](v *T) []byte {
	return append([]byte(nil), wire.AsBytes(v)...)
}
