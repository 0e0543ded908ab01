package kmodel_test

import (
	"context"
	"testing"
	"time"

	"github.com/ringfuse/ringfuse/channel/ring"
	"github.com/ringfuse/ringfuse/kmodel"
)

// An eviction storm queues each forget on the ring queue of its evicting
// task's CPU (fuse_uring_task_to_queue), with no stealing: drop_caches, one
// task, loads one queue alone; several tasks load their own queues.
func TestEvictStormQueues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy kmodel.Config
	}{
		{"patch", kmodel.Config{}},
		{"batch", kmodel.Config{UringForgetBatch: true}},
		{"cap1", kmodel.Config{UringForgetCap: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.policy
			cfg.Patched, cfg.NrQueues = true, 3
			r := startRig(t, rigOptions{model: cfg, ring: &ring.Options{Queues: 3, QueueDepth: 4, ForgetCommit: true}})
			nq := r.m.Config().NrQueues
			names := fileNames(64)
			last := nq - 1
			for _, tasks := range [][]int{{last}, {0, last}} {
				lookupEverywhere(r, names)
				before := r.m.Stats()
				n := r.m.EvictStorm(context.Background(), kmodel.Storm{CPUs: tasks, Rate: -1})
				if n != len(names) {
					t.Fatalf("tasks %v: evicted %d, want %d", tasks, n, len(names))
				}
				if !waitForgets(r.m) {
					t.Fatalf("forgets did not drain: %+v", r.m.Stats())
				}
				after := r.m.Stats()
				per := make([]uint64, nq)
				for i, q := range after.Queues {
					per[i] = q.Forgets - before.Queues[i].Forgets
				}
				want := make([]uint64, nq)
				for _, cpu := range tasks {
					want[cpu] += uint64(len(names) / len(tasks))
				}
				for i := range per {
					if per[i] != want[i] {
						t.Errorf("tasks on CPUs %v: forgets per queue %v, want %v", tasks, per, want)
						break
					}
				}
			}
			eventually(t, "no live nodes", func() bool { return r.srv.NodesAlive() == 0 })
			checkAccounting(t, r.m, r.srv)
		})
	}
}

// A paced storm queues its forgets at the rate asked, not at once: it
// cannot end before the last forget is due.
func TestEvictStormPaced(t *testing.T) {
	r := startRig(t, rigOptions{model: kmodel.Config{Patched: true}, ring: &ring.Options{QueueDepth: 4, ForgetCommit: true}})
	names := fileNames(40)
	for _, n := range names {
		r.lookup(0, n)
	}
	const rate = 500
	t0 := time.Now()
	n := r.m.EvictStorm(context.Background(), kmodel.Storm{CPUs: []int{0}, Rate: rate})
	took := time.Since(t0)
	if n != len(names) {
		t.Fatalf("evicted %d, want %d", n, len(names))
	}
	// The k-th forget is due k/rate after the start.
	if min := time.Duration(len(names)-1) * time.Second / rate; took < min {
		t.Errorf("storm of %d at %d/s took %v, less than %v", n, rate, took, min)
	}
	if !waitForgets(r.m) {
		t.Fatal("forgets did not drain")
	}
	// A cancelled storm stops queueing.
	for _, n := range names {
		r.lookup(0, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n := r.m.EvictStorm(ctx, kmodel.Storm{Rate: 1}); n != 0 {
		t.Errorf("cancelled storm queued %d forgets", n)
	}
	if n := r.m.EvictAll(0); n != len(names) {
		t.Errorf("EvictAll after a cancelled storm: %d, want %d", n, len(names))
	}
	if !waitForgets(r.m) {
		t.Fatal("forgets did not drain")
	}
	checkAccounting(t, r.m, r.srv)
}

// The ring channel's small entries (-o io_uring_small_ents) on a model with
// uring_small_ents: the model accepts the small entries, the storm's
// forgets all travel on the ring, and nothing is left over.
func TestSmallEntriesStorm(t *testing.T) {
	cfg := kmodel.Config{Patched: true, UringSmallEnts: true, UringForgetBatch: true}
	r := startRig(t, rigOptions{model: cfg, ring: &ring.Options{QueueDepth: 4, SmallEntries: 2, ForgetCommit: true}})
	names := fileNames(64)
	lookupEverywhere(r, names)
	for _, q := range r.m.Stats().Queues {
		if q.Entries != 4 || q.SmallEntries != 2 {
			t.Fatalf("queue %d: %d entries, %d small; want 4 and 2", q.Qid, q.Entries, q.SmallEntries)
		}
	}
	if n := r.m.EvictStorm(context.Background(), kmodel.Storm{CPUs: []int{0}}); n != len(names) {
		t.Fatalf("evicted %d, want %d", n, len(names))
	}
	if !waitForgets(r.m) {
		t.Fatalf("forgets did not drain: %+v", r.m.Stats())
	}
	eventually(t, "no live nodes", func() bool { return r.srv.NodesAlive() == 0 })
	st := r.srv.Stats()
	if u := st.Channels["uring"]; u == nil || u.Forgets != uint64(len(names)) || st.Channels["devfuse"].Forgets != 0 {
		t.Errorf("forgets: uring %+v, devfuse %+v", st.Channels["uring"], st.Channels["devfuse"])
	}
	checkAccounting(t, r.m, r.srv)
}
