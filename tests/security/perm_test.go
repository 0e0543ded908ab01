package security

import (
	"os"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
)

// Access modes for the access op (access(2)'s mode argument).
const (
	accessR = 4
	accessW = 2
)

// permScenarios are the mode-bit cases: what other users may do to root's
// files and to each other's, by owner, group (supplementary groups
// included), other and sticky-directory rules.
var permScenarios = []scenario{
	{
		name: "modes",
		setup: []fsNode{
			{path: "secret", mode: 0o600, data: "secret"},
			{path: "public", mode: 0o644, data: "public"},
			{path: "nox", dir: true, mode: 0o744},
			{path: "nox/inner", mode: 0o644, data: "inner"},
			{path: "nor", dir: true, mode: 0o711},
			{path: "nor/inner", mode: 0o644, data: "inner"},
			{path: "ownnone", mode: 0o077, uid: nobodyID, gid: nobodyID, data: "ownnone"},
		},
		steps: []step{
			{nobody, op{Op: "read", Path: "secret"}, "EACCES"},
			{nobody, op{Op: "write", Path: "secret", Flags: os.O_APPEND, Data: "x"}, "EACCES"},
			{nobody, op{Op: "access", Path: "secret", Mode: accessR}, "EACCES"},
			{nobody, op{Op: "read", Path: "public"}, "ok public"},
			{nobody, op{Op: "write", Path: "public", Flags: os.O_APPEND, Data: "x"}, "EACCES"},
			{nobody, op{Op: "truncate", Path: "public"}, "EACCES"},
			{nobody, op{Op: "access", Path: "public", Mode: accessW}, "EACCES"},
			{nobody, op{Op: "chmod", Path: "public", Mode: 0o666}, "EPERM"},
			{nobody, op{Op: "chown", Path: "public", UID: nobodyID, GID: nobodyID}, "EPERM"},
			{nobody, op{Op: "setxattr", Path: "public", Name: "user.x", Data: "x"}, "EACCES"},
			{nobody, op{Op: "utimes", Path: "public", N: 1}, "EPERM"},
			{nobody, op{Op: "unlink", Path: "public"}, "EACCES"},
			{nobody, op{Op: "rename", Path: "public", Path2: "moved"}, "EACCES"},
			{nobody, op{Op: "link", Path: "public", Path2: "nox/hl"}, "EACCES"},
			{nobody, op{Op: "write", Path: "new", Flags: os.O_CREATE, Mode: 0o644}, "EACCES"},
			{nobody, op{Op: "mkdir", Path: "newdir", Mode: 0o755}, "EACCES"},
			{nobody, op{Op: "readdir", Path: "nox"}, "ok inner"},
			{nobody, op{Op: "stat", Path: "nox/inner"}, "EACCES"},
			{nobody, op{Op: "read", Path: "nox/inner"}, "EACCES"},
			{nobody, op{Op: "readdir", Path: "nor"}, "EACCES"},
			{nobody, op{Op: "read", Path: "nor/inner"}, "ok inner"},
			{nobody, op{Op: "write", Path: "nor/new", Flags: os.O_CREATE, Mode: 0o644}, "EACCES"},
			// The owner class decides for the owner, even if others may.
			{nobody, op{Op: "read", Path: "ownnone"}, "EACCES"},
			{nobody, op{Op: "chmod", Path: "ownnone", Mode: 0o477}, "ok"},
			{nobody, op{Op: "read", Path: "ownnone"}, "ok ownnone"},
			{user, op{Op: "read", Path: "secret"}, "EACCES"},
			{user, op{Op: "read", Path: "ownnone"}, "ok ownnone"},
			{user, op{Op: "write", Path: "public", Flags: os.O_TRUNC, Data: "x"}, "EACCES"},
		},
		check: []string{"secret", "public", "ownnone", "nox", "nor"},
	},
	{
		name: "sticky",
		setup: []fsNode{
			{path: "tmp", dir: true, mode: 0o1777},
			{path: "tmp/rootfile", mode: 0o666, data: "root"},
		},
		steps: []step{
			{user, op{Op: "write", Path: "tmp/victim", Flags: os.O_CREATE, Mode: 0o666, Data: "v"}, "ok"},
			{user, op{Op: "chmod", Path: "tmp/victim", Mode: 0o666}, "ok"},
			{user, op{Op: "mkdir", Path: "tmp/udir", Mode: 0o777}, "ok"},
			{nobody, op{Op: "unlink", Path: "tmp/victim"}, "EPERM"},
			{nobody, op{Op: "rename", Path: "tmp/victim", Path2: "tmp/moved"}, "EPERM"},
			{nobody, op{Op: "write", Path: "tmp/mine", Flags: os.O_CREATE, Mode: 0o644, Data: "m"}, "ok"},
			{nobody, op{Op: "rename", Path: "tmp/mine", Path2: "tmp/victim"}, "EPERM"},
			{nobody, op{Op: "rmdir", Path: "tmp/udir"}, "EPERM"},
			{nobody, op{Op: "rename", Path: "tmp/udir", Path2: "tmp/moved"}, "EPERM"},
			{nobody, op{Op: "unlink", Path: "tmp/rootfile"}, "EPERM"},
			// Writable is not removable: the file's own mode allows this.
			{nobody, op{Op: "write", Path: "tmp/victim", Flags: os.O_APPEND, Data: "w"}, "ok"},
			{nobody, op{Op: "rename", Path: "tmp/mine", Path2: "tmp/mine2"}, "ok"},
			{nobody, op{Op: "unlink", Path: "tmp/mine2"}, "ok"},
			{user, op{Op: "unlink", Path: "tmp/victim"}, "ok"},
		},
		check: []string{"tmp", "tmp/victim", "tmp/udir", "tmp/rootfile", "tmp/mine", "tmp/mine2"},
	},
	{
		name: "groups",
		setup: []fsNode{
			{path: "grp", mode: 0o640, gid: sharedGID, data: "group"},
			{path: "gw", mode: 0o660, gid: sharedGID, data: "gw"},
			{path: "gnone", mode: 0o407, gid: sharedGID, data: "gnone"},
			{path: "gdir", dir: true, mode: 0o770, gid: sharedGID},
		},
		steps: []step{
			{nobody, op{Op: "read", Path: "grp"}, "EACCES"},
			{nobody, op{Op: "write", Path: "gw", Flags: os.O_TRUNC, Data: "x"}, "EACCES"},
			{nobody, op{Op: "readdir", Path: "gdir"}, "EACCES"},
			{nobody, op{Op: "write", Path: "gdir/f", Flags: os.O_CREATE, Mode: 0o644}, "EACCES"},
			// Others may read gnone; its group may not.
			{nobody, op{Op: "read", Path: "gnone"}, "ok gnone"},
			{nobodyG, op{Op: "read", Path: "grp"}, "ok group"},
			{nobodyG, op{Op: "write", Path: "grp", Flags: os.O_APPEND, Data: "x"}, "EACCES"},
			{nobodyG, op{Op: "write", Path: "gw", Flags: os.O_TRUNC, Data: "w"}, "ok"},
			{nobodyG, op{Op: "write", Path: "gdir/f", Flags: os.O_CREATE, Mode: 0o644, Data: "f"}, "ok"},
			{nobodyG, op{Op: "readdir", Path: "gdir"}, "ok f"},
			{nobodyG, op{Op: "read", Path: "gnone"}, "EACCES"},
			{nobodyG, op{Op: "chmod", Path: "grp", Mode: 0o644}, "EPERM"},
		},
		check: []string{"grp", "gw", "gnone", "gdir", "gdir/f"},
	},
	{
		// Giving one's file to root, then making it set-user-ID, would
		// leave a set-user-ID root program in SOURCE.
		name:  "chown-to-root",
		setup: []fsNode{{path: "pub", dir: true, mode: 0o777}},
		steps: []step{
			{nobody, op{Op: "write", Path: "pub/prog", Flags: os.O_CREATE, Mode: 0o755, Data: "#!/bin/sh\n"}, "ok"},
			{nobody, op{Op: "chown", Path: "pub/prog", UID: 0, GID: 0}, "EPERM"},
			{nobody, op{Op: "chmod", Path: "pub/prog", Mode: 0o4755}, "ok"},
		},
		check: []string{"pub/prog"},
	},
}

// TestPermissions checks that with default_permissions the kernel
// enforces mode bits exactly as on the backing filesystem.
func TestPermissions(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src := newSource(t)
			m := mountPT(t, tr, src, mount.Options{AllowOther: true, DefaultPermissions: true}, server.Options{})
			runScenarios(t, permScenarios, nativeDir(t), m)
		})
	}
}

// TestPermissionsWithoutDefaultPermissions runs the same cases on a mount
// asked for allow_other but not default_permissions. The passthrough acts
// as each caller, so the backing filesystem makes every check, and every
// case must still agree with it. Names are not cached (EntryTimeout -1, as
// ringfuse mount -o no_default_permissions does): the kernel walks a cached
// name without asking the server, so a name that root looked up would let
// nobody skip the search permission of its directory.
func TestPermissionsWithoutDefaultPermissions(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src := newSource(t)
			m := mountPT(t, tr, src, mount.Options{AllowOther: true}, server.Options{EntryTimeout: -1})
			if hasOption(t, m.dir, "default_permissions") {
				t.Fatal("the mount has default_permissions")
			}
			native := nativeDir(t)
			for _, sc := range permScenarios {
				t.Run(sc.name, func(t *testing.T) {
					diffs, nativeBad := compare(t, sc, native, m)
					for _, d := range nativeBad {
						t.Errorf("native directory: %s", d)
					}
					for _, d := range diffs {
						t.Errorf("mount differs from the backing filesystem: %s", d)
					}
				})
			}
		})
	}
}
