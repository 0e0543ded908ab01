package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ringfuse/ringfuse/bench/harness"
)

// result is one cell of one round.
type result struct {
	Bin, Transport, Op, Users string
	Round                     int // 0: the perf counting round
	Ops                       uint64
	Seconds                   float64
	DaemonCPUus               float64
	Ctxsw                     uint64
	Requests                  map[string]uint64 // per opcode, in the window
	Syscalls                  map[string]uint64 // perf counts (round 0)
	Err                       string            `json:",omitempty"`
}

func (r result) rate() float64     { return float64(r.Ops) / r.Seconds }
func (r result) cpuPerOp() float64 { return r.DaemonCPUus / float64(r.Ops) }

// mount is one (binary, transport) pair.
type mount struct {
	bin binary
	tr  transport
}

func (m mount) name() string { return m.bin.name + "-" + m.tr.name }

// measure runs the rounds: each mounts every (binary, transport) pair in
// turn, reversed on even rounds, and runs every cell on it.
func measure(ctx context.Context, p params, env workEnv) ([]result, error) {
	var mounts []mount
	for _, t := range p.transports {
		for _, b := range p.bins {
			mounts = append(mounts, mount{b, t})
		}
	}
	var results []result
	last := p.rounds
	if p.count {
		last++
	}
	for round := 1; round <= last; round++ {
		order := slices.Clone(mounts)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		counting := round > p.rounds
		for _, m := range order {
			rs, err := measureMount(ctx, p, env, m, round, counting)
			results = append(results, rs...)
			if err != nil {
				return results, err
			}
		}
	}
	return results, nil
}

func measureMount(ctx context.Context, p params, env workEnv, m mount, round int, counting bool) ([]result, error) {
	opts := p.opts
	if m.tr.opts != "" {
		opts += "," + m.tr.opts
	}
	argv := []string{m.bin.path, "mount", "-o", opts, env.src, env.mnt}
	logPath := filepath.Join(env.logs, fmt.Sprintf("r%d-%s.log", round, m.name()))
	d, err := harness.StartDaemon(ctx, argv, env.mnt, logPath, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", m.name(), err)
	}
	var results []result
	var fatal error
	for _, op := range p.ops {
		for _, u := range p.users {
			r := result{Bin: m.bin.name, Transport: m.tr.name, Op: op, Users: u, Round: round}
			if counting {
				r.Round = 0
			}
			if err := runCell(ctx, p, env, d, logPath, &r, counting); err != nil {
				r.Err = err.Error()
			}
			results = append(results, r)
			fmt.Fprintf(os.Stderr, "round %d %s %s %s: %s\n", round, m.name(), op, u, summary(r))
			if ctx.Err() != nil {
				fatal = ctx.Err()
				break
			}
		}
	}
	if err := d.Stop(10 * time.Second); err != nil && fatal == nil {
		fatal = fmt.Errorf("stop %s: %w", m.name(), err)
	}
	return results, fatal
}

func summary(r result) string {
	if r.Err != "" {
		return "error: " + r.Err
	}
	s := fmt.Sprintf("%.0f ops/s, %.2f µs CPU/op, req/op %s", r.rate(), r.cpuPerOp(), perOp(r.Requests, r.Ops))
	if r.Syscalls != nil {
		s += ", syscalls/op " + perOp(r.Syscalls, r.Ops)
	}
	return s
}

// perOp formats counts divided by ops, largest first.
func perOp(m map[string]uint64, ops uint64) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return cmp.Compare(m[b], m[a])
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(m[k])/float64(ops)))
	}
	return strings.Join(parts, " ")
}

// client is one running client process.
type client struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// runCell starts the cell's clients, waits until they are ready, and
// measures the daemon over their window.
func runCell(ctx context.Context, p params, env workEnv, d *harness.Daemon, logPath string, r *result, counting bool) error {
	path := filepath.Join(env.mnt, "f")
	if r.Op == "read" {
		path = filepath.Join(env.mnt, "big")
	}
	var uids []uint32
	for _, s := range strings.Split(r.Users, "+") {
		u, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("users %q: %w", r.Users, err)
		}
		uids = append(uids, uint32(u))
	}
	clients, inject, err := startClients(ctx, p, r.Op, path, uids)
	defer func() {
		for _, c := range clients {
			c.stdin.Close()
			_ = c.cmd.Wait()
		}
	}()
	if err != nil {
		return err
	}
	for _, c := range clients {
		if line, err := c.out.ReadString('\n'); err != nil || line != "ready\n" {
			return fmt.Errorf("client not ready: %q %v", line, err)
		}
	}
	return window(p, d, logPath, r, clients, inject, counting)
}

// window measures one cell: statistics and CPU before, go, the clients'
// counts, CPU and statistics after.
func window(p params, d *harness.Daemon, logPath string, r *result, clients []client, inject *os.File, counting bool) error {
	before, err := daemonStats(d.PID(), logPath)
	if err != nil {
		return err
	}
	var perf *perfRun
	if counting {
		if perf, err = startPerf(d.PID(), logPath+".perf"); err != nil {
			return err
		}
		if err := perf.control("enable"); err != nil {
			perf.stop()
			return err
		}
	}
	s0, err := harness.SampleProc(d.PID())
	if err != nil {
		return err
	}
	t0 := time.Now()
	for _, c := range clients {
		if _, err := c.stdin.Write([]byte{'g'}); err != nil {
			return err
		}
	}
	if inject != nil {
		_, err := inject.Write([]byte{tokGo})
		inject.Close()
		if err != nil {
			return err
		}
	}
	for _, c := range clients {
		line, err := c.out.ReadString('\n')
		var n uint64
		if _, serr := fmt.Sscanf(line, "ops %d", &n); err != nil || serr != nil {
			return fmt.Errorf("client result %q: %v %v", line, err, serr)
		}
		r.Ops += n
	}
	r.Seconds = time.Since(t0).Seconds()
	s1, err := harness.SampleProc(d.PID())
	if err != nil {
		return err
	}
	if perf != nil {
		if r.Syscalls, err = perf.stop(); err != nil {
			return err
		}
	}
	r.DaemonCPUus = float64(s1.CPUTicks-s0.CPUTicks) * 1e6 / float64(harness.ClockTicks())
	r.Ctxsw = s1.Ctxsw - s0.Ctxsw
	after, err := daemonStats(d.PID(), logPath)
	if err != nil {
		return err
	}
	r.Requests = map[string]uint64{}
	for k, v := range after {
		if v > before[k] {
			r.Requests[k] = v - before[k]
		}
	}
	return nil
}

// startClients starts one client per uid, pinned to p.cpu. With more than
// one, they form a token ring and inject is where the first token goes.
func startClients(ctx context.Context, p params, op, path string, uids []uint32) ([]client, *os.File, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	ring := len(uids) > 1
	var rds, wrs []*os.File
	if ring {
		for range uids {
			rd, wr, err := os.Pipe()
			if err != nil {
				return nil, nil, err
			}
			rds, wrs = append(rds, rd), append(wrs, wr)
		}
	}
	var clients []client
	for i, uid := range uids {
		args := []string{"-c", p.cpu, self, "client", "-op", op, "-path", path, "-dur", p.dur.String()}
		cmd := exec.CommandContext(ctx, "taskset", args...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}}}
		if ring {
			cmd.Args = append(cmd.Args, "-ring")
			cmd.ExtraFiles = []*os.File{rds[i], wrs[(i+1)%len(uids)]}
		}
		c := client{cmd: cmd}
		in, err1 := cmd.StdinPipe()
		out, err2 := cmd.StdoutPipe()
		if err := errors.Join(err1, err2); err != nil {
			return clients, nil, err
		}
		if err := cmd.Start(); err != nil {
			return clients, nil, err
		}
		c.stdin, c.out = in, bufio.NewReader(out)
		clients = append(clients, c)
	}
	if !ring {
		return clients, nil, nil
	}
	for i := range rds {
		rds[i].Close()
		if i > 0 {
			wrs[i].Close()
		}
	}
	return clients, wrs[0], nil
}
