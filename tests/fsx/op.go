package fsx

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Kind names an operation.
type Kind uint8

// The operations. Path operations take Op.Path (and Op.Path2); descriptor
// operations take Op.Slot.
const (
	OpOpen        Kind = iota // open(Path, Flags, Mode) into Slot, closing what Slot held
	OpClose                   // close(Slot)
	OpRead                    // read(Slot, Len)
	OpPread                   // pread(Slot, Len, Off)
	OpWrite                   // write(Slot, data(Pat, Len))
	OpPwrite                  // pwrite(Slot, data(Pat, Len), Off)
	OpSeek                    // lseek(Slot, Off, Flags=whence)
	OpTruncate                // truncate(Path, Off)
	OpFtruncate               // ftruncate(Slot, Off)
	OpFallocate               // fallocate(Slot, Flags=mode, Off, Len)
	OpMmapRead                // mmap(Slot, PROT_READ, MAP_SHARED) and read [Off, Off+Len) below EOF
	OpMmapWrite               // mmap(Slot, PROT_READ|PROT_WRITE, MAP_SHARED), write below EOF, msync
	OpFsync                   // fsync(Slot), or fdatasync when Flags is 1
	OpRename                  // renameat2(Path, Path2, Flags)
	OpLink                    // linkat(Path, Path2, Flags)
	OpUnlink                  // unlink(Path)
	OpMkdir                   // mkdir(Path, Mode)
	OpRmdir                   // rmdir(Path)
	OpSymlink                 // symlink(Target, Path)
	OpReadlink                // readlink(Path)
	OpStat                    // stat(Path), or lstat when Flags is AT_SYMLINK_NOFOLLOW
	OpSetxattr                // setxattr(Path, Name, data(Pat, Len), Flags); lsetxattr when Nofollow
	OpGetxattr                // getxattr(Path, Name, buffer of Len bytes); lgetxattr when Nofollow
	OpListxattr               // listxattr(Path, buffer of Len bytes); llistxattr when Nofollow
	OpRemovexattr             // removexattr(Path, Name); lremovexattr when Nofollow
	OpChmod                   // chmod(Path, Mode)
	OpFchmod                  // fchmod(Slot, Mode)
	OpChown                   // chown(Path, UID, GID), or lchown when Nofollow
	OpUtimes                  // utimensat(Path, {Atime, Mtime}, Flags)
	OpReaddir                 // the names of directory Slot, from its start
	OpAccess                  // faccessat(Path, Mode)
	OpCopyRange               // copy_file_range(Slot2, Off2, Slot, Off, Len)
	numKinds
)

var kindNames = [numKinds]string{
	OpOpen: "open", OpClose: "close", OpRead: "read", OpPread: "pread",
	OpWrite: "write", OpPwrite: "pwrite", OpSeek: "lseek",
	OpTruncate: "truncate", OpFtruncate: "ftruncate", OpFallocate: "fallocate",
	OpMmapRead: "mmap-read", OpMmapWrite: "mmap-write", OpFsync: "fsync",
	OpRename: "rename", OpLink: "link", OpUnlink: "unlink", OpMkdir: "mkdir",
	OpRmdir: "rmdir", OpSymlink: "symlink", OpReadlink: "readlink", OpStat: "stat",
	OpSetxattr: "setxattr", OpGetxattr: "getxattr", OpListxattr: "listxattr",
	OpRemovexattr: "removexattr", OpChmod: "chmod", OpFchmod: "fchmod",
	OpChown: "chown", OpUtimes: "utimes", OpReaddir: "readdir", OpAccess: "access",
	OpCopyRange: "copy_file_range",
}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind" + strconv.Itoa(int(k))
}

// Op is one operation. Only the fields its Kind documents matter. Paths
// are relative to the side's root and never empty.
type Op struct {
	Kind Kind
	// User is the caller's filesystem uid and gid, 0 for root. Sides
	// made with Users run the operation with that fsuid and fsgid and no
	// supplementary groups; other sides ignore it.
	User        int
	Slot        int
	Slot2       int // copy_file_range's source
	Off2        int64
	Path, Path2 string
	Target      string // symlink target
	Name        string // extended attribute name
	Flags       int
	Mode        uint32
	Off, Len    int64
	Pat         uint32 // seeds the data written (see Data)
	Nofollow    bool
	UID, GID    int
	Atime       Timespec
	Mtime       Timespec
}

// Timespec is a utimensat time: a sentinel time (see SentinelSec), or
// unix.UTIME_NOW or unix.UTIME_OMIT in Nsec.
type Timespec struct{ Sec, Nsec int64 }

func (ts Timespec) String() string {
	switch ts.Nsec {
	case unix.UTIME_NOW:
		return "NOW"
	case unix.UTIME_OMIT:
		return "OMIT"
	}
	return fmt.Sprintf("%d.%09d", ts.Sec, ts.Nsec)
}

// Data returns the n bytes an operation with pattern pat writes: a
// xorshift stream, so that misplaced or stale bytes show.
func Data(pat uint32, n int64) []byte {
	b := make([]byte, n)
	x := pat | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// String formats op as a call, as printed in a reproduction.
func (op Op) String() string {
	if op.User != 0 {
		u := op
		u.User = 0
		return fmt.Sprintf("[as %d] %v", op.User, u)
	}
	s := fmt.Sprintf("s%d", op.Slot)
	q := strconv.Quote
	l := ""
	if op.Nofollow {
		l = "l"
	}
	switch op.Kind {
	case OpOpen:
		return fmt.Sprintf("%s = open(%s, %s, %#o)", s, q(op.Path), openFlagString(op.Flags), op.Mode)
	case OpClose:
		return fmt.Sprintf("close(%s)", s)
	case OpRead:
		return fmt.Sprintf("read(%s, %d)", s, op.Len)
	case OpPread:
		return fmt.Sprintf("pread(%s, %d, off=%d)", s, op.Len, op.Off)
	case OpWrite:
		return fmt.Sprintf("write(%s, data(%#x, %d))", s, op.Pat, op.Len)
	case OpPwrite:
		return fmt.Sprintf("pwrite(%s, data(%#x, %d), off=%d)", s, op.Pat, op.Len, op.Off)
	case OpSeek:
		return fmt.Sprintf("lseek(%s, %d, %s)", s, op.Off, whenceString(op.Flags))
	case OpTruncate:
		return fmt.Sprintf("truncate(%s, %d)", q(op.Path), op.Off)
	case OpFtruncate:
		return fmt.Sprintf("ftruncate(%s, %d)", s, op.Off)
	case OpFallocate:
		return fmt.Sprintf("fallocate(%s, %s, off=%d, len=%d)", s, fallocString(op.Flags), op.Off, op.Len)
	case OpMmapRead:
		return fmt.Sprintf("mmap-read(%s, off=%d, len=%d)", s, op.Off, op.Len)
	case OpMmapWrite:
		return fmt.Sprintf("mmap-write(%s, data(%#x, %d), off=%d) + msync", s, op.Pat, op.Len, op.Off)
	case OpFsync:
		if op.Flags == 1 {
			return fmt.Sprintf("fdatasync(%s)", s)
		}
		return fmt.Sprintf("fsync(%s)", s)
	case OpRename:
		return fmt.Sprintf("renameat2(%s, %s, %s)", q(op.Path), q(op.Path2), renameString(op.Flags))
	case OpLink:
		f := "0"
		if op.Flags&unix.AT_SYMLINK_FOLLOW != 0 {
			f = "AT_SYMLINK_FOLLOW"
		}
		return fmt.Sprintf("linkat(%s, %s, %s)", q(op.Path), q(op.Path2), f)
	case OpUnlink:
		return fmt.Sprintf("unlink(%s)", q(op.Path))
	case OpMkdir:
		return fmt.Sprintf("mkdir(%s, %#o)", q(op.Path), op.Mode)
	case OpRmdir:
		return fmt.Sprintf("rmdir(%s)", q(op.Path))
	case OpSymlink:
		return fmt.Sprintf("symlink(%s, %s)", q(op.Target), q(op.Path))
	case OpReadlink:
		return fmt.Sprintf("readlink(%s)", q(op.Path))
	case OpStat:
		if op.Flags&unix.AT_SYMLINK_NOFOLLOW != 0 {
			return fmt.Sprintf("lstat(%s)", q(op.Path))
		}
		return fmt.Sprintf("stat(%s)", q(op.Path))
	case OpSetxattr:
		return fmt.Sprintf("%ssetxattr(%s, %s, data(%#x, %d), %s)", l, q(op.Path), q(op.Name), op.Pat, op.Len, xattrString(op.Flags))
	case OpGetxattr:
		return fmt.Sprintf("%sgetxattr(%s, %s, size=%d)", l, q(op.Path), q(op.Name), op.Len)
	case OpListxattr:
		return fmt.Sprintf("%slistxattr(%s, size=%d)", l, q(op.Path), op.Len)
	case OpRemovexattr:
		return fmt.Sprintf("%sremovexattr(%s, %s)", l, q(op.Path), q(op.Name))
	case OpChmod:
		return fmt.Sprintf("chmod(%s, %#o)", q(op.Path), op.Mode)
	case OpFchmod:
		return fmt.Sprintf("fchmod(%s, %#o)", s, op.Mode)
	case OpChown:
		return fmt.Sprintf("%schown(%s, %d, %d)", l, q(op.Path), op.UID, op.GID)
	case OpUtimes:
		f := "0"
		if op.Flags&unix.AT_SYMLINK_NOFOLLOW != 0 {
			f = "AT_SYMLINK_NOFOLLOW"
		}
		return fmt.Sprintf("utimensat(%s, atime=%v, mtime=%v, %s)", q(op.Path), op.Atime, op.Mtime, f)
	case OpReaddir:
		return fmt.Sprintf("readdir(%s)", s)
	case OpAccess:
		return fmt.Sprintf("access(%s, %s)", q(op.Path), accessString(op.Mode))
	case OpCopyRange:
		return fmt.Sprintf("copy_file_range(s%d, off=%d, %s, off=%d, len=%d)", op.Slot2, op.Off2, s, op.Off, op.Len)
	}
	return fmt.Sprintf("%v(%+v)", op.Kind, struct{ Op }{op})
}

// flagNames spells out a bit set; bits not in names print in hex.
func flagNames(v int, names []flagName, zero string) string {
	var parts []string
	for _, n := range names {
		if n.v != 0 && v&n.v == n.v {
			parts = append(parts, n.s)
			v &^= n.v
		}
	}
	if v != 0 {
		parts = append(parts, fmt.Sprintf("%#x", v))
	}
	if len(parts) == 0 {
		return zero
	}
	return strings.Join(parts, "|")
}

type flagName struct {
	v int
	s string
}

func openFlagString(f int) string {
	acc := map[int]string{unix.O_RDONLY: "O_RDONLY", unix.O_WRONLY: "O_WRONLY", unix.O_RDWR: "O_RDWR"}[f&unix.O_ACCMODE]
	rest := flagNames(f&^unix.O_ACCMODE, []flagName{
		{unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"}, {unix.O_TRUNC, "O_TRUNC"},
		{unix.O_APPEND, "O_APPEND"}, {unix.O_DIRECTORY, "O_DIRECTORY"}, {unix.O_NOFOLLOW, "O_NOFOLLOW"},
	}, "")
	if rest == "" {
		return acc
	}
	return acc + "|" + rest
}

func whenceString(w int) string {
	switch w {
	case unix.SEEK_SET:
		return "SEEK_SET"
	case unix.SEEK_CUR:
		return "SEEK_CUR"
	case unix.SEEK_END:
		return "SEEK_END"
	case unix.SEEK_DATA:
		return "SEEK_DATA"
	case unix.SEEK_HOLE:
		return "SEEK_HOLE"
	}
	return strconv.Itoa(w)
}

func fallocString(m int) string {
	return flagNames(m, []flagName{
		{unix.FALLOC_FL_KEEP_SIZE, "KEEP_SIZE"}, {unix.FALLOC_FL_PUNCH_HOLE, "PUNCH_HOLE"},
		{unix.FALLOC_FL_ZERO_RANGE, "ZERO_RANGE"},
	}, "0")
}

func renameString(f int) string {
	return flagNames(f, []flagName{
		{unix.RENAME_NOREPLACE, "RENAME_NOREPLACE"}, {unix.RENAME_EXCHANGE, "RENAME_EXCHANGE"},
		{unix.RENAME_WHITEOUT, "RENAME_WHITEOUT"},
	}, "0")
}

func xattrString(f int) string {
	return flagNames(f, []flagName{{unix.XATTR_CREATE, "XATTR_CREATE"}, {unix.XATTR_REPLACE, "XATTR_REPLACE"}}, "0")
}

func accessString(m uint32) string {
	return flagNames(int(m), []flagName{{unix.R_OK, "R_OK"}, {unix.W_OK, "W_OK"}, {unix.X_OK, "X_OK"}}, "F_OK")
}
