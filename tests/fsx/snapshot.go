package fsx

import (
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Entry is what a snapshot records for one name in the tree.
type Entry struct {
	// Attr summarizes the lstat attributes compared: type, permission
	// bits, link count, owner, size and the mtime class (see statInfo).
	Attr string
	// Target is a symlink's target.
	Target string
	// Size and Sum are a regular file's length and maphash of its
	// contents; Diff rereads the files to show where two differ.
	Size int64
	Sum  uint64
	// Xattrs lists name=value pairs, sorted by name.
	Xattrs []string
	// Links lists every path of the tree with the same inode, when there
	// are several: inode numbers themselves differ between the sides, but
	// which names share an inode must not.
	Links string
	// Err records an error met while reading the entry.
	Err string

	key inodeKey
	abs string // where the entry was found
}

type inodeKey struct{ dev, ino uint64 }

// Snapshot is the observable state of a side: every name under its root
// (the root itself as ".") and what every descriptor slot refers to.
type Snapshot struct {
	Entries map[string]*Entry
	Slots   [NumSlots]string
	buf     []byte // scratch for reads and xattr lists
	val     []byte // scratch for xattr values
}

// sumSeed seeds the content hashes; one seed for the process, so that
// the two sides' sums compare.
var sumSeed = maphash.MakeSeed()

// maxSnapshotData bounds the bytes read from one file; the generator's
// offsets keep files far smaller.
const maxSnapshotData = 8 << 20

// statInfo summarizes the attributes that are compared. st_ino, st_dev,
// st_blocks, st_blksize, atime and ctime are left out: see the package
// documentation.
func statInfo(st *unix.Stat_t) string {
	s := fmt.Sprintf("%s %#o nlink=%d uid=%d gid=%d size=%d mtime=%s",
		typeName(st.Mode), st.Mode&0o7777, st.Nlink, st.Uid, st.Gid, st.Size, mtimeClass(st.Mtim))
	if t := st.Mode & unix.S_IFMT; t == unix.S_IFCHR || t == unix.S_IFBLK {
		s += fmt.Sprintf(" rdev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return s
}

// mtimeClass is a time set by a utimensat operation, exactly, or
// "recent" for any time the kernel chose: those differ between the sides
// by when the operation ran.
func mtimeClass(ts unix.Timespec) string {
	if ts.Sec >= SentinelSec && ts.Sec < SentinelSec+sentinelSpan {
		return fmt.Sprintf("%d.%09d", ts.Sec, ts.Nsec)
	}
	return "recent"
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "reg"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "lnk"
	case unix.S_IFCHR:
		return "chr" // a RENAME_WHITEOUT whiteout
	}
	return fmt.Sprintf("type%#o", mode&unix.S_IFMT)
}

// Take records the state of side s.
func Take(s *Side) *Snapshot {
	snap := &Snapshot{Entries: map[string]*Entry{}, buf: make([]byte, scratchSize), val: make([]byte, scratchSize)}
	snap.walk(s.Root, ".")
	byInode := map[inodeKey][]string{}
	for p, e := range snap.Entries {
		if e.key != (inodeKey{}) {
			byInode[e.key] = append(byInode[e.key], p)
		}
	}
	for _, ps := range byInode {
		if len(ps) > 1 {
			slices.Sort(ps)
			l := strings.Join(ps, " ")
			for _, p := range ps {
				snap.Entries[p].Links = l
			}
		}
	}
	for i, fd := range s.fds {
		snap.Slots[i] = slotInfo(fd, byInode)
	}
	return snap
}

// walk records rel (at path abs) and, for a directory, everything below.
func (snap *Snapshot) walk(abs, rel string) {
	e := &Entry{abs: abs}
	snap.Entries[rel] = e
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		e.Err = "lstat: " + unix.ErrnoName(errnoOf(err))
		return
	}
	e.key = inodeKey{st.Dev, st.Ino}
	e.Attr = statInfo(&st)
	e.Xattrs, e.Err = snap.xattrsOf(abs)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		var err error
		if e.Size, e.Sum, err = snap.sumFile(abs); err != nil {
			e.Err += " read: " + unix.ErrnoName(errnoOf(err))
		}
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlink(abs, buf)
		if err != nil {
			e.Err += " readlink: " + unix.ErrnoName(errnoOf(err))
		} else {
			e.Target = string(buf[:n])
		}
	case unix.S_IFDIR:
		fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			e.Err += " opendir: " + unix.ErrnoName(errnoOf(err))
			return
		}
		names, err := readdirFd(fd)
		unix.Close(fd)
		if err != nil {
			e.Err += " readdir: " + unix.ErrnoName(errnoOf(err))
			return
		}
		for _, n := range names {
			c := n
			if rel != "." {
				c = rel + "/" + n
			}
			snap.walk(abs+"/"+n, c)
		}
	}
}

// scratchSize is the size of a snapshot's scratch buffers: the largest
// xattr list or value (64 KiB on Linux), and the read size.
const scratchSize = 64 << 10

// xattrsOf returns the extended attributes of abs (not following a
// symlink) as sorted name=value strings.
func (snap *Snapshot) xattrsOf(abs string) ([]string, string) {
	n, err := unix.Llistxattr(abs, snap.buf)
	if err != nil {
		return nil, " llistxattr: " + unix.ErrnoName(errnoOf(err))
	}
	var out []string
	errs := ""
	for _, name := range xattrList(snap.buf[:n]) {
		v, err := unix.Lgetxattr(abs, name, snap.val)
		if err != nil {
			errs += fmt.Sprintf(" lgetxattr %s: %s", name, unix.ErrnoName(errnoOf(err)))
			continue
		}
		out = append(out, fmt.Sprintf("%s=%x", name, snap.val[:v]))
	}
	return out, errs
}

// sumFile reads regular file abs and returns its length and the maphash
// of its contents.
func (snap *Snapshot) sumFile(abs string) (int64, uint64, error) {
	var h maphash.Hash
	h.SetSeed(sumSeed)
	n, err := readFile(abs, snap.buf, func(b []byte) { h.Write(b) })
	return n, h.Sum64(), err
}

// readFile reads regular file abs with buffer buf, up to
// maxSnapshotData bytes, handing each chunk to f, and returns the length
// read.
func readFile(abs string, buf []byte, f func([]byte)) (int64, error) {
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var total int64
	for total < maxSnapshotData {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
		f(buf[:n])
		total += int64(n)
	}
	return total, nil
}

// contents reads the whole of regular file abs, for reports.
func contents(abs string) []byte {
	var data []byte
	readFile(abs, make([]byte, scratchSize), func(b []byte) { data = append(data, b...) })
	return data
}

// slotInfo summarizes descriptor fd: its attributes, its offset (for a
// regular file) and the paths of the tree that name its inode. A
// directory's offset is a backing hash cookie and is not compared.
func slotInfo(fd int, byInode map[inodeKey][]string) string {
	if fd < 0 {
		return "closed"
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "fstat: " + unix.ErrnoName(errnoOf(err))
	}
	names := byInode[inodeKey{st.Dev, st.Ino}]
	slices.Sort(names)
	s := fmt.Sprintf("%s names=%v", statInfo(&st), names)
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		off, err := unix.Seek(fd, 0, unix.SEEK_CUR)
		if err != nil {
			s += " offset: " + unix.ErrnoName(errnoOf(err))
		} else {
			s += fmt.Sprintf(" offset=%d", off)
		}
	}
	return s
}

// Diff describes every difference between snapshots a and b, of sides
// named an and bn; nil means none.
func Diff(a, b *Snapshot, an, bn string) []string {
	var d []string
	paths := slices.Sorted(maps.Keys(a.Entries))
	for p := range b.Entries {
		if _, ok := a.Entries[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		ea, eb := a.Entries[p], b.Entries[p]
		switch {
		case eb == nil:
			d = append(d, fmt.Sprintf("%s: only on %s (%s)", p, an, ea.Attr))
			continue
		case ea == nil:
			d = append(d, fmt.Sprintf("%s: only on %s (%s)", p, bn, eb.Attr))
			continue
		}
		field := func(name, x, y string) {
			if x != y {
				d = append(d, fmt.Sprintf("%s: %s: %s has %q, %s has %q", p, name, an, x, bn, y))
			}
		}
		field("attributes", ea.Attr, eb.Attr)
		field("symlink target", ea.Target, eb.Target)
		field("xattrs", strings.Join(ea.Xattrs, " "), strings.Join(eb.Xattrs, " "))
		field("hard links", ea.Links, eb.Links)
		field("errors", ea.Err, eb.Err)
		if ea.Size != eb.Size || ea.Sum != eb.Sum {
			s := dataDiff(contents(ea.abs), contents(eb.abs))
			if s == "" {
				s = fmt.Sprintf("%d bytes, hash %#x, vs %d bytes, hash %#x; equal when reread", ea.Size, ea.Sum, eb.Size, eb.Sum)
			}
			d = append(d, fmt.Sprintf("%s: data: %s (%s vs %s)", p, s, an, bn))
		}
	}
	for i := range a.Slots {
		if a.Slots[i] != b.Slots[i] {
			d = append(d, fmt.Sprintf("slot s%d: %s has %q, %s has %q", i, an, a.Slots[i], bn, b.Slots[i]))
		}
	}
	return d
}

// dataDiff says where x and y first differ, or "" if they are equal.
func dataDiff(x, y []byte) string {
	n := min(len(x), len(y))
	for i := range n {
		if x[i] != y[i] {
			end := min(n, i+maxShownData)
			return fmt.Sprintf("first difference at byte %d of %d/%d: %x vs %x", i, len(x), len(y), x[i:end], y[i:end])
		}
	}
	if len(x) != len(y) {
		return fmt.Sprintf("lengths %d vs %d, same up to %d", len(x), len(y), n)
	}
	return ""
}
