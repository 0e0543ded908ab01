// Package security holds security tests of ringfuse's passthrough
// filesystem on real mounts, over both transports: who may use a mount
// with and without allow_other, how mode bits bind other users with and
// without default_permissions, that no client reaches anything outside
// the source directory (through symlinks, "..", rename races or hard
// links), and that set-user-ID and set-group-ID bits change as they do on
// the backing filesystem.
//
// The tests run as root and act as other users through child processes:
// the test binary re-executes itself (copied where every user may run it)
// with the credentials of the user, runs a list of operations and reports
// each one's errno. Everything is in the _test files; this file only
// names the package.
package security
