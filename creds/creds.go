// Package creds lets a filesystem act as the process that made a FUSE
// request. [Run] gives the calling OS thread the caller's filesystem user
// and group IDs and supplementary groups for the length of one function,
// so that the backing filesystem's own checks (modes, ACLs, sticky
// directories, protected hard links, quotas, reserved blocks) apply to the
// caller, and files are created with the caller's owner and group at once,
// as virtiofsd does.
//
// Only the filesystem IDs change (setfsuid(2), setfsgid(2)) and the
// supplementary groups (setgroups(2) as a raw, per-thread system call, not
// Go's process-wide one): the real, effective and saved IDs stay the
// daemon's, so the thread can switch back. While the filesystem user ID is
// not 0, the kernel takes the file capabilities (CAP_CHOWN,
// CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID...) out of
// the thread's effective set, so nothing the function does passes a check
// the caller would fail. Calls that need the daemon's own rights, such as
// open_by_handle_at(2), belong outside the function.
//
// The kernel does not send a caller's supplementary groups (FUSE_EXT_GROUPS
// carries only the one group that matches a new file's directory), so Run
// reads them from /proc/PID/status, where PID is the caller's thread, and
// keeps them for a second per thread ID. An entry is used only if the
// status file shows the same filesystem user and group IDs as the request;
// otherwise (the thread is gone, or its IDs changed) the caller gets no
// supplementary groups.
//
// Switching needs CAP_SETUID and CAP_SETGID. Without them ([Supported]
// false), Run calls the function with the daemon's own credentials, which
// then are those of the user who mounted.
package creds

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
)

// self holds the daemon's own filesystem credentials, read once.
var self struct {
	once      sync.Once
	supported bool
	uid, gid  uint32
	groups    []uint32
}

func loadSelf() {
	self.uid, self.gid = uint32(unix.Geteuid()), uint32(unix.Getegid())
	gs, err := unix.Getgroups()
	if err == nil {
		for _, g := range gs {
			self.groups = append(self.groups, uint32(g))
		}
	}
	// Setting other IDs than our own needs CAP_SETUID and CAP_SETGID,
	// which root has; a daemon without them acts as the mounting user.
	self.supported = err == nil && self.uid == 0 && probe()
}

// probe checks that this thread can take another filesystem user ID and
// give it back.
func probe() bool {
	const nobody = 65534
	runtime.LockOSThread()
	setfsuid(nobody)
	ok := currentFsuid() == nobody
	if !restore() {
		return false // the thread stays locked, as in release
	}
	runtime.UnlockOSThread()
	return ok
}

// Supported reports whether Run can act as another user: the process has
// CAP_SETUID and CAP_SETGID (it runs as root).
func Supported() bool {
	self.once.Do(loadSelf)
	return self.supported
}

// Thread records the credentials of an OS thread that one goroutine keeps
// for its whole life (runtime.LockOSThread, never undone) to serve
// requests, such as a ring queue's thread. On such a thread [Run] leaves
// the caller's credentials in place when it returns, so that the next
// request from the same caller costs no system call, and [Daemon] takes
// them back where the daemon's own rights are needed. The zero Thread is a
// thread with the daemon's credentials. A request context names its
// thread through a method CredThread() *Thread; the server's contexts have
// it when their channel said that its goroutine owns its thread.
type Thread struct {
	switched bool // the thread has uid, gid and groups, not the daemon's
	uid, gid uint32
	groups   []uint32
}

// threadOf returns the thread record of ctx's request, or nil.
func threadOf(ctx context.Context) *Thread {
	if t, ok := ctx.(interface{ CredThread() *Thread }); ok {
		return t.CredThread()
	}
	return nil
}

// Run calls f with the filesystem credentials of the process that made the
// request whose context is ctx ([ringfuse.CallerOf]) on the current OS
// thread, and returns what f returns. A caller with the daemon's own IDs,
// a context that did not come from the server, and a daemon that cannot
// switch ([Supported] false) run f with the daemon's credentials. If the
// credentials cannot be taken, f does not run and Run returns EPERM.
//
// Run restores the daemon's credentials before it returns, also if f
// panics, except on a thread that ctx names as its own (see [Thread]).
// f must not start goroutines that act for the caller: only the calling
// thread changes. Run does not allocate once the caller's groups are known.
func Run(ctx context.Context, f func() syscall.Errno) syscall.Errno {
	self.once.Do(loadSelf)
	if !self.supported {
		return f()
	}
	c := ringfuse.CallerOf(ctx)
	if t := threadOf(ctx); t != nil {
		if e := t.take(c); e != 0 {
			return e
		}
		return f()
	}
	if c.UID == self.uid && c.GID == self.gid {
		return f()
	}
	runtime.LockOSThread()
	if err := become(c.UID, c.GID, groupsOf(c), self.gid, self.groups); err != 0 {
		release()
		return syscall.EPERM
	}
	defer release()
	return f()
}

// Daemon calls f with the daemon's own credentials, for the calls that
// need them in the middle of serving a request (open_by_handle_at(2)
// needs CAP_DAC_READ_SEARCH). Outside [Run] only a thread that ctx names as
// its own can have other credentials, and Daemon gives them back for good.
func Daemon(ctx context.Context, f func() syscall.Errno) syscall.Errno {
	if t := threadOf(ctx); t != nil && t.switched {
		t.reset()
	}
	return f()
}

// Owner returns the user ID that an object made under [Run] for ctx's
// request belongs to: the caller's, or the daemon's own where Run cannot
// switch.
func Owner(ctx context.Context) uint32 {
	self.once.Do(loadSelf)
	if !self.supported {
		return self.uid
	}
	return ringfuse.CallerOf(ctx).UID
}

// groupsOf returns the supplementary groups c acts with. Root's access
// does not depend on its groups (it keeps its capabilities), so only other
// users need theirs.
func groupsOf(c ringfuse.Caller) []uint32 {
	if c.UID == 0 {
		return nil
	}
	return groupCache.lookup(c.PID, c.UID, c.GID)
}

// take gives the thread c's credentials, changing nothing if it has them.
func (t *Thread) take(c ringfuse.Caller) syscall.Errno {
	if c.UID == self.uid && c.GID == self.gid {
		if t.switched {
			t.reset()
		}
		return 0
	}
	groups := groupsOf(c)
	if t.switched && t.uid == c.UID && t.gid == c.GID && slices.Equal(t.groups, groups) {
		return 0
	}
	curGID, curGroups := self.gid, self.groups
	if t.switched {
		curGID, curGroups = t.gid, t.groups
	}
	// Until all three are set, the record says the thread is switched
	// with IDs no caller has, so that nothing trusts a half switch.
	t.switched, t.uid, t.gid, t.groups = true, ^uint32(0), ^uint32(0), nil
	if err := become(c.UID, c.GID, groups, curGID, curGroups); err != 0 {
		t.reset()
		return syscall.EPERM
	}
	t.uid, t.gid, t.groups = c.UID, c.GID, groups
	return 0
}

// reset gives the thread the daemon's credentials back.
func (t *Thread) reset() {
	if !restore() {
		// The goroutine keeps its thread, so no other work runs on it;
		// with these credentials it has fewer rights, never more.
		panic("creds: cannot restore the daemon's credentials")
	}
	*t = Thread{}
}

// release gives the current thread the daemon's credentials back and
// unlocks it. A thread whose credentials cannot be restored stays locked
// to its goroutine, so that Go never hands it to other work (and ends it
// when the goroutine ends).
func release() {
	if restore() {
		runtime.UnlockOSThread()
		return
	}
	panic("creds: cannot restore the daemon's credentials")
}

// become gives the current thread fsuid uid, fsgid gid and the
// supplementary groups. The thread has fsgid curGID and curGroups now:
// each call that changes an ID replaces the thread's credentials, a few
// microseconds, so the group calls are made only for what differs.
func become(uid, gid uint32, groups []uint32, curGID uint32, curGroups []uint32) syscall.Errno {
	if !slices.Equal(groups, curGroups) {
		if e := setgroups(groups); e != 0 {
			return e
		}
	}
	if gid != curGID {
		setfsgid(gid)
	}
	setfsuid(uid)
	// setfsuid and setfsgid report no error; a wrong ID would leave the
	// thread with the daemon's rights, so check the one that matters.
	if currentFsuid() != uid {
		return syscall.EPERM
	}
	return 0
}

// restore gives the current thread the daemon's credentials and reports
// whether it has them. The user ID goes first: it brings the file
// capabilities back.
func restore() bool {
	setfsuid(self.uid)
	setfsgid(self.gid)
	return setgroups(self.groups) == 0 && currentFsuid() == self.uid
}

// setgroups sets the thread's supplementary groups. It is the raw system
// call, which changes the calling thread only (Go's syscall.Setgroups
// changes every thread of the process). gid_t is 32 bits on every 64-bit
// Linux port.
func setgroups(groups []uint32) syscall.Errno {
	var p unsafe.Pointer
	if len(groups) > 0 {
		p = unsafe.Pointer(&groups[0])
	}
	_, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0)
	return e
}
