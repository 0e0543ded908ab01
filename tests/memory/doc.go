// Package memory holds the bounded-memory test of the ringfuse daemon: a
// separate ringfuse process serves a tree of many files, over /dev/fuse
// and over io_uring; the test stats every file through the mount (one
// kernel node each), drops the kernel's caches so that the kernel forgets
// them all, and checks that the daemon's live nodes return to their
// baseline and that its resident memory falls back to within 20% of what
// it was before the storm.
//
// The default is 200,000 files, so that the package stays well under three
// minutes under the race detector; -memory.files=1000000 runs the full
// storm.
package memory
