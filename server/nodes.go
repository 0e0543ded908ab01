package server

import (
	"errors"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/internal/offheap"
	"github.com/ringfuse/ringfuse/wire"
)

// The node table keeps its records outside the Go heap (internal/offheap):
// a storm of a million kernel nodes would otherwise leave the daemon with
// memory the Go runtime never returns (docs/memory.md).

// record is the server's record of one kernel node. It holds no Go
// pointers; the filesystem's value is the NodeTable number in fsNum, or,
// for a filesystem without a table, in the shard's side chunks.
type record struct {
	key     ringfuse.InodeKey
	lookups uint64
	fsNum   uint64
	gen     uint32
	_       uint32
}

// Node IDs. An ID names a record by its shard and slot, and carries the
// generation the record was made with, so that the ID of a forgotten node
// does not reach the node that later takes its slot:
//
//	bits 0-5   shard
//	bits 6-31  slot in the shard
//	bits 32-62 generation (never 0; bit 63 stays clear for pollHackID)
const (
	nodeShards = 64 // a power of two
	shardBits  = 6
	slotBits   = 26
	genMask    = 1<<31 - 1
	// shardSlots bounds each shard's slab: 256M kernel nodes in all, more
	// than a kernel can hold, in address space reserved only when used.
	shardSlots = 1 << 22
)

// Every slot of a shard fits the ID's slot bits (compile-time check).
const _ = uint(1<<slotBits - shardSlots)

// Side chunks hold the Node values of a filesystem without a NodeTable, in
// 64 KiB objects, so that even then a storm leaves few spans behind.
const (
	sideBits  = 12
	sideChunk = 1 << sideBits
)

// Memory release. The Go runtime returns freed heap pages to the kernel
// only through its background scavenger and frees nothing until a
// collection runs, which an idle daemon may not do for minutes; the slabs
// give back their pages only when trimmed. After a forget storm
// (drop_caches, memory pressure) the table starts a goroutine that waits
// for the storm to end, trims the slabs and calls debug.FreeOSMemory.
const (
	// A release starts once at least releaseMinDrop nodes were dropped
	// since the last one (or since the start) and the live nodes are at
	// most half their highest count since then. Counting drops rather
	// than the fall from the peak also catches storms that overlap new
	// lookups (memory pressure while a tree is being walked).
	releaseMinDrop = 100_000
	// releaseSettle is how often the release goroutine checks whether
	// forgets still arrive; it releases once the live count has not
	// changed for releaseQuiet, or after releaseMaxWait.
	releaseSettle = 100 * time.Millisecond
	releaseQuiet  = 500 * time.Millisecond
	// releaseMaxWait bounds each wait for the storm to end.
	releaseMaxWait = 3 * time.Second
	// releaseInterval is the least time between two releases: FreeOSMemory
	// runs a full, blocking garbage collection.
	releaseInterval = 2 * time.Second
	// A storm that goes on after a release (drop_caches forgets in
	// waves) leaves garbage and free pages the release did not see: the
	// goroutine releases again, up to releaseRounds times in all, while
	// at least releaseTail more nodes were dropped since the last round.
	releaseRounds = 3
	releaseTail   = 1000
	// releaseLate: the pages that the requests after the last round free
	// (the tail of the storm, whoever polls the daemon's statistics) are
	// returned by one more FreeOSMemory that long after it.
	releaseLate = 5 * time.Second
)

// nodeShard is one shard of the table: the records whose keys hash to it,
// and an index from key to slot.
type nodeShard struct {
	mu    sync.RWMutex
	recs  *offheap.Slab[record]
	index *offheap.Index
	// side holds the filesystem's Node values when it has no NodeTable.
	side [][]ringfuse.Node
	// gen is the generation of the last record made.
	gen uint32
	_   [60]byte // whole cache lines (see TestShardSizes)
}

// nodeTable maps kernel node IDs to the filesystem's nodes, and inode keys
// to node IDs, so that a hard link or a repeated lookup reuses one ID. It
// is sharded by key so that lookups on different CPUs rarely share a lock;
// no lock is held across a filesystem call.
type nodeTable struct {
	shards [nodeShards]nodeShard
	// fsTable is the filesystem's NodeTable, or nil.
	fsTable ringfuse.NodeTable
	root    ringfuse.Node

	// made counts the records made, live those that exist.
	made atomic.Uint64
	live atomic.Int64
	// high is the highest live count since the last memory release.
	high atomic.Int64
	// relMade and relLive are made and live at the last release: the
	// nodes dropped since are made-relMade + relLive-live.
	relMade atomic.Uint64
	relLive atomic.Int64

	// releasing is set while a release goroutine runs.
	releasing atomic.Bool
	// lastRelease is when the last release ended (UnixNano).
	lastRelease atomic.Int64
	// releases counts the releases, for tests.
	releases atomic.Int64
	// ended is closed when the connection ends, so that a release
	// goroutine does not outlive the mount.
	ended   chan struct{}
	endOnce sync.Once

	// minDrop is releaseMinDrop and late releaseLate; tests lower them.
	minDrop int64
	late    time.Duration
}

// init readies the table. The caller arranges for unmap to run once the
// table is unreachable.
func (t *nodeTable) init(root ringfuse.Node, fsTable ringfuse.NodeTable) {
	for i := range t.shards {
		t.shards[i].recs = offheap.NewSlab[record](shardSlots)
		t.shards[i].index = new(offheap.Index)
	}
	t.root = root
	t.fsTable = fsTable
	t.minDrop = releaseMinDrop
	t.late = releaseLate
	t.ended = make(chan struct{})
}

// end stops a release goroutine's waits: the connection is gone.
func (t *nodeTable) end() { t.endOnce.Do(func() { close(t.ended) }) }

// sleep waits for d and reports false if the connection ended first.
func (t *nodeTable) sleep(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-t.ended:
		return false
	}
}

// memory lists what the table maps, for unmapping once it is unreachable.
func (t *nodeTable) memory() offheap.Owned {
	var m offheap.Owned
	for i := range t.shards {
		m = append(m, t.shards[i].recs, t.shards[i].index)
	}
	return m
}

// hashKey mixes an inode key into 64 bits: the top bits pick the shard,
// the low 32 file it in the shard's index.
func hashKey(k ringfuse.InodeKey) uint64 { return offheap.Mix(k.Ino, k.Dev) }

func makeID(gen, slot uint32, shard int) uint64 {
	return uint64(gen)<<32 | uint64(slot)<<shardBits | uint64(shard)
}

// parseID splits a node ID; ok is false for one no record can have.
func parseID(id uint64) (shard int, slot, gen uint32, ok bool) {
	gen = uint32(id >> 32)
	return int(id & (nodeShards - 1)), uint32(id>>shardBits) & (1<<slotBits - 1), gen, gen != 0 && gen <= genMask
}

// lookupRec returns the record id names, or nil. The shard's lock must be
// held.
func (sh *nodeShard) lookupRec(slot, gen uint32) *record {
	if !sh.recs.InUse(slot) {
		return nil
	}
	r := sh.recs.At(slot)
	if r.gen != gen || r.lookups == 0 {
		return nil
	}
	return r
}

// fsNode returns the filesystem's node for the record in slot. The shard's
// lock must be held.
func (t *nodeTable) fsNode(sh *nodeShard, slot uint32, r *record) ringfuse.Node {
	if t.fsTable != nil {
		return t.fsTable.NodeAt(r.fsNum)
	}
	return sh.side[slot>>sideBits][slot&(sideChunk-1)]
}

// get returns the filesystem node for a kernel node ID.
func (t *nodeTable) get(id uint64) (ringfuse.Node, bool) {
	if id == wire.FUSE_ROOT_ID {
		return t.root, true
	}
	si, slot, gen, ok := parseID(id)
	if !ok {
		return nil, false
	}
	sh := &t.shards[si]
	sh.mu.RLock()
	r := sh.lookupRec(slot, gen)
	if r == nil {
		sh.mu.RUnlock()
		return nil, false
	}
	if t.fsTable != nil {
		num := r.fsNum
		sh.mu.RUnlock()
		return t.fsTable.NodeAt(num), true
	}
	n := sh.side[slot>>sideBits][slot&(sideChunk-1)]
	sh.mu.RUnlock()
	return n, true
}

// errNoInode: an entry with neither Key nor Attr.Ino. Keyed as zero, every
// such entry would be one kernel node, every name an alias of the first.
var errNoInode = errors.New("entry has neither Key nor Attr.Ino: refused, or every such name would alias one inode")

// entryKey returns the key that identifies e's inode.
func entryKey(e *ringfuse.Entry) ringfuse.InodeKey {
	if e.Key == (ringfuse.InodeKey{}) {
		return ringfuse.InodeKey{Ino: e.Attr.Ino}
	}
	return e.Key
}

// ref counts one lookup of the inode e describes and returns its node ID,
// making a kernel node if the table holds none for e's key. dup is true
// when the table already had one; a NodeTable filesystem then gets e.Node's
// reference back (Server.refEntry).
func (t *nodeTable) ref(e *ringfuse.Entry) (id uint64, dup bool, err error) {
	k := entryKey(e)
	if k == (ringfuse.InodeKey{}) {
		return 0, false, errNoInode
	}
	h := hashKey(k)
	si := int(h >> (64 - shardBits))
	sh := &t.shards[si]
	sh.mu.Lock()
	for p := sh.index.Find(uint32(h)); ; {
		slot, ok := p.Next()
		if !ok {
			break
		}
		if r := sh.recs.At(slot); r.key == k {
			r.lookups++
			id = makeID(r.gen, slot, si)
			sh.mu.Unlock()
			return id, true, nil
		}
	}
	slot, r, err := sh.recs.Alloc()
	if err == nil {
		if err = sh.index.Insert(uint32(h), slot); err != nil {
			sh.recs.Free(slot)
		}
	}
	if err != nil {
		sh.mu.Unlock()
		return 0, false, err
	}
	sh.gen = sh.gen%genMask + 1
	*r = record{key: k, lookups: 1, gen: sh.gen}
	if t.fsTable != nil {
		r.fsNum = t.fsTable.NodeNumber(e.Node)
	} else {
		c := int(slot >> sideBits)
		for len(sh.side) <= c {
			sh.side = append(sh.side, nil)
		}
		if sh.side[c] == nil {
			sh.side[c] = make([]ringfuse.Node, sideChunk)
		}
		sh.side[c][slot&(sideChunk-1)] = e.Node
	}
	id = makeID(r.gen, slot, si)
	sh.mu.Unlock()
	t.made.Add(1)
	if l := t.live.Add(1); l > t.high.Load() {
		t.high.Store(l) // racy, but only a threshold depends on it
	}
	return id, false, nil
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
	si, slot, gen, ok := parseID(id)
	if !ok {
		return nil, false, false
	}
	sh := &t.shards[si]
	sh.mu.Lock()
	r := sh.lookupRec(slot, gen)
	if r == nil {
		sh.mu.Unlock()
		return nil, false, false
	}
	if r.lookups > nlookup {
		r.lookups -= nlookup
		sh.mu.Unlock()
		return nil, false, true
	}
	gone = t.fsNode(sh, slot, r)
	if t.fsTable == nil {
		sh.side[slot>>sideBits][slot&(sideChunk-1)] = nil
	}
	sh.index.Delete(uint32(hashKey(r.key)), slot)
	sh.recs.Free(slot)
	sh.mu.Unlock()
	if l := t.live.Add(-1); l <= t.high.Load()/2 && t.dropped(l) >= t.minDrop &&
		!t.releasing.Load() && t.releasing.CompareAndSwap(false, true) {
		go t.release()
	}
	return gone, true, true
}

// dropped returns how many nodes were dropped since the last release, live
// being the live count now.
func (t *nodeTable) dropped(live int64) int64 {
	return int64(t.made.Load()-t.relMade.Load()) + t.relLive.Load() - live
}

// release runs after a large drop in live nodes: once forgets stop
// arriving, it trims the slabs and returns the freed memory to the
// kernel. It runs on its own goroutine, so that no worker stalls for the
// collection, and ends within releaseRounds × (releaseMaxWait +
// releaseInterval) + releaseLate.
func (t *nodeTable) release() {
	defer t.releasing.Store(false)
	for round := 0; round < releaseRounds; round++ {
		start := t.quiet()
		select {
		case <-t.ended:
			return // unmounted: nothing left to serve
		default:
		}
		if round > 0 && t.live.Load() > start-releaseTail {
			break // nothing much since the last round
		}
		if since := time.Since(time.Unix(0, t.lastRelease.Load())); since < releaseInterval {
			if !t.sleep(releaseInterval - since) {
				return
			}
		}
		t.compact()
		debug.FreeOSMemory()
		t.lastRelease.Store(time.Now().UnixNano())
	}
	if t.late > 0 && t.sleep(t.late) {
		debug.FreeOSMemory()
	}
	// Racy against lookups and forgets meanwhile; the counts only decide
	// when the next release starts.
	made, live := t.made.Load(), t.live.Load()
	t.high.Store(live)
	t.relMade.Store(made)
	t.relLive.Store(live)
	t.releases.Add(1)
}

// quiet waits until the live count has not changed for releaseQuiet, or
// for at most releaseMaxWait, and returns the count it started from.
func (t *nodeTable) quiet() (from int64) {
	from = t.live.Load()
	last, still := from, time.Duration(0)
	for wait := time.Duration(0); wait < releaseMaxWait && still < releaseQuiet; wait += releaseSettle {
		if !t.sleep(releaseSettle) {
			break
		}
		if cur := t.live.Load(); cur != last {
			last, still = cur, 0
		} else {
			still += releaseSettle
		}
	}
	return from
}

// lookups returns the lookup count of node id (0 if it is not live).
func (t *nodeTable) lookups(id uint64) uint64 {
	si, slot, gen, ok := parseID(id)
	if !ok {
		return 0
	}
	sh := &t.shards[si]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if r := sh.lookupRec(slot, gen); r != nil {
		return r.lookups
	}
	return 0
}

// compact gives back the memory of the records the kernel has forgotten:
// each shard's slab returns its free pages, and side chunks that hold no
// node are dropped. Indexes shrink by themselves as they empty.
func (t *nodeTable) compact() {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.recs.Trim()
		for c := range sh.side {
			if sh.side[c] != nil && !sh.chunkInUse(c) {
				sh.side[c] = nil
			}
		}
		for len(sh.side) > 0 && sh.side[len(sh.side)-1] == nil {
			sh.side = sh.side[:len(sh.side)-1]
		}
		sh.mu.Unlock()
	}
}

// chunkInUse reports whether side chunk c holds a live record's node.
func (sh *nodeShard) chunkInUse(c int) bool {
	for s := uint32(c) << sideBits; s < uint32(c+1)<<sideBits; s++ {
		if sh.recs.InUse(s) {
			return true
		}
	}
	return false
}
