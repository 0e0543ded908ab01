package harness

import (
	"context"
	"os"
	"testing"
	"time"
)

// BenchmarkFio runs fio 4k random reads at QD1 through ringfuse over
// /dev/fuse and over io_uring (queue depth 8), one mount and one 2 s fio
// job per iteration. It needs root and the ringfuse binary:
//
//	RINGBENCH_RINGFUSE=/path/to/ringfuse go test -run '^$' -bench Fio -benchtime 1x ./harness
func BenchmarkFio(b *testing.B) {
	bin := os.Getenv("RINGBENCH_RINGFUSE")
	if bin == "" {
		b.Skip("set RINGBENCH_RINGFUSE to the ringfuse binary")
	}
	if os.Geteuid() != 0 {
		b.Skip("needs root to mount")
	}
	p := DefaultParams()
	p.Runtime, p.Ramp, p.FileSize, p.DropCaches = 2*time.Second, 500*time.Millisecond, 64<<20, false
	env, err := NewEnv(b.TempDir(), p)
	if err != nil {
		b.Fatal(err)
	}
	cfgs, err := BuildConfigs([]string{"devfuse", "uring-qd8"}, ConfigParams{Ringfuse: bin}, nil)
	if err != nil {
		b.Fatal(err)
	}
	w := &FioJob{JobName: "randread-4k-qd1", RW: "randread", BS: "4k", IODepth: 1}
	if err := w.Prepare(context.Background(), env); err != nil {
		b.Fatal(err)
	}
	for _, c := range cfgs {
		b.Run(c.Name, func(b *testing.B) {
			var r Result
			for i := 0; i < b.N; i++ {
				var err error
				if r, err = env.RunOne(context.Background(), c, w, i+1); err != nil {
					b.Fatal(err)
				}
				if !r.OK() {
					b.Fatal(r.Err)
				}
			}
			b.ReportMetric(r.Rate, "ios/s")
			b.ReportMetric(*r.P99us*1e3, "p99-ns")
			b.ReportMetric(*r.CPUusPerOp, "daemon-cpu-us/io")
			b.ReportMetric(*r.CtxswPerOp, "ctxsw/io")
		})
	}
}
