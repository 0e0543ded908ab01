package server

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/ringfuse/ringfuse/wire"
)

// benchOps are the requests the dispatch benchmarks serve, all on allocFS,
// whose methods cost next to nothing: the numbers are the server's.
var benchOps = []string{"GETATTR", "READ4k", "WRITE4k", "LOOKUP"}

func setBytes(b *testing.B, op string) {
	if op == "READ4k" || op == "WRITE4k" {
		b.SetBytes(4096)
	}
}

// BenchmarkDispatch serves one request at a time on one Worker: decode,
// dispatch, the filesystem call and the reply encoding.
func BenchmarkDispatch(b *testing.B) {
	for _, op := range benchOps {
		b.Run(op, func(b *testing.B) {
			h := newHarness(b, allocFS{}, nil)
			msg := hotMessages(h.mustLookup(wire.FUSE_ROOT_ID, "file").NodeID)[op]
			setBytes(b, op)
			b.ReportAllocs()
			for b.Loop() {
				if rep := h.w.HandleDev(msg, h.out); rep.Error != 0 {
					b.Fatalf("%s: %+v", op, rep)
				}
			}
		})
	}
}

// BenchmarkDispatchParallel serves requests from GOMAXPROCS goroutines,
// each with its own Worker, as the ring queues do. LOOKUP looks up a
// different inode in each goroutine (up to ten); LOOKUP-samekey has every
// goroutine count lookups of one inode, which shares its node table
// shard.
func BenchmarkDispatchParallel(b *testing.B) {
	for _, op := range append(benchOps, "LOOKUP-samekey") {
		b.Run(op, func(b *testing.B) {
			h := newHarness(b, allocFS{}, nil)
			id := h.mustLookup(wire.FUSE_ROOT_ID, "file").NodeID
			// One worker, reply buffer and message per goroutine, made
			// before the clock starts.
			type slot struct {
				h   *harness
				msg []byte
			}
			slots := make([]slot, runtime.GOMAXPROCS(0))
			for g := range slots {
				var msg []byte
				switch op {
				case "LOOKUP":
					msg = reqMsg(nil, wire.FUSE_LOOKUP, 1, wire.FUSE_ROOT_ID, wire.CString("file"+strconv.Itoa(g%10)))
				case "LOOKUP-samekey":
					msg = hotMessages(id)["LOOKUP"]
				default:
					msg = hotMessages(id)[op]
				}
				slots[g] = slot{h.fork("bench"), msg}
			}
			var next atomic.Int64
			setBytes(b, op)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				s := slots[next.Add(1)-1]
				wh, msg := s.h, s.msg
				for pb.Next() {
					if rep := wh.w.HandleDev(msg, wh.out); rep.Error != 0 {
						b.Errorf("%s: %+v", op, rep)
						return
					}
				}
			})
		})
	}
}
