package passthrough

import (
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"ringfuse"
)

// node is the filesystem's value for one backing inode. It holds no
// descriptor while idle: it is reopened from its file handle when needed.
// On amd64 it takes 48 bytes, plus the handle string (16 bytes for ext4)
// and its entry in the shard's map.
type node struct {
	// key is the inode's device and number, which the server tells
	// kernel nodes apart by; for an inode whose number a node of a
	// deleted inode still holds, tagged with an incarnation (see intern).
	key ringfuse.InodeKey
	// handle is the struct file_handle (header and f_handle) from
	// name_to_handle_at; "" for a pinned node. Guarded by the shard mutex:
	// where keys cannot be tagged, Lookup replaces it when the inode
	// number was reused.
	handle string
	// mfd is the mount descriptor handle is opened against. Guarded by the
	// shard mutex.
	mfd int32
	// pfd is the O_PATH descriptor a pinned node holds for its whole life,
	// because its filesystem has no file handles; -1 otherwise. Only the
	// root and Forget change it.
	pfd int32
	// slot is the node's fd cache slot, or -1. Guarded by the shard mutex.
	slot int32
	// live says the node is in the shard's table (or its outside set)
	// and counted in Stats.Nodes. Guarded by the shard mutex.
	live bool
	// shared says a table hit has returned the node since it was created,
	// so an unsent READDIRPLUS entry must not remove it. Guarded by the
	// shard mutex.
	shared bool
}

// Special values of pathFd.tok.
const (
	tokPrivate = -1 // an uncached descriptor: release closes it
	tokPinned  = -2 // the node's pinned descriptor: release does nothing
)

// pathFd is an O_PATH descriptor for a node, borrowed from the cache by
// acquire and returned by release.
type pathFd struct {
	fd  int
	n   *node
	tok int32
}

// slot is one entry of a shard's fd cache. A slot whose users count is
// zero sits in the shard's LRU list; a busy one does not.
type slot struct {
	n          *node // nil once the node is forgotten or refreshed
	fd         int32
	users      int32
	prev, next int32
}

// nShards shards the node table and the fd cache, so that requests on
// different nodes rarely share a lock.
const nShards = 16

// Go maps never give memory back when entries are deleted, so a shard
// rebuilds its node map, sized for what it holds, once it holds at most
// 1/shrinkFactor of its peak. The copy costs as many inserts as the map
// keeps, after at least three times as many deletes: O(1) amortized per
// Forget. Maps that never held shrinkMin nodes are left alone.
const (
	shrinkFactor = 4
	shrinkMin    = 64
)

// shard holds part of the node table and of the fd cache. A node lives in
// the shard its inode's device and number hash to (tableKey).
type shard struct {
	mu    sync.Mutex
	nodes map[ringfuse.InodeKey]*node
	// peak is the most nodes the map held since it was made.
	peak int
	// outside holds, by their own keys, the live nodes that left nodes
	// for a node of a new inode with their inode number (see intern);
	// usually nil.
	outside map[ringfuse.InodeKey]*node
	slots   []slot
	free    []int32 // slots holding no descriptor
	// head and tail of the LRU list of idle slots; head is the most
	// recently used. -1 when empty.
	head, tail int32
}

func (sh *shard) init(capacity int) {
	sh.nodes = make(map[ringfuse.InodeKey]*node)
	sh.slots = make([]slot, capacity)
	sh.free = make([]int32, capacity)
	for i := range capacity {
		sh.free[i] = int32(capacity - 1 - i)
	}
	sh.head, sh.tail = -1, -1
}

// added notes that the node map grew.
func (sh *shard) added() { sh.peak = max(sh.peak, len(sh.nodes)) }

// removed rebuilds the node map after a delete if it has become sparse.
func (sh *shard) removed() {
	if sh.peak < shrinkMin || len(sh.nodes) > sh.peak/shrinkFactor {
		return
	}
	m := make(map[ringfuse.InodeKey]*node, len(sh.nodes))
	for k, n := range sh.nodes {
		m[k] = n
	}
	sh.nodes, sh.peak = m, len(m)
}

func (sh *shard) lruRemove(i int32) {
	s := &sh.slots[i]
	if s.prev >= 0 {
		sh.slots[s.prev].next = s.next
	} else {
		sh.head = s.next
	}
	if s.next >= 0 {
		sh.slots[s.next].prev = s.prev
	} else {
		sh.tail = s.prev
	}
	s.prev, s.next = -1, -1
}

func (sh *shard) lruPushFront(i int32) {
	s := &sh.slots[i]
	s.prev, s.next = -1, sh.head
	if sh.head >= 0 {
		sh.slots[sh.head].prev = i
	} else {
		sh.tail = i
	}
	sh.head = i
}

// takeSlot returns a slot for a new descriptor, evicting the least
// recently used idle one if none is free; victim is the evicted
// descriptor, to be closed once the lock is released. It returns -1 when
// every slot is busy.
func (sh *shard) takeSlot() (i int32, victim int) {
	if n := len(sh.free); n > 0 {
		i = sh.free[n-1]
		sh.free = sh.free[:n-1]
		return i, -1
	}
	i = sh.tail
	if i < 0 {
		return -1, -1
	}
	sh.lruRemove(i)
	s := &sh.slots[i]
	s.n.slot = -1
	return i, int(s.fd)
}

// detach takes n's cached descriptor away from it. It returns the
// descriptor to close, or -1 if there is none or it is still in use (the
// last release closes it then).
func (sh *shard) detach(n *node) int {
	i := n.slot
	if i < 0 {
		return -1
	}
	n.slot = -1
	s := &sh.slots[i]
	s.n = nil
	if s.users > 0 {
		return -1
	}
	sh.lruRemove(i)
	sh.free = append(sh.free, i)
	return int(s.fd)
}

// cached returns the number of descriptors the shard holds.
func (sh *shard) cached() int {
	return len(sh.slots) - len(sh.free)
}

func (fs *FS) shardOf(k ringfuse.InodeKey) *shard {
	k = tableKey(k) // every node of an inode number in one shard
	h := k.Ino*0x9e3779b97f4a7c15 ^ k.Dev
	return &fs.shards[(h>>32)%nShards]
}

// revive puts n back in the table after the server used it once Forget
// had dropped it. That happens when a Lookup found n just before the
// kernel forgot it: the server then makes a new kernel node from n. A node
// of the same inode (the same handle) that took n's place in the table
// meanwhile was looked up while the server held n under that key, so the
// server dropped it: it is discarded (and revived in turn should the
// server hold it after all). A node of another inode with n's inode number
// keeps its place, and n lives outside the table until Forget. revive
// returns a descriptor to close after unlocking, or -1.
func (fs *FS) revive(sh *shard, n *node) int {
	n.live = true
	fs.nodes.Add(1)
	tk := tableKey(n.key)
	old := sh.nodes[tk]
	if old != nil && old != n && old.handle != n.handle {
		sh.leave(n)
		return -1
	}
	sh.nodes[tk] = n
	sh.added()
	if old == nil || old == n {
		return -1
	}
	return fs.discard(sh, old)
}

// discard drops old, a node that has left the table and that the server
// did not keep: a lookup returned old while the server held another node
// with old's key, and the server keeps the node it has. It returns a
// descriptor to close after unlocking, or -1.
func (fs *FS) discard(sh *shard, old *node) int {
	old.live = false
	fs.nodes.Add(-1)
	if old.pfd >= 0 {
		// An unused duplicate: nothing else refers to its descriptor.
		closeFd(int(old.pfd))
		old.pfd = -1
	}
	return sh.detach(old)
}

// intern returns the node for key, creating it with handle h (a struct
// file_handle; nil for a pinned node) and mount descriptor mfd, or with
// pinned descriptor pfd. It takes ownership of pfd.
//
// A node's key is what the server tells kernel nodes apart by, so no two
// live nodes share one. That matters when an inode is deleted while the
// kernel still holds its node and a new inode gets its inode number: the
// table's node then has a handle that differs from h. The new inode gets a
// new node, under a key tagged with an incarnation number (see
// incarnation), and so a new node ID from the server. Sharing the old one
// would make the kernel splice a new directory onto the deleted one's
// dentry (ESTALE from d_splice_alias) and send requests for the new inode
// to the old node. The old node leaves the table for sh.outside; the
// kernel reaches it through its node ID until it forgets it, and its
// requests fail as the deleted inode's would (ESTALE from
// open_by_handle_at, which the kernel answers with a fresh lookup).
func (fs *FS) intern(key ringfuse.InodeKey, h []byte, mfd int32, pfd int) (n *node, created bool) {
	sh := fs.shardOf(key)
	closeA, closeB := -1, -1
	sh.mu.Lock()
	n = sh.nodes[key]
	switch {
	case n != nil && (h == nil || n.pfd >= 0 || string(h) == n.handle):
		n.shared = true
		closeB = pfd
	case n != nil && !taggable(key):
		// No room for incarnations in the key: the node takes the new
		// inode's handle and drops its descriptor of the old one.
		n.shared = true
		n.handle = string(h)
		n.mfd = mfd
		closeA = sh.detach(n)
		closeB = pfd
	default:
		if n != nil {
			closeA = sh.detach(n) // a descriptor of the deleted inode
			sh.leave(n)
		}
		k := key
		if sh.outside[key] != nil {
			k = incarnation(key) // key is a live node's outside the table
		}
		n = &node{key: k, mfd: mfd, pfd: int32(pfd), slot: -1, live: true}
		if h != nil {
			n.handle = string(h)
		}
		sh.nodes[key] = n
		sh.added()
		fs.nodes.Add(1)
		created = true
	}
	sh.mu.Unlock()
	closeFd(closeA)
	closeFd(closeB)
	return n, created
}

// leave moves live node n from the table to sh.outside: a node of another
// inode with n's inode number takes its place.
func (sh *shard) leave(n *node) {
	if sh.outside == nil {
		sh.outside = make(map[ringfuse.InodeKey]*node)
	}
	sh.outside[n.key] = n
}

// drop removes n, no longer live, from the table or from sh.outside.
func (sh *shard) drop(n *node) {
	if tk := tableKey(n.key); sh.nodes[tk] == n {
		delete(sh.nodes, tk)
		sh.removed()
	} else if sh.outside[n.key] == n {
		delete(sh.outside, n.key)
		if len(sh.outside) == 0 {
			sh.outside = nil // a map never shrinks
		}
	}
}

// incarnationShift: Linux's stat reports st_dev as a 32-bit value
// (new_encode_dev), so the upper half of InodeKey.Dev is free to number
// the inodes that had one inode number while the kernel held a node.
const incarnationShift = 32

// incarnations numbers the inodes that had a reused inode number.
var incarnations atomic.Uint32

// taggable reports whether key leaves room for an incarnation number.
func taggable(key ringfuse.InodeKey) bool { return key.Dev>>incarnationShift == 0 }

// incarnation returns key tagged with a fresh incarnation number. The
// numbers wrap after 2^32 reuses; a node would have to outlive four
// billion of them for its key to be given out again.
func incarnation(key ringfuse.InodeKey) ringfuse.InodeKey {
	c := incarnations.Add(1)
	for c == 0 {
		c = incarnations.Add(1) // 0 is the untagged key
	}
	key.Dev |= uint64(c) << incarnationShift
	return key
}

// tableKey returns the key a node is filed under in its shard's table: its
// own key without the incarnation, the inode's device and number.
// sh.outside files nodes under their own keys.
func tableKey(k ringfuse.InodeKey) ringfuse.InodeKey {
	k.Dev &= 1<<incarnationShift - 1
	return k
}

// unintern undoes intern for a node that was created but never handed to
// the server (a READDIRPLUS entry that did not fit), unless a lookup has
// returned it meanwhile.
func (fs *FS) unintern(n *node) {
	sh := fs.shardOf(n.key)
	closeA, closeB := -1, -1
	sh.mu.Lock()
	if n.live && !n.shared {
		sh.drop(n)
		n.live = false
		fs.nodes.Add(-1)
		closeA = sh.detach(n)
		if n.pfd >= 0 {
			closeB = int(n.pfd)
			n.pfd = -1
		}
	}
	sh.mu.Unlock()
	closeFd(closeA)
	closeFd(closeB)
}

// share marks n as returned to the server again, for operations such as
// LINK that answer with an existing node.
func (fs *FS) share(n *node) {
	sh := fs.shardOf(n.key)
	sh.mu.Lock()
	n.shared = true
	sh.mu.Unlock()
}

// handleOf returns n's file handle and mount descriptor.
func (fs *FS) handleOf(n *node) (string, int) {
	sh := fs.shardOf(n.key)
	stale := -1
	sh.mu.Lock()
	if !n.live {
		stale = fs.revive(sh, n)
	}
	h, mfd := n.handle, int(n.mfd)
	sh.mu.Unlock()
	closeFd(stale)
	return h, mfd
}

// acquire returns an O_PATH descriptor for n, from the cache if it has one
// and otherwise opened by handle and put in the cache. The caller must
// release it.
func (fs *FS) acquire(n *node) (pathFd, syscall.Errno) {
	sh := fs.shardOf(n.key)
	sh.mu.Lock()
	stale := -1
	if !n.live {
		stale = fs.revive(sh, n)
	}
	if n.pfd >= 0 {
		fd := int(n.pfd)
		sh.mu.Unlock()
		closeFd(stale)
		return pathFd{fd: fd, n: n, tok: tokPinned}, 0
	}
	if i := n.slot; i >= 0 {
		s := &sh.slots[i]
		if s.users == 0 {
			sh.lruRemove(i)
		}
		s.users++
		fd := int(s.fd)
		sh.mu.Unlock()
		closeFd(stale)
		return pathFd{fd: fd, n: n, tok: i}, 0
	}
	h, mfd := n.handle, int(n.mfd)
	sh.mu.Unlock()
	closeFd(stale)
	if h == "" {
		return pathFd{}, syscall.ESTALE // a pinned node used after Forget
	}

	fd, e := openByHandleAt(mfd, h, unix.O_PATH|unix.O_CLOEXEC)
	if e != 0 {
		return pathFd{}, e
	}

	sh.mu.Lock()
	if i := n.slot; i >= 0 {
		// Another request cached one meanwhile: use that one.
		s := &sh.slots[i]
		if s.users == 0 {
			sh.lruRemove(i)
		}
		s.users++
		cfd := int(s.fd)
		sh.mu.Unlock()
		closeFd(fd)
		return pathFd{fd: cfd, n: n, tok: i}, 0
	}
	if n.handle != h || !n.live {
		sh.mu.Unlock()
		return pathFd{fd: fd, n: n, tok: tokPrivate}, 0
	}
	i, victim := sh.takeSlot()
	if i < 0 {
		sh.mu.Unlock()
		return pathFd{fd: fd, n: n, tok: tokPrivate}, 0
	}
	sh.slots[i] = slot{n: n, fd: int32(fd), users: 1, prev: -1, next: -1}
	n.slot = i
	sh.mu.Unlock()
	closeFd(victim)
	return pathFd{fd: fd, n: n, tok: i}, 0
}

// release returns a descriptor from acquire.
func (fs *FS) release(p pathFd) {
	switch p.tok {
	case tokPinned:
		return
	case tokPrivate:
		closeFd(p.fd)
		return
	}
	sh := fs.shardOf(p.n.key)
	toClose := -1
	sh.mu.Lock()
	s := &sh.slots[p.tok]
	s.users--
	if s.users == 0 {
		if s.n == nil {
			toClose = int(s.fd)
			sh.free = append(sh.free, p.tok)
		} else {
			sh.lruPushFront(p.tok)
		}
	}
	sh.mu.Unlock()
	closeFd(toClose)
}

// offer gives the cache an O_PATH descriptor for n that the caller opened
// anyway (for a node it just created). The cache takes ownership: it keeps
// fd or closes it.
func (fs *FS) offer(n *node, fd int) {
	sh := fs.shardOf(n.key)
	sh.mu.Lock()
	if n.slot >= 0 || n.pfd >= 0 || !n.live || len(sh.slots) == 0 {
		sh.mu.Unlock()
		closeFd(fd)
		return
	}
	i, victim := sh.takeSlot()
	if i < 0 {
		sh.mu.Unlock()
		closeFd(fd)
		return
	}
	sh.slots[i] = slot{n: n, fd: int32(fd), prev: -1, next: -1}
	n.slot = i
	sh.lruPushFront(i)
	sh.mu.Unlock()
	closeFd(victim)
}

// Forget drops n from the node table and closes its cached descriptor.
// The server calls it once the kernel has forgotten every lookup of n.
func (fs *FS) Forget(rn ringfuse.Node) {
	n, ok := rn.(*node)
	if !ok || n == nil || n == fs.root {
		return
	}
	sh := fs.shardOf(n.key)
	closeB, closeC := -1, -1
	sh.mu.Lock()
	if n.live {
		n.live = false
		fs.nodes.Add(-1)
		sh.drop(n)
	} else if m := sh.nodes[tableKey(n.key)]; m != nil && m != n && m.key == n.key {
		// The server made a node ID for n after n's first Forget (a
		// lookup had found n just before it; see revive) and never
		// used it, so n was not revived. A node with n's key made
		// meanwhile was looked up while the server held n under that
		// key: the server kept n and dropped it.
		sh.drop(m)
		closeC = fs.discard(sh, m)
	}
	closeA := sh.detach(n)
	if n.pfd >= 0 {
		closeB = int(n.pfd)
		n.pfd = -1
	}
	sh.mu.Unlock()
	closeFd(closeA)
	closeFd(closeB)
	closeFd(closeC)
}
