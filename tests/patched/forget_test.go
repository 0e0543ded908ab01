package patched

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfuse/ringfuse/channel/ring"
)

// TestNegotiated mounts over /dev/fuse and over the ring, with and
// without the opt-in: the kernel offers 7.46 every time, and INIT agrees
// on it and on FUSE_OVER_IO_URING (mountStorm checks).
func TestNegotiated(t *testing.T) {
	needGuest(t)
	for _, tc := range []struct {
		name string
		ro   *ring.Options
	}{
		{"devfuse", nil},
		{"uring", &ring.Options{}},
		{"uring-forget", &ring.Options{ForgetCommit: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mountStorm(t, 1, tc.ro)
			info := m.s.Server().Init()
			t.Logf("INIT: kernel 7.%d, agreed 7.%d, flags %#x", info.KernelMinor, info.Minor, info.Flags)
			if tc.ro != nil {
				if err := m.s.Ring().Err(); err != nil {
					t.Fatalf("io_uring channel: %v", err)
				}
			}
		})
	}
}

// variant is one storm configuration: a transport, the daemon's opt-in,
// and fuse module parameters (the series' run-time alternatives).
type variant struct {
	name   string
	ro     *ring.Options // nil: /dev/fuse only
	params map[string]string
	// where the forgets must travel: "dev" (all on /dev/fuse), "ring"
	// (all on the ring), or "" (any split; all must arrive).
	want string
	// oneEach: one FORGET per ring entry (0001's behaviour).
	oneEach bool
}

// variants are the storms TestForgetStorm runs. Alternatives whose module
// parameter the kernel lacks are skipped; RINGFUSE_STORM_VARIANTS adds
// more: "NAME:PARAM=VALUE,PARAM=VALUE;NAME2:..." (with the opt-in, any
// split).
func variants() []variant {
	optIn := &ring.Options{ForgetCommit: true}
	smallOptIn := &ring.Options{ForgetCommit: true, SmallEntries: 4}
	p := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	vs := []variant{
		{name: "devfuse", want: "dev"},
		{name: "uring", ro: &ring.Options{}, want: "dev"},
		// 0001: patch v3 as posted.
		{name: "uring-forget", ro: optIn, want: "ring", oneEach: true},
		// The series' alternatives (kernel/SERIES.md), each on its own.
		{name: "batch", ro: optIn, want: "ring", params: p("uring_forget_batch", "Y")},
		{name: "cap2", ro: optIn, want: "ring", oneEach: true, params: p("uring_forget_cap", "2")},
		{name: "batch-cap1", ro: optIn, want: "ring", params: p("uring_forget_batch", "Y", "uring_forget_cap", "1")},
		// A threshold alone holds the last forgets until the connection
		// ends; the delay sends them.
		{name: "threshold64-delay20ms", ro: optIn, want: "ring", params: p("uring_forget_batch", "Y", "uring_forget_threshold", "64", "uring_forget_delay_ms", "20")},
		{name: "delay10ms", ro: optIn, want: "ring", params: p("uring_forget_batch", "Y", "uring_forget_delay_ms", "10")},
		// Entries of two sizes (0006): forgets only in the small ones.
		{name: "small4", ro: smallOptIn, want: "ring", oneEach: true, params: p("uring_small_ents", "Y")},
		{name: "small4-batch", ro: smallOptIn, want: "ring", params: p("uring_small_ents", "Y", "uring_forget_batch", "Y")},
	}
	for _, spec := range strings.Split(os.Getenv("RINGFUSE_STORM_VARIANTS"), ";") {
		name, ps, ok := strings.Cut(strings.TrimSpace(spec), ":")
		if !ok {
			continue
		}
		v := variant{name: name, ro: optIn, params: map[string]string{}}
		for _, kv := range strings.Split(ps, ",") {
			if k, val, ok := strings.Cut(kv, "="); ok {
				v.params[k] = val
			}
		}
		vs = append(vs, v)
	}
	return vs
}

const fuseParamDir = "/sys/module/fuse/parameters"

// setParams sets fuse module parameters for the test and restores them at
// cleanup; it skips the test if the kernel lacks one.
func setParams(t *testing.T, params map[string]string) {
	t.Helper()
	for k, v := range params {
		p := filepath.Join(fuseParamDir, k)
		old, err := os.ReadFile(p)
		if err != nil {
			t.Skipf("the kernel has no fuse parameter %s (%v)", k, err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0); err != nil {
			t.Fatalf("set %s=%s: %v", k, v, err)
		}
		t.Cleanup(func() {
			if err := os.WriteFile(p, old, 0); err != nil {
				t.Errorf("restore %s: %v", k, err)
			}
		})
	}
}

// TestForgetStorm runs one storm per variant: every file looked up, then
// drop_caches. Every forget must arrive where the variant says (with the
// opt-in: all on the ring and none on /dev/fuse; without it: none on the
// ring), the server must end with no live node, and the kernel with no
// request waiting.
func TestForgetStorm(t *testing.T) {
	needGuest(t)
	n := stormInodes(t)
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			setParams(t, v.params)
			sc := startSlabCheck(t)
			t.Cleanup(func() { sc.check(t) })
			m := mountStorm(t, n, v.ro)
			res := runStorm(t, m, v.name)
			if res.Forgets < uint64(m.nodes) {
				t.Errorf("%d forgets for %d nodes", res.Forgets, m.nodes)
			}
			if got := res.DevForgets + res.RingForgets; got != res.Forgets {
				t.Errorf("forgets: %d on /dev/fuse + %d on the ring != %d in all", res.DevForgets, res.RingForgets, res.Forgets)
			}
			switch v.want {
			case "ring":
				if res.DevMsgs != 0 || res.DevForgets != 0 {
					t.Errorf("with the opt-in, %d forgets in %d messages arrived on /dev/fuse, want none", res.DevForgets, res.DevMsgs)
				}
				if res.RingForgets != res.Forgets {
					t.Errorf("with the opt-in, %d of %d forgets arrived on the ring, want all", res.RingForgets, res.Forgets)
				}
				if v.oneEach && res.RingMsgs != res.RingForgets {
					t.Errorf("one FORGET per entry: %d messages for %d forgets", res.RingMsgs, res.RingForgets)
				}
				if v.params["uring_forget_batch"] == "Y" && res.RingMsgs >= res.RingForgets {
					t.Errorf("batching: %d messages for %d forgets", res.RingMsgs, res.RingForgets)
				}
			case "dev":
				if res.RingMsgs != 0 || res.RingForgets != 0 {
					t.Errorf("without the opt-in, %d forgets in %d messages arrived on the ring, want none", res.RingForgets, res.RingMsgs)
				}
			}
			if st := m.s.Server().Stats(); st.ForgetUnknown != 0 {
				t.Logf("%d forget(s) for nodes outside the table (the session's poll-hack file)", st.ForgetUnknown)
			}
		})
	}
}
