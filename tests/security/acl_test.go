package security

import (
	"os"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/server"
)

// aclScenarios are POSIX ACL cases: named-user and named-group entries
// that deny what the mode bits would allow, a mask that limits a named
// entry, an entry that grants what the mode bits would not, default ACLs
// that new files inherit (the caller's umask does not apply then), and who
// may change an ACL.
var aclScenarios = []scenario{
	{
		name: "acl-deny-mask-grant",
		setup: []fsNode{
			// Others may read, but user 65534 is named without rights.
			{path: "udeny", mode: 0o644, data: "udeny", acl: "u::rw-,u:65534:---,g::r--,m::r--,o::r--"},
			// Others may read, but group 1234 is named without rights.
			{path: "gdeny", mode: 0o644, data: "gdeny", acl: "u::rw-,g::r--,g:1234:---,m::r--,o::r--"},
			// User 65534 is named rw-, but the mask leaves r--.
			{path: "mask", mode: 0o600, data: "mask", acl: "u::rw-,u:65534:rw-,g::---,m::r--,o::---"},
			// The mode bits say nobody but root; the ACL grants 1000.
			{path: "grant", mode: 0o600, data: "grant", acl: "u::rw-,u:1000:r--,g::---,m::r--,o::---"},
		},
		steps: []step{
			{nobody, op{Op: "read", Path: "udeny"}, "EACCES"},
			{user, op{Op: "read", Path: "udeny"}, "ok udeny"},
			{nobodyG, op{Op: "read", Path: "gdeny"}, "EACCES"},
			{nobody, op{Op: "read", Path: "gdeny"}, "ok gdeny"},
			{nobodyG, op{Op: "read", Path: "mask"}, "ok mask"},
			{nobodyG, op{Op: "write", Path: "mask", Flags: os.O_APPEND, Data: "x"}, "EACCES"},
			{user, op{Op: "read", Path: "grant"}, "ok grant"},
			{user, op{Op: "write", Path: "grant", Flags: os.O_APPEND, Data: "x"}, "EACCES"},
			{nobody, op{Op: "read", Path: "grant"}, "EACCES"},
			// Only the owner changes an ACL.
			{nobody, op{Op: "setfacl", Path: "grant", Name: "access", Data: "u::rw-,u:65534:rw-,g::---,m::rw-,o::---"}, "EPERM"},
		},
		check: []string{"udeny", "gdeny", "mask", "grant"},
	},
	{
		name: "acl-default",
		setup: []fsNode{
			{path: "d", dir: true, mode: 0o777, defACL: "u::rwx,u:1000:rwx,g::r-x,m::rwx,o::r-x"},
		},
		steps: []step{
			// The default ACL, not the umask (022), shapes the new file,
			// and user 1000 may write it through the inherited entry.
			{nobody, op{Op: "write", Path: "d/new", Flags: os.O_CREATE, Mode: 0o666, Data: "n"}, "ok"},
			{nobody, op{Op: "mkdir", Path: "d/sub", Mode: 0o777}, "ok"},
			{nobody, op{Op: "mknod", Path: "d/fifo", Mode: 0o666 | 0o10000}, "ok"},
			{user, op{Op: "write", Path: "d/new", Flags: os.O_APPEND, Data: "u"}, "ok"},
			{user, op{Op: "write", Path: "d/sub/f", Flags: os.O_CREATE, Mode: 0o640, Data: "f"}, "ok"},
			// The owner may change its file's ACL, and the mode follows.
			{nobody, op{Op: "setfacl", Path: "d/new", Name: "access", Data: "u::rw-,u:1000:---,g::r--,m::r--,o::---"}, "ok"},
			{user, op{Op: "read", Path: "d/new"}, "EACCES"},
		},
		check: []string{"d", "d/new", "d/sub", "d/fifo", "d/sub/f"},
	},
}

// TestACL checks POSIX ACLs against the backing filesystem, with
// default_permissions (the kernel enforces ACLs: FUSE_POSIX_ACL) and
// without (the daemon acts as the caller, and the backing filesystem
// enforces them), over both transports. The caller's umask is left to the
// filesystem (FUSE_DONT_MASK), as ringfuse mount does, so that default
// ACLs decide new modes as they do natively.
func TestACL(t *testing.T) {
	for _, tr := range testmount.Transports {
		for _, dp := range []bool{false, true} {
			name := tr + "/no-default-permissions"
			so := server.Options{EntryTimeout: -1, ApplyUmask: true} // see TestPermissionsWithoutDefaultPermissions
			if dp {
				name, so = tr+"/default-permissions", server.Options{PosixACL: true, ApplyUmask: true}
			}
			t.Run(name, func(t *testing.T) {
				src := newSource(t)
				m := mountPT(t, tr, src, mount.Options{AllowOther: true, DefaultPermissions: dp}, so)
				runScenarios(t, aclScenarios, nativeDir(t), m)
			})
		}
	}
}
