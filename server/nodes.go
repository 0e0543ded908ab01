package server

import (
	"sync"
	"sync/atomic"

	"ringfuse"
	"ringfuse/wire"
)

// node is the server's record of one kernel node: the filesystem's value
// and how many lookups the kernel holds.
type node struct {
	id      uint64
	key     ringfuse.InodeKey
	fsNode  ringfuse.Node
	lookups uint64 // guarded by the key shard's mutex
}

const nodeShards = 64 // a power of two

// nodeTable maps kernel node IDs to nodes, and inode keys to node IDs, so
// that a hard link or a repeated lookup reuses one ID. Both maps are
// sharded so that lookups on different CPUs rarely share a lock, and no
// lock is held across a filesystem call.
type nodeTable struct {
	byID [nodeShards]struct {
		mu sync.RWMutex
		m  map[uint64]*node
		_  [40]byte // keep shards on separate cache lines
	}
	byKey [nodeShards]struct {
		mu sync.Mutex
		m  map[ringfuse.InodeKey]*node
		_  [48]byte
	}
	nextID atomic.Uint64
	live   atomic.Int64
	root   node
}

func (t *nodeTable) init(root ringfuse.Node) {
	for i := range t.byID {
		t.byID[i].m = make(map[uint64]*node)
		t.byKey[i].m = make(map[ringfuse.InodeKey]*node)
	}
	t.root = node{id: wire.FUSE_ROOT_ID, fsNode: root, lookups: 1}
	t.nextID.Store(wire.FUSE_ROOT_ID)
}

func keyShard(k ringfuse.InodeKey) uint64 {
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
	ks := &t.byKey[keyShard(k)]
	ks.mu.Lock()
	n := ks.m[k]
	if n != nil {
		n.lookups++
		ks.mu.Unlock()
		return n.id
	}
	n = &node{id: t.nextID.Add(1), key: k, fsNode: e.Node, lookups: 1}
	ks.m[k] = n
	is := &t.byID[n.id&(nodeShards-1)]
	is.mu.Lock()
	is.m[n.id] = n
	is.mu.Unlock()
	ks.mu.Unlock()
	t.live.Add(1)
	return n.id
}

// forget drops nlookup lookups of node id. When none remain it removes the
// node and returns its filesystem value, which the caller hands to the
// filesystem's Forget outside any lock. known is false for an ID the table
// does not hold (a kernel or server bug worth counting).
func (t *nodeTable) forget(id, nlookup uint64) (gone ringfuse.Node, dropped, known bool) {
	if id == wire.FUSE_ROOT_ID {
		return nil, false, true // the root lives as long as the mount
	}
	is := &t.byID[id&(nodeShards-1)]
	is.mu.RLock()
	n := is.m[id]
	is.mu.RUnlock()
	if n == nil {
		return nil, false, false
	}
	ks := &t.byKey[keyShard(n.key)]
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
	}
	is.mu.Lock()
	delete(is.m, id)
	is.mu.Unlock()
	ks.mu.Unlock()
	t.live.Add(-1)
	return n.fsNode, true, true
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
	ks := &t.byKey[keyShard(n.key)]
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return n.lookups
}

// compact rebuilds the maps once they are empty or nearly so: Go maps never
// give memory back, and after a forget storm they would keep the peak.
func (t *nodeTable) compact() {
	for i := range t.byID {
		s := &t.byID[i]
		s.mu.Lock()
		if len(s.m) < 64 {
			m := make(map[uint64]*node, len(s.m))
			for k, v := range s.m {
				m[k] = v
			}
			s.m = m
		}
		s.mu.Unlock()
		ks := &t.byKey[i]
		ks.mu.Lock()
		if len(ks.m) < 64 {
			m := make(map[ringfuse.InodeKey]*node, len(ks.m))
			for k, v := range ks.m {
				m[k] = v
			}
			ks.m = m
		}
		ks.mu.Unlock()
	}
}
