package creds

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Supplementary groups of callers, by thread ID.

// groupTTL bounds how long a thread's groups are trusted: a thread ID the
// kernel reuses for a process with the same IDs but other groups gets the
// old groups for at most this long. Groups change only through
// setgroups(2), which needs CAP_SETGID, and mostly together with the user
// ID, which is part of the check.
const groupTTL = time.Second

// maxCached bounds the cache; when full it starts again empty.
const maxCached = 4096

// groupEntry is what /proc/PID/status said of one thread.
type groupEntry struct {
	uid, gid uint32
	groups   []uint32
	read     time.Time
}

// groupTable caches the supplementary groups of callers' threads.
type groupTable struct {
	mu      sync.Mutex
	entries map[uint32]groupEntry
}

var groupCache groupTable

// lookup returns the supplementary groups of thread pid if it has
// filesystem IDs uid and gid, and nil otherwise. It allocates only when
// it reads /proc.
func (t *groupTable) lookup(pid, uid, gid uint32) []uint32 {
	if pid == 0 {
		return nil // a request the kernel makes itself
	}
	now := time.Now()
	t.mu.Lock()
	e, ok := t.entries[pid]
	t.mu.Unlock()
	if !ok || now.Sub(e.read) >= groupTTL {
		// Read, and keep what was read even if it does not match, so
		// that a mismatching thread costs one read a second, not one a
		// request.
		if e, ok = readStatus(pid); !ok {
			return nil
		}
		e.read = now
		t.mu.Lock()
		if t.entries == nil || len(t.entries) >= maxCached {
			t.entries = make(map[uint32]groupEntry)
		}
		t.entries[pid] = e
		t.mu.Unlock()
	}
	if e.uid != uid || e.gid != gid {
		return nil
	}
	return e.groups
}

// readStatus reads the filesystem IDs and groups of thread pid from
// /proc/PID/status (a thread ID names its thread there too).
func readStatus(pid uint32) (groupEntry, bool) {
	fd, err := unix.Open("/proc/"+strconv.FormatUint(uint64(pid), 10)+"/status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return groupEntry{}, false
	}
	defer unix.Close(fd)
	// The file is a few KiB, more with many groups (at most 65536).
	buf := make([]byte, 8192)
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		r, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return groupEntry{}, false
		}
		if r == 0 {
			break
		}
		n += r
	}
	return parseStatus(buf[:n])
}

// parseStatus takes the fourth (filesystem) IDs of the Uid: and Gid:
// lines and the Groups: line of a status file.
func parseStatus(b []byte) (groupEntry, bool) {
	var e groupEntry
	var haveUID, haveGID, haveGroups bool
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		fields := bytes.Fields(val)
		switch string(key) {
		case "Uid":
			e.uid, haveUID = fsID(fields)
		case "Gid":
			e.gid, haveGID = fsID(fields)
		case "Groups":
			e.groups = make([]uint32, 0, len(fields))
			for _, f := range fields {
				g, err := strconv.ParseUint(string(f), 10, 32)
				if err != nil {
					return groupEntry{}, false
				}
				e.groups = append(e.groups, uint32(g))
			}
			haveGroups = true
		}
	}
	return e, haveUID && haveGID && haveGroups
}

// fsID returns the fourth of the real, effective, saved and filesystem IDs.
func fsID(fields [][]byte) (uint32, bool) {
	if len(fields) != 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(fields[3]), 10, 32)
	return uint32(v), err == nil
}
