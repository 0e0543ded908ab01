package kmodel_test

import (
	"context"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/kmodel"
)

// Drive against the real server over each routing: the run ends with every
// node forgotten and the server's table empty.
func TestDrive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		model  kmodel.Config
		optIn  bool
		noRing bool
	}{
		{"devfuse", kmodel.Config{}, false, true},
		{"uring", kmodel.Config{}, false, false},
		{"Patched", kmodel.Config{Patched: true}, true, false},
		{"Patched/batch32/cap2", kmodel.Config{Patched: true, UringForgetBatch: true, UringForgetCap: 2}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names := fileNames(300)
			o := rigOptions{model: tc.model, fs: newMemFS(8192, names...)}
			if !tc.noRing {
				o.ring = &ring.Options{QueueDepth: 4, ForgetCommit: tc.optIn}
			}
			r := startRig(t, o)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := r.m.Drive(ctx, kmodel.DriverConfig{
				Clients:    4,
				Duration:   300 * time.Millisecond,
				Names:      names,
				OpenFiles:  2,
				StormEvery: 50 * time.Millisecond,
				Seed:       1,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d ops in %v, p50 %v p99 %v; %d storms; byOp %+v", st.Ops, st.Elapsed, st.Latency.P50, st.Latency.P99, len(st.Storms), st.ByOp)
			for _, s := range st.Storms {
				t.Logf("storm at %v: %d nodes, drained in %v (%v)", s.Start, s.Nodes, s.Drain, s.Drained)
			}
			if st.Ops == 0 || st.Errors != 0 || st.Latency.Count != st.Ops || st.ByOp["LOOKUP"].Count == 0 || st.ByOp["WRITE"].Count == 0 {
				t.Errorf("%+v", st)
			}
			if n := len(st.Storms); n < 2 || !st.Storms[n-1].Final || !st.Storms[n-1].Drained || st.Storms[n-1].Nodes == 0 {
				t.Errorf("storms: %+v", st.Storms)
			}
			eventually(t, "no live nodes", func() bool { return r.srv.NodesAlive() == 0 })
			checkAccounting(t, r.m, r.srv)
			srvSt := r.srv.Stats()
			if tc.optIn {
				if srvSt.Channels["uring"].Forgets == 0 {
					t.Errorf("no forget on the ring: %+v", srvSt.Channels["uring"])
				}
			} else if u := srvSt.Channels["uring"]; u != nil && u.Forgets != 0 {
				t.Errorf("forgets on the ring: %+v", u)
			}
			if len(st.ForgetHeldMean) != len(st.Model.Queues) {
				t.Errorf("held means %v for %d queues", st.ForgetHeldMean, len(st.Model.Queues))
			}
			for _, q := range st.Model.Queues {
				t.Logf("queue %d: %d requests, %d CQEs, %d commits, %d forget msgs (%d forgets), held max %d mean %.3f",
					q.Qid, q.Requests, q.CQEs, q.Commits, q.ForgetMsgs, q.Forgets, q.ForgetHeldMax, q.ForgetHeldMean)
			}
		})
	}
}
