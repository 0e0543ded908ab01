package passthrough

import (
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"ringfuse"
)

// node is the filesystem's value for one backing inode. It holds no
// descriptor while idle: it is reopened from its file handle when needed.
// On amd64 it takes 48 bytes, plus the handle string (16 bytes for ext4)
// and its entry in the shard's map.
type node struct {
	key ringfuse.InodeKey
	// handle is the struct file_handle (header and f_handle) from
	// name_to_handle_at; "" for a pinned node. Guarded by the shard mutex:
	// Lookup replaces it when the inode number was reused.
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
	// live says the node is in the shard's table and counted in Stats.Nodes.
	// Guarded by the shard mutex.
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

// shard holds part of the node table and of the fd cache. A node lives in
// the shard its key hashes to.
type shard struct {
	mu    sync.Mutex
	nodes map[ringfuse.InodeKey]*node
	slots []slot
	free  []int32 // slots holding no descriptor
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
	h := k.Ino*0x9e3779b97f4a7c15 ^ k.Dev
	return &fs.shards[(h>>32)%nShards]
}

// revive puts n back in the table after the server used it once Forget
// had dropped it. That happens when a Lookup found n just before the
// kernel forgot it: the server then makes a new kernel node from n. A node
// that took n's place in the table meanwhile was dropped by the server and
// is removed. It returns a descriptor to close after unlocking, or -1.
func (fs *FS) revive(sh *shard, n *node) int {
	n.live = true
	fs.nodes.Add(1)
	old := sh.nodes[n.key]
	sh.nodes[n.key] = n
	if old == nil || old == n {
		return -1
	}
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
// pinned descriptor pfd. It takes ownership of pfd. For an existing node
// whose handle differs from h (the inode number was reused by a new
// inode), the node takes the new handle and drops its cached descriptor.
func (fs *FS) intern(key ringfuse.InodeKey, h []byte, mfd int32, pfd int) (n *node, created bool) {
	sh := fs.shardOf(key)
	closeA, closeB := -1, -1
	sh.mu.Lock()
	if n = sh.nodes[key]; n != nil {
		n.shared = true
		if h != nil && n.pfd < 0 && string(h) != n.handle {
			n.handle = string(h)
			n.mfd = mfd
			closeA = sh.detach(n)
		}
		closeB = pfd
	} else {
		n = &node{key: key, mfd: mfd, pfd: int32(pfd), slot: -1, live: true}
		if h != nil {
			n.handle = string(h)
		}
		sh.nodes[key] = n
		fs.nodes.Add(1)
		created = true
	}
	sh.mu.Unlock()
	closeFd(closeA)
	closeFd(closeB)
	return n, created
}

// unintern undoes intern for a node that was created but never handed to
// the server (a READDIRPLUS entry that did not fit), unless a lookup has
// returned it meanwhile.
func (fs *FS) unintern(n *node) {
	sh := fs.shardOf(n.key)
	closeA, closeB := -1, -1
	sh.mu.Lock()
	if n.live && !n.shared && sh.nodes[n.key] == n {
		delete(sh.nodes, n.key)
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
	closeB := -1
	sh.mu.Lock()
	if n.live {
		n.live = false
		fs.nodes.Add(-1)
		if sh.nodes[n.key] == n {
			delete(sh.nodes, n.key)
		}
	}
	closeA := sh.detach(n)
	if n.pfd >= 0 {
		closeB = int(n.pfd)
		n.pfd = -1
	}
	sh.mu.Unlock()
	closeFd(closeA)
	closeFd(closeB)
}
