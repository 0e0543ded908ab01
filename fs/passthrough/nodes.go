//go:build linux

package passthrough

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/creds"
	"github.com/ringfuse/ringfuse/internal/offheap"
)

// node is the filesystem's value for one backing inode. It holds no
// descriptor while idle: it is reopened from its file handle when needed.
// Nodes live in the shards' slabs, outside the Go heap (see shard), and
// hold no Go pointers; the server refers to them by number (NodeNumber).
type node struct {
	// key is the inode's device and number, which the server tells
	// kernel nodes apart by; for an inode whose number a node of a
	// deleted inode still holds, tagged with an incarnation (see intern).
	key ringfuse.InodeKey
	// num is the node's number: its shard in the high half, its slot
	// plus one in the low half.
	num uint64
	// refs counts the server's references (see ringfuse.NodeTable): the
	// entries that returned the node and that the server has not given
	// back. The node is freed when it falls to zero; the root keeps one
	// for ever. Guarded by the shard mutex.
	refs int32
	// mfd is the mount descriptor the handle is opened against. Guarded
	// by the shard mutex.
	mfd int32
	// pfd is the O_PATH descriptor a pinned node holds for its whole life,
	// because its filesystem has no file handles; -1 otherwise. Only the
	// root and the last Forget change it.
	pfd int32
	// slot is the node's fd cache slot, or -1. Guarded by the shard mutex.
	slot int32
	// hlen is the length of handle, 0 for a pinned node, or hlenLong for
	// a handle too long for the record (in shard.long). Guarded by the
	// shard mutex: where keys cannot be tagged, Lookup replaces the
	// handle when the inode number was reused.
	hlen uint8
	_    [3]byte
	// handle is the struct file_handle (header and f_handle) from
	// name_to_handle_at. Local filesystems' handles fit: ext4's takes 16
	// bytes, btrfs's 28.
	handle [handleInline]byte
}

const (
	handleInline = 44
	hlenLong     = 0xff
	// sizeofNode is checked in TestNodeSize.
	sizeofNode = 88
)

// Special values of pathFd.tok.
const (
	tokPrivate = -1 // an uncached descriptor: release closes it
	tokPinned  = -2 // the node's pinned descriptor: release does nothing
)

// pathFd is an O_PATH descriptor for a node, borrowed from the cache by
// acquire and returned by release.
type pathFd struct {
	fd  int
	sh  *shard // the node's, whose cache slot tok is
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

// shardNodes bounds the nodes of a shard: 64M in all, in address space
// reserved when first used.
const shardNodes = 1 << 22

// Trimming. A shard's slab is trimmed once its nodes have fallen to a
// quarter of their peak since the last trim, if it has used at least
// trimMin slots since then: a trim costs time in proportion to those
// slots and happens after three times as many Forgets, so it adds O(1)
// amortized to a Forget. The trims go on as the count falls, down to the
// nodes that survive, so that the slab keeps no page of a storm.
const trimMin = 256

// shard holds part of the node table and of the fd cache. A node lives in
// the shard its inode's device and number hash to (keyHash). Its nodes
// are records in a slab outside the Go heap, found by key through an
// index there too, so that a storm of lookups leaves no Go memory behind
// once the kernel forgets them (docs/memory.md).
type shard struct {
	mu    sync.Mutex
	nodes *offheap.Slab[node]
	// index files each node in the table under tableKey(key); a node
	// that left the table for sh.outside has no entry.
	index *offheap.Index
	// peak is the most nodes the slab held since it was last trimmed.
	peak int
	// long holds, by slot, handles too long for a node record; usually
	// nil.
	long map[uint32]string
	// outside holds, by their own keys, the live nodes that left the
	// table for a node of a new inode with their inode number (see
	// intern); usually nil.
	outside map[ringfuse.InodeKey]*node
	slots   []slot
	free    []int32 // slots holding no descriptor
	// head and tail of the LRU list of idle slots; head is the most
	// recently used. -1 when empty.
	head, tail int32
}

func (sh *shard) init(capacity int) {
	sh.nodes = offheap.NewSlab[node](shardNodes)
	sh.index = new(offheap.Index)
	sh.slots = make([]slot, capacity)
	sh.free = make([]int32, capacity)
	for i := range capacity {
		sh.free[i] = int32(capacity - 1 - i)
	}
	sh.head, sh.tail = -1, -1
}

// shardMemory lists what the shards map outside the Go heap, for
// unmapping once the FS is unreachable.
func (fs *FS) shardMemory() offheap.Owned {
	var m offheap.Owned
	for i := range fs.shards {
		m = append(m, fs.shards[i].nodes, fs.shards[i].index)
	}
	return m
}

// keyHash mixes an inode key: the high half picks the shard, the low 32
// bits file the node in the shard's index.
func keyHash(k ringfuse.InodeKey) uint64 { return offheap.Mix(k.Ino, k.Dev) }

// find returns the node filed in the table under key (a table key), or
// nil.
func (sh *shard) find(key ringfuse.InodeKey) *node {
	for p := sh.index.Find(uint32(keyHash(key))); ; {
		i, ok := p.Next()
		if !ok {
			return nil
		}
		if n := sh.nodes.At(i); tableKey(n.key) == key {
			return n
		}
	}
}

// unfile removes n's entry from the table's index, if it has one.
func (sh *shard) unfile(n *node) bool {
	return sh.index.Delete(uint32(keyHash(tableKey(n.key))), slotOf(n))
}

func slotOf(n *node) uint32 { return uint32(n.num) - 1 }

// setHandle stores h (nil for a pinned node) as n's handle.
func (sh *shard) setHandle(n *node, h []byte) {
	if n.hlen == hlenLong {
		delete(sh.long, slotOf(n))
	}
	switch {
	case len(h) <= handleInline:
		n.hlen = uint8(copy(n.handle[:], h))
	default:
		if sh.long == nil {
			sh.long = map[uint32]string{}
		}
		sh.long[slotOf(n)] = string(h)
		n.hlen = hlenLong
	}
}

// handleOf copies n's handle into hb; it returns nil for a pinned node.
func (sh *shard) handleOf(n *node, hb *handleBuf) []byte {
	switch n.hlen {
	case 0:
		return nil
	case hlenLong:
		return hb[:copy(hb[:], sh.long[slotOf(n)])]
	}
	return hb[:copy(hb[:], n.handle[:n.hlen])]
}

// sameHandle reports whether n's handle is h.
func (sh *shard) sameHandle(n *node, h []byte) bool {
	if n.hlen == hlenLong {
		return sh.long[slotOf(n)] == string(h)
	}
	return string(n.handle[:n.hlen]) == string(h)
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

func (fs *FS) shardOf(k ringfuse.InodeKey) *shard { return &fs.shards[shardIndex(k)] }

// shardIndex returns the shard of k: every node of an inode number in one
// shard. It takes the hash's high half; the index takes the low.
func shardIndex(k ringfuse.InodeKey) uint64 { return keyHash(tableKey(k)) >> 32 % nShards }

// intern returns the node for key with one more reference, creating it
// with handle h (a struct file_handle; nil for a pinned node) and mount
// descriptor mfd, or with pinned descriptor pfd. It takes ownership of
// pfd. It fails only when no memory is left for a node.
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
func (fs *FS) intern(key ringfuse.InodeKey, h []byte, mfd int32, pfd int) (n *node, errno syscall.Errno) {
	sh := fs.shardOf(key)
	closeA, closeB := -1, -1
	sh.mu.Lock()
	n = sh.find(key)
	switch {
	case n != nil && (h == nil || n.pfd >= 0 || sh.sameHandle(n, h)):
		n.refs++
		closeB = pfd
	case n != nil && !taggable(key):
		// No room for incarnations in the key: the node takes the new
		// inode's handle and drops its descriptor of the old one.
		n.refs++
		sh.setHandle(n, h)
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
		if n, errno = sh.add(k, h, mfd, pfd); errno != 0 {
			closeB = pfd
			break
		}
		fs.nodes.Add(1)
	}
	sh.mu.Unlock()
	closeFd(closeA)
	closeFd(closeB)
	return n, errno
}

// add makes a node with one reference and files it in the table under
// tableKey(k).
func (sh *shard) add(k ringfuse.InodeKey, h []byte, mfd int32, pfd int) (*node, syscall.Errno) {
	i, n, err := sh.nodes.Alloc()
	if err == nil {
		if err = sh.index.Insert(uint32(keyHash(tableKey(k))), i); err != nil {
			sh.nodes.Free(i)
		}
	}
	if err != nil {
		return nil, syscall.ENOMEM
	}
	*n = node{key: k, num: shardIndex(k)<<32 | uint64(i) + 1, refs: 1, mfd: mfd, pfd: int32(pfd), slot: -1}
	sh.setHandle(n, h)
	sh.peak = max(sh.peak, sh.nodes.Len())
	return n, 0
}

// leave moves live node n from the table to sh.outside: a node of another
// inode with n's inode number takes its place.
func (sh *shard) leave(n *node) {
	sh.unfile(n)
	if sh.outside == nil {
		sh.outside = make(map[ringfuse.InodeKey]*node)
	}
	sh.outside[n.key] = n
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

// ref adds a reference to n, for operations such as LINK that answer
// with an existing node.
func (fs *FS) ref(n *node) {
	sh := fs.shardOf(n.key)
	sh.mu.Lock()
	n.refs++
	sh.mu.Unlock()
}

// handleOf copies n's file handle into hb and returns it with n's mount
// descriptor; the handle is nil for a pinned node.
func (fs *FS) handleOf(n *node, hb *handleBuf) ([]byte, int, syscall.Errno) {
	sh := fs.shardOf(n.key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if n.refs <= 0 {
		return nil, -1, syscall.ESTALE // see staleNode
	}
	return sh.handleOf(n, hb), int(n.mfd), 0
}

// A node the server hands to an operation is one it holds a reference to,
// so its refs are positive. A freed node reads as zero (the slab zeroes
// it), and operations answer ESTALE for it rather than act on whatever
// the slot holds; only a kernel that sent requests for a node it had
// forgotten could get there.

// acquire returns an O_PATH descriptor for n, from the cache if it has one
// and otherwise opened by handle (with the daemon's rights: it needs
// CAP_DAC_READ_SEARCH) and put in the cache. The caller must release it.
func (fs *FS) acquire(ctx context.Context, n *node) (pathFd, syscall.Errno) {
	sh := fs.shardOf(n.key)
	sh.mu.Lock()
	if n.refs <= 0 {
		sh.mu.Unlock()
		return pathFd{}, syscall.ESTALE // see staleNode
	}
	if n.pfd >= 0 {
		fd := int(n.pfd)
		sh.mu.Unlock()
		return pathFd{fd: fd, sh: sh, tok: tokPinned}, 0
	}
	if i := n.slot; i >= 0 {
		s := &sh.slots[i]
		if s.users == 0 {
			sh.lruRemove(i)
		}
		s.users++
		fd := int(s.fd)
		sh.mu.Unlock()
		return pathFd{fd: fd, sh: sh, tok: i}, 0
	}
	var hb handleBuf
	h, mfd := sh.handleOf(n, &hb), int(n.mfd)
	sh.mu.Unlock()
	if h == nil {
		return pathFd{}, syscall.ESTALE // a pinned node without its descriptor
	}

	var fd int
	e := creds.Daemon(ctx, func() (e syscall.Errno) {
		fd, e = openByHandleAt(mfd, h, unix.O_PATH|unix.O_CLOEXEC)
		return e
	})
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
		return pathFd{fd: cfd, sh: sh, tok: i}, 0
	}
	if n.refs <= 0 || !sh.sameHandle(n, h) {
		sh.mu.Unlock()
		return pathFd{fd: fd, sh: sh, tok: tokPrivate}, 0
	}
	i, victim := sh.takeSlot()
	if i < 0 {
		sh.mu.Unlock()
		return pathFd{fd: fd, sh: sh, tok: tokPrivate}, 0
	}
	sh.slots[i] = slot{n: n, fd: int32(fd), users: 1, prev: -1, next: -1}
	n.slot = i
	sh.mu.Unlock()
	closeFd(victim)
	return pathFd{fd: fd, sh: sh, tok: i}, 0
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
	sh := p.sh
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
	if n.slot >= 0 || n.pfd >= 0 || n.refs <= 0 || len(sh.slots) == 0 {
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

// Forget gives back one of the server's references to n (see
// ringfuse.NodeTable); with the last one it drops n from the node table,
// closes its descriptors and frees it.
func (fs *FS) Forget(rn ringfuse.Node) {
	n, ok := rn.(*node)
	if !ok || n == nil {
		return
	}
	sh := fs.shardOf(n.key)
	closeA, closeB := -1, -1
	sh.mu.Lock()
	if n.refs <= 0 {
		sh.mu.Unlock()
		return // see staleNode
	}
	if n.refs--; n.refs > 0 {
		sh.mu.Unlock()
		return
	}
	if !sh.unfile(n) && sh.outside[n.key] == n {
		delete(sh.outside, n.key)
		if len(sh.outside) == 0 {
			sh.outside = nil // a map never shrinks
		}
	}
	closeA = sh.detach(n)
	closeB = int(n.pfd)
	if n.hlen == hlenLong {
		delete(sh.long, slotOf(n))
	}
	sh.nodes.Free(slotOf(n)) // zeroes n
	fs.nodes.Add(-1)
	if l := sh.nodes.Len(); sh.nodes.High() >= trimMin && l <= sh.peak/4 {
		sh.nodes.Trim()
		sh.peak = l
	}
	sh.mu.Unlock()
	closeFd(closeA)
	closeFd(closeB)
}

// NodeNumber returns n's number (see ringfuse.NodeTable).
func (fs *FS) NodeNumber(rn ringfuse.Node) uint64 {
	if n, ok := rn.(*node); ok && n != nil {
		return n.num
	}
	return 0
}

// NodeAt returns the node numbered i (see ringfuse.NodeTable).
func (fs *FS) NodeAt(i uint64) ringfuse.Node {
	si, slot := i>>32, uint32(i)
	if si >= nShards || slot == 0 || slot > shardNodes {
		return (*node)(nil)
	}
	return fs.shards[si].nodes.At(slot - 1)
}
