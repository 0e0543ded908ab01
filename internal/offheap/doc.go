// Package offheap keeps tables of fixed-size records in memory the Go
// runtime does not manage: anonymous mappings that the package maps, grows
// and gives back to the kernel itself.
//
// A FUSE daemon holds one record per inode the kernel knows, and the
// kernel may know millions of them for a while and then forget them all
// (drop_caches, memory pressure). Kept on the Go heap, such a peak leaves
// memory behind that the runtime never returns: the span structures and
// bitmaps of every small-object span the peak used (docs/memory.md). Kept
// here, the records leave nothing: Trim hands every page that holds no
// live record back to the kernel, and an Index shrinks as it empties.
//
// Records must hold no Go pointers, since the garbage collector does not
// scan this memory; NewSlab refuses a type that does.
package offheap
