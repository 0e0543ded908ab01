package posixtest

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// testRenameFile renames a file to a new name in the same directory and checks
// that the inode and contents moved and the old name is gone.
func testRenameFile(t *testing.T, env Env) {
	a, b := filepath.Join(env.Dir, "a"), filepath.Join(env.Dir, "b")
	writeFileT(t, a, []byte("content of a"), 0o640)
	before, _ := lstatT(t, a)
	fd := openT(t, a, unix.O_RDONLY, 0)
	must(t, unix.Rename(a, b), "rename a b")
	wantGone(t, a)
	if st, good := lstatT(t, b); good {
		if st.Ino != before.Ino {
			t.Errorf("rename changed the inode number from %d to %d", before.Ino, st.Ino)
		}
		if st.Mode != before.Mode || st.Nlink != 1 {
			t.Errorf("after rename: mode %#o nlink %d, want %#o and 1", st.Mode, st.Nlink, before.Mode)
		}
	}
	sameBytes(t, readFileT(t, b), []byte("content of a"), "renamed file")
	got, err := preadAll(fd, 100, 0)
	if ok(t, err, "pread through a descriptor opened before the rename") {
		sameBytes(t, got, []byte("content of a"), "descriptor opened before the rename")
	}
	if names := listDir(t, env.Dir); len(names) != 1 || names[0] != "b" {
		t.Errorf("directory lists %q after rename, want [b]", names)
	}
	wantErrno(t, unix.Rename(a, filepath.Join(env.Dir, "c")), unix.ENOENT, "rename of a missing name")
	wantErrno(t, unix.Rename(b, filepath.Join(env.Dir, "missing", "c")), unix.ENOENT, "rename into a missing directory")
}

// testRenameOverFile renames a file over an existing file: the target name gets
// the source inode and the replaced inode loses its last link.
func testRenameOverFile(t *testing.T, env Env) {
	a, b := filepath.Join(env.Dir, "a"), filepath.Join(env.Dir, "b")
	writeFileT(t, a, []byte("new contents"), 0o644)
	writeFileT(t, b, []byte("old"), 0o600)
	sa, _ := lstatT(t, a)
	old := openT(t, b, unix.O_RDONLY, 0)
	must(t, unix.Rename(a, b), "rename a over b")
	wantGone(t, a)
	if st, good := lstatT(t, b); good {
		if st.Ino != sa.Ino {
			t.Errorf("b has inode %d after rename, want the source's %d", st.Ino, sa.Ino)
		}
		if st.Mode&0o777 != 0o644 {
			t.Errorf("b has mode %#o after rename, want the source's 0644", st.Mode&0o777)
		}
	}
	sameBytes(t, readFileT(t, b), []byte("new contents"), "b after rename over it")
	var st unix.Stat_t
	if ok(t, unix.Fstat(old, &st), "fstat of the replaced file") && st.Nlink != 0 {
		t.Errorf("replaced file: nlink %d, want 0", st.Nlink)
	}
	got, err := preadAll(old, 100, 0)
	if ok(t, err, "pread of the replaced file") {
		sameBytes(t, got, []byte("old"), "replaced file through its open descriptor")
	}
	if names := listDir(t, env.Dir); len(names) != 1 || names[0] != "b" {
		t.Errorf("directory lists %q after rename, want [b]", names)
	}
}

// testRenameAcrossDirs moves a file and a directory between directories and
// checks names, "..", and the directories' link counts.
func testRenameAcrossDirs(t *testing.T, env Env) {
	d1, d2 := filepath.Join(env.Dir, "d1"), filepath.Join(env.Dir, "d2")
	must(t, unix.Mkdir(d1, 0o755), "mkdir d1")
	must(t, unix.Mkdir(d2, 0o755), "mkdir d2")
	f := filepath.Join(d1, "f")
	writeFileT(t, f, []byte("moving"), 0o644)
	if ok(t, unix.Rename(f, filepath.Join(d2, "g")), "rename d1/f d2/g") {
		wantGone(t, f)
		sameBytes(t, readFileT(t, filepath.Join(d2, "g")), []byte("moving"), "moved file")
	}

	sub := filepath.Join(d1, "sub")
	must(t, unix.Mkdir(sub, 0o755), "mkdir d1/sub")
	writeFileT(t, filepath.Join(sub, "inner"), []byte("inner"), 0o644)
	n1, _ := statT(t, d1)
	n2, _ := statT(t, d2)
	if !ok(t, unix.Rename(sub, filepath.Join(d2, "sub")), "rename d1/sub d2/sub") {
		return
	}
	wantGone(t, sub)
	sameBytes(t, readFileT(t, filepath.Join(d2, "sub", "inner")), []byte("inner"), "file inside the moved directory")
	dotdot, good1 := statT(t, filepath.Join(d2, "sub", ".."))
	s2, good2 := statT(t, d2)
	if good1 && good2 && dotdot.Ino != s2.Ino {
		t.Errorf("moved directory's .. has inode %d, want d2's %d", dotdot.Ino, s2.Ino)
	}
	if s1, good := statT(t, d1); good && s1.Nlink != n1.Nlink-1 {
		t.Errorf("d1 nlink after moving a subdirectory out: %d, want %d", s1.Nlink, n1.Nlink-1)
	}
	if good2 && s2.Nlink != n2.Nlink+1 {
		t.Errorf("d2 nlink after moving a subdirectory in: %d, want %d", s2.Nlink, n2.Nlink+1)
	}
}

// testRenameDir renames a non-empty directory in place, and checks that a
// directory cannot move into itself.
func testRenameDir(t *testing.T, env Env) {
	d := filepath.Join(env.Dir, "d")
	must(t, unix.Mkdir(d, 0o755), "mkdir d")
	must(t, unix.Mkdir(filepath.Join(d, "sub"), 0o755), "mkdir d/sub")
	writeFileT(t, filepath.Join(d, "sub", "f"), []byte("deep"), 0o644)
	before, _ := statT(t, d)
	e := filepath.Join(env.Dir, "e")
	if ok(t, unix.Rename(d, e), "rename d e") {
		wantGone(t, d)
		if st, good := statT(t, e); good && st.Ino != before.Ino {
			t.Errorf("renamed directory has inode %d, want %d", st.Ino, before.Ino)
		}
		sameBytes(t, readFileT(t, filepath.Join(e, "sub", "f")), []byte("deep"), "file under the renamed directory")
	}
	wantErrno(t, unix.Rename(e, filepath.Join(e, "sub", "inside")), unix.EINVAL, "rename a directory into its own subdirectory")
	wantErrno(t, unix.Rename(filepath.Join(e, "sub", "f"), filepath.Join(e, "sub", "f", "x")), unix.ENOTDIR, "rename to a path through a file")
}

// testRenameDirOverDir renames a directory over an empty directory (which it
// replaces) and over a non-empty one (ENOTEMPTY).
func testRenameDirOverDir(t *testing.T, env Env) {
	src, empty, full := filepath.Join(env.Dir, "src"), filepath.Join(env.Dir, "empty"), filepath.Join(env.Dir, "full")
	for _, d := range []string{src, empty, full} {
		must(t, unix.Mkdir(d, 0o755), "mkdir %s", d)
	}
	writeFileT(t, filepath.Join(src, "mark"), []byte("src"), 0o644)
	writeFileT(t, filepath.Join(full, "keep"), []byte("full"), 0o644)
	ss, _ := statT(t, src)
	parent, _ := statT(t, env.Dir)

	wantErrno(t, unix.Rename(src, full), unix.ENOTEMPTY, "rename a directory over a non-empty directory")
	sameBytes(t, readFileT(t, filepath.Join(full, "keep")), []byte("full"), "non-empty target after the failed rename")
	sameBytes(t, readFileT(t, filepath.Join(src, "mark")), []byte("src"), "source after the failed rename")

	if !ok(t, unix.Rename(src, empty), "rename a directory over an empty directory") {
		return
	}
	wantGone(t, src)
	if st, good := statT(t, empty); good && st.Ino != ss.Ino {
		t.Errorf("target has inode %d after rename, want the source's %d", st.Ino, ss.Ino)
	}
	sameBytes(t, readFileT(t, filepath.Join(empty, "mark")), []byte("src"), "target contents after rename")
	if st, good := statT(t, env.Dir); good && st.Nlink != parent.Nlink-1 {
		t.Errorf("parent nlink after replacing a directory: %d, want %d", st.Nlink, parent.Nlink-1)
	}
}

// testRenameTypeMismatch checks that a file cannot replace a directory (EISDIR)
// nor a directory a file (ENOTDIR), and that both stay intact.
func testRenameTypeMismatch(t *testing.T, env Env) {
	f, d := filepath.Join(env.Dir, "f"), filepath.Join(env.Dir, "d")
	writeFileT(t, f, []byte("file"), 0o644)
	must(t, unix.Mkdir(d, 0o755), "mkdir")
	wantErrno(t, unix.Rename(f, d), unix.EISDIR, "rename a file over a directory")
	wantErrno(t, unix.Rename(d, f), unix.ENOTDIR, "rename a directory over a file")
	if st, good := lstatT(t, d); good {
		wantType(t, st, unix.S_IFDIR, d)
	}
	sameBytes(t, readFileT(t, f), []byte("file"), "file after failed renames")
}

// testRenameNoReplace checks renameat2 with RENAME_NOREPLACE.
func testRenameNoReplace(t *testing.T, env Env) {
	a, b, c := filepath.Join(env.Dir, "a"), filepath.Join(env.Dir, "b"), filepath.Join(env.Dir, "c")
	writeFileT(t, a, []byte("a"), 0o644)
	writeFileT(t, b, []byte("b"), 0o644)
	wantErrno(t, unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_NOREPLACE), unix.EEXIST,
		"renameat2(RENAME_NOREPLACE) onto an existing file")
	sameBytes(t, readFileT(t, a), []byte("a"), "source after refused RENAME_NOREPLACE")
	sameBytes(t, readFileT(t, b), []byte("b"), "target after refused RENAME_NOREPLACE")
	d := filepath.Join(env.Dir, "d")
	must(t, unix.Mkdir(d, 0o755), "mkdir")
	wantErrno(t, unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, d, unix.RENAME_NOREPLACE), unix.EEXIST,
		"renameat2(RENAME_NOREPLACE) onto an existing directory")
	if ok(t, unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, c, unix.RENAME_NOREPLACE), "renameat2(RENAME_NOREPLACE) to a free name") {
		wantGone(t, a)
		sameBytes(t, readFileT(t, c), []byte("a"), "file after RENAME_NOREPLACE")
	}
	// Directory file descriptors instead of AT_FDCWD.
	dfd := openT(t, env.Dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	sfd := openT(t, d, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if ok(t, unix.Renameat2(dfd, "c", sfd, "moved", unix.RENAME_NOREPLACE), "renameat2 with directory descriptors") {
		sameBytes(t, readFileT(t, filepath.Join(d, "moved")), []byte("a"), "file moved with renameat2")
	}
}

// testRenameExchange checks renameat2 with RENAME_EXCHANGE between two files,
// between a file and a directory, and onto a missing name.
func testRenameExchange(t *testing.T, env Env) {
	a, b := filepath.Join(env.Dir, "a"), filepath.Join(env.Dir, "b")
	writeFileT(t, a, []byte("first"), 0o644)
	writeFileT(t, b, []byte("second"), 0o600)
	sa, _ := lstatT(t, a)
	sb, _ := lstatT(t, b)
	if ok(t, unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE), "renameat2(RENAME_EXCHANGE) of two files") {
		sameBytes(t, readFileT(t, a), []byte("second"), "a after exchange")
		sameBytes(t, readFileT(t, b), []byte("first"), "b after exchange")
		if st, good := lstatT(t, a); good && (st.Ino != sb.Ino || st.Mode&0o777 != 0o600) {
			t.Errorf("a after exchange: inode %d mode %#o, want %d and 0600", st.Ino, st.Mode&0o777, sb.Ino)
		}
		if st, good := lstatT(t, b); good && st.Ino != sa.Ino {
			t.Errorf("b after exchange: inode %d, want %d", st.Ino, sa.Ino)
		}
	}

	d := filepath.Join(env.Dir, "d")
	must(t, unix.Mkdir(d, 0o755), "mkdir")
	writeFileT(t, filepath.Join(d, "inside"), []byte("inside"), 0o644)
	sub := filepath.Join(env.Dir, "other")
	must(t, unix.Mkdir(sub, 0o755), "mkdir")
	f := filepath.Join(sub, "f")
	writeFileT(t, f, []byte("file"), 0o644)
	if ok(t, unix.Renameat2(unix.AT_FDCWD, f, unix.AT_FDCWD, d, unix.RENAME_EXCHANGE), "renameat2(RENAME_EXCHANGE) of a file and a directory in different directories") {
		if st, good := lstatT(t, d); good && wantType(t, st, unix.S_IFREG, d) {
			sameBytes(t, readFileT(t, d), []byte("file"), "file now named d")
		}
		if st, good := lstatT(t, f); good && wantType(t, st, unix.S_IFDIR, f) {
			sameBytes(t, readFileT(t, filepath.Join(f, "inside")), []byte("inside"), "directory now named other/f")
			dotdot, good1 := statT(t, filepath.Join(f, ".."))
			ss, good2 := statT(t, sub)
			if good1 && good2 && dotdot.Ino != ss.Ino {
				t.Errorf("exchanged directory's .. has inode %d, want %d", dotdot.Ino, ss.Ino)
			}
		}
	}
	wantErrno(t, unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, filepath.Join(env.Dir, "missing"), unix.RENAME_EXCHANGE), unix.ENOENT,
		"renameat2(RENAME_EXCHANGE) with a missing target")
	wantErrno(t, unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE|unix.RENAME_NOREPLACE), unix.EINVAL,
		"renameat2(RENAME_EXCHANGE|RENAME_NOREPLACE)")
}

// testRenameSelf checks that renaming a name to itself, or to another hard link
// of the same file, succeeds and changes nothing.
func testRenameSelf(t *testing.T, env Env) {
	a, h := filepath.Join(env.Dir, "a"), filepath.Join(env.Dir, "hard")
	writeFileT(t, a, []byte("same"), 0o644)
	before, _ := lstatT(t, a)
	if ok(t, unix.Rename(a, a), "rename a a") {
		if st, good := lstatT(t, a); good && st.Ino != before.Ino {
			t.Errorf("rename to itself changed inode %d to %d", before.Ino, st.Ino)
		}
		sameBytes(t, readFileT(t, a), []byte("same"), "file after rename to itself")
	}
	d := filepath.Join(env.Dir, "d")
	must(t, unix.Mkdir(d, 0o755), "mkdir")
	ok(t, unix.Rename(d, d), "rename of a directory to itself")
	must(t, unix.Link(a, h), "link")
	if ok(t, unix.Rename(a, h), "rename a to its own hard link") {
		// POSIX: both names remain.
		for _, p := range []string{a, h} {
			if st, good := lstatT(t, p); good && st.Nlink != 2 {
				t.Errorf("%s after rename onto its hard link: nlink %d, want 2", p, st.Nlink)
			}
		}
	}
	names := listDir(t, env.Dir)
	if len(names) != 3 {
		t.Errorf("directory lists %q, want a, d and hard", names)
	}
}
