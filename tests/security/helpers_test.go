package security

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
	"github.com/ringfuse/ringfuse/session"
)

// ptMount is a passthrough mount under test.
type ptMount struct {
	src  string // the backing directory
	dir  string // the mount point
	fsys *passthrough.FS
	s    *session.Session
}

// newSource makes a fresh backing directory that other users can reach,
// inside a fresh parent directory (so tests can put files next to it),
// and returns it.
func newSource(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	testmount.Traversable(t, src)
	return src
}

// mountPT serves src through a passthrough filesystem over transport.
func mountPT(t *testing.T, transport, src string, mo mount.Options, so server.Options) *ptMount {
	t.Helper()
	fsys, err := passthrough.New(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := testmount.Mount(t, fsys, testmount.Options{
		Transport: transport, Mount: mo, Server: so,
		Cleanup: func() { fsys.Close() },
	})
	return &ptMount{src: src, dir: s.Dir(), fsys: fsys, s: s}
}

// nativeDir makes a fresh directory on the same filesystem as the
// backing directories, that other users can reach, for comparisons.
func nativeDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	testmount.Traversable(t, d)
	return d
}

// fsNode is a file or directory a case's setup makes, as root.
type fsNode struct {
	path     string
	dir      bool
	mode     uint32 // permission and set-ID bits, applied last
	uid, gid int
	data     string
	// acl and defACL are the access and default ACLs to set last, in
	// the short form of encodeACL; "" sets none.
	acl, defACL string
}

// build makes nodes under base: create, chown, then chmod, so that
// set-ID bits survive.
func build(t *testing.T, base string, nodes []fsNode) {
	t.Helper()
	for _, n := range nodes {
		p := filepath.Join(base, n.path)
		var err error
		if n.dir {
			err = os.Mkdir(p, 0o700)
		} else {
			err = os.WriteFile(p, []byte(n.data), 0o600)
		}
		if err == nil {
			err = os.Lchown(p, n.uid, n.gid)
		}
		if err == nil {
			err = os.Chmod(p, os.FileMode(0)) // start from a known mode
		}
		if err == nil {
			err = unix.Chmod(p, n.mode)
		}
		if err == nil && n.acl != "" {
			err = setACL(p, aclAccess, n.acl)
		}
		if err == nil && n.defACL != "" {
			err = setACL(p, aclDefault, n.defACL)
		}
		if err != nil {
			t.Fatalf("setup %s: %v", p, err)
		}
	}
}

// step is one op a user performs in a case. want is the expected
// result ("ok" or an errno name); "" accepts anything (the comparison
// with the native directory still applies).
type step struct {
	who  cred
	op   op
	want string
}

// scenario is a case run on a native directory and on a mount, which
// must agree step by step and in the final attributes of check.
type scenario struct {
	name  string
	setup []fsNode
	steps []step
	check []string
	// setupInBacking builds the setup in the backing directory rather
	// than through the mount, for mounts root may not enter (user_id=).
	setupInBacking bool
	// knownBug names a passthrough bug that makes the mount disagree
	// with the native directory; the case then skips instead of failing.
	knownBug string
}

// outcome is what running a scenario in one directory gave.
type outcome struct {
	results []string
	states  map[string]string // check path -> lstat summary
}

// resolve turns the relative paths of o into paths under base.
func resolve(base string, o op) op {
	if o.Path != "" {
		o.Path = filepath.Join(base, o.Path)
	}
	if o.Path2 != "" {
		o.Path2 = filepath.Join(base, o.Path2)
	}
	return o
}

// play runs sc in a fresh subdirectory of parent (native or a mount),
// named after the scenario, and returns the outcome.
func play(t *testing.T, sc scenario, parent string) outcome {
	return playSetup(t, sc, parent, parent)
}

// playSetup is play with the setup built under setupParent, the backing
// directory of parent or parent itself.
func playSetup(t *testing.T, sc scenario, parent, setupParent string) outcome {
	t.Helper()
	sbase := filepath.Join(setupParent, sc.name)
	if err := os.Mkdir(sbase, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sbase, 0o755); err != nil {
		t.Fatal(err)
	}
	build(t, sbase, sc.setup)
	base := filepath.Join(parent, sc.name)
	var out outcome
	// Consecutive steps of one user share a child process.
	for i := 0; i < len(sc.steps); {
		j := i
		var ops []op
		for ; j < len(sc.steps) && sameCred(sc.steps[j].who, sc.steps[i].who); j++ {
			ops = append(ops, resolve(base, sc.steps[j].op))
		}
		for _, r := range runAs(t, sc.steps[i].who, ops...) {
			out.results = append(out.results, r.String())
		}
		i = j
	}
	out.states = states(base, sc.check)
	return out
}

// states summarizes the attributes of paths under base.
func states(base string, paths []string) map[string]string {
	m := map[string]string{}
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(base, p), &st); err != nil {
			m[p] = errName(err)
		} else {
			m[p] = statLine(&st) + aclLine(filepath.Join(base, p))
		}
	}
	return m
}

func sameCred(a, b cred) bool {
	return a.name == b.name
}

// compare runs sc natively and on m and returns every disagreement, and
// every step that disagrees with its want on the native directory.
func compare(t *testing.T, sc scenario, native string, m *ptMount) (diffs, nativeBad []string) {
	t.Helper()
	nat := play(t, sc, native)
	t.Logf("native results %q, states %v", nat.results, nat.states)
	setup := m.dir
	if sc.setupInBacking {
		setup = m.src
	}
	fus := playSetup(t, sc, m.dir, setup)
	back := states(filepath.Join(m.src, sc.name), sc.check)
	for i, s := range sc.steps {
		what := fmt.Sprintf("step %d: %s %s %s", i, s.who.name, s.op.Op, s.op.Path)
		if s.want != "" && !strings.HasPrefix(nat.results[i], s.want) {
			nativeBad = append(nativeBad, fmt.Sprintf("%s: native %s, want %s", what, nat.results[i], s.want))
		}
		if nat.results[i] != fus.results[i] {
			diffs = append(diffs, fmt.Sprintf("%s: mount %s, native %s", what, fus.results[i], nat.results[i]))
		}
	}
	for _, p := range sc.check {
		// Root may not look through a mount it may not enter; the
		// backing directory says what happened.
		if !sc.setupInBacking && fus.states[p] != nat.states[p] {
			diffs = append(diffs, fmt.Sprintf("%s through the mount: %s, native %s", p, fus.states[p], nat.states[p]))
		}
		if back[p] != nat.states[p] {
			diffs = append(diffs, fmt.Sprintf("%s in the backing dir: %s, native %s", p, back[p], nat.states[p]))
		}
	}
	return diffs, nativeBad
}

// runScenarios runs each scenario as a subtest, natively in native and on
// m, and fails on any disagreement. A scenario whose expectations do not
// hold natively fails too: the test, not the mount, is wrong then.
func runScenarios(t *testing.T, scs []scenario, native string, m *ptMount) {
	t.Helper()
	for _, sc := range scs {
		t.Run(sc.name, func(t *testing.T) {
			diffs, nativeBad := compare(t, sc, native, m)
			for _, d := range nativeBad {
				t.Errorf("native directory: %s", d)
			}
			if len(diffs) > 0 && sc.knownBug != "" {
				t.Skipf("KNOWN BUG (%s):\n%s", sc.knownBug, strings.Join(diffs, "\n"))
			}
			for _, d := range diffs {
				t.Error(d)
			}
		})
	}
}

// hasOption reports whether the FUSE mount at dir has mount option opt
// (default_permissions, allow_other, user_id=...).
func hasOption(t *testing.T, dir, opt string) bool {
	t.Helper()
	mi, ok, err := mount.LookupMount(dir)
	if err != nil || !ok {
		t.Fatalf("mount at %s: %v (found %v)", dir, err, ok)
	}
	for _, o := range strings.Split(mi.SuperOptions, ",") {
		if o == opt {
			return true
		}
	}
	return false
}
