package security

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
)

// ownerOps are the creations of TestOwnerFromTheStart, relative to a
// directory every user may write: a regular file, a directory, a symlink,
// a FIFO and a hard link to the file. The names are those in ownerNames.
var ownerOps = []op{
	{Op: "open", Path: "file", Flags: os.O_CREATE | os.O_WRONLY | os.O_EXCL, Mode: 0o644},
	{Op: "mkdir", Path: "dir", Mode: 0o755},
	{Op: "symlink", Path: "sl", Target: "file"},
	{Op: "mknod", Path: "fifo", Mode: unix.S_IFIFO | 0o644},
	{Op: "link", Path: "file", Path2: "hl"},
}

var ownerNames = []string{"file", "dir", "sl", "fifo", "hl"}

// TestOwnerFromTheStart checks that what another user creates through the
// mount belongs to that user from the moment it exists: the daemon creates
// it as the caller, never as root followed by a chown. A chown (or a chmod)
// after the creation shows as an IN_ATTRIB event on the backing directory,
// which an inotify watch sees however short the window was; the test
// requires none for the new names, and the owner nobody on the backing
// nodes. The same creations in a native directory are the control: they
// must give the same events and owners.
func TestOwnerFromTheStart(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			for _, dp := range []bool{true, false} {
				name := "default_permissions"
				so := server.Options{}
				if !dp {
					name = "no_default_permissions"
					// The kernel walks a cached name without a LOOKUP,
					// and LOOKUP alone checks, as the caller, the search
					// permission of the directory: without
					// default_permissions names must not be cached (as
					// ringfuse mount -o no_default_permissions does).
					so.EntryTimeout = -1
				}
				t.Run(name, func(t *testing.T) {
					src := newSource(t)
					m := mountPT(t, tr, src, mount.Options{AllowOther: true, DefaultPermissions: dp}, so)
					if hasOption(t, m.dir, "default_permissions") != dp {
						t.Fatalf("default_permissions is %v on the mount, want %v", !dp, dp)
					}
					native := nativeDir(t)
					nat := createWatched(t, native, native)
					fus := createWatched(t, src, m.dir)
					for _, w := range nat.wrong {
						t.Errorf("native directory (the control): %s", w)
					}
					for _, w := range fus.wrong {
						t.Errorf("through the mount: %s", w)
					}
					t.Logf("events: native %s; mount %s", nat.events, fus.events)
					if nat.events != fus.events {
						t.Errorf("inotify events in the backing directory:\n  mount  %s\n  native %s", fus.events, nat.events)
					}
				})
			}
		})
	}
}

// watched is what createWatched saw.
type watched struct {
	wrong  []string // failed expectations
	events string   // the events on the new names, sorted, for comparison
}

// createWatched makes a fresh directory "pub" (mode 0777) in backing,
// watches it with inotify, and has nobody make ownerOps in it through
// client, the same directory seen by the client (a mount of backing, or
// backing itself). It returns what went wrong and the events.
func createWatched(t *testing.T, backing, client string) watched {
	t.Helper()
	pub := filepath.Join(backing, "pub")
	must(t, os.Mkdir(pub, 0o777))
	must(t, os.Chmod(pub, 0o777))
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ifd)
	if _, err := unix.InotifyAddWatch(ifd, pub, unix.IN_CREATE|unix.IN_ATTRIB|unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	ops := make([]op, len(ownerOps))
	for i, o := range ownerOps {
		ops[i] = resolve(filepath.Join(client, "pub"), o)
	}
	var w watched
	for i, r := range runAs(t, nobody, ops...) {
		if r.Err != "" {
			w.wrong = append(w.wrong, "nobody "+ops[i].Op+" "+ownerOps[i].Path+": "+r.String())
		}
	}
	// The daemon's system calls, and so their events, happened before the
	// child's calls returned.
	ev := readInotify(t, ifd)
	var all []string
	for _, name := range ownerNames {
		m := ev[name]
		if m&unix.IN_CREATE == 0 {
			w.wrong = append(w.wrong, "no IN_CREATE for "+name+": the watch saw nothing")
		}
		if m&unix.IN_ATTRIB != 0 {
			w.wrong = append(w.wrong, "IN_ATTRIB for "+name+": its attributes changed after it was created")
		}
		if m&unix.IN_MOVED_TO != 0 {
			w.wrong = append(w.wrong, "IN_MOVED_TO for "+name+": it was made elsewhere and renamed in")
		}
		all = append(all, name+"="+maskString(m))
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(pub, name), &st); err != nil {
			w.wrong = append(w.wrong, "lstat "+name+": "+err.Error())
			continue
		}
		if st.Uid != nobodyID || st.Gid != nobodyID {
			w.wrong = append(w.wrong, fmt.Sprintf("backing %s: %s, want uid=%d gid=%d", name, statLine(&st), nobodyID, nobodyID))
		}
	}
	for name := range ev {
		if !contains(ownerNames, name) {
			all = append(all, name+"="+maskString(ev[name]))
		}
	}
	sort.Strings(all)
	w.events = strings.Join(all, " ")
	return w
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readInotify reads every queued event of ifd (non-blocking) and returns
// the union of the masks per name.
func readInotify(t *testing.T, ifd int) map[string]uint32 {
	t.Helper()
	ev := map[string]uint32{}
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(ifd, buf)
		if err == unix.EAGAIN {
			return ev
		}
		if err != nil {
			t.Fatalf("read inotify: %v", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			e := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(e.Len)]
			if e.Mask&unix.IN_Q_OVERFLOW != 0 {
				t.Fatal("inotify queue overflow")
			}
			ev[strings.TrimRight(string(name), "\x00")] |= e.Mask
			off += unix.SizeofInotifyEvent + int(e.Len)
		}
	}
}

// maskString names the bits of an inotify mask the test watches.
func maskString(m uint32) string {
	var s []string
	for _, b := range []struct {
		bit  uint32
		name string
	}{{unix.IN_CREATE, "CREATE"}, {unix.IN_ATTRIB, "ATTRIB"}, {unix.IN_MOVED_TO, "MOVED_TO"}, {unix.IN_ISDIR, "ISDIR"}} {
		if m&b.bit != 0 {
			s = append(s, b.name)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "|")
}
