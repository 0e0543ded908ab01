package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// opTitle says what each operation sends.
var opTitle = map[string]string{
	"lookup":  "lookup: open(O_PATH)+close of MNT/f",
	"getattr": "getattr: fstat of an open MNT/f",
	"read":    "read: pread 4 KiB at a random offset of MNT/big (64 MiB), O_DIRECT",
}

// cellKey selects the timed results of one cell.
type cellKey struct{ bin, tr, op, users string }

type stat struct{ med, lo, hi float64 }

func (s stat) String() string {
	if s.med == 0 && s.lo == 0 {
		return "–"
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.med), num(s.lo), num(s.hi))
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func summarize(vs []float64) stat {
	if len(vs) == 0 {
		return stat{}
	}
	slices.Sort(vs)
	m := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		m = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return stat{m, vs[0], vs[len(vs)-1]}
}

// table gathers the timed results.
type table struct {
	rate, cpu map[cellKey][]float64
	reqs      map[cellKey]map[string]uint64 // summed over rounds
	ops       map[cellKey]uint64
	counted   map[cellKey]result // the perf round
}

func collect(results []result) table {
	t := table{map[cellKey][]float64{}, map[cellKey][]float64{}, map[cellKey]map[string]uint64{}, map[cellKey]uint64{}, map[cellKey]result{}}
	for _, r := range results {
		if r.Err != "" || r.Ops == 0 {
			continue
		}
		k := cellKey{r.Bin, r.Transport, r.Op, r.Users}
		if r.Round == 0 {
			t.counted[k] = r
			continue
		}
		t.rate[k] = append(t.rate[k], r.rate())
		t.cpu[k] = append(t.cpu[k], r.cpuPerOp())
		if t.reqs[k] == nil {
			t.reqs[k] = map[string]uint64{}
		}
		for op, n := range r.Requests {
			t.reqs[k][op] += n
		}
		t.ops[k] += r.Ops
	}
	return t
}

func report(w io.Writer, p params, env workEnv, results []result, start time.Time, load0, load1 string) {
	t := collect(results)
	host, _ := os.Hostname()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(w, "# credcost: the credential switch per request, same-run A/B\n\n")
	fmt.Fprintf(w, "- date: %s; host %s; kernel %s; CPUs %d\n", start.UTC().Format(time.RFC3339), host, strings.TrimSpace(string(kernel)), numCPU())
	fmt.Fprintf(w, "- load average at start: %s; at end: %s\n", load0, load1)
	for _, b := range p.bins {
		fmt.Fprintf(w, "- %s: `%s`\n", b.name, b.path)
	}
	fmt.Fprintf(w, "- mount: `BIN mount -o %s[,io_uring] %s %s`\n", p.opts, env.src, env.mnt)
	fmt.Fprintf(w, "- %d timed rounds of %v per cell, mounts in order %s, reversed on even rounds; clients pinned to CPU %s (taskset), GOMAXPROCS=1\n",
		p.rounds, p.dur, mountOrder(p), p.cpu)
	fmt.Fprintf(w, "- cells: median (min–max) over rounds; CPU = daemon utime+stime (/proc/PID/stat) over the window / client ops; req/op from the daemon's SIGUSR1 statistics (new binary)\n")
	if p.count {
		fmt.Fprintf(w, "- cred syscalls/op: setfsuid+setfsgid+setgroups of the new daemon per op, counted in one extra untimed round under `perf stat -e syscalls:sys_enter_*`\n")
	}
	for _, op := range p.ops {
		fmt.Fprintf(w, "\n## %s\n\n", opTitle[op])
		fmt.Fprintf(w, "| users | transport | old ops/s | new ops/s | new/old | old CPU µs/op | new CPU µs/op | Δ CPU µs/op | req/op (new) | cred syscalls/op (new) |\n")
		fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|\n")
		for _, u := range p.users {
			for _, tr := range p.transports {
				row(w, t, op, u, tr.name)
			}
		}
	}
	switchCost(w, p, t)
	fmt.Fprintf(w, "\n## Raw runs\n\n| round | bin | transport | op | users | ops/s | CPU µs/op |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		if r.Round == 0 || r.Ops == 0 {
			continue
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %.0f | %.2f |\n", r.Round, r.Bin, r.Transport, r.Op, r.Users, r.rate(), r.cpuPerOp())
	}
}

func row(w io.Writer, t table, op, u, tr string) {
	ko, kn := cellKey{"old", tr, op, u}, cellKey{"new", tr, op, u}
	ro, rn := summarize(t.rate[ko]), summarize(t.rate[kn])
	co, cn := summarize(t.cpu[ko]), summarize(t.cpu[kn])
	ratio, delta := "–", "–"
	if ro.med > 0 && rn.med > 0 {
		ratio = fmt.Sprintf("%.2f", rn.med/ro.med)
		delta = fmt.Sprintf("%+.2f", cn.med-co.med)
	}
	cred := "–"
	if c, ok := t.counted[kn]; ok {
		var n uint64
		for _, e := range perfEvents {
			n += c.Syscalls[e]
		}
		cred = fmt.Sprintf("%.2f", float64(n)/float64(c.Ops))
	}
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
		users(u), tr, ro, rn, ratio, co, cn, delta, perOp(t.reqs[kn], t.ops[kn]), cred)
}

func users(u string) string {
	if strings.Contains(u, "+") {
		return u + " (alternating)"
	}
	return u
}

func mountOrder(p params) string {
	var s []string
	for _, tr := range p.transports {
		for _, b := range p.bins {
			s = append(s, b.name+"-"+tr.name)
		}
	}
	return strings.Join(s, ", ")
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "\nprocessor") + 1
}

// switchCost writes, per transport and operation, what alternating users
// add to the daemon's CPU per operation (alternating minus the same user
// in the same token ring), for both binaries: the new binary's difference
// less the old one's is the cost of changing credentials that often.
func switchCost(w io.Writer, p params, t table) {
	alt, same := "", ""
	for _, u := range p.users {
		us := strings.Split(u, "+")
		switch {
		case len(us) == 2 && us[0] != us[1]:
			alt = u
		case len(us) == 2:
			same = u
		}
	}
	if alt == "" || same == "" {
		return
	}
	fmt.Fprintf(w, "\n## Alternating users: %s minus %s, daemon CPU µs/op (medians)\n\n", alt, same)
	fmt.Fprintf(w, "| op | transport | old: alt − same | new: alt − same | new − old | cred syscalls/op (new, alt) |\n|---|---|---|---|---|---|\n")
	for _, op := range p.ops {
		for _, tr := range p.transports {
			d := func(bin string) float64 {
				return summarize(t.cpu[cellKey{bin, tr.name, op, alt}]).med - summarize(t.cpu[cellKey{bin, tr.name, op, same}]).med
			}
			cred := "–"
			if c, ok := t.counted[cellKey{"new", tr.name, op, alt}]; ok {
				var n uint64
				for _, e := range perfEvents {
					n += c.Syscalls[e]
				}
				cred = fmt.Sprintf("%.2f", float64(n)/float64(c.Ops))
			}
			fmt.Fprintf(w, "| %s | %s | %+.2f | %+.2f | %+.2f | %s |\n", op, tr.name, d("old"), d("new"), d("new")-d("old"), cred)
		}
	}
}
