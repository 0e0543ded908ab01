package security

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
)

// loopOps are the child operations that loop: they run in the child, as
// another user, against a mount while the test changes the backing
// directory, and report what they saw as their output (a loopReport in
// JSON).
var loopOps = map[string]func(op) (string, error){
	"createloop": createLoop,
	"lookuploop": lookupLoop,
	"makeloop":   makeLoop,
}

// The bounds of a loop on either side of a race: it stops after
// raceLoopMax rounds or raceLoopTime, whichever comes first. They bound
// the test's length, never decide its outcome.
const (
	raceLoopMax  = 20000
	raceLoopTime = time.Second
	// hostLoopTime bounds the host's side if the child never says it is
	// done (it died).
	hostLoopTime = 10 * time.Second
)

// The files of the race tests.
const (
	secretData = "SECRET"
	publicData = "public"
	publicUID  = 4321 // the owner of the public file, so that uids tell the files apart
	markData   = "MARK"
)

// loopReport is what a looping child op saw.
type loopReport struct {
	Rounds  int            // attempts made
	Opened  int            // opens that succeeded
	Denied  int            // opens refused with EACCES
	Other   map[string]int // other failures, by errno name
	Bad     []string       // the first violations of the invariant
	BadSeen int            // all violations
}

func (r *loopReport) bad(format string, args ...any) {
	r.BadSeen++
	if len(r.Bad) < 10 {
		r.Bad = append(r.Bad, fmt.Sprintf(format, args...))
	}
}

func (r *loopReport) fail(err error) {
	if err == unix.EACCES {
		r.Denied++
		return
	}
	if r.Other == nil {
		r.Other = map[string]int{}
	}
	r.Other[errName(err)]++
}

func (r *loopReport) String() string {
	return fmt.Sprintf("%d rounds, %d opened, %d denied, other failures %v, %d violations", r.Rounds, r.Opened, r.Denied, r.Other, r.BadSeen)
}

func (r *loopReport) out() (string, error) {
	b, err := json.Marshal(r)
	return string(b), err
}

// createLoop opens Path with O_CREAT|O_RDWR (O_TRUNC every other round)
// as the child's user, rounds times. What it opens must be the user's own
// new file or a file the user may write anyway (mode 0666): never one of
// root's 0600 files, and it must never read the secret. It writes a mark
// into what it opened, and removes its own file again so that the host
// can put its files under the name.
func createLoop(o op) (string, error) {
	var r loopReport
	me := uint32(os.Getuid())
	buf := make([]byte, 64)
	deadline := time.Now().Add(raceLoopTime)
	for ; r.Rounds < o.N && time.Now().Before(deadline); r.Rounds++ {
		flags := unix.O_CREAT | unix.O_RDWR | unix.O_CLOEXEC
		if r.Rounds%2 == 1 {
			flags |= unix.O_TRUNC
		}
		fd, err := unix.Open(o.Path, flags, 0o644)
		if err != nil {
			r.fail(err)
			continue
		}
		r.Opened++
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			r.bad("fstat of an opened %s: %v", o.Path, err)
		} else if st.Uid != me && st.Mode&0o002 == 0 {
			r.bad("open(O_CREAT|O_RDWR) gave a writable descriptor on a file the user may not write: %s", statLine(&st))
		}
		n, err := unix.Pread(fd, buf, 0)
		if err == nil && bytes.Contains(buf[:n], []byte(secretData)) {
			r.bad("read %q through a descriptor from open(O_CREAT|O_RDWR)", buf[:n])
		}
		unix.Pwrite(fd, []byte(markData), 0)
		unix.Close(fd)
		if err == nil && st.Uid == me {
			unix.Unlink(o.Path)
		}
	}
	return r.out()
}

// lookupLoop stats, opens and reads Path as the child's user, N times at
// most. Path's name is swapped on the host between the public file (mode
// 0644, owner UID, content "public") and the secret (root's, 0600). What
// it opens must be the public file: the content "public", and the
// attributes the kernel holds for the open node, both those it cached from
// the LOOKUP (statx AT_STATX_DONT_SYNC) and those GETATTR gives, the
// public file's.
func lookupLoop(o op) (string, error) {
	var r loopReport
	buf := make([]byte, 64)
	deadline := time.Now().Add(raceLoopTime)
	for ; r.Rounds < o.N && time.Now().Before(deadline); r.Rounds++ {
		var pre unix.Stat_t
		unix.Stat(o.Path, &pre) // a LOOKUP; its answer may be either file
		fd, err := unix.Open(o.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			r.fail(err)
			continue
		}
		r.Opened++
		var cached unix.Statx_t
		cerr := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_STATX_DONT_SYNC, unix.STATX_BASIC_STATS, &cached)
		n, rerr := unix.Pread(fd, buf, 0)
		var fresh unix.Stat_t
		ferr := unix.Fstat(fd, &fresh)
		unix.Close(fd)
		data := string(buf[:max(n, 0)])
		switch {
		case cerr != nil || rerr != nil || ferr != nil:
			r.bad("statx %v, read %v, fstat %v on an opened %s", cerr, rerr, ferr, o.Path)
			continue
		case bytes.Contains(buf[:n], []byte(secretData)):
			r.bad("read %q (cached attributes mode=%#o uid=%d ino=%d)", data, cached.Mode, cached.Uid, cached.Ino)
			continue
		case data != publicData:
			r.bad("read %q, want %q", data, publicData)
		}
		if cached.Mode&0o7777 != 0o644 || cached.Uid != uint32(o.UID) {
			r.bad("read %q, but the attributes cached for the node are mode=%#o uid=%d (ino %d): not the public file's", data, cached.Mode, cached.Uid, cached.Ino)
		}
		if fresh.Mode&0o7777 != 0o644 || fresh.Uid != uint32(o.UID) || fresh.Ino != cached.Ino {
			r.bad("read %q; GETATTR gave %s ino %d, the cached attributes ino %d", data, statLine(&fresh), fresh.Ino, cached.Ino)
		}
	}
	return r.out()
}

// runLoop runs a looping op as nobody in a child while host runs in a
// goroutine until the child is done (host gets a function that says so).
// It returns the child's report and how many rounds host made.
func runLoop(t *testing.T, o op, host func(done func() bool) (int, error)) (loopReport, int) {
	t.Helper()
	var done atomic.Bool
	var wg sync.WaitGroup
	var hostRounds int
	var hostErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(hostLoopTime)
		hostRounds, hostErr = host(func() bool { return done.Load() || time.Now().After(deadline) })
	}()
	res, err := runAsErr(nobody, o)
	done.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if hostErr != nil {
		t.Fatalf("the host's side of the race: %v", hostErr)
	}
	if res[0].Err != "" {
		t.Fatalf("%s: %v", o.Op, res[0])
	}
	var r loopReport
	if err := json.Unmarshal([]byte(res[0].Out), &r); err != nil {
		t.Fatalf("%s: bad report %q: %v", o.Op, res[0].Out, err)
	}
	return r, hostRounds
}

// raceConfig is a mount configuration of the race tests.
type raceConfig struct {
	name string
	dp   bool          // default_permissions
	attr time.Duration // the attribute timeout (-1: none)
}

// The race tests' configurations. Names are never cached, so that every
// access of the client looks the name up again and races the host.
// Without default_permissions only the daemon's checks stand. With it and
// no attribute caching, the kernel checks the mode that GETATTR of the
// node gives just before an open; with attribute caching it trusts the
// attributes the LOOKUP gave.
var (
	noDefaultPermissions = raceConfig{"no_default_permissions", false, -1}
	defaultPermissions   = raceConfig{"default_permissions", true, -1}
	defaultPermsAttrs    = raceConfig{"default_permissions+attr_timeout", true, time.Second}
)

// raceMounts runs f on a native directory (the control: the invariants
// must hold there, or the test is wrong) and then on mounts over each
// transport in each configuration. f gets the backing directory and the
// directory the client uses.
func raceMounts(t *testing.T, configs []raceConfig, f func(t *testing.T, backing, client string, m *ptMount)) {
	t.Run("native", func(t *testing.T) {
		d := nativeDir(t)
		f(t, d, d, nil)
	})
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			for _, c := range configs {
				t.Run(c.name, func(t *testing.T) {
					src := newSource(t)
					m := mountPT(t, tr, src, mount.Options{AllowOther: true, DefaultPermissions: c.dp},
						server.Options{EntryTimeout: -1, AttrTimeout: c.attr})
					if hasOption(t, m.dir, "default_permissions") != c.dp {
						t.Fatalf("default_permissions is %v on the mount, want %v", !c.dp, c.dp)
					}
					f(t, src, m.dir, m)
				})
			}
		})
	}
}

// writeFile makes path with data, owner uid and mode, in that order.
func writeFile(path, data string, uid int, mode uint32) error {
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		return err
	}
	if err := os.Chown(path, uid, uid); err != nil {
		return err
	}
	return unix.Chmod(path, mode)
}

// TestCreateRace races nobody's open(O_CREAT|O_RDWR) of a name through
// the mount with root putting its own files under that name in the
// backing directory: renaming its 0600 secret there and back, linking it
// there, creating a new 0600 file there, and linking a 0666 file there
// (the control: that one nobody may open). The kernel sends CREATE when
// it believes the name free, and the daemon then finds it taken; it must
// open what it finds as nobody, who natively gets EACCES. Nobody must
// never read the secret nor hold a writable descriptor on a file it may
// not write, and the secret must stay as it was.
func TestCreateRace(t *testing.T) {
	raceMounts(t, []raceConfig{noDefaultPermissions, defaultPermissions}, func(t *testing.T, backing, client string, m *ptMount) {
		dir := filepath.Join(backing, "tmp")
		must(t, os.Mkdir(dir, 0o700))
		// Sticky, as /tmp: nobody may create names but not remove root's.
		must(t, unix.Chmod(dir, 0o1777)) // os.Chmod would drop the sticky bit
		secret, public, target := filepath.Join(dir, "secret"), filepath.Join(dir, "public"), filepath.Join(dir, "target")
		must(t, writeFile(secret, secretData, 0, 0o600))
		must(t, writeFile(public, publicData, 0, 0o666))
		var before unix.Stat_t
		must(t, unix.Lstat(secret, &before))

		var placed [4]int // how often each of the host's moves put a file under the name
		host := func(done func() bool) (int, error) {
			i := 0
			for ; i < 1<<30 && !done(); i++ {
				switch i % 4 {
				case 0:
					if unix.Renameat2(unix.AT_FDCWD, secret, unix.AT_FDCWD, target, unix.RENAME_NOREPLACE) == nil {
						placed[0]++
						if err := unix.Renameat2(unix.AT_FDCWD, target, unix.AT_FDCWD, secret, unix.RENAME_NOREPLACE); err != nil {
							return i, fmt.Errorf("rename the secret back: %v", err)
						}
					}
				case 1, 3:
					from := secret
					if i%4 == 3 {
						from = public
					}
					if unix.Link(from, target) == nil {
						placed[i%4]++
						if err := unix.Unlink(target); err != nil {
							return i, err
						}
					}
				case 2:
					fd, err := unix.Open(target, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
					if err == nil {
						placed[2]++
						unix.Write(fd, []byte(secretData))
						unix.Close(fd)
						if err := unix.Unlink(target); err != nil {
							return i, err
						}
					}
				}
			}
			return i, nil
		}
		r, hostRounds := runLoop(t, op{Op: "createloop", Path: filepath.Join(client, "tmp", "target"), N: raceLoopMax}, host)
		t.Logf("nobody: %s; host: %d rounds, placed its files %v times", r.String(), hostRounds, placed)
		checkLoop(t, r)
		if b, err := os.ReadFile(secret); err != nil || string(b) != secretData {
			t.Errorf("the secret now holds %q (%v), want %q", b, err, secretData)
		}
		var after unix.Stat_t
		must(t, unix.Lstat(secret, &after))
		if after.Ino != before.Ino || statLine(&after) != statLine(&before) || after.Mtim != before.Mtim {
			t.Errorf("the secret changed: %s mtime %v ino %d, was %s mtime %v ino %d",
				statLine(&after), after.Mtim, after.Ino, statLine(&before), before.Mtim, before.Ino)
		}
	})
}

// TestLookupRace races nobody's stat, open and read of a name "b" through
// the mount with root exchanging, in the backing directory, the files
// under "a" and "b" (renameat2 RENAME_EXCHANGE): the public file (0644,
// owner publicUID) and root's 0600 secret. Every few exchanges root puts
// new copies of both under the names, so that the daemon keeps meeting
// inodes it has no node for yet (it keeps the old ones linked elsewhere,
// so that their inode numbers are not reused). Whenever nobody's open
// succeeds it must have reached the public file, and the attributes the
// kernel holds for the node it opened (from the LOOKUP, and from GETATTR)
// must be the public file's: a LOOKUP that took the attributes from one
// resolution of the name and the node from another would mix the files.
// A third party asks the filesystem directly for lookups of "b" and
// checks that the entry's attributes and its node's (GETATTR) agree.
func TestLookupRace(t *testing.T) {
	raceMounts(t, []raceConfig{noDefaultPermissions, defaultPermissions, defaultPermsAttrs}, func(t *testing.T, backing, client string, m *ptMount) {
		attic := filepath.Join(filepath.Dir(backing), "attic-"+filepath.Base(backing))
		must(t, os.Mkdir(attic, 0o700))
		dir := filepath.Join(backing, "x")
		must(t, os.Mkdir(dir, 0o755))
		must(t, os.Chmod(dir, 0o755))
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		must(t, writeFile(a, secretData, 0, 0o600))
		must(t, writeFile(b, publicData, publicUID, 0o644))

		// fresh puts new copies of the secret and the public file under
		// their current names, keeping the old ones in the attic.
		var fresh int
		freshen := func(secretName, publicName string) error {
			for _, f := range []struct {
				name, data string
				uid        int
				mode       uint32
			}{{secretName, secretData, 0, 0o600}, {publicName, publicData, publicUID, 0o644}} {
				fresh++
				tmp := filepath.Join(attic, fmt.Sprint("new", fresh))
				old := filepath.Join(attic, fmt.Sprint("old", fresh))
				if err := writeFile(tmp, f.data, f.uid, f.mode); err != nil {
					return err
				}
				if err := unix.Link(f.name, old); err != nil {
					return err
				}
				if err := unix.Rename(tmp, f.name); err != nil {
					return err
				}
			}
			return nil
		}
		host := func(done func() bool) (int, error) {
			i := 0
			for ; i < 1<<30 && !done(); i++ {
				// Both ways round, so that neither file spends longer
				// under "b".
				if i%32 == 15 || i%32 == 30 {
					secretName, publicName := a, b
					if i%2 == 1 { // an odd number of exchanges so far: a is public
						secretName, publicName = b, a
					}
					if err := freshen(secretName, publicName); err != nil {
						return i, err
					}
				}
				if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
					return i, err
				}
			}
			return i, nil
		}

		var direct directReport
		stopDirect := make(chan struct{})
		var wg sync.WaitGroup
		if m != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				direct = directLookups(m, stopDirect)
			}()
		}
		r, hostRounds := runLoop(t, op{Op: "lookuploop", Path: filepath.Join(client, "x", "b"), N: raceLoopMax, UID: publicUID}, host)
		close(stopDirect)
		wg.Wait()
		t.Logf("nobody: %s; host: %d rounds, %d new files", r.String(), hostRounds, fresh)
		checkLoop(t, r)
		if m != nil {
			t.Logf("direct lookups: %d, %d found %q, %d with another file's attributes", direct.lookups, direct.found, "b", direct.mismatches)
			for _, b := range direct.bad {
				t.Error("direct lookup:", b)
			}
			if direct.found == 0 {
				t.Error("no direct lookup succeeded")
			}
		}
		for _, p := range []string{a, b} {
			var st unix.Stat_t
			must(t, unix.Lstat(p, &st))
			data, err := os.ReadFile(p)
			must(t, err)
			if string(data) == secretData && (st.Mode&0o7777 != 0o600 || st.Uid != 0) ||
				string(data) == publicData && (st.Mode&0o7777 != 0o644 || st.Uid != publicUID) {
				t.Errorf("%s: %s with %q: the files changed", p, statLine(&st), data)
			}
		}
	})
}

// directReport is what directLookups saw.
type directReport struct {
	lookups, found int
	mismatches     int // entries whose node is another file
	bad            []string
}

// directLookups looks "x/b" up in m's filesystem directly, as root, until
// stop closes, and checks that the entry's attributes are those of its
// node: GETATTR of the node must give the same inode, mode and owner.
func directLookups(m *ptMount, stop <-chan struct{}) directReport {
	ctx := context.Background()
	fsys := m.fsys
	var r directReport
	var xe ringfuse.Entry
	if e := fsys.Lookup(ctx, fsys.Root(), "x", &xe); e != 0 {
		r.bad = append(r.bad, fmt.Sprintf("lookup x: %v", e))
		return r
	}
	defer fsys.Forget(xe.Node)
	for {
		select {
		case <-stop:
			return r
		default:
		}
		r.lookups++
		var e ringfuse.Entry
		if fsys.Lookup(ctx, xe.Node, "b", &e) != 0 {
			continue
		}
		r.found++
		var ao ringfuse.AttrOut
		errno := fsys.GetAttr(ctx, e.Node, 0, false, &ao)
		if errno != 0 {
			r.bad = append(r.bad, fmt.Sprintf("getattr of the node a lookup gave: %v", errno))
		} else if ao.Attr.Ino != e.Attr.Ino || ao.Attr.Mode != e.Attr.Mode || ao.Attr.UID != e.Attr.UID {
			r.mismatches++
			if len(r.bad) < 10 {
				r.bad = append(r.bad, fmt.Sprintf("the entry says ino %d mode %#o uid %d, its node (GETATTR) ino %d mode %#o uid %d",
					e.Attr.Ino, e.Attr.Mode, e.Attr.UID, ao.Attr.Ino, ao.Attr.Mode, ao.Attr.UID))
			}
		}
		fsys.Forget(e.Node)
	}
}

// makeLoop makes and removes a symlink, a FIFO and a directory under the
// name Path, in turn, with umask 0, N times at most. It only counts what
// happened: the host checks its own files.
//
// If Path2 is set, makeLoop makes each object under a new name (Path
// followed by the round) and removes none, while a goroutine renames
// Path2 (another user's file in a directory of the child's user, in the
// backing directory) over the newest name there and back. (Through the
// mount the renames could not race: the kernel holds the directory's
// lock for the whole of a mknod.)
func makeLoop(o op) (string, error) {
	var r loopReport
	unix.Umask(0)
	var round atomic.Int64
	name := func(i int64) string {
		if o.Path2 == "" {
			return o.Path
		}
		return fmt.Sprint(o.Path, i)
	}
	if o.Path2 != "" {
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				n := filepath.Join(filepath.Dir(o.Path2), filepath.Base(name(round.Load())))
				if unix.Rename(o.Path2, n) == nil {
					unix.Renameat2(unix.AT_FDCWD, n, unix.AT_FDCWD, o.Path2, unix.RENAME_NOREPLACE)
				}
			}
		}()
		defer wg.Wait()
		defer stop.Store(true)
	}
	deadline := time.Now().Add(raceLoopTime)
	for ; r.Rounds < o.N && time.Now().Before(deadline); r.Rounds++ {
		p := name(int64(r.Rounds))
		round.Store(int64(r.Rounds))
		var err error
		switch r.Rounds % 3 {
		case 0:
			err = unix.Symlink("target", p)
		case 1:
			err = unix.Mknod(p, unix.S_IFIFO|0o666, 0)
		case 2:
			err = unix.Mkdir(p, 0o777)
		}
		if err != nil {
			r.fail(err)
			continue
		}
		r.Opened++
		switch {
		case o.Path2 != "":
		case r.Rounds%3 == 2:
			unix.Rmdir(p)
		default:
			unix.Unlink(p)
		}
	}
	return r.out()
}

// TestMakeRace races nobody's symlink, mknod and mkdir of a name through
// the mount, with umask 0, with root renaming its own 0600 file and 0700
// directory over that name in the backing directory and back. The daemon
// makes the object as the caller and then finds it again by name; what it
// finds then may be root's file or directory, which it must leave alone:
// natively nobody's calls never change root's objects. The daemon runs
// with umask 022 here (a library user's default), so that a daemon which
// restores the bits its umask took from a new object has bits to restore.
func TestMakeRace(t *testing.T) {
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	raceMounts(t, []raceConfig{noDefaultPermissions, defaultPermissions}, func(t *testing.T, backing, client string, m *ptMount) {
		dir := filepath.Join(backing, "tmp")
		must(t, os.Mkdir(dir, 0o700))
		must(t, unix.Chmod(dir, 0o1777)) // os.Chmod would drop the sticky bit
		victim, victimDir, name := filepath.Join(dir, "victim"), filepath.Join(dir, "victimdir"), filepath.Join(dir, "n")
		must(t, writeFile(victim, secretData, 0, 0o600))
		must(t, os.Mkdir(victimDir, 0o700))
		must(t, os.Chmod(victimDir, 0o700))
		var placed [2]int
		host := func(done func() bool) (int, error) {
			i := 0
			for ; i < 1<<30 && !done(); i++ {
				from := victim
				if i%2 == 1 {
					from = victimDir
				}
				// Over whatever nobody made there (a directory only
				// over a directory), then back.
				if unix.Rename(from, name) == nil {
					placed[i%2]++
					if err := unix.Renameat2(unix.AT_FDCWD, name, unix.AT_FDCWD, from, unix.RENAME_NOREPLACE); err != nil {
						// Only nobody, through the mount, was there to
						// take it, which natively it may not.
						return i, fmt.Errorf("root's %s is gone from the name %s (removed or renamed through the mount?): %v", from, name, err)
					}
				}
			}
			return i, nil
		}
		r, hostRounds := runLoop(t, op{Op: "makeloop", Path: filepath.Join(client, "tmp", "n"), N: raceLoopMax}, host)
		t.Logf("nobody: %s; host: %d rounds, put its file and directory under the name %v times", r.String(), hostRounds, placed)
		if r.Opened == 0 {
			t.Errorf("nobody never made anything (%s)", r.String())
		}
		var st unix.Stat_t
		must(t, unix.Lstat(victim, &st))
		if st.Mode != unix.S_IFREG|0o600 || st.Uid != 0 {
			t.Errorf("root's file is now %s, was mode=0100600 uid=0", statLine(&st))
		}
		must(t, unix.Lstat(victimDir, &st))
		if st.Mode != unix.S_IFDIR|0o700 || st.Uid != 0 {
			t.Errorf("root's directory is now %s, was mode=040700 uid=0", statLine(&st))
		}
	})
}

// TestMakeRaceAlone is TestMakeRace without root's help: nobody owns a
// directory in which root left a 0600 file, so nobody may rename that
// file, and does, in the backing directory (a local user may reach SOURCE
// itself), over the name under which it makes, through the mount, its
// symlinks, FIFOs and directories. Root's file must
// keep its mode: a daemon that gives back, as root, the bits its umask
// took from what it finds under the name after making it would hand
// nobody write access to root's file.
func TestMakeRaceAlone(t *testing.T) {
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	raceMounts(t, []raceConfig{noDefaultPermissions, defaultPermissions}, func(t *testing.T, backing, client string, m *ptMount) {
		dir := filepath.Join(backing, "home")
		must(t, os.Mkdir(dir, 0o755))
		must(t, os.Chown(dir, nobodyID, nobodyID))
		must(t, os.Chmod(dir, 0o755))
		victim := filepath.Join(dir, "rootfile")
		must(t, writeFile(victim, secretData, 0, 0o600))
		r, _ := runLoop(t, op{Op: "makeloop", Path: filepath.Join(client, "home", "n"), Path2: victim, N: raceLoopMax},
			func(func() bool) (int, error) { return 0, nil })
		t.Logf("nobody: %s", r.String())
		if r.Opened == 0 {
			t.Errorf("nobody never made anything (%s)", r.String())
		}
		// The child's renamer put root's file back before it ended.
		var st unix.Stat_t
		must(t, unix.Lstat(victim, &st))
		if st.Mode != unix.S_IFREG|0o600 || st.Uid != 0 {
			t.Errorf("root's file is now %s, was mode=0100600 uid=0", statLine(&st))
		}
	})
}

// checkLoop fails t for every violation a child's loop saw, and if the
// race went only one way (never refused or never successful), in which
// case it tested nothing.
func checkLoop(t *testing.T, r loopReport) {
	t.Helper()
	for _, b := range r.Bad {
		t.Error(b)
	}
	if r.BadSeen > len(r.Bad) {
		t.Errorf("and %d more violations", r.BadSeen-len(r.Bad))
	}
	if r.Denied == 0 || r.Opened == 0 {
		t.Errorf("nobody was never refused or never succeeded (%s): the race did not happen", r.String())
	}
}
