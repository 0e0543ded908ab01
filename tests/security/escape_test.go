package security

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/wire"
)

// The outside tree: a directory next to SOURCE holding the canary, which
// no client may change, and a file hard-linked into SOURCE natively.
const (
	outsideName   = "outside"
	canaryName    = "canary"
	canaryData    = "canary data\n"
	canaryMode    = 0o640
	canaryOwner   = 4321
	canaryMtime   = 1_000_000_000
	sharedName    = "shared"
	sharedData    = "shared by a hard link\n"
	canaryUserX   = "user.tag"
	canaryTrustX  = "trusted.tag"
	canaryXValue  = "original"
	pwnedData     = "pwned"
	pwnedMode     = 0o777
	pwnedOwner    = nobodyID
	pwnedTime     = 12345
	outsideRelSrc = "../" + outsideName // the outside directory, relative to SOURCE
)

// makeOutside makes the outside tree in base, next to SOURCE, and returns
// its directory.
func makeOutside(t *testing.T, base string) string {
	t.Helper()
	out := filepath.Join(base, outsideName)
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o755); err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(out, canaryName)
	must(t, os.WriteFile(c, []byte(canaryData), 0o600))
	must(t, os.Chown(c, canaryOwner, canaryOwner))
	must(t, os.Chmod(c, canaryMode))
	must(t, unix.Setxattr(c, canaryUserX, []byte(canaryXValue), 0))
	must(t, unix.Setxattr(c, canaryTrustX, []byte(canaryXValue), 0))
	must(t, unix.UtimesNano(c, []unix.Timespec{{Sec: canaryMtime}, {Sec: canaryMtime}}))
	must(t, os.WriteFile(filepath.Join(out, sharedName), []byte(sharedData), 0o644))
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot describes every node under dir (dir included) by type, mode,
// owner, link count, size, mtime, ctime, content, symlink target and
// extended attributes. Any change by anyone shows, as the ctime moves.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s size=%d mtime=%d.%d ctime=%d.%d", statLine(&st), st.Size,
			st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " data=%q", data)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " target=%q", target)
		}
		buf := make([]byte, 4096)
		n, err := unix.Llistxattr(p, buf)
		if err != nil {
			return err
		}
		names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
		sort.Strings(names)
		for _, x := range names {
			if x == "" {
				continue
			}
			v := make([]byte, 4096)
			vn, err := unix.Lgetxattr(p, x, v)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %s=%q", x, v[:vn])
		}
		rel, _ := filepath.Rel(dir, p)
		m[rel] = b.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sameSnapshot fails unless two snapshots agree.
func sameSnapshot(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s changed:\n  before %s\n  after  %s", what, k, v, after[k])
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s: %s appeared: %s", what, k, v)
		}
	}
}

// TestNoEscape checks that no client, root or not, reaches the outside
// tree through the mount: not through symlinks in SOURCE (which the daemon
// must never follow), not through "..", not by hard links, and not by
// requests the kernel would only send after a race. The mount has
// allow_other without default_permissions, so other users have all the
// daemon's power.
func TestNoEscape(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			t.Run("symlinks", func(t *testing.T) { testEscapeSymlinks(t, tr) })
			t.Run("rename-race", func(t *testing.T) { testEscapeRace(t, tr) })
		})
	}
}

// escapeUsers are the clients of the escape tests.
var escapeUsers = []cred{root, nobody}

func testEscapeSymlinks(t *testing.T, transport string) {
	src := newSource(t)
	base := filepath.Dir(src)
	out := makeOutside(t, base)
	canary := filepath.Join(out, canaryName)
	// Inside SOURCE: symlinks to the canary and to the outside directory,
	// absolute and relative; a hard link to an outside file, made
	// natively (legitimately inside SOURCE); per-user control files and
	// symlinks that renames and unlinks may consume.
	must(t, os.Symlink(canary, filepath.Join(src, "abs")))
	must(t, os.Symlink(outsideRelSrc+"/"+canaryName, filepath.Join(src, "rel")))
	must(t, os.Symlink(out, filepath.Join(src, "absdir")))
	must(t, os.Symlink(outsideRelSrc, filepath.Join(src, "reldir")))
	must(t, os.Link(filepath.Join(out, sharedName), filepath.Join(src, "shared.link")))
	must(t, os.Mkdir(filepath.Join(src, "sub"), 0o755))
	for _, u := range escapeUsers {
		for _, l := range []string{"absR-", "absU-", "absdirR-", "absdirU-"} {
			target := canary
			if strings.HasPrefix(l, "absdir") {
				target = out
			}
			must(t, os.Symlink(target, filepath.Join(src, l+u.name)))
		}
		for _, f := range []string{"decoy-", "ctl-"} {
			p := filepath.Join(src, f+u.name)
			must(t, os.WriteFile(p, []byte("inside"), 0o644))
			must(t, os.Chown(p, int(u.uid), int(u.gid)))
		}
	}
	// Other users may make and remove names in SOURCE's root, so that
	// the renames and unlinks below are theirs to make.
	must(t, os.Chmod(src, 0o777))
	must(t, os.WriteFile(filepath.Join(src, "decoy-direct"), []byte("inside"), 0o644))
	before := snapshot(t, out)

	m := mountPT(t, transport, src, mount.Options{AllowOther: true}, server.Options{})
	mnt := m.dir
	// The relative symlinks must lead nowhere on the client's side, or a
	// client following them would legitimately reach the canary.
	if _, err := os.Lstat(filepath.Join(mnt, outsideRelSrc)); !os.IsNotExist(err) {
		t.Fatalf("%s exists (%v): the relative symlinks would reach the canary from the client too", filepath.Join(mnt, outsideRelSrc), err)
	}
	in := func(p string) string { return filepath.Join(mnt, p) }

	for _, u := range escapeUsers {
		t.Run(u.name, func(t *testing.T) {
			sfx := "-" + u.name
			type check struct {
				o op
				// want is "ok" for success, an errno name, "" for any
				// failure or "-" for anything.
				want string
			}
			var checks []check
			fail := func(o op) { checks = append(checks, check{o, ""}) }
			want := func(w string, o op) { checks = append(checks, check{o, w}) }
			for _, l := range []string{"abs", "rel"} {
				// Operations on the symlink itself: the daemon gets the
				// symlink's node and must act on the link, not its target.
				// They may succeed (on the link) or fail; the canary stays.
				checks = append(checks,
					check{op{Op: "chmodnofollow", Path: in(l), Mode: pwnedMode}, "-"},
					check{op{Op: "lchown", Path: in(l), UID: pwnedOwner, GID: pwnedOwner}, "-"},
					check{op{Op: "lsetxattr", Path: in(l), Name: canaryUserX, Data: pwnedData}, "-"},
					check{op{Op: "lsetxattr", Path: in(l), Name: canaryTrustX, Data: pwnedData}, "-"},
					check{op{Op: "lremovexattr", Path: in(l), Name: canaryTrustX}, "-"},
					check{op{Op: "lutimes", Path: in(l), N: pwnedTime}, "-"},
				)
				want("ELOOP", op{Op: "write", Path: in(l), Flags: os.O_CREATE | syscall.O_NOFOLLOW | os.O_TRUNC, Mode: 0o644, Data: pwnedData})
				want("EEXIST", op{Op: "write", Path: in(l), Flags: os.O_CREATE | os.O_EXCL, Mode: 0o644, Data: pwnedData})
			}
			// Following the relative symlink resolves on the client's side,
			// where it leads nowhere.
			for _, o := range []op{
				{Op: "chmod", Path: in("rel"), Mode: pwnedMode},
				{Op: "chown", Path: in("rel"), UID: pwnedOwner, GID: pwnedOwner},
				{Op: "truncate", Path: in("rel")},
				{Op: "setxattr", Path: in("rel"), Name: canaryUserX, Data: pwnedData},
				{Op: "utimes", Path: in("rel"), N: pwnedTime},
				{Op: "write", Path: in("rel"), Flags: os.O_CREATE | os.O_TRUNC, Mode: 0o644, Data: pwnedData},
				{Op: "read", Path: in("rel")},
				{Op: "mkdir", Path: in("reldir/new"), Mode: 0o777},
				{Op: "mknod", Path: in("reldir/fifo"), Mode: unix.S_IFIFO | 0o666},
				{Op: "write", Path: in("reldir/" + canaryName), Flags: os.O_CREATE | os.O_TRUNC, Mode: 0o644, Data: pwnedData},
				{Op: "symlink", Path: in("reldir/sl"), Target: "x"},
				{Op: "rename", Path: in("decoy" + sfx), Path2: in("reldir/" + canaryName)},
				{Op: "link", Path: in("decoy" + sfx), Path2: in("reldir/hl")},
				{Op: "unlink", Path: in("reldir/" + canaryName)},
			} {
				want("ENOENT", o)
			}
			// Links and renames of the symlinks themselves.
			want("ok", op{Op: "rename", Path: in("decoy" + sfx), Path2: in("absR" + sfx)}) // replaces the link
			want("ok", op{Op: "unlink", Path: in("absU" + sfx)})
			want("ok", op{Op: "unlink", Path: in("absdirU" + sfx)})
			want("ENOTDIR", op{Op: "rmdir", Path: in("absdirR" + sfx)})
			want("ok", op{Op: "rename", Path: in("absdirR" + sfx), Path2: in("moved" + sfx)})
			// A hard link of the symlink itself; protected_hardlinks lets
			// only its owner make one.
			if u.uid == 0 {
				want("ok", op{Op: "link", Path: in("abs"), Path2: in("hl" + sfx)})
			} else {
				checks = append(checks, check{op{Op: "link", Path: in("abs"), Path2: in("hl" + sfx)}, "-"})
			}
			// Hard links to the outside cannot be made through the mount.
			want("EXDEV", op{Op: "link", Path: in("abs"), Path2: in("hlf" + sfx), Flags: unix.AT_SYMLINK_FOLLOW})
			want("EXDEV", op{Op: "link", Path: canary, Path2: in("hln" + sfx)})
			want("EXDEV", op{Op: "rename", Path: canary, Path2: in("stolen" + sfx)})
			fail(op{Op: "linkfd", Path: canary, Path2: in("hfd" + sfx)})
			// What the daemon answers for a symlink is the link.
			want("ok", op{Op: "readlink", Path: in("abs"), Out: canary})
			want("ok", op{Op: "read", Path: in("shared.link"), Out: sharedData})
			// The controls: the same no-follow operations on a regular
			// file reach the daemon and take effect.
			ctl := in("ctl" + sfx)
			want("ok", op{Op: "chmodnofollow", Path: ctl, Mode: 0o707})
			want("ok", op{Op: "lsetxattr", Path: ctl, Name: canaryUserX, Data: pwnedData})
			want("ok", op{Op: "lutimes", Path: ctl, N: pwnedTime})
			if u.uid == 0 {
				want("ok", op{Op: "lchown", Path: ctl, UID: pwnedOwner, GID: pwnedOwner})
				want("ok", op{Op: "lsetxattr", Path: ctl, Name: canaryTrustX, Data: pwnedData})
			}

			ops := make([]op, len(checks))
			for i, c := range checks {
				ops[i] = c.o
			}
			for i, r := range runAs(t, u, ops...) {
				c := checks[i]
				what := fmt.Sprintf("%s %s %s", u.name, c.o.Op, c.o.Path)
				switch {
				case c.want == "-":
				case c.want == "" && r.Err == "":
					t.Errorf("%s: succeeded, want a failure", what)
				case c.want == "ok" && r.Err != "":
					t.Errorf("%s: %v, want success", what, r)
				case c.want != "" && c.want != "ok" && r.Err != c.want:
					t.Errorf("%s: %v, want %s", what, r, c.want)
				case c.o.Out != "" && r.Out != c.o.Out:
					t.Errorf("%s: gave %q, want %q", what, r.Out, c.o.Out)
				}
			}
			var st unix.Stat_t
			p := filepath.Join(src, "ctl"+sfx)
			must(t, unix.Lstat(p, &st))
			if st.Mode&0o7777 != 0o707 || st.Mtim.Sec != pwnedTime || u.uid == 0 && st.Uid != pwnedOwner {
				t.Errorf("control %s: %s mtime %d; the operations did not reach the daemon", p, statLine(&st), st.Mtim.Sec)
			}
			sameSnapshot(t, "outside tree after "+u.name+"'s operations", before, snapshot(t, out))
		})
	}

	t.Run("dotdot", func(t *testing.T) {
		// ".." of the mount root is the client's own parent directory,
		// resolved by the kernel; the daemon refuses "." and "..".
		var a, b unix.Stat_t
		must(t, unix.Stat(filepath.Join(mnt, ".."), &a))
		must(t, unix.Stat(filepath.Dir(mnt), &b))
		if a.Ino != b.Ino || a.Dev != b.Dev {
			t.Errorf("stat %s/..: ino %d dev %d, want the client's parent (ino %d dev %d)", mnt, a.Ino, a.Dev, b.Ino, b.Dev)
		}
		var c, r unix.Stat_t
		must(t, unix.Stat(filepath.Join(mnt, "sub", "..", ".."), &c))
		if c.Ino != b.Ino || c.Dev != b.Dev {
			t.Errorf("stat %s/sub/../..: ino %d dev %d, want the client's parent (ino %d dev %d)", mnt, c.Ino, c.Dev, b.Ino, b.Dev)
		}
		must(t, unix.Stat(filepath.Join(mnt, "sub", ".."), &c))
		must(t, unix.Stat(mnt, &r))
		if c.Ino != r.Ino || c.Dev != r.Dev {
			t.Errorf("stat %s/sub/..: ino %d dev %d, want the mount root (ino %d dev %d)", mnt, c.Ino, c.Dev, r.Ino, r.Dev)
		}
		var sb unix.Stat_t
		must(t, unix.Stat(base, &sb))
		if a.Ino == sb.Ino && a.Dev == sb.Dev {
			t.Errorf("stat %s/.. is SOURCE's parent", mnt)
		}
		// The listing of the mount root shows "..": take it as it is.
		if _, err := os.ReadDir(mnt); err != nil {
			t.Error(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(mnt, "..", outsideName), &st); err == nil {
			t.Errorf("%s/../%s exists on the client's side", mnt, outsideName)
		}
	})

	t.Run("requests", func(t *testing.T) { testEscapeRequests(t, m, out, canary) })
	sameSnapshot(t, "outside tree", before, snapshot(t, out))
}

// testEscapeRequests calls the filesystem directly with requests a kernel
// sends only after a race (an operation on a node that became a symlink)
// or a hostile one would send (names with '/' or ".."), while it is
// mounted. Nothing outside SOURCE may change.
func testEscapeRequests(t *testing.T, m *ptMount, out, canary string) {
	ctx := context.Background()
	fsys := m.fsys
	rootNode := fsys.Root()
	before := snapshot(t, out)
	lookup := func(parent ringfuse.Node, name string) ringfuse.Node {
		t.Helper()
		var e ringfuse.Entry
		if errno := fsys.Lookup(ctx, parent, name, &e); errno != 0 {
			t.Fatalf("lookup %s: %v", name, errno)
		}
		if e.Attr.Mode&unix.S_IFMT != unix.S_IFLNK {
			t.Fatalf("lookup %s: mode %#o, want the symlink itself", name, e.Attr.Mode)
		}
		return e.Node
	}
	abs := lookup(rootNode, "abs")
	absdir := lookup(rootNode, "absdir")
	reldir := lookup(rootNode, "reldir")

	var e ringfuse.Entry
	var oo ringfuse.OpenOut
	release := func(errno syscall.Errno, n ringfuse.Node) syscall.Errno {
		if errno == 0 {
			fsys.Release(ctx, n, oo.Fh, 0)
		}
		return errno
	}
	badNames := []string{"..", ".", "../" + outsideName, "../" + outsideName + "/" + canaryName, "/etc", outsideName + "/x", ""}
	type call struct {
		what string
		do   func() syscall.Errno
	}
	var calls []call
	for _, name := range badNames {
		calls = append(calls,
			call{"lookup " + name, func() syscall.Errno { return fsys.Lookup(ctx, rootNode, name, &e) }},
			call{"mkdir " + name, func() syscall.Errno { return fsys.Mkdir(ctx, rootNode, name, 0o777, 0, &e) }},
			call{"mknod " + name, func() syscall.Errno { return fsys.Mknod(ctx, rootNode, name, unix.S_IFREG|0o666, 0, 0, &e) }},
			call{"create " + name, func() syscall.Errno {
				return release(fsys.Create(ctx, rootNode, name, unix.O_WRONLY|unix.O_TRUNC, 0o666, 0, &e, &oo), e.Node)
			}},
			call{"symlink " + name, func() syscall.Errno { return fsys.Symlink(ctx, rootNode, name, "x", &e) }},
			call{"unlink " + name, func() syscall.Errno { return fsys.Unlink(ctx, rootNode, name) }},
			call{"rmdir " + name, func() syscall.Errno { return fsys.Rmdir(ctx, rootNode, name) }},
			call{"rename from " + name, func() syscall.Errno { return fsys.Rename(ctx, rootNode, name, rootNode, "stolen", 0) }},
			call{"rename to " + name, func() syscall.Errno { return fsys.Rename(ctx, rootNode, "decoy-direct", rootNode, name, 0) }},
			call{"link to " + name, func() syscall.Errno { return fsys.Link(ctx, abs, rootNode, name, &e) }},
		)
	}
	// A symlink node used as a directory: the daemon must not resolve the
	// link to reach the outside directory.
	for _, dn := range []struct {
		name string
		n    ringfuse.Node
	}{{"absdir", absdir}, {"reldir", reldir}} {
		d := dn.n
		calls = append(calls,
			call{dn.name + ": lookup canary", func() syscall.Errno { return fsys.Lookup(ctx, d, canaryName, &e) }},
			call{dn.name + ": create canary O_TRUNC", func() syscall.Errno {
				return release(fsys.Create(ctx, d, canaryName, unix.O_WRONLY|unix.O_TRUNC, 0o666, 0, &e, &oo), e.Node)
			}},
			call{dn.name + ": create new", func() syscall.Errno {
				return release(fsys.Create(ctx, d, "new", unix.O_WRONLY|unix.O_CREAT, 0o666, 0, &e, &oo), e.Node)
			}},
			call{dn.name + ": mkdir", func() syscall.Errno { return fsys.Mkdir(ctx, d, "new", 0o777, 0, &e) }},
			call{dn.name + ": mknod", func() syscall.Errno { return fsys.Mknod(ctx, d, "new", unix.S_IFIFO|0o666, 0, 0, &e) }},
			call{dn.name + ": symlink", func() syscall.Errno { return fsys.Symlink(ctx, d, "new", "x", &e) }},
			call{dn.name + ": unlink canary", func() syscall.Errno { return fsys.Unlink(ctx, d, canaryName) }},
			call{dn.name + ": rename canary out", func() syscall.Errno { return fsys.Rename(ctx, d, canaryName, rootNode, "stolen", 0) }},
			call{dn.name + ": rename over canary", func() syscall.Errno { return fsys.Rename(ctx, rootNode, "decoy-direct", d, canaryName, 0) }},
			call{dn.name + ": exchange canary", func() syscall.Errno {
				return fsys.Rename(ctx, rootNode, "decoy-direct", d, canaryName, unix.RENAME_EXCHANGE)
			}},
			call{dn.name + ": link into", func() syscall.Errno { return fsys.Link(ctx, abs, d, "new", &e) }},
			call{dn.name + ": opendir", func() syscall.Errno {
				errno := fsys.OpenDir(ctx, d, unix.O_RDONLY, &oo)
				if errno == 0 {
					fsys.ReleaseDir(ctx, d, oo.Fh)
				}
				return errno
			}},
		)
	}
	// A symlink node used as a file.
	calls = append(calls,
		call{"open abs O_RDWR|O_TRUNC", func() syscall.Errno { return release(fsys.Open(ctx, abs, unix.O_RDWR|unix.O_TRUNC, &oo), abs) }},
		call{"open abs O_RDONLY", func() syscall.Errno { return release(fsys.Open(ctx, abs, unix.O_RDONLY, &oo), abs) }},
		call{"opendir abs", func() syscall.Errno {
			errno := fsys.OpenDir(ctx, abs, unix.O_RDONLY, &oo)
			if errno == 0 {
				fsys.ReleaseDir(ctx, abs, oo.Fh)
			}
			return errno
		}},
		call{"truncate abs", func() syscall.Errno {
			var ao ringfuse.AttrOut
			return fsys.SetAttr(ctx, abs, &ringfuse.SetAttrIn{Valid: wire.FATTR_SIZE}, &ao)
		}},
	)
	for _, c := range calls {
		if errno := c.do(); errno == 0 {
			t.Errorf("%s: succeeded, want an error", c.what)
		}
	}

	// Attribute and xattr changes on the symlink node may succeed on the
	// link itself; reads must describe the link, not the canary.
	var ao ringfuse.AttrOut
	for _, in := range []ringfuse.SetAttrIn{
		{Valid: wire.FATTR_MODE, Mode: pwnedMode},
		{Valid: wire.FATTR_UID | wire.FATTR_GID, UID: pwnedOwner, GID: pwnedOwner},
		{Valid: wire.FATTR_ATIME | wire.FATTR_MTIME, Atime: pwnedTime, Mtime: pwnedTime},
		{Valid: wire.FATTR_KILL_SUIDGID},
	} {
		fsys.SetAttr(ctx, abs, &in, &ao)
	}
	fsys.SetXattr(ctx, abs, canaryTrustX, []byte(pwnedData), 0)
	fsys.SetXattr(ctx, abs, canaryUserX, []byte(pwnedData), 0)
	fsys.RemoveXattr(ctx, abs, canaryTrustX)
	buf := make([]byte, 4096)
	if n, errno := fsys.GetXattr(ctx, abs, canaryUserX, buf); errno == 0 && string(buf[:n]) == canaryXValue {
		t.Errorf("getxattr %s of the symlink node gave the canary's value", canaryUserX)
	}
	if n, errno := fsys.ListXattr(ctx, abs, buf); errno == 0 && strings.Contains(string(buf[:n]), canaryUserX) {
		t.Errorf("listxattr of the symlink node lists the canary's %s: %q", canaryUserX, buf[:n])
	}
	if errno := fsys.GetAttr(ctx, abs, 0, false, &ao); errno != 0 || ao.Attr.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("getattr of the symlink node: %v, mode %#o; want the link", errno, ao.Attr.Mode)
	}
	if target, errno := fsys.Readlink(ctx, abs); errno != 0 || string(target) != canary {
		t.Errorf("readlink of the symlink node: %q, %v; want %q", target, errno, canary)
	}
	sameSnapshot(t, "outside tree after direct requests", before, snapshot(t, out))
}

// Race parameters: the clients' rounds, and the fewest swaps the swapper
// makes even if the clients finish first.
const (
	raceRounds   = 400
	raceMinSwaps = 3000
)

// raceRound is one round of a client of the rename race on the mount at
// mnt: operations on "d/canary" and "s/canary", where d and s are
// swapped natively between a directory and a symlink to the outside
// directory. Errors are expected and ignored; only the canary matters. It
// returns how many operations under "s" succeeded: those found the
// directory under the symlink's name, so the swaps reached the clients.
func raceRound(mnt string, n int) (viaS int) {
	for _, dir := range []string{"d", "s", "d/../s"} {
		c := filepath.Join(mnt, dir, canaryName)
		ops := []op{
			{Op: "write", Path: c, Flags: os.O_CREATE | os.O_TRUNC, Mode: 0o644, Data: pwnedData},
			{Op: "write", Path: c, Flags: os.O_APPEND, Data: pwnedData},
			{Op: "chmod", Path: c, Mode: pwnedMode},
			{Op: "chown", Path: c, UID: pwnedOwner, GID: pwnedOwner},
			{Op: "truncate", Path: c},
			{Op: "setxattr", Path: c, Name: canaryUserX, Data: pwnedData},
			{Op: "utimes", Path: c, N: pwnedTime},
			{Op: "link", Path: c, Path2: c + ".l"},
			{Op: "unlink", Path: c + ".l"},
			{Op: "rename", Path: c, Path2: c + ".r"},
			{Op: "rename", Path: c + ".r", Path2: c},
			{Op: "mkdir", Path: c + ".d", Mode: 0o777},
			{Op: "rmdir", Path: c + ".d"},
		}
		if n%2 == 1 {
			ops = append(ops, op{Op: "unlink", Path: c})
		}
		for _, o := range ops {
			if do(o).Err == "" && dir != "d" {
				viaS++
			}
		}
	}
	return viaS
}

// testEscapeRace swaps a directory of SOURCE with a symlink to the
// outside directory, natively and as fast as it can, while root and
// another user work on names under both through the mount and a third
// client sends the filesystem requests on whatever node a lookup of
// either name returns.
func testEscapeRace(t *testing.T, transport string) {
	src := newSource(t)
	base := filepath.Dir(src)
	out := makeOutside(t, base)
	d, s := filepath.Join(src, "d"), filepath.Join(src, "s")
	must(t, os.Mkdir(d, 0o777))
	must(t, os.Chmod(d, 0o777))
	must(t, os.WriteFile(filepath.Join(d, canaryName), []byte("inside"), 0o666))
	must(t, os.Symlink(outsideRelSrc, s))
	before := snapshot(t, out)

	// No caching: every path walk looks the names up again.
	m := mountPT(t, transport, src, mount.Options{AllowOther: true}, server.Options{EntryTimeout: -1, AttrTimeout: -1})
	if _, err := os.Lstat(filepath.Join(m.dir, outsideRelSrc)); !os.IsNotExist(err) {
		t.Fatalf("%s exists on the client's side (%v)", filepath.Join(m.dir, outsideRelSrc), err)
	}
	stop := filepath.Join(base, "stop")

	var wg sync.WaitGroup
	var clientsDone atomic.Int32
	const clients = 3
	var swaps atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; clientsDone.Load() < clients || i < raceMinSwaps; i++ {
			if i%4 == 3 {
				// Move the directory away and back.
				unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, d+".moved", unix.RENAME_NOREPLACE)
				unix.Renameat2(unix.AT_FDCWD, d+".moved", unix.AT_FDCWD, d, unix.RENAME_NOREPLACE)
			} else {
				unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, s, unix.RENAME_EXCHANGE)
			}
			swaps.Add(1)
		}
	}()
	var rootViaS, fsViaS int
	var childErr error
	var childOut string
	wg.Add(3)
	go func() { // root, through the mount
		defer wg.Done()
		defer clientsDone.Add(1)
		for i := range raceRounds {
			rootViaS += raceRound(m.dir, i)
		}
	}()
	go func() { // another user, through the mount
		defer wg.Done()
		defer clientsDone.Add(1)
		var res []result
		res, childErr = runAsErr(nobody, op{Op: "hammer", Path: m.dir, Path2: stop, N: raceRounds})
		if childErr == nil {
			childOut = res[0].Out
		}
	}()
	go func() { // requests straight to the filesystem
		defer wg.Done()
		defer clientsDone.Add(1)
		for range raceRounds {
			fsViaS += raceRequests(m)
		}
	}()
	wg.Wait()
	if childErr != nil {
		t.Fatal(childErr)
	}
	var childRounds, childViaS int
	if _, err := fmt.Sscan(childOut, &childRounds, &childViaS); err != nil || childRounds != raceRounds {
		t.Errorf("the other user's client: %q (%v), want %d rounds", childOut, err, raceRounds)
	}
	t.Logf("%d swaps; operations that found the directory under the symlink's name: root %d, nobody %d, direct %d",
		swaps.Load(), rootViaS, childViaS, fsViaS)
	if rootViaS+childViaS+fsViaS == 0 {
		t.Errorf("no operation ever found the directory under the symlink's name: the race tested nothing")
	}
	sameSnapshot(t, "outside tree after the race", before, snapshot(t, out))
}

// raceRequests sends the filesystem, directly, requests on the node a
// lookup of "d" or "s" returns, as the kernel would for a client that
// looked the name up just before a swap. It returns how many creations
// under "s" succeeded.
func raceRequests(m *ptMount) (viaS int) {
	ctx := context.Background()
	fsys := m.fsys
	for _, name := range []string{"d", "s"} {
		var e ringfuse.Entry
		if fsys.Lookup(ctx, fsys.Root(), name, &e) != 0 {
			continue
		}
		n := e.Node
		var ce ringfuse.Entry
		var oo ringfuse.OpenOut
		if fsys.Create(ctx, n, canaryName, unix.O_WRONLY|unix.O_TRUNC, 0o666, 0, &ce, &oo) == 0 {
			if name == "s" {
				viaS++
			}
			fsys.Write(ctx, ce.Node, oo.Fh, 0, []byte(pwnedData), 0)
			fsys.Release(ctx, ce.Node, oo.Fh, 0)
		}
		var le ringfuse.Entry
		if fsys.Lookup(ctx, n, canaryName, &le) == 0 {
			var ao ringfuse.AttrOut
			fsys.SetAttr(ctx, le.Node, &ringfuse.SetAttrIn{Valid: wire.FATTR_MODE | wire.FATTR_SIZE, Mode: pwnedMode}, &ao)
			fsys.SetXattr(ctx, le.Node, canaryUserX, []byte(pwnedData), 0)
			if fsys.Open(ctx, le.Node, unix.O_RDWR, &oo) == 0 {
				fsys.Write(ctx, le.Node, oo.Fh, 0, []byte(pwnedData), 0)
				fsys.Release(ctx, le.Node, oo.Fh, 0)
			}
		}
		fsys.Rename(ctx, n, canaryName, n, canaryName+".r", 0)
		fsys.Rename(ctx, n, canaryName+".r", n, canaryName, 0)
		var me ringfuse.Entry
		if fsys.Mkdir(ctx, n, canaryName+".d", 0o777, 0, &me) == 0 {
			fsys.Rmdir(ctx, n, canaryName+".d")
		}
		fsys.Unlink(ctx, n, canaryName+".x")
	}
	return viaS
}
