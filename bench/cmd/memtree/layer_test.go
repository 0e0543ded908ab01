package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse"
	"github.com/ringfuse/ringfuse/nodefs"
)

// mkdirs numbers the directories the create benchmarks fill.
var mkdirs int

// BenchmarkLayer calls the two ringfuse variants' operations directly, as
// the server does, without a kernel: what the node layer itself costs per
// LOOKUP (with the Forget that gives its reference back), 4k READ and
// CREATE, next to the raw API's filesystem.
func BenchmarkLayer(b *testing.B) {
	const files = 10000
	ents := []entry{{path: "d", dir: true, mode: 0o755}, {path: "f", mode: 0o644, data: make([]byte, 64<<20)}}
	for i := range files {
		ents = append(ents, entry{path: fmt.Sprintf("d/f%07d", i), mode: 0o644})
	}
	names := make([]string, files)
	for i := range names {
		names[i] = fmt.Sprintf("f%07d", i)
	}
	nroot := &memRoot{ents: ents}
	nfs, err := nodefs.New(nroot)
	if err != nil {
		b.Fatal(err)
	}
	rfs := newRawFS(ents)
	variants := []struct {
		name      string
		fs        ringfuse.FileSystem
		dir, file ringfuse.Node
	}{
		{"nodefs", nfs, nroot.GetChild("d"), nroot.GetChild("f")},
		{"raw", rfs, rfs.root.kids["d"], rfs.root.kids["f"]},
	}
	ctx := context.Background()
	for _, v := range variants {
		b.Run(v.name+"/lookup", func(b *testing.B) {
			l := v.fs.(ringfuse.Lookuper)
			forget, _ := v.fs.(ringfuse.Forgetter)
			var e ringfuse.Entry
			for i := 0; b.Loop(); i++ {
				e = ringfuse.Entry{}
				if l.Lookup(ctx, v.dir, names[i%files], &e) != 0 {
					b.Fatal("lookup failed")
				}
				if forget != nil {
					forget.Forget(e.Node)
				}
			}
		})
		b.Run(v.name+"/read4k", func(b *testing.B) {
			r := v.fs.(ringfuse.Reader)
			buf := make([]byte, 4096)
			for i := 0; b.Loop(); i++ {
				if n, errno := r.Read(ctx, v.file, 0, int64(i%16384)*4096, buf); n != 4096 || errno != 0 {
					b.Fatal("read failed")
				}
			}
		})
		b.Run(v.name+"/create", func(b *testing.B) {
			c := v.fs.(ringfuse.Creater)
			m := v.fs.(ringfuse.Mkdirer)
			var e ringfuse.Entry
			mkdirs++
			if m.Mkdir(ctx, v.fs.Root(), fmt.Sprint("c", mkdirs), 0o755, 0, &e) != 0 {
				b.Fatal("mkdir failed")
			}
			dir := e.Node
			for i := 0; b.Loop(); i++ {
				e = ringfuse.Entry{}
				open := ringfuse.OpenOut{PassthroughFd: -1}
				if errno := c.Create(ctx, dir, names[i%files]+fmt.Sprint(i), syscall.O_WRONLY, 0o644, 0, &e, &open); errno != 0 {
					b.Fatal("create failed:", errno)
				}
			}
		})
	}
}
