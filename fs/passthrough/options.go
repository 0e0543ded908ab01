package passthrough

// Options configures a passthrough filesystem. The zero value is the
// default configuration.
type Options struct {
	// FdCacheSize bounds the O_PATH descriptors kept open for recently
	// used nodes, so that busy directories are not reopened by handle on
	// every request. The cache is split into 16 shards by inode, each an
	// LRU list of FdCacheSize/16 entries. Zero means 1024; a negative
	// value disables the cache, and every operation then opens and closes
	// its own descriptor.
	FdCacheSize int
	// Passthrough offers each opened file's descriptor to the server for
	// kernel passthrough (OpenOut.PassthroughFd), so the kernel reads and
	// writes the backing file itself. False leaves PassthroughFd at -1 and
	// the filesystem serves READ and WRITE.
	Passthrough bool
}

// DefaultFdCacheSize is the fd cache size used when Options.FdCacheSize is
// zero.
const DefaultFdCacheSize = 1024

// Stats is a snapshot of the filesystem's resource use.
type Stats struct {
	// Nodes counts the nodes handed to the server and not yet forgotten,
	// the root excluded.
	Nodes int64
	// OpenFiles counts the file and directory handles not yet released.
	OpenFiles int64
	// CachedFds counts the O_PATH descriptors in the fd cache.
	CachedFds int
}
