package security

import (
	"os"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
)

// userIDScenarios are what the one user of a user_id= mount may do: its
// own rights on SOURCE, never root's. Root cannot enter such a mount, so
// the setup is built in the backing directory.
var userIDScenarios = []scenario{
	{
		name:           "owner-only",
		setupInBacking: true,
		setup: []fsNode{
			{path: "secret", mode: 0o600, data: "secret"},
			{path: "rootprog", mode: 0o755, data: "#!/bin/sh\n"},
			{path: "public", mode: 0o644, data: "public"},
			{path: "pub", dir: true, mode: 0o777},
		},
		steps: []step{
			{nobody, op{Op: "read", Path: "secret"}, "EACCES"},
			{nobody, op{Op: "read", Path: "public"}, "ok public"},
			{nobody, op{Op: "write", Path: "public", Flags: os.O_APPEND, Data: "x"}, "EACCES"},
			{nobody, op{Op: "chmod", Path: "rootprog", Mode: 0o4755}, "EPERM"},
			{nobody, op{Op: "chown", Path: "public", UID: nobodyID, GID: nobodyID}, "EPERM"},
			{nobody, op{Op: "write", Path: "pub/prog", Flags: os.O_CREATE, Mode: 0o755, Data: "#!/bin/sh\n"}, "ok"},
			{nobody, op{Op: "chown", Path: "pub/prog", UID: 0, GID: 0}, "EPERM"},
			{nobody, op{Op: "chown", Path: "pub/prog", UID: -1, GID: 0}, "EPERM"},
			{nobody, op{Op: "chmod", Path: "pub/prog", Mode: 0o4755}, "ok"},
			{nobody, op{Op: "mkdir", Path: "pub/d", Mode: 0o2755}, "ok"},
			{nobody, op{Op: "link", Path: "secret", Path2: "pub/hl"}, "EPERM"},
			{nobody, op{Op: "rename", Path: "public", Path2: "pub/moved"}, "EACCES"},
		},
		check: []string{"secret", "rootprog", "public", "pub/prog", "pub/d", "pub/hl", "pub/moved"},
	},
}

// TestUserIDMount mounts for user 65534 without allow_other (user_id=,
// group_id=), with and without default_permissions. The mount must come up
// (the daemon opens its poll-hack file as that user, the only one the
// kernel lets in), root must be kept out by the kernel, and the user must
// get exactly its own rights on SOURCE: the daemon acts as the caller, so
// nothing it does for the user is done as root.
func TestUserIDMount(t *testing.T) {
	for _, tr := range testmount.Transports {
		for _, dp := range []bool{false, true} {
			name := tr + "/no-default-permissions"
			so := server.Options{EntryTimeout: -1} // see TestPermissionsWithoutDefaultPermissions
			if dp {
				name, so = tr+"/default-permissions", server.Options{PosixACL: true, ApplyUmask: true}
			}
			t.Run(name, func(t *testing.T) {
				id := uint32(nobodyID)
				mo := mount.Options{UserID: &id, GroupID: &id, DefaultPermissions: dp}
				src := newSource(t)
				m := mountPT(t, tr, src, mo, so)
				if hasOption(t, m.dir, "allow_other") || hasOption(t, m.dir, "default_permissions") != dp {
					t.Fatalf("mount options: want no allow_other, default_permissions %v", dp)
				}
				if _, err := os.Stat(m.dir); !os.IsPermission(err) {
					t.Errorf("root's stat of the mount: %v, want EACCES (only user %d may enter)", err, id)
				}
				if r := runAs(t, user, op{Op: "stat", Path: m.dir}); r[0].Err != "EACCES" {
					t.Errorf("user 1000's stat of the mount: %v, want EACCES", r[0])
				}
				runScenarios(t, userIDScenarios, nativeDir(t), m)
			})
		}
	}
}
