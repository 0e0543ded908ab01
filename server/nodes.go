package server

import (
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"ringfuse"
	"ringfuse/wire"
)

// node is the server's record of one kernel node: the filesystem's value
// and how many lookups the kernel holds. It takes 48 bytes on amd64, plus
// its entries in the two maps.
type node struct {
	id      uint64
	key     ringfuse.InodeKey
	fsNode  ringfuse.Node
	lookups uint64 // guarded by the key shard's mutex
}

const nodeShards = 64 // a power of two

// Map shrinking. Go maps never give memory back when entries are deleted,
// so a shard whose map has become sparse is copied into a map sized for
// what it holds. The copy costs as many inserts as the map keeps and
// happens only after at least three times as many deletes, so it adds
// O(1) amortized to a forget.
const (
	// shrinkFactor: a map is rebuilt once it holds at most 1/shrinkFactor
	// of the most it held since it was made.
	shrinkFactor = 4
	// shrinkMin is the peak below which forget leaves a map alone, so that
	// small tables never churn; compact, run after a forget storm, rebuilds
	// smaller ones too.
	shrinkMin = 64
)

// Memory release. The Go runtime returns freed heap pages to the kernel
// only through its background scavenger, and frees nothing until a
// collection runs, which an idle daemon may not do for minutes. After a
// forget storm (drop_caches, memory pressure) the process would keep its
// peak size, so the table starts a goroutine that waits for the storm to
// end, rebuilds the sparse maps and calls debug.FreeOSMemory.
const (
	// A release starts once at least releaseMinDrop nodes were dropped
	// since the last one (or since the start) and the live nodes are at
	// most half their highest count since then. Counting drops rather
	// than the fall from the peak also catches storms that overlap new
	// lookups (memory pressure while a tree is being walked).
	releaseMinDrop = 100_000
	// releaseSettle is how often the release goroutine checks whether
	// forgets still arrive; it releases once the live count has not
	// fallen for that long, or has reached zero.
	releaseSettle = 100 * time.Millisecond
	// releaseMaxWait bounds the wait for the storm to end.
	releaseMaxWait = 3 * time.Second
	// releaseInterval is the least time between two releases: FreeOSMemory
	// runs a full, blocking garbage collection.
	releaseInterval = 2 * time.Second
)

// idShard is one shard of the node-ID map.
type idShard struct {
	mu sync.RWMutex
	m  map[uint64]*node
	// peak is the most entries m held since it was made. Guarded by mu.
	peak int
	_    [24]byte // keep shards on separate cache lines (see TestShardSizes)
}

// keyShard is one shard of the inode-key map.
type keyShard struct {
	mu   sync.Mutex
	m    map[ringfuse.InodeKey]*node
	peak int // as in idShard; guarded by mu
	_    [40]byte
}

// nodeTable maps kernel node IDs to nodes, and inode keys to node IDs, so
// that a hard link or a repeated lookup reuses one ID. Both maps are
// sharded so that lookups on different CPUs rarely share a lock, and no
// lock is held across a filesystem call.
type nodeTable struct {
	byID   [nodeShards]idShard
	byKey  [nodeShards]keyShard
	nextID atomic.Uint64
	live   atomic.Int64
	// high is the highest live count since the last memory release.
	high atomic.Int64
	// relID and relLive are nextID and live at the last release: the nodes
	// dropped since are nextID-relID + relLive-live.
	relID   atomic.Uint64
	relLive atomic.Int64
	root    node

	// releasing is set while a release goroutine runs.
	releasing atomic.Bool
	// lastRelease is when the last release ended (UnixNano).
	lastRelease atomic.Int64
	// releases counts the releases, for tests.
	releases atomic.Int64
	// minDrop is releaseMinDrop; tests lower it.
	minDrop int64
}

func (t *nodeTable) init(root ringfuse.Node) {
	for i := range t.byID {
		t.byID[i].m = make(map[uint64]*node)
		t.byKey[i].m = make(map[ringfuse.InodeKey]*node)
	}
	t.root = node{id: wire.FUSE_ROOT_ID, fsNode: root, lookups: 1}
	t.nextID.Store(wire.FUSE_ROOT_ID)
	t.relID.Store(wire.FUSE_ROOT_ID)
	t.minDrop = releaseMinDrop
}

func keyShardOf(k ringfuse.InodeKey) uint64 {
	h := k.Ino*0x9E3779B97F4A7C15 ^ k.Dev*0xC2B2AE3D27D4EB4F
	return (h >> 32) & (nodeShards - 1)
}

// get returns the filesystem node for a kernel node ID.
func (t *nodeTable) get(id uint64) (ringfuse.Node, bool) {
	if id == wire.FUSE_ROOT_ID {
		return t.root.fsNode, true
	}
	s := &t.byID[id&(nodeShards-1)]
	s.mu.RLock()
	n := s.m[id]
	s.mu.RUnlock()
	if n == nil {
		return nil, false
	}
	return n.fsNode, true
}

// ref counts one lookup of the inode e describes and returns its node ID,
// creating the node if the kernel holds none for e's key.
func (t *nodeTable) ref(e *ringfuse.Entry) uint64 {
	k := e.Key
	if k == (ringfuse.InodeKey{}) {
		k.Ino = e.Attr.Ino
	}
	ks := &t.byKey[keyShardOf(k)]
	ks.mu.Lock()
	n := ks.m[k]
	if n != nil {
		n.lookups++
		ks.mu.Unlock()
		return n.id
	}
	n = &node{id: t.nextID.Add(1), key: k, fsNode: e.Node, lookups: 1}
	ks.m[k] = n
	ks.peak = max(ks.peak, len(ks.m))
	is := &t.byID[n.id&(nodeShards-1)]
	is.mu.Lock()
	is.m[n.id] = n
	is.peak = max(is.peak, len(is.m))
	is.mu.Unlock()
	ks.mu.Unlock()
	if l := t.live.Add(1); l > t.high.Load() {
		t.high.Store(l) // racy, but only a threshold depends on it
	}
	return n.id
}

// forget drops nlookup lookups of node id. When none remain it removes the
// node and returns its filesystem value, which the caller hands to the
// filesystem's Forget outside any lock. known is false for an ID the table
// does not hold (a kernel or server bug worth counting).
func (t *nodeTable) forget(id, nlookup uint64) (gone ringfuse.Node, dropped, known bool) {
	if id == wire.FUSE_ROOT_ID || id == pollHackID {
		// The root lives as long as the mount. The poll-hack node is
		// never in the table (its lookups are not counted), and the
		// kernel forgets it in a BATCH_FORGET like any other.
		return nil, false, true
	}
	is := &t.byID[id&(nodeShards-1)]
	is.mu.RLock()
	n := is.m[id]
	is.mu.RUnlock()
	if n == nil {
		return nil, false, false
	}
	ks := &t.byKey[keyShardOf(n.key)]
	ks.mu.Lock()
	if n.lookups == 0 {
		// A concurrent forget dropped n between the two locks: this one
		// is for a node the table no longer holds.
		ks.mu.Unlock()
		return nil, false, false
	}
	if n.lookups > nlookup {
		n.lookups -= nlookup
		ks.mu.Unlock()
		return nil, false, true
	}
	n.lookups = 0
	if ks.m[n.key] == n {
		delete(ks.m, n.key)
		if sparse(len(ks.m), ks.peak, shrinkMin) {
			ks.m, ks.peak = rebuilt(ks.m), len(ks.m)
		}
	}
	is.mu.Lock()
	delete(is.m, id)
	if sparse(len(is.m), is.peak, shrinkMin) {
		is.m, is.peak = rebuilt(is.m), len(is.m)
	}
	is.mu.Unlock()
	ks.mu.Unlock()
	if l := t.live.Add(-1); l <= t.high.Load()/2 && t.dropped(l) >= t.minDrop &&
		!t.releasing.Load() && t.releasing.CompareAndSwap(false, true) {
		go t.release()
	}
	return n.fsNode, true, true
}

// dropped returns how many nodes were dropped since the last release, live
// being the live count now.
func (t *nodeTable) dropped(live int64) int64 {
	return int64(t.nextID.Load()-t.relID.Load()) + t.relLive.Load() - live
}

// sparse reports whether a map holding n entries, which held peak at most
// since it was made, should be rebuilt.
func sparse(n, peak, minPeak int) bool {
	return peak >= minPeak && peak > 0 && n <= peak/shrinkFactor
}

// rebuilt returns a copy of m in a map sized for its entries.
func rebuilt[K comparable](m map[K]*node) map[K]*node {
	c := make(map[K]*node, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// release runs after a large drop in live nodes: once forgets stop
// arriving, it shrinks the maps and returns the freed memory to the
// kernel. It runs on its own goroutine, so that no worker stalls for the
// collection, and ends within about releaseMaxWait+releaseInterval.
func (t *nodeTable) release() {
	defer t.releasing.Store(false)
	last := t.live.Load()
	for wait := time.Duration(0); last > 0 && wait < releaseMaxWait; wait += releaseSettle {
		time.Sleep(releaseSettle)
		cur := t.live.Load()
		if cur >= last {
			break // the storm is over
		}
		last = cur
	}
	if since := time.Since(time.Unix(0, t.lastRelease.Load())); since < releaseInterval {
		time.Sleep(releaseInterval - since)
	}
	t.compact()
	debug.FreeOSMemory()
	// Racy against lookups and forgets meanwhile; the counts only decide
	// when the next release starts.
	id, live := t.nextID.Load(), t.live.Load()
	t.high.Store(live)
	t.relID.Store(id)
	t.relLive.Store(live)
	t.lastRelease.Store(time.Now().UnixNano())
	t.releases.Add(1)
}

// lookups returns the lookup count of node id (0 if it is not live).
func (t *nodeTable) lookups(id uint64) uint64 {
	is := &t.byID[id&(nodeShards-1)]
	is.mu.RLock()
	n := is.m[id]
	is.mu.RUnlock()
	if n == nil {
		return 0
	}
	ks := &t.byKey[keyShardOf(n.key)]
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return n.lookups
}

// compact rebuilds every map that has become sparse, however small: forget
// leaves maps that never held shrinkMin entries alone.
func (t *nodeTable) compact() {
	for i := range t.byID {
		s := &t.byID[i]
		s.mu.Lock()
		if sparse(len(s.m), s.peak, 1) {
			s.m, s.peak = rebuilt(s.m), len(s.m)
		}
		s.mu.Unlock()
		ks := &t.byKey[i]
		ks.mu.Lock()
		if sparse(len(ks.m), ks.peak, 1) {
			ks.m, ks.peak = rebuilt(ks.m), len(ks.m)
		}
		ks.mu.Unlock()
	}
}
