package stress

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The namespace the clients fight over: sharedDirs directories, each with
// names n0..n<names-1>, which may be files or directories; a directory
// name may hold m0..m<subNames-1>. Small, so that almost every operation
// races another one on the same name.
const (
	sharedDirs = 3
	names      = 16
	subNames   = 4
	// subPathOneIn: one path in subPathOneIn is two levels deep.
	subPathOneIn = 4
	// payload is how much a created file gets written.
	payload = 100
	// statPerList is how many entries a listing stats afterwards.
	statPerList = 4
	// maxBad bounds the unexpected errors a client reports in detail.
	maxBad = 20
)

// op is one kind of client operation.
type op int

const (
	opCreate op = iota
	opRead
	opUnlink
	opRename
	opLink
	opMkdir
	opRmdir
	opList
	opStat
	nOps
)

var opNames = [nOps]string{"create", "read", "unlink", "rename", "link", "mkdir", "rmdir", "list", "stat"}

func (o op) String() string { return opNames[o] }

// weights is how often each operation is picked.
var weights = [nOps]int{
	opCreate: 6, opRead: 4, opUnlink: 4, opRename: 5, opLink: 3, opMkdir: 3, opRmdir: 3, opList: 3, opStat: 4,
}

// allowedErrnos are the errors a local filesystem gives each operation when
// other processes change the same names concurrently (Linux, rename(2),
// link(2) and so on). Anything else fails the test: in particular EIO,
// ESTALE, ENOTCONN, EBADF, ENOMEM, EOVERFLOW and EINVAL outside rename.
// EINTR is retried, as Go's os package does, and never reported.
//
//   - ENOENT: the name, or the directory holding it, is gone.
//   - ENOTDIR: a path component, or rename's target for a directory, is a
//     file.
//   - EISDIR: unlink of a directory; rename of a file onto a directory;
//     open for writing of a directory.
//   - EEXIST: O_EXCL create, mkdir or link onto an existing name; rename
//     onto a non-empty directory (POSIX allows EEXIST or ENOTEMPTY).
//   - ENOTEMPTY: rmdir of, or rename onto, a non-empty directory.
//   - EINVAL: rename of a directory into its own subtree.
//   - EPERM: link of a directory.
//
// The steps after a successful open or opendir (write, fstat, read,
// close) must not fail at all, except that getdents of a directory removed
// since it was opened fails with ENOENT (Linux's dead directory), and a
// stat of a listed name may find it gone (ENOENT).
var allowedErrnos = [nOps][]unix.Errno{
	opCreate: {unix.ENOENT, unix.ENOTDIR, unix.EEXIST, unix.EISDIR},
	opRead:   {unix.ENOENT, unix.ENOTDIR},
	opUnlink: {unix.ENOENT, unix.ENOTDIR, unix.EISDIR},
	opRename: {unix.ENOENT, unix.ENOTDIR, unix.EISDIR, unix.EEXIST, unix.ENOTEMPTY, unix.EINVAL},
	opLink:   {unix.ENOENT, unix.ENOTDIR, unix.EEXIST, unix.EPERM},
	opMkdir:  {unix.ENOENT, unix.ENOTDIR, unix.EEXIST},
	opRmdir:  {unix.ENOENT, unix.ENOTDIR, unix.ENOTEMPTY},
	opList:   {unix.ENOENT, unix.ENOTDIR},
	opStat:   {unix.ENOENT, unix.ENOTDIR},
}

// tally is what clients did and saw. It is encoded as JSON by child
// processes.
type tally struct {
	Ops    map[string]uint64 // successful and failed operations, by op
	Errs   map[string]uint64 // "op errno" → count, allowed errors only
	Bad    []string          // unexpected errors, the first maxBad
	NBad   uint64
	EINTRs uint64
}

func newTally() *tally {
	return &tally{Ops: map[string]uint64{}, Errs: map[string]uint64{}}
}

func (t *tally) add(o *tally) {
	for k, v := range o.Ops {
		t.Ops[k] += v
	}
	for k, v := range o.Errs {
		t.Errs[k] += v
	}
	for _, b := range o.Bad {
		if len(t.Bad) < maxBad {
			t.Bad = append(t.Bad, b)
		}
	}
	t.NBad += o.NBad
	t.EINTRs += o.EINTRs
}

// client is one goroutine of operations on the namespace below root.
type client struct {
	root string
	rng  *rand.Rand
	t    *tally
	buf  []byte
	dent []byte
}

func newClient(root string, seed uint64, t *tally) *client {
	return &client{root: root, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), t: t,
		buf: make([]byte, 4096), dent: make([]byte, 8192)}
}

// layout creates the shared directories below root.
func layout(root string) error {
	for d := range sharedDirs {
		if err := unix.Mkdir(filepath.Join(root, "s"+strconv.Itoa(d)), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// path returns a random name of the namespace.
func (c *client) path() string {
	p := filepath.Join(c.root, "s"+strconv.Itoa(c.rng.IntN(sharedDirs)), "n"+strconv.Itoa(c.rng.IntN(names)))
	if c.rng.IntN(subPathOneIn) == 0 {
		p = filepath.Join(p, "m"+strconv.Itoa(c.rng.IntN(subNames)))
	}
	return p
}

// dir returns a shared directory or a random first-level name, to list.
func (c *client) dir() string {
	d := filepath.Join(c.root, "s"+strconv.Itoa(c.rng.IntN(sharedDirs)))
	if c.rng.IntN(2) == 0 {
		d = filepath.Join(d, "n"+strconv.Itoa(c.rng.IntN(names)))
	}
	return d
}

func (c *client) pick() op {
	total := 0
	for _, w := range weights {
		total += w
	}
	r := c.rng.IntN(total)
	for o, w := range weights {
		if r < w {
			return op(o)
		}
		r -= w
	}
	panic("unreachable")
}

// retry calls fn until it fails with something other than EINTR.
func (c *client) retry(fn func() error) error {
	for {
		err := fn()
		if err != unix.EINTR {
			return err
		}
		c.t.EINTRs++
	}
}

// check records err for op: nothing if nil, a count if it is allowed for
// op (and step is the operation itself, not a step after it succeeded),
// a failure otherwise.
func (c *client) check(o op, step string, err error, args ...string) {
	if err == nil {
		return
	}
	errno, ok := err.(unix.Errno)
	if ok && (step == "" && slices.Contains(allowedErrnos[o], errno) ||
		(step == "getdents" || step == "fstatat") && errno == unix.ENOENT) {
		key := o.String() + " " + unix.ErrnoName(errno)
		if step != "" {
			key += "(" + step + ")"
		}
		c.t.Errs[key]++
		return
	}
	c.t.NBad++
	if len(c.t.Bad) < maxBad {
		what := o.String()
		if step != "" {
			what += " (" + step + ")"
		}
		c.t.Bad = append(c.t.Bad, fmt.Sprintf("%s %s: %v (%s)", what, strings.Join(args, " → "), err, errnoName(err)))
	}
}

func errnoName(err error) string {
	if e, ok := err.(unix.Errno); ok {
		return unix.ErrnoName(e)
	}
	return "not an errno"
}

// run performs operations until ctx is done.
func (c *client) run(ctx context.Context) {
	for ctx.Err() == nil {
		o := c.pick()
		c.t.Ops[o.String()]++
		c.do(o)
	}
}

func (c *client) do(o op) {
	switch o {
	case opCreate:
		p := c.path()
		var fd int
		err := c.retry(func() (err error) {
			fd, err = unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
			return err
		})
		c.check(o, "", err, p)
		if err != nil {
			return
		}
		var n int
		err = c.retry(func() (err error) {
			n, err = unix.Write(fd, c.buf[:payload])
			return err
		})
		if err == nil && n != payload {
			err = fmt.Errorf("wrote %d bytes of %d", n, payload)
		}
		c.check(o, "write", err, p)
		c.check(o, "close", unix.Close(fd), p)
	case opRead:
		p := c.path()
		var fd int
		err := c.retry(func() (err error) {
			fd, err = unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			return err
		})
		c.check(o, "", err, p)
		if err != nil {
			return
		}
		var st unix.Stat_t
		err = c.retry(func() error { return unix.Fstat(fd, &st) })
		c.check(o, "fstat", err, p)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			err = c.retry(func() error {
				_, err := unix.Pread(fd, c.buf, 0)
				return err
			})
			c.check(o, "pread", err, p)
		}
		c.check(o, "close", unix.Close(fd), p)
	case opUnlink:
		p := c.path()
		c.check(o, "", c.retry(func() error { return unix.Unlink(p) }), p)
	case opRename:
		a, b := c.path(), c.path()
		c.check(o, "", c.retry(func() error { return unix.Rename(a, b) }), a, b)
	case opLink:
		a, b := c.path(), c.path()
		c.check(o, "", c.retry(func() error { return unix.Link(a, b) }), a, b)
	case opMkdir:
		p := c.path()
		c.check(o, "", c.retry(func() error { return unix.Mkdir(p, 0o755) }), p)
	case opRmdir:
		p := c.path()
		c.check(o, "", c.retry(func() error { return unix.Rmdir(p) }), p)
	case opList:
		c.list(c.dir())
	case opStat:
		p := c.path()
		var st unix.Stat_t
		c.check(o, "", c.retry(func() error { return unix.Lstat(p, &st) }), p)
	}
}

// list reads directory d to the end and stats a few of its entries.
func (c *client) list(d string) {
	var fd int
	err := c.retry(func() (err error) {
		fd, err = unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	c.check(opList, "", err, d)
	if err != nil {
		return
	}
	var ents []string
	for {
		var n int
		err := c.retry(func() (err error) {
			n, err = unix.Getdents(fd, c.dent)
			return err
		})
		c.check(opList, "getdents", err, d)
		if err != nil || n == 0 {
			break
		}
		_, _, ents = unix.ParseDirent(c.dent[:n], -1, ents)
	}
	for range min(statPerList, len(ents)) {
		name := ents[c.rng.IntN(len(ents))]
		var st unix.Stat_t
		err := c.retry(func() error { return unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
		c.check(opList, "fstatat", err, d, name)
	}
	c.check(opList, "close", unix.Close(fd), d)
}
