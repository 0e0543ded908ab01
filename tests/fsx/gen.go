package fsx

import (
	"math/rand/v2"
	"time"

	"golang.org/x/sys/unix"
)

// NumSlots is the number of descriptor slots each side keeps. A few, so
// that several descriptors are open on the same files at once.
const NumSlots = 6

// Paths is the namespace operations draw from: a few directories and
// names that collide, so that operations run into each other and errors
// (ENOENT, EEXIST, ENOTDIR, ENOTEMPTY, EISDIR, ELOOP) are exercised too.
// Any name may become a file, a directory or a symlink.
var Paths = []string{
	"a", "b", "c", "f", "g", "l",
	"a/c", "a/f", "a/g", "a/l",
	"b/f", "b/g",
	"a/c/f", "a/c/g", "c/f", "c/g",
}

// dirPaths are the names mkdir prefers, so the tree has depth; filePaths
// are the names open and the data operations prefer, so that most opens
// find or create a regular file.
var (
	dirPaths  = []string{"a", "b", "c", "a/c"}
	filePaths = []string{"f", "g", "a/f", "a/g", "b/f", "b/g", "a/c/f", "a/c/g", "c/f", "c/g"}
)

// symlinkTargets point only downwards (no "..", not absolute), so that a
// symlink resolves inside the tree wherever it is moved; a dangling one
// opened with O_CREAT creates its target inside the tree too. "l" loops
// when the symlink is itself named l.
var symlinkTargets = []string{"f", "g", "a", "b", "c", "l", "a/f", "b/f", "a/c", "c/g", "x", "a/c/f"}

// xattrNames are mostly user.* names; the last is in no namespace, which
// both sides refuse.
var xattrNames = []string{"user.a", "user.b", "user.fsx.long-attribute-name", "user.c", "fsx.nonamespace"}

// Extended attribute values are mostly small; a few large ones fill the
// single block ext4 gives an inode's attributes (ENOSPC). getxattr and
// listxattr buffers include 0 (a size query) and sizes that are too
// small (ERANGE).
const (
	smallXattr = 64
	largeXattr = 4000
)

var xattrBufSizes = []int{0, 8, 256, 8192}

// Sizes bound file offsets and lengths so that each step's snapshot reads
// little data, with a rare far offset for sparse files.
const (
	maxSmallOff = 64 << 10 // most offsets are below this
	farOff      = 1 << 20  // rare offsets near 1 MiB
	maxLen      = 20 << 10 // largest read or write
	pageSize    = 4096
)

// Explicit times set by utimensat lie in [SentinelSec, SentinelSec +
// sentinelSpan): long past, so they never equal a time the kernel sets,
// and a snapshot can tell "set by the test" from "set by the filesystem".
const (
	SentinelSec  = 1_000_000_000
	sentinelSpan = 1_000_000
)

var fileModes = []uint32{0o644, 0o600, 0o755, 0o444, 0o000, 0o4755, 0o2755, 0o1777, 0o777, 0o640}

// Generator produces the operation stream of a seed. The stream depends on
// the seed alone, never on results, so the first n operations of a seed
// are the same however long the run.
type Generator struct {
	r *rand.Rand
	n int
	// opened tracks the flags of the slots the generator has opened
	// and not closed, to aim descriptor operations mostly at slots that
	// are likely open with a fitting access mode. It is a guess (an open
	// may fail), never a result.
	opened [NumSlots]struct {
		open  bool
		flags int
	}
}

// NewGenerator returns the generator of seed.
func NewGenerator(seed int64) *Generator {
	return &Generator{r: rand.New(rand.NewPCG(uint64(seed), 0x6673782d72696e67))}
}

// setupOps start every stream, so that the tree has its directories
// early; they are ordinary operations and the shrinker may drop them.
// b is writable by everyone and c is too but sticky, like /tmp, so that
// unprivileged users (see Op.User) create files next to each other's.
var setupOps = []Op{
	{Kind: OpMkdir, Path: "a", Mode: 0o755},
	{Kind: OpMkdir, Path: "b", Mode: 0o777},
	{Kind: OpMkdir, Path: "a/c", Mode: 0o755},
	{Kind: OpMkdir, Path: "c", Mode: 0o1777},
	// mkdir's mode passes through the umask; chmod's does not.
	{Kind: OpChmod, Path: "b", Mode: 0o777},
	{Kind: OpChmod, Path: "c", Mode: 0o1777},
}

// kindWeights says how often each operation is drawn.
var kindWeights = [numKinds]int{
	OpOpen: 12, OpClose: 3, OpRead: 5, OpPread: 5, OpWrite: 8, OpPwrite: 8,
	OpSeek: 3, OpTruncate: 3, OpFtruncate: 3, OpFallocate: 5,
	OpMmapRead: 3, OpMmapWrite: 4, OpFsync: 2, OpRename: 7, OpLink: 3,
	OpUnlink: 5, OpMkdir: 4, OpRmdir: 3, OpSymlink: 3, OpReadlink: 2,
	OpStat: 3, OpSetxattr: 5, OpGetxattr: 3, OpListxattr: 2, OpRemovexattr: 2,
	OpChmod: 2, OpFchmod: 1, OpChown: 1, OpUtimes: 4, OpReaddir: 2, OpAccess: 1,
	OpCopyRange: 3,
}

var totalWeight = func() int {
	t := 0
	for _, w := range kindWeights {
		t += w
	}
	return t
}()

// Next returns the next operation of the stream.
func (g *Generator) Next() Op {
	defer func() { g.n++ }()
	if g.n < len(setupOps) {
		return setupOps[g.n]
	}
	w := g.r.IntN(totalWeight)
	k := Kind(0)
	for ; w >= kindWeights[k]; k++ {
		w -= kindWeights[k]
	}
	op := Op{Kind: k, Slot: g.slot(k), Path: g.path(), User: g.user()}
	if rootOnly[k] {
		op.User = 0
	}
	switch k {
	case OpOpen:
		op.Flags = g.openFlags()
		op.Mode = g.pick32(fileModes)
		switch r := g.r.IntN(10); {
		case r < 7:
			op.Path = g.pick(filePaths)
		case r < 8:
			// A directory, for readdir and for the errors of
			// descriptor operations on directories.
			op.Path = g.pick(dirPaths)
			op.Flags = unix.O_RDONLY | unix.O_DIRECTORY
		}
		g.opened[op.Slot].open, g.opened[op.Slot].flags = true, op.Flags
	case OpClose:
		g.opened[op.Slot].open = false
	case OpRead, OpPread, OpMmapRead:
		op.Off, op.Len = g.off(), g.len()
	case OpWrite, OpPwrite, OpMmapWrite:
		op.Off, op.Len, op.Pat = g.off(), g.len(), g.r.Uint32()
	case OpSeek:
		op.Flags = g.pickInt([]int{unix.SEEK_SET, unix.SEEK_CUR, unix.SEEK_END, unix.SEEK_DATA, unix.SEEK_HOLE})
		op.Off = g.off()
		if op.Flags == unix.SEEK_CUR || op.Flags == unix.SEEK_END {
			op.Off -= int64(g.r.IntN(2 * pageSize))
		}
	case OpTruncate, OpFtruncate:
		op.Off = g.off()
		if k == OpTruncate && !g.oneIn(4) {
			op.Path = g.pick(filePaths)
		}
	case OpFallocate:
		op.Flags = g.pickInt([]int{
			0, unix.FALLOC_FL_KEEP_SIZE,
			unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE,
			unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE,
			unix.FALLOC_FL_ZERO_RANGE, unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE,
			unix.FALLOC_FL_PUNCH_HOLE, // refused: a hole needs KEEP_SIZE
		})
		op.Off, op.Len = g.off(), g.len()
		if g.oneIn(20) {
			op.Len = 0 // EINVAL
		}
	case OpFsync:
		op.Flags = g.r.IntN(2) // 1 for fdatasync
	case OpRename:
		op.Path2 = g.path()
		op.Flags = g.pickInt([]int{0, 0, 0, unix.RENAME_NOREPLACE, unix.RENAME_EXCHANGE})
		if g.oneIn(40) {
			// Leaves a 0/0 character device behind in the source name.
			op.Flags = unix.RENAME_WHITEOUT
		}
	case OpLink:
		op.Path2 = g.path()
		if g.oneIn(4) {
			op.Flags = unix.AT_SYMLINK_FOLLOW
		}
	case OpMkdir:
		if !g.oneIn(3) {
			op.Path = g.pick(dirPaths)
		}
		op.Mode = g.pick32([]uint32{0o755, 0o755, 0o700, 0o777, 0o1777, 0o2755})
	case OpSymlink:
		op.Target = g.pick(symlinkTargets)
		if g.oneIn(30) {
			op.Target = "" // ENOENT
		}
	case OpStat:
		if g.oneIn(2) {
			op.Flags = unix.AT_SYMLINK_NOFOLLOW
		}
	case OpSetxattr:
		op.Name = g.pick(xattrNames)
		op.Len = int64(g.r.IntN(smallXattr))
		if g.oneIn(10) {
			op.Len = int64(g.r.IntN(largeXattr))
		}
		op.Pat = g.r.Uint32()
		op.Flags = g.pickInt([]int{0, 0, unix.XATTR_CREATE, unix.XATTR_REPLACE})
		op.Nofollow = g.oneIn(4)
	case OpGetxattr:
		op.Name = g.pick(xattrNames)
		op.Len = int64(g.pickInt(xattrBufSizes))
		op.Nofollow = g.oneIn(4)
	case OpListxattr:
		op.Len = int64(g.pickInt(xattrBufSizes))
		op.Nofollow = g.oneIn(4)
	case OpRemovexattr:
		op.Name = g.pick(xattrNames)
		op.Nofollow = g.oneIn(4)
	case OpChmod, OpFchmod:
		op.Mode = g.pick32(fileModes)
	case OpChown:
		ids := []int{0, nobody, otherUser, -1}
		op.UID, op.GID = ids[g.r.IntN(len(ids))], ids[g.r.IntN(len(ids))]
		op.Nofollow = g.oneIn(3)
	case OpUtimes:
		op.Atime, op.Mtime = g.time(), g.time()
		if g.oneIn(3) {
			op.Flags = unix.AT_SYMLINK_NOFOLLOW
		}
	case OpAccess:
		op.Mode = uint32(g.r.IntN(unix.R_OK | unix.W_OK | unix.X_OK + 1))
	case OpCopyRange:
		op.Slot2 = g.slot(OpRead)
		op.Off, op.Off2, op.Len = g.off(), g.off(), g.len()
	}
	return op
}

// slot picks a descriptor slot. For descriptor operations it is mostly
// one the generator opened, with an access mode that suits the operation
// when there is one.
func (g *Generator) slot(k Kind) int {
	if k == OpOpen || g.oneIn(20) {
		return g.r.IntN(NumSlots)
	}
	var open, fit []int
	for i, o := range g.opened {
		if !o.open {
			continue
		}
		open = append(open, i)
		acc, dir := o.flags&unix.O_ACCMODE, o.flags&unix.O_DIRECTORY != 0
		switch k {
		case OpWrite, OpPwrite, OpFtruncate, OpFallocate, OpCopyRange:
			if acc != unix.O_RDONLY {
				fit = append(fit, i)
			}
		case OpMmapWrite:
			if acc == unix.O_RDWR {
				fit = append(fit, i)
			}
		case OpRead, OpPread, OpMmapRead:
			if acc != unix.O_WRONLY && !dir {
				fit = append(fit, i)
			}
		case OpReaddir:
			if dir {
				fit = append(fit, i)
			}
		}
	}
	if len(fit) > 0 && !g.oneIn(5) {
		return fit[g.r.IntN(len(fit))]
	}
	if len(open) > 0 {
		return open[g.r.IntN(len(open))]
	}
	return g.r.IntN(NumSlots)
}

func (g *Generator) path() string { return g.pick(Paths) }

// rootOnly are the operations that always run as root. Natively, each
// clears the set-ID bits of the file it changes when the caller
// lacks CAP_FSETID (file_modified). Through FUSE with
// FUSE_HANDLE_KILLPRIV_V2 the kernel leaves that to the server but says
// so only in WRITE, SETATTR and OPEN (FUSE_WRITE_KILL_SUIDGID,
// FATTR_KILL_SUIDGID, FUSE_OPEN_KILL_SUIDGID): FUSE_FALLOCATE and
// FUSE_COPY_FILE_RANGE carry no such flag, so the server cannot tell and
// the difference is the protocol's.
var rootOnly = [numKinds]bool{OpFallocate: true, OpCopyRange: true}

// Users are the callers operations run as (see Op.User): mostly root,
// and two unprivileged users, so that files owned by one are used by
// the other.
const (
	nobody    = 65534
	otherUser = 1000
)

var users = []int{0, 0, 0, nobody, otherUser}

func (g *Generator) user() int { return users[g.r.IntN(len(users))] }

func (g *Generator) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *Generator) pick32(s []uint32) uint32 { return s[g.r.IntN(len(s))] }

func (g *Generator) pickInt(s []int) int { return s[g.r.IntN(len(s))] }

// oneIn is true once in n draws.
func (g *Generator) oneIn(n int) bool { return g.r.IntN(n) == 0 }

func (g *Generator) openFlags() int {
	f := g.pickInt([]int{unix.O_RDONLY, unix.O_WRONLY, unix.O_RDWR, unix.O_RDWR})
	if !g.oneIn(3) {
		f |= unix.O_CREAT
		if g.oneIn(5) {
			f |= unix.O_EXCL
		}
	}
	bits := []struct {
		flag, oneIn int
	}{{unix.O_TRUNC, 7}, {unix.O_APPEND, 6}, {unix.O_DIRECTORY, 15}, {unix.O_NOFOLLOW, 15}}
	for _, b := range bits {
		if g.oneIn(b.oneIn) {
			f |= b.flag
		}
	}
	return f
}

// off returns an offset: mostly small, often at a page boundary, rarely
// far out.
func (g *Generator) off() int64 {
	switch r := g.r.IntN(100); {
	case r < 10:
		return 0
	case r < 30:
		return max(0, int64(g.r.IntN(maxSmallOff/pageSize+1)*pageSize+g.r.IntN(3)-1))
	case r < 32:
		return int64(farOff + g.r.IntN(maxSmallOff))
	case r < 60:
		return int64(g.r.IntN(2 * pageSize))
	}
	return int64(g.r.IntN(maxSmallOff))
}

// len returns a length: mostly under a page, sometimes a few pages.
func (g *Generator) len() int64 {
	switch g.r.IntN(8) {
	case 0:
		return int64(1 + g.r.IntN(16))
	case 1:
		return pageSize
	case 2:
		return int64(1 + g.r.IntN(maxLen))
	}
	return int64(1 + g.r.IntN(pageSize))
}

// time returns a utimensat time: a sentinel time, NOW or OMIT.
func (g *Generator) time() Timespec {
	switch g.r.IntN(6) {
	case 0:
		return Timespec{Nsec: unix.UTIME_NOW}
	case 1:
		return Timespec{Nsec: unix.UTIME_OMIT}
	}
	return Timespec{Sec: SentinelSec + int64(g.r.IntN(sentinelSpan)), Nsec: int64(g.r.IntN(int(time.Second)))}
}

// Ops returns the first n operations of seed's stream.
func Ops(seed int64, n int) []Op {
	g := NewGenerator(seed)
	ops := make([]Op, n)
	for i := range ops {
		ops[i] = g.Next()
	}
	return ops
}
