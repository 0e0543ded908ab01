//go:build linux

package passthrough

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse"
)

// BenchmarkWrite4k is WRITE's part of a 4k random write: fs.Write of one
// aligned 4 KiB block at a random offset of a 64 MiB file, on a plain
// handle (into the page cache) and on an O_DIRECT one (to the disk).
//
//	go test -run '^$' -bench Write4k -count 3 ./fs/passthrough
func BenchmarkWrite4k(b *testing.B) {
	const size = 64 << 20
	for _, c := range []struct {
		name  string
		flags uint32
	}{{"plain", unix.O_RDWR}, {"direct", unix.O_RDWR | unix.O_DIRECT}} {
		b.Run(c.name, func(b *testing.B) {
			fs, src := newFS(b, nil)
			if err := os.WriteFile(filepath.Join(src, "f"), make([]byte, size), 0o644); err != nil {
				b.Fatal(err)
			}
			e := lookup(b, fs, fs.Root(), "f")
			defer fs.Forget(e.Node)
			var out ringfuse.OpenOut
			if errno := fs.Open(bg, e.Node, c.flags, &out); errno != 0 {
				b.Fatal(errno)
			}
			defer fs.Release(bg, e.Node, out.Fh, 0)
			buf := alignedBuf(4096)
			x := uint32(1)
			b.SetBytes(4096)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				x ^= x << 13
				x ^= x >> 17
				x ^= x << 5
				off := int64(x%(size/4096)) * 4096
				if _, errno := fs.Write(bg, e.Node, out.Fh, off, buf, 0); errno != 0 {
					b.Fatal(errno)
				}
			}
		})
	}
}
