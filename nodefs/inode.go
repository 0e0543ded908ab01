package nodefs

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"syscall"

	"github.com/ringfuse/ringfuse"
)

// Inode is the tree's part of a node: embed it in the node's struct. Its
// zero value is ready; it joins a tree through New (the root),
// NewPersistentInode or NewInode.
type Inode struct {
	ops        InodeEmbedder
	tree       *tree
	stable     StableAttr
	persistent bool

	// Guarded by tree.mu.
	refs     int64  // the server's references (ringfuse.NodeTable)
	slot     uint64 // the number the server knows it by; 0 once dropped
	links    int    // the directories' entries that name it
	subdirs  int    // children that are directories
	parent   *Inode
	name     string
	children map[string]*Inode
}

// EmbeddedInode returns n itself: embedding Inode makes a type an
// [InodeEmbedder].
func (n *Inode) EmbeddedInode() *Inode { return n }

// Operations returns the node that embeds n.
func (n *Inode) Operations() InodeEmbedder { return n.ops }

// StableAttr returns the inode's type, number and generation.
func (n *Inode) StableAttr() StableAttr { return n.stable }

// IsDir reports whether n is a directory.
func (n *Inode) IsDir() bool { return n.stable.Mode&syscall.S_IFMT == syscall.S_IFDIR }

// Root returns the tree's root.
func (n *Inode) Root() *Inode { return n.tree.root }

// autoIno is the first inode number the tree picks itself.
const autoIno = 1 << 63

// tree is what the inodes of one filesystem share.
type tree struct {
	// mu guards every inode's refs, slot, links, parent, name and children, and the
	// fields below. One lock: tree changes are rare next to reads.
	mu    sync.Mutex
	root  *Inode
	byIno map[uint64]*Inode // inodes by the numbers filesystems chose

	nextIno uint64
	files   handleTable
	slots   slotTable
}

// checked caches the method check of each node type (see checkNode).
var checked sync.Map // reflect.Type -> error

// checkError carries a failed method check out of NewInode, which has no
// error result; New turns it back into an error.
type checkError struct{ err error }

func (e checkError) Error() string { return e.err.Error() }

// checkNode reports a method of node's type named like an operation that
// the tree would never call.
func checkNode(node InodeEmbedder) error {
	t := reflect.TypeOf(node)
	if err, ok := checked.Load(t); ok {
		err, _ := err.(error)
		return err
	}
	err := ringfuse.CheckMethods(node, operations)
	checked.Store(t, err)
	return err
}

// NewPersistentInode makes node an inode of n's tree that stays in the
// tree until it is removed (RmChild, unlink, rmdir), whatever the kernel
// forgets. Add it to a directory with AddChild. Calling it again for a
// node already in the tree returns its inode.
func (n *Inode) NewPersistentInode(ctx context.Context, node InodeEmbedder, st StableAttr) *Inode {
	return n.tree.add(ctx, node, st, true)
}

// NewInode makes node an inode of n's tree that leaves the tree once the
// kernel has forgotten it (a dynamic child, typically made in Lookup). If
// the tree already has an inode numbered st.Ino, NewInode returns that one
// and node is not used.
func (n *Inode) NewInode(ctx context.Context, node InodeEmbedder, st StableAttr) *Inode {
	return n.tree.add(ctx, node, st, false)
}

func (t *tree) add(ctx context.Context, node InodeEmbedder, st StableAttr, persistent bool) *Inode {
	if t == nil {
		panic("nodefs: NewInode on an inode that is not in a tree")
	}
	if err := checkNode(node); err != nil {
		panic(checkError{err})
	}
	ch := node.EmbeddedInode()
	if st.Mode&syscall.S_IFMT == 0 {
		st.Mode |= syscall.S_IFREG
	}
	st.Mode &= syscall.S_IFMT
	t.mu.Lock()
	if ch.tree == t {
		// Already made: it may have left the numbering since.
		ch.persistent = ch.persistent || persistent
		t.register(ch)
		t.mu.Unlock()
		return ch
	}
	if st.Ino == 0 {
		st.Ino = t.nextIno
		t.nextIno++
	} else if old := t.byIno[st.Ino]; old != nil {
		old.persistent = old.persistent || persistent
		t.mu.Unlock()
		return old
	}
	ch.ops, ch.tree, ch.stable, ch.persistent = node, t, st, persistent
	t.register(ch)
	t.mu.Unlock()
	if a, ok := node.(OnAdder); ok {
		a.OnAdd(ctx)
	}
	return ch
}

// AddChild makes ch the child name of n. If n already has a child of that
// name, AddChild replaces it when overwrite is true and otherwise returns
// false.
func (n *Inode) AddChild(name string, ch *Inode, overwrite bool) bool {
	t := n.tree
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := n.children[name]; old != nil && old != ch {
		if !overwrite {
			return false
		}
		t.unlink(n, name)
	}
	t.link(n, name, ch)
	return true
}

// link makes ch the child name of n. t.mu is held.
func (t *tree) link(n *Inode, name string, ch *Inode) {
	if n.children == nil {
		n.children = map[string]*Inode{}
	}
	n.children[name] = ch
	ch.links++
	if ch.IsDir() {
		n.subdirs++
	}
	if ch.parent == nil {
		ch.parent, ch.name = n, name
	}
}

// unlink removes the child name of n. t.mu is held.
func (t *tree) unlink(n *Inode, name string) {
	ch := n.children[name]
	if ch == nil {
		return
	}
	delete(n.children, name)
	ch.links--
	if ch.IsDir() {
		n.subdirs--
	}
	if ch.parent == n && ch.name == name {
		ch.parent, ch.name = nil, ""
	}
	t.maybeDrop(ch)
}

// register files ch under its inode number and gives it a slot, unless it
// has them. t.mu is held.
func (t *tree) register(ch *Inode) {
	if ch.slot == 0 {
		t.slots.take(ch)
	}
	// Numbers the tree picked are never picked twice: only a filesystem's
	// own numbers need finding.
	if ch.stable.Ino < autoIno && t.byIno[ch.stable.Ino] == nil {
		t.byIno[ch.stable.Ino] = ch
	}
}

// maybeDrop forgets ch's inode number and slot once nothing reaches ch:
// no directory, no child and no server reference. t.mu is held.
func (t *tree) maybeDrop(ch *Inode) {
	if ch == t.root || ch.refs > 0 || ch.links > 0 || len(ch.children) > 0 {
		return
	}
	if t.byIno[ch.stable.Ino] == ch {
		delete(t.byIno, ch.stable.Ino)
	}
	t.slots.put(ch)
}

// ref takes a server reference on ch, which an entry hands out; it brings
// back an inode that left the tree meanwhile. It returns the inode to
// hand out: another inode under ch's number if one took its place.
func (t *tree) ref(ch *Inode) *Inode {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := t.byIno[ch.stable.Ino]; cur != nil && cur != ch && ch.slot == 0 {
		ch = cur
	}
	t.register(ch)
	ch.refs++
	return ch
}

// unref gives back one server reference on ch and reports whether it was
// the last: a dynamic inode then leaves its directory (unless it has
// children of its own).
func (t *tree) unref(ch *Inode) (last bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ch.refs--; ch.refs > 0 {
		return false
	}
	if !ch.persistent && len(ch.children) == 0 && ch.parent != nil {
		t.unlink(ch.parent, ch.name)
	} else {
		t.maybeDrop(ch)
	}
	return true
}

// GetChild returns the child name of n, or nil.
func (n *Inode) GetChild(name string) *Inode {
	n.tree.mu.Lock()
	defer n.tree.mu.Unlock()
	return n.children[name]
}

// RmChild removes the children names of n.
func (n *Inode) RmChild(names ...string) {
	n.tree.mu.Lock()
	defer n.tree.mu.Unlock()
	for _, name := range names {
		n.tree.unlink(n, name)
	}
}

// Children returns the names of n's children, sorted.
func (n *Inode) Children() []string {
	n.tree.mu.Lock()
	defer n.tree.mu.Unlock()
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Nlink returns n's link count as stat(2) shows it: the directory
// entries that name it, and for a directory 2 plus its subdirectories.
func (n *Inode) Nlink() uint32 {
	n.tree.mu.Lock()
	defer n.tree.mu.Unlock()
	if n.IsDir() {
		return uint32(2 + n.subdirs)
	}
	return uint32(n.links)
}

// Parent returns a directory that holds n and n's name there, or nil for
// the root and for an inode no directory holds (or whose first directory
// let go of it while hard links elsewhere remain).
func (n *Inode) Parent() (*Inode, string) {
	n.tree.mu.Lock()
	defer n.tree.mu.Unlock()
	return n.parent, n.name
}

// String names the inode, for logs.
func (n *Inode) String() string {
	return fmt.Sprintf("inode %d (%T)", n.stable.Ino, n.ops)
}
