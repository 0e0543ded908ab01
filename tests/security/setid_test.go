package security

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
)

// Modes of the set-ID cases.
const (
	allSetID     = 0o6777 // set-user-ID, set-group-ID, group-executable
	setIDNoGrpX  = 0o6767 // set-group-ID without group execute: kept on write
	setgidDir    = 0o2777
	modeSetgidRx = 0o2755
)

// setidScenarios are the set-ID cases. Each runs on a native directory
// and on the mount, and the modes, owners and groups must agree: the
// kernel's rules (should_remove_suid, setattr_prepare, inode_init_owner,
// mode_strip_sgid) decide, not the test.
var setidScenarios = []scenario{
	{
		// chown(f, -1, -1) reaches the server as the same empty SETATTR
		// the kernel sends to clear set-ID bits after a write; by a user
		// who may not write the file it must change nothing.
		name:  "chown-noop-by-other",
		setup: []fsNode{{path: "f", mode: 0o4755, data: "data"}},
		steps: []step{{nobody, op{Op: "chown", Path: "f", UID: -1, GID: -1}, "EPERM"}},
		check: []string{"f"},
	},
	{
		name:  "write-by-other",
		setup: []fsNode{{path: "f", mode: allSetID, data: "data"}},
		steps: []step{{nobody, op{Op: "write", Path: "f", Flags: os.O_APPEND, Data: "x"}, "ok"}},
		check: []string{"f"},
	},
	{
		// Through root's descriptor: the empty SETATTR the write sends
		// first comes from a user who may not write the file by name,
		// and must not fail the write.
		name:  "write-through-roots-fd",
		setup: []fsNode{{path: "f", mode: 0o4755, data: "data"}},
		steps: []step{{nobody, op{Op: "writefd", Path: "f", Flags: os.O_APPEND, Data: "x"}, "ok"}},
		check: []string{"f"},
	},
	{
		name:  "write-by-other-no-group-exec",
		setup: []fsNode{{path: "f", mode: setIDNoGrpX, data: "data"}},
		steps: []step{{nobody, op{Op: "write", Path: "f", Flags: os.O_APPEND, Data: "x"}, "ok"}},
		// FUSE_WRITE_KILL_SUIDGID is one bit for both set-ID bits, so it
		// cannot say that S_ISGID without group execute goes too; the
		// write itself runs as the caller, and the backing filesystem
		// clears exactly what it clears natively.
		check: []string{"f"},
	},
	{
		name:  "write-by-root",
		setup: []fsNode{{path: "f", mode: allSetID, data: "data"}},
		steps: []step{{root, op{Op: "write", Path: "f", Flags: os.O_APPEND, Data: "x"}, "ok"}},
		check: []string{"f"},
	},
	{
		name:  "write-by-unprivileged-owner",
		setup: []fsNode{{path: "f", mode: allSetID, uid: nobodyID, gid: nobodyID, data: "data"}},
		steps: []step{{nobody, op{Op: "write", Path: "f", Flags: os.O_APPEND, Data: "x"}, "ok"}},
		check: []string{"f"},
	},
	{
		name:  "truncate-by-other",
		setup: []fsNode{{path: "f", mode: allSetID, data: "data"}},
		steps: []step{{nobody, op{Op: "truncate", Path: "f", N: 1}, "ok"}},
		check: []string{"f"},
	},
	{
		name:  "open-trunc-by-other",
		setup: []fsNode{{path: "f", mode: allSetID, data: "data"}},
		steps: []step{{nobody, op{Op: "write", Path: "f", Flags: os.O_TRUNC}, "ok"}},
		check: []string{"f"},
	},
	{
		name: "chown-by-root",
		setup: []fsNode{
			{path: "f", mode: allSetID, data: "data"},
			{path: "g", mode: allSetID, data: "data"},
			{path: "d", dir: true, mode: setgidDir},
		},
		steps: []step{
			{root, op{Op: "chown", Path: "f", UID: userID, GID: userID}, "ok"},
			{root, op{Op: "chown", Path: "g", UID: -1, GID: sharedGID}, "ok"},
			{root, op{Op: "chown", Path: "d", UID: userID, GID: userID}, "ok"},
		},
		check: []string{"f", "g", "d"},
	},
	{
		name:  "chgrp-by-owner",
		setup: []fsNode{{path: "f", mode: allSetID, uid: nobodyID, gid: nobodyID, data: "data"}},
		steps: []step{{nobody, op{Op: "chown", Path: "f", UID: -1, GID: nobodyID}, "ok"}},
		check: []string{"f"},
	},
	{
		name: "chown-to-others",
		setup: []fsNode{
			{path: "f", mode: 0o644, uid: nobodyID, gid: nobodyID, data: "data"},
		},
		steps: []step{
			{nobody, op{Op: "chown", Path: "f", UID: userID, GID: -1}, "EPERM"},
			{nobody, op{Op: "chown", Path: "f", UID: 0, GID: -1}, "EPERM"},
			{nobody, op{Op: "chown", Path: "f", UID: -1, GID: sharedGID}, "EPERM"},
			{nobody, op{Op: "chown", Path: "f", UID: -1, GID: 0}, "EPERM"},
			{user, op{Op: "chown", Path: "f", UID: userID, GID: userID}, "EPERM"},
			{nobodyG, op{Op: "chown", Path: "f", UID: -1, GID: sharedGID}, "ok"},
		},
		check: []string{"f"},
	},
	{
		name: "chmod-setgid",
		setup: []fsNode{
			{path: "f", mode: 0o755, uid: nobodyID, gid: sharedGID, data: "data"},
			{path: "g", mode: 0o755, uid: nobodyID, gid: sharedGID, data: "data"},
			{path: "h", mode: 0o755, uid: nobodyID, gid: nobodyID, data: "data"},
		},
		steps: []step{
			{nobody, op{Op: "chmod", Path: "f", Mode: modeSetgidRx}, "ok"}, // not in the group: dropped
			{nobodyG, op{Op: "chmod", Path: "g", Mode: modeSetgidRx}, "ok"},
			{nobody, op{Op: "chmod", Path: "h", Mode: 0o4755 | modeSetgidRx}, "ok"},
		},
		check: []string{"f", "g", "h"},
	},
	{
		name: "setgid-directory",
		setup: []fsNode{
			{path: "sg", dir: true, mode: setgidDir, gid: sharedGID},
		},
		steps: []step{
			{nobody, op{Op: "write", Path: "sg/f", Flags: os.O_CREATE, Mode: 0o644}, "ok"},
			{nobody, op{Op: "mkdir", Path: "sg/d", Mode: 0o755}, "ok"},
			{nobody, op{Op: "mkdir", Path: "sg/d/e", Mode: 0o700}, "ok"},
			{nobody, op{Op: "mknod", Path: "sg/p", Mode: unix.S_IFIFO | 0o644}, "ok"},
			{nobody, op{Op: "symlink", Path: "sg/l", Target: "f"}, "ok"},
			{nobody, op{Op: "write", Path: "sg/x", Flags: os.O_CREATE, Mode: modeSetgidRx}, "ok"},
			{user, op{Op: "write", Path: "sg/d/u", Flags: os.O_CREATE, Mode: 0o600}, "EACCES"},
			{root, op{Op: "write", Path: "sg/r", Flags: os.O_CREATE, Mode: modeSetgidRx}, "ok"},
			{root, op{Op: "mkdir", Path: "sg/rd", Mode: 0o700}, "ok"},
		},
		check: []string{"sg", "sg/f", "sg/d", "sg/d/e", "sg/p", "sg/l", "sg/x", "sg/r", "sg/rd"},
	},
	{
		// A member of the directory's group through a supplementary group
		// keeps S_ISGID on a new group-executable file (the kernel's
		// mode_strip_sgid checks every group of the caller).
		name: "setgid-directory-member",
		setup: []fsNode{
			{path: "sg", dir: true, mode: setgidDir, gid: sharedGID},
		},
		steps: []step{
			{nobodyG, op{Op: "write", Path: "sg/x", Flags: os.O_CREATE, Mode: modeSetgidRx}, "ok"},
			{nobodyG, op{Op: "mkdir", Path: "sg/d", Mode: 0o755}, "ok"},
			{nobodyG, op{Op: "mknod", Path: "sg/p", Mode: unix.S_IFIFO | 0o2754}, "ok"},
		},
		check: []string{"sg/x", "sg/d", "sg/p"},
	},
}

// TestSetID checks set-user-ID and set-group-ID bits on a mount with
// allow_other, with and without default_permissions, against a native
// directory of the same filesystem.
func TestSetID(t *testing.T) {
	for _, tr := range testmount.Transports {
		for _, dp := range []bool{true, false} {
			name, so := tr, server.Options{}
			if !dp {
				// See TestPermissionsWithoutDefaultPermissions.
				name, so = tr+"/no-default-permissions", server.Options{EntryTimeout: -1}
			}
			t.Run(name, func(t *testing.T) {
				src := newSource(t)
				m := mountPT(t, tr, src, mount.Options{AllowOther: true, DefaultPermissions: dp}, so)
				runScenarios(t, setidScenarios, nativeDir(t), m)
			})
		}
	}
}
