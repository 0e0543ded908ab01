package posixtest

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// testMkdirRmdir checks mkdir and rmdir and their errors, and the link counts
// of a new directory and its parent.
func testMkdirRmdir(t *testing.T, env Env) {
	d := filepath.Join(env.Dir, "dir")
	parent, good := statT(t, env.Dir)
	if !good {
		return
	}
	must(t, unix.Mkdir(d, 0o755), "mkdir %s", d)
	if st, good := statT(t, d); good {
		wantType(t, st, unix.S_IFDIR, d)
		if st.Nlink != 2 {
			t.Errorf("new directory: nlink %d, want 2", st.Nlink)
		}
	}
	if st, good := statT(t, env.Dir); good && st.Nlink != parent.Nlink+1 {
		t.Errorf("parent nlink after mkdir: %d, want %d", st.Nlink, parent.Nlink+1)
	}
	if names := listDir(t, d); len(names) != 0 {
		t.Errorf("new directory lists %q, want nothing", names)
	}
	wantErrno(t, unix.Mkdir(d, 0o755), unix.EEXIST, "mkdir of an existing directory")
	f := filepath.Join(env.Dir, "file")
	writeFileT(t, f, []byte("x"), 0o644)
	wantErrno(t, unix.Mkdir(f, 0o755), unix.EEXIST, "mkdir over an existing file")
	wantErrno(t, unix.Mkdir(filepath.Join(env.Dir, "a", "b"), 0o755), unix.ENOENT, "mkdir with a missing parent")
	wantErrno(t, unix.Mkdir(filepath.Join(f, "sub"), 0o755), unix.ENOTDIR, "mkdir under a file")

	sub := filepath.Join(d, "sub")
	must(t, unix.Mkdir(sub, 0o700), "mkdir %s", sub)
	wantErrno(t, unix.Rmdir(d), unix.ENOTEMPTY, "rmdir of a directory holding a directory")
	ok(t, unix.Rmdir(sub), "rmdir %s", sub)
	writeFileT(t, filepath.Join(d, "f"), nil, 0o644)
	wantErrno(t, unix.Rmdir(d), unix.ENOTEMPTY, "rmdir of a directory holding a file")
	wantErrno(t, unix.Rmdir(filepath.Join(d, "f")), unix.ENOTDIR, "rmdir of a file")
	wantErrno(t, unix.Rmdir(filepath.Join(env.Dir, "missing")), unix.ENOENT, "rmdir of a missing name")
	wantErrno(t, unix.Rmdir(d+"/."), unix.EINVAL, "rmdir of dir/.")
	wantErrno(t, unix.Unlink(d), unix.EISDIR, "unlink of a directory")
	ok(t, unix.Unlink(filepath.Join(d, "f")), "unlink")
	if ok(t, unix.Rmdir(d), "rmdir of an emptied directory") {
		wantGone(t, d)
		if st, good := statT(t, env.Dir); good && st.Nlink != parent.Nlink {
			t.Errorf("parent nlink after rmdir: %d, want %d", st.Nlink, parent.Nlink)
		}
	}
	// The name can be a directory again.
	if ok(t, unix.Mkdir(d, 0o700), "mkdir again after rmdir") {
		if names := listDir(t, d); len(names) != 0 {
			t.Errorf("recreated directory lists %q, want nothing", names)
		}
	}
}

// testReaddirAfterCreate checks that listings follow creations and removals,
// also through a directory descriptor opened before them and rewound.
func testReaddirAfterCreate(t *testing.T, env Env) {
	dfd := openT(t, env.Dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	first := readDirFD(t, dfd, 4096, env.Dir)
	if len(first) != 2 {
		t.Errorf("empty directory lists %d entries, want 2 (. and ..)", len(first))
	}
	for _, n := range []string{"a", "b", "c"} {
		writeFileT(t, filepath.Join(env.Dir, n), nil, 0o644)
	}
	check := func(want ...string) {
		t.Helper()
		got := listDir(t, env.Dir)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("directory lists %q, want %q", got, want)
		}
		_, err := unix.Seek(dfd, 0, unix.SEEK_SET)
		ok(t, err, "lseek directory to 0")
		var names []string
		for _, e := range readDirFD(t, dfd, 4096, env.Dir) {
			if e.name != "." && e.name != ".." {
				names = append(names, e.name)
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, want) {
			t.Errorf("rewound old directory descriptor lists %q, want %q", names, want)
		}
	}
	check("a", "b", "c")
	ok(t, unix.Unlink(filepath.Join(env.Dir, "b")), "unlink b")
	check("a", "c")
	ok(t, unix.Mkdir(filepath.Join(env.Dir, "d"), 0o755), "mkdir d")
	ok(t, unix.Rename(filepath.Join(env.Dir, "a"), filepath.Join(env.Dir, "e")), "rename a e")
	check("c", "d", "e")
}

// testReaddirTypes checks the d_type of each kind of entry; DT_UNKNOWN is
// allowed, a wrong type is not.
func testReaddirTypes(t *testing.T, env Env) {
	want := map[string]uint8{".": unix.DT_DIR, "..": unix.DT_DIR, "file": unix.DT_REG, "dir": unix.DT_DIR, "link": unix.DT_LNK, "fifo": unix.DT_FIFO}
	writeFileT(t, filepath.Join(env.Dir, "file"), nil, 0o644)
	must(t, unix.Mkdir(filepath.Join(env.Dir, "dir"), 0o755), "mkdir")
	must(t, unix.Symlink("file", filepath.Join(env.Dir, "link")), "symlink")
	must(t, unix.Mkfifo(filepath.Join(env.Dir, "fifo"), 0o644), "mkfifo")
	fd := openT(t, env.Dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	seen := map[string]bool{}
	for _, e := range readDirFD(t, fd, 4096, env.Dir) {
		w, known := want[e.name]
		if !known {
			t.Errorf("unexpected entry %q", e.name)
			continue
		}
		if seen[e.name] {
			t.Errorf("entry %q listed twice", e.name)
		}
		seen[e.name] = true
		if e.typ != w && e.typ != unix.DT_UNKNOWN {
			t.Errorf("entry %q: d_type %d, want %d", e.name, e.typ, w)
		}
	}
	for n := range want {
		if !seen[n] {
			t.Errorf("entry %q missing", n)
		}
	}
}

// testReaddirIno checks that d_ino matches st_ino from lstat for every entry
// except "..", whose inode may belong to another file system.
func testReaddirIno(t *testing.T, env Env) {
	writeFileT(t, filepath.Join(env.Dir, "file"), nil, 0o644)
	must(t, unix.Mkdir(filepath.Join(env.Dir, "dir"), 0o755), "mkdir")
	must(t, unix.Symlink("dangling", filepath.Join(env.Dir, "link")), "symlink")
	must(t, unix.Link(filepath.Join(env.Dir, "file"), filepath.Join(env.Dir, "hard")), "link")
	fd := openT(t, env.Dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	n := 0
	for _, e := range readDirFD(t, fd, 4096, env.Dir) {
		if e.name == ".." {
			continue
		}
		n++
		if st, good := lstatT(t, filepath.Join(env.Dir, e.name)); good && st.Ino != e.ino {
			t.Errorf("entry %q: d_ino %d, but lstat st_ino %d", e.name, e.ino, st.Ino)
		}
	}
	if n != 5 {
		t.Errorf("listed %d entries besides .., want 5", n)
	}
}

// entryName returns a name of varying length so that records straddle the
// getdents buffers at many positions.
func entryName(i int) string {
	return fmt.Sprintf("e%05d-%s", i, strings.Repeat("n", i%41))
}

// makeEntries creates n empty regular files named by entryName in dir.
func makeEntries(t *testing.T, dir string, n int) map[string]bool {
	t.Helper()
	names := make(map[string]bool, n)
	for i := range n {
		name := entryName(i)
		// mknod is one request on FUSE, where open, close is three.
		must(t, unix.Mknod(filepath.Join(dir, name), unix.S_IFREG|0o644, 0), "mknod entry %d of %d", i, n)
		names[name] = true
	}
	return names
}

// testReaddirLarge lists a directory of 10,000 entries with getdents64 and a
// small buffer, and with os.ReadDir, and checks every name appears once.
func testReaddirLarge(t *testing.T, env Env) {
	const n = 10000
	want := makeEntries(t, env.Dir, n)
	fd := openT(t, env.Dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	for _, bufSize := range []int{512, 32 << 10} {
		if _, err := unix.Seek(fd, 0, unix.SEEK_SET); !ok(t, err, "lseek directory to 0") {
			continue
		}
		ents := readDirFD(t, fd, bufSize, env.Dir)
		seen := make(map[string]int, n+2)
		for _, e := range ents {
			seen[e.name]++
		}
		bad := 0
		for name, c := range seen {
			if c != 1 && bad < 10 {
				bad++
				t.Errorf("buffer %d: entry %q listed %d times", bufSize, name, c)
			}
			if !want[name] && name != "." && name != ".." && bad < 10 {
				bad++
				t.Errorf("buffer %d: unexpected entry %q", bufSize, name)
			}
		}
		missing := 0
		for name := range want {
			if seen[name] == 0 {
				missing++
			}
		}
		if missing > 0 || seen["."] != 1 || seen[".."] != 1 {
			t.Errorf("buffer %d: %d of %d names missing; . seen %d times, .. %d times", bufSize, missing, n, seen["."], seen[".."])
		}
		if len(ents) != n+2 {
			t.Errorf("buffer %d: %d entries, want %d", bufSize, len(ents), n+2)
		}
	}
	des, err := readDirNames(env.Dir)
	if ok(t, err, "os.ReadDir %s", env.Dir) && len(des) != n {
		t.Errorf("os.ReadDir found %d entries, want %d", len(des), n)
	}
}

// testReaddirSeek records the d_off cookies of a 3,000-entry directory, read
// with a 512-byte buffer, and checks that lseek to a cookie continues with
// exactly the entries that followed it (read with a 4 KiB buffer), also
// after a partial read, that lseek(SEEK_CUR) reports the last cookie read
// (telldir), and that lseek to 0 restarts the listing.
func testReaddirSeek(t *testing.T, env Env) {
	const n = 3000
	makeEntries(t, env.Dir, n)
	fd := openT(t, env.Dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)

	// First pass, one buffer at a time, checking telldir after each.
	var all []dirent
	tellBad := 0
	for {
		ents, err := getdents(fd, 512)
		if !ok(t, err, "getdents64 after %d entries", len(all)) {
			return
		}
		if len(ents) == 0 {
			break
		}
		all = append(all, ents...)
		last := ents[len(ents)-1].off
		if pos, err := unix.Seek(fd, 0, unix.SEEK_CUR); err != nil || pos != last {
			if tellBad++; tellBad <= 3 {
				t.Errorf("after %d entries: lseek(0, SEEK_CUR) = %d, %s; want the last d_off %d", len(all), pos, describe(err), last)
			}
		}
	}
	if len(all) != n+2 {
		t.Fatalf("listed %d entries, want %d", len(all), n+2)
	}
	names := make([]string, len(all))
	for i, e := range all {
		names[i] = e.name
	}
	tail := func(what string) []string {
		var got []string
		for _, e := range readDirFD(t, fd, 4096, what) {
			got = append(got, e.name)
		}
		return got
	}
	for _, k := range []int{0, 1, 2, 17, n / 3, n/2 + 7, n - 1, n, n + 1} {
		cookie := all[k].off
		pos, err := unix.Seek(fd, cookie, unix.SEEK_SET)
		if !ok(t, err, "lseek directory to d_off %d of entry %d", cookie, k) {
			continue
		}
		if pos != cookie {
			t.Errorf("lseek directory to %d returned %d", cookie, pos)
		}
		got := tail(fmt.Sprintf("after lseek to entry %d", k))
		if !slices.Equal(got, names[k+1:]) {
			first := "end"
			if len(got) > 0 {
				first = fmt.Sprintf("%q", got[0])
			}
			t.Errorf("after lseek to the d_off of entry %d (%q): %d entries starting with %s, want %d starting after it",
				k, names[k], len(got), first, len(names)-k-1)
		}
	}
	// Seek to a cookie in the middle of a buffer after a partial read.
	if _, err := unix.Seek(fd, 0, unix.SEEK_SET); ok(t, err, "lseek directory to 0") {
		if _, err := getdents(fd, 512); ok(t, err, "getdents64") {
			k := n / 4
			if _, err := unix.Seek(fd, all[k].off, unix.SEEK_SET); ok(t, err, "lseek") {
				if got := tail("after partial read and lseek"); !slices.Equal(got, names[k+1:]) {
					t.Errorf("after a partial read, lseek to entry %d's d_off gave %d entries, want %d", k, len(got), len(names)-k-1)
				}
			}
		}
	}
	if pos, err := unix.Seek(fd, 0, unix.SEEK_SET); ok(t, err, "lseek directory to 0") && pos != 0 {
		t.Errorf("lseek directory to 0 returned %d", pos)
	}
	if got := tail("after lseek to 0"); !slices.Equal(got, names) {
		t.Errorf("after lseek to 0: %d entries, differing from the first pass of %d", len(got), len(names))
	}
}

// testReaddirWhileUnlinking unlinks entries, both already listed and not yet
// listed, between getdents64 calls. No entry may be listed twice, and every
// entry never unlinked before being listed must be listed.
func testReaddirWhileUnlinking(t *testing.T, env Env) {
	const n = 2000
	made := makeEntries(t, env.Dir, n)
	want := maps.Clone(made) // entries not yet removed
	fd := openT(t, env.Dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	seen := map[string]int{}
	removedUnseen := map[string]bool{}
	next := n - 1 // unseen names are removed from the end of the index range
	for batch := 0; ; batch++ {
		ents, err := getdents(fd, 512)
		if !ok(t, err, "getdents64 after %d entries", len(seen)) {
			break
		}
		if len(ents) == 0 {
			break
		}
		for i, e := range ents {
			seen[e.name]++
			if e.name == "." || e.name == ".." {
				continue
			}
			if !made[e.name] {
				t.Errorf("unexpected entry %q", e.name)
				continue
			}
			if i%2 == 0 && want[e.name] {
				if ok(t, unix.Unlink(filepath.Join(env.Dir, e.name)), "unlink listed entry") {
					delete(want, e.name)
				}
			}
		}
		// Remove two entries that may not have been listed yet.
		for range 2 {
			for next >= 0 && seen[entryName(next)] > 0 {
				next--
			}
			if next < 0 {
				break
			}
			name := entryName(next)
			next--
			if want[name] && ok(t, unix.Unlink(filepath.Join(env.Dir, name)), "unlink unlisted entry") {
				delete(want, name)
				removedUnseen[name] = true
			}
		}
	}
	dups := 0
	for name, c := range seen {
		if c > 1 {
			dups++
			if dups <= 10 {
				t.Errorf("entry %q listed %d times", name, c)
			}
		}
	}
	missing := 0
	for i := range n {
		name := entryName(i)
		if seen[name] == 0 && !removedUnseen[name] {
			missing++
			if missing <= 10 {
				t.Errorf("entry %q, never removed before being listed, was not listed", name)
			}
		}
	}
	if dups > 10 || missing > 10 {
		t.Errorf("%d entries listed more than once, %d missing", dups, missing)
	}
	if len(removedUnseen) == 0 {
		t.Errorf("test did not manage to remove unlisted entries")
	}
}
