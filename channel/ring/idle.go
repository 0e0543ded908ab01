package ring

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Why queue threads may run as SCHED_IDLE:
//
// A queue thread answers a request with COMMIT_AND_FETCH, and the kernel
// wakes the waiting client inside that call, while the queue thread still
// runs on the client's CPU. The scheduler then sees that CPU busy and places
// the client on another, idle CPU. The client's next request goes to that
// CPU's queue, whose answer sends the client back: every request pays a
// wake-up of a sleeping CPU, which on a virtual machine costs more than the
// request itself. A CPU that runs only SCHED_IDLE tasks counts as idle for
// wake-up placement (sched_idle_cpu), so with idle-class queue threads the
// client stays where it was, preempts the queue thread at once, and the
// request and its answer never leave the CPU.
//
// The price is that an idle-class thread gets almost no CPU while ordinary
// tasks keep its CPU busy, and a queue thread is pinned to its CPU. The
// starvation guard below watches each queue thread's run-queue wait
// (/proc/self/task/TID/schedstat) and puts a starving thread back in the
// normal class for a while.

const (
	// guardTick is how often the starvation guard looks at the queue
	// threads; it bounds how long a starving queue waits for help.
	guardTick = 10 * time.Millisecond
	// starveWait is the run-queue wait within one tick above which a
	// queue thread counts as starving.
	starveWait = 2 * time.Millisecond
	// demoteFor is how long a starving queue thread stays in the normal
	// class before it tries the idle class again.
	demoteFor = time.Second
)

// schedWait returns the time thread f's schedstat says it spent runnable but
// waiting for a CPU. buf is scratch space.
func schedWait(f *os.File, buf []byte) (time.Duration, error) {
	n, err := f.ReadAt(buf, 0)
	if n == 0 && err != nil {
		return 0, err
	}
	// "run_ns wait_ns timeslices\n"
	fields := bytes.Fields(buf[:n])
	if len(fields) < 2 {
		return 0, fmt.Errorf("ring: schedstat %q", buf[:n])
	}
	ns, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ring: schedstat %q: %w", buf[:n], err)
	}
	return time.Duration(ns), nil
}

// guarded is one queue thread under the starvation guard.
type guarded struct {
	q        *queue
	stat     *os.File
	lastWait time.Duration
	demoted  bool
	until    time.Time
}

// guard runs until the channel stops or every queue has exited, and gives a
// starving idle-class queue thread the normal class for demoteFor.
func (c *Channel) guard(ts []guarded) {
	defer c.guardWG.Done()
	defer func() {
		for _, g := range ts {
			g.stat.Close()
		}
	}()
	select {
	case <-c.start:
	case <-c.stop:
		return
	case <-c.exited:
		return
	}
	buf := make([]byte, 128)
	for i := range ts {
		ts[i].lastWait, _ = schedWait(ts[i].stat, buf)
	}
	tick := time.NewTicker(guardTick)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.exited:
			return
		case now := <-tick.C:
			for i := range ts {
				c.guardOne(&ts[i], now, buf)
			}
		}
	}
}

func (c *Channel) guardOne(g *guarded, now time.Time, buf []byte) {
	w, err := schedWait(g.stat, buf)
	if err != nil {
		return // the thread is gone: its queue has exited
	}
	waited := w - g.lastWait
	g.lastWait = w
	switch {
	case !g.demoted && waited > starveWait:
		if c.host.SetSchedIdle(g.q.tid, false) == nil {
			g.demoted, g.until = true, now.Add(demoteFor)
			g.q.stats.demotions.Add(1)
		}
	case g.demoted && now.After(g.until):
		if c.host.SetSchedIdle(g.q.tid, true) == nil {
			g.demoted = false
		}
	}
}

// startGuard opens every queue thread's schedstat and starts the guard. If
// schedstat cannot be read (a kernel without CONFIG_SCHED_INFO), it puts the
// queue threads back in the normal class instead: idle class without a
// guard could starve a queue.
func (c *Channel) startGuard() {
	ts := make([]guarded, 0, len(c.queues))
	buf := make([]byte, 128)
	for _, q := range c.queues {
		f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/schedstat", q.tid))
		if err == nil {
			if _, err = schedWait(f, buf); err != nil {
				f.Close()
			}
		}
		if err != nil {
			for _, g := range ts {
				g.stat.Close()
			}
			for _, q := range c.queues {
				_ = c.host.SetSchedIdle(q.tid, false)
			}
			c.queues[0].s.Logf("ring: no starvation guard (%v); queue threads stay in the normal scheduling class", err)
			return
		}
		ts = append(ts, guarded{q: q, stat: f})
	}
	c.guardWG.Add(1)
	go c.guard(ts)
}
