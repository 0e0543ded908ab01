package posixtest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// nobody is the uid and gid the credential cases run children as.
const nobody = 65534

// runAsNobody runs a shell script as uid and gid 65534 with no supplementary
// groups. The script receives args as $1, $2, ...; the result is the
// combined output and the error from exec.
func runAsNobody(script string, args ...string) (string, error) {
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}},
	}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// needNobodyAccess stops the case unless uid 65534 can search dir. That
// needs o+x on every ancestor and, on FUSE, the allow_other mount option.
func needNobodyAccess(t *testing.T, dir string) {
	t.Helper()
	needRoot(t)
	if out, err := runAsNobody(`cd -- "$1"`, dir); err != nil {
		t.Fatalf("uid %d cannot search %s (%v: %s): every ancestor must be searchable by others, "+
			"and a FUSE mount needs allow_other", nobody, dir, err, out)
	}
}

// wantDenied reports a failure unless the script, run as uid 65534, fails
// with a message containing reason.
func wantDenied(t *testing.T, reason, what, script string, args ...string) {
	t.Helper()
	out, err := runAsNobody(script, args...)
	if err == nil {
		t.Errorf("%s as uid %d: succeeded, want %q", what, nobody, reason)
	} else if !strings.Contains(out, reason) {
		t.Errorf("%s as uid %d: failed with %q (%v), want %q", what, nobody, out, err, reason)
	}
}

// wantAllowed reports a failure unless the script, run as uid 65534,
// succeeds, and returns its output.
func wantAllowed(t *testing.T, what, script string, args ...string) string {
	t.Helper()
	out, err := runAsNobody(script, args...)
	if err != nil {
		t.Errorf("%s as uid %d: %v: %s", what, nobody, err, out)
	}
	return out
}

// testPermissionsNonRoot checks that the mode bits of root's files and
// directories bind an unprivileged child process, and that chmod lifts the
// refusals. It needs the kernel to check permissions (default_permissions).
func testPermissionsNonRoot(t *testing.T, env Env) {
	if !env.DefaultPermissions && !env.Native {
		t.Skip("the mount does not check mode bits in the kernel (no default_permissions), " +
			"so a server running as root grants every access")
	}
	needNobodyAccess(t, env.Dir)
	f := filepath.Join(env.Dir, "secret")
	writeFileT(t, f, []byte("secret"), 0o600)
	must(t, unix.Chmod(f, 0o600), "chmod 0600")
	wantDenied(t, "Permission denied", "reading a 0600 root file", `cat -- "$1"`, f)
	wantDenied(t, "Permission denied", "appending to a 0600 root file", `echo y >> "$1"`, f)
	if ok(t, unix.Chmod(f, 0o644), "chmod 0644") {
		if out := wantAllowed(t, "reading a 0644 root file", `cat -- "$1"`, f); out != "secret" {
			t.Errorf("reading a 0644 root file as uid %d gave %q, want %q", nobody, out, "secret")
		}
		wantDenied(t, "Permission denied", "appending to a 0644 root file", `echo y >> "$1"`, f)
	}
	if ok(t, unix.Chmod(f, 0o666), "chmod 0666") {
		wantAllowed(t, "appending to a 0666 root file", `echo y >> "$1"`, f)
		sameBytes(t, readFileT(t, f), []byte("secrety\n"), "file after an unprivileged append")
	}

	d := filepath.Join(env.Dir, "private")
	must(t, unix.Mkdir(d, 0o700), "mkdir")
	must(t, unix.Chmod(d, 0o700), "chmod 0700")
	writeFileT(t, filepath.Join(d, "inner"), []byte("inner"), 0o644)
	wantDenied(t, "Permission denied", "creating a file in a 0700 root directory", `echo x > "$1/f"`, d)
	wantDenied(t, "Permission denied", "reading a 0644 file in a 0700 root directory", `cat -- "$1/inner"`, d)
	wantDenied(t, "Permission denied", "listing a 0700 root directory", `ls -- "$1"`, d)
	if ok(t, unix.Chmod(d, 0o711), "chmod 0711") {
		wantDenied(t, "Permission denied", "listing a 0711 root directory", `ls -- "$1"`, d)
		if out := wantAllowed(t, "reading a known name in a 0711 directory", `cat -- "$1/inner"`, d); out != "inner" {
			t.Errorf("reading a known name in a 0711 directory gave %q, want %q", out, "inner")
		}
		wantDenied(t, "Permission denied", "creating a file in a 0711 root directory", `echo x > "$1/f"`, d)
	}
	if ok(t, unix.Chmod(d, 0o777), "chmod 0777") {
		wantAllowed(t, "creating a file in a 0777 root directory", `echo x > "$1/f"`, d)
		sameBytes(t, readFileT(t, filepath.Join(d, "f")), []byte("x\n"), "file written by uid 65534")
		wantAllowed(t, "removing root's file from a 0777 directory", `rm -f -- "$1/inner"`, d)
		wantGone(t, filepath.Join(d, "inner"))
	}

	// The sticky bit stops others from removing root's files.
	s := filepath.Join(env.Dir, "sticky")
	must(t, unix.Mkdir(s, 0o777), "mkdir")
	must(t, unix.Chmod(s, 0o1777), "chmod 01777")
	writeFileT(t, filepath.Join(s, "rootfile"), nil, 0o666)
	wantDenied(t, "Operation not permitted", "removing root's file from a sticky directory", `rm -f -- "$1/rootfile"`, s)
	if _, good := lstatT(t, filepath.Join(s, "rootfile")); !good {
		t.Errorf("root's file vanished from the sticky directory")
	}
	wantAllowed(t, "creating and removing its own file in a sticky directory", `echo x > "$1/mine" && rm -- "$1/mine"`, s)

	// Only the owner may chmod.
	wantDenied(t, "Operation not permitted", "chmod of root's file", `chmod 0777 -- "$1"`, f)
}

// testNewNodeOwner checks that files, directories, symlinks, FIFOs and hard
// links made by an unprivileged child belong to its uid and gid and get the
// modes it asked for under its umask.
func testNewNodeOwner(t *testing.T, env Env) {
	needNobodyAccess(t, env.Dir)
	d := filepath.Join(env.Dir, "open")
	must(t, unix.Mkdir(d, 0o777), "mkdir")
	must(t, unix.Chmod(d, 0o777), "chmod 0777")
	wantAllowed(t, "creating nodes", `umask 022 && cd -- "$1" && echo x > f && mkdir d && ln -s target l && mkfifo p && ln f h && mkdir d/sub && echo y > d/sub/g`, d)
	for _, c := range []struct {
		name string
		typ  uint32
		mode uint32
	}{
		{"f", unix.S_IFREG, 0o644},
		{"d", unix.S_IFDIR, 0o755},
		{"l", unix.S_IFLNK, 0o777},
		{"p", unix.S_IFIFO, 0o644},
		{"h", unix.S_IFREG, 0o644},
		{"d/sub", unix.S_IFDIR, 0o755},
		{"d/sub/g", unix.S_IFREG, 0o644},
	} {
		p := filepath.Join(d, c.name)
		st, good := lstatT(t, p)
		if !good {
			continue
		}
		wantType(t, st, c.typ, p)
		if st.Uid != nobody || st.Gid != nobody {
			t.Errorf("%s made by uid/gid %d: owner %d:%d", c.name, nobody, st.Uid, st.Gid)
		}
		if st.Mode&0o7777 != c.mode {
			t.Errorf("%s made with umask 022: mode %#o, want %#o", c.name, st.Mode&0o7777, c.mode)
		}
	}
	if st, good := lstatT(t, filepath.Join(d, "f")); good && st.Nlink != 2 {
		t.Errorf("f after ln f h: nlink %d, want 2", st.Nlink)
	}
	// Root's own creations stay root's.
	r := filepath.Join(d, "root")
	writeFileT(t, r, nil, 0o644)
	if st, good := lstatT(t, r); good && (st.Uid != 0 || st.Gid != 0) {
		t.Errorf("file made by root: owner %d:%d, want 0:0", st.Uid, st.Gid)
	}
}

// testSetgidDirectory checks that files and directories made in a set-group-ID
// directory take its group, and that new subdirectories inherit the bit.
func testSetgidDirectory(t *testing.T, env Env) {
	needNobodyAccess(t, env.Dir)
	const group = 100
	g := filepath.Join(env.Dir, "shared")
	must(t, unix.Mkdir(g, 0o777), "mkdir")
	must(t, unix.Chown(g, 0, group), "chown 0:%d", group)
	must(t, unix.Chmod(g, 0o2777), "chmod 02777")
	if st, good := lstatT(t, g); good && (st.Gid != group || st.Mode&0o7777 != 0o2777) {
		t.Fatalf("setgid directory: gid %d mode %#o, want %d and 02777", st.Gid, st.Mode&0o7777, group)
	}
	wantAllowed(t, "creating in a setgid directory", `umask 022 && cd -- "$1" && echo x > f && mkdir d && mkfifo p`, g)
	for _, c := range []struct {
		name string
		mode uint32
	}{{"f", 0o644}, {"d", 0o2755}, {"p", 0o644}} {
		p := filepath.Join(g, c.name)
		if st, good := lstatT(t, p); good {
			if st.Uid != nobody || st.Gid != group {
				t.Errorf("%s made by uid %d in a setgid directory of group %d: owner %d:%d, want %d:%d",
					c.name, nobody, group, st.Uid, st.Gid, nobody, group)
			}
			if st.Mode&0o7777 != c.mode {
				t.Errorf("%s made in a setgid directory: mode %#o, want %#o", c.name, st.Mode&0o7777, c.mode)
			}
		}
	}
	r := filepath.Join(g, "root")
	writeFileT(t, r, nil, 0o644)
	if st, good := lstatT(t, r); good && st.Gid != group {
		t.Errorf("file made by root in a setgid directory: gid %d, want %d", st.Gid, group)
	}
	if env.DefaultPermissions {
		// The child is not in group 100, so its chmod cannot set S_ISGID
		// on a file of that group; the kernel drops the bit silently.
		wantAllowed(t, "chmod 02755 of its own file", `chmod 2755 -- "$1/f"`, g)
		if st, good := lstatT(t, filepath.Join(g, "f")); good && st.Mode&0o7777 != 0o755 {
			t.Errorf("chmod 02755 by a non-member of the file's group: mode %#o, want 0755", st.Mode&0o7777)
		}
	}
}
