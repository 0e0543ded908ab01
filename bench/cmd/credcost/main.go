// Command credcost measures what acting as the caller costs the
// passthrough per request, as a same-run A/B of two ringfuse binaries
// through real mounts.
//
// For each round it mounts every (binary, transport) pair in turn (the
// order reversed on even rounds) with -o allow_other,entry_timeout=0,
// attr_timeout=0 by default, and runs every (operation, users) cell on it:
// client processes of the given users repeat one operation (an O_PATH open
// of a name, an fstat of an open file, a 4 KiB O_DIRECT pread) for a fixed
// time, pinned to one CPU. The daemon's CPU time (utime+stime of
// /proc/PID/stat) is sampled just before and after the clients' window and
// divided by the operations; the daemon's request counts (its SIGUSR1
// statistics) give the requests per operation. Users "a+b" run two clients
// that pass a token, so that their requests alternate strictly.
//
// With -count, one more round runs under perf stat and counts the daemon's
// setfsuid, setfsgid and setgroups calls per operation (not timed: the
// tracepoints cost time).
//
//	cd bench && go run ./cmd/credcost -old /tmp/rf-old -new /tmp/rf-new -rounds 5 -count -out r.md -json r.json
//
// "credcost switch" times the system calls of a switch alone.
//
// Needs root, taskset and (for -count) perf.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// binary is one ringfuse build under test.
type binary struct{ name, path string }

// transport is a set of mount options naming one channel.
type transport struct{ name, opts string }

// params are the measurement's settings.
type params struct {
	dir        string
	bins       []binary
	transports []transport
	ops        []string
	users      []string
	opts       string
	rounds     int
	dur        time.Duration
	cpu        string
	count      bool
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("credcost: ")
	if len(os.Args) > 1 && os.Args[1] == "client" {
		if err := clientMain(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "switch" {
		if err := switchMain(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	var p params
	oldBin := flag.String("old", "", "ringfuse binary A (old)")
	newBin := flag.String("new", "", "ringfuse binary B (new)")
	transports := flag.String("transports", "devfuse,uring", "devfuse and/or uring (io_uring, default queue depth)")
	ops := flag.String("ops", "lookup,getattr,read", "operations: lookup, getattr, read")
	users := flag.String("users", "0,65534,65534+65533,65534+65534", "client users; a+b runs two clients whose requests alternate")
	flag.StringVar(&p.opts, "o", "allow_other,entry_timeout=0,attr_timeout=0", "mount options for every mount")
	flag.StringVar(&p.dir, "dir", "/tmp/credcost", "work directory (src, mnt, logs)")
	flag.IntVar(&p.rounds, "rounds", 3, "timed rounds")
	flag.DurationVar(&p.dur, "dur", 3*time.Second, "measured time per cell")
	flag.StringVar(&p.cpu, "cpu", "0", "CPU list the clients are pinned to (taskset -c)")
	flag.BoolVar(&p.count, "count", false, "one more round under perf stat, counting credential system calls")
	out := flag.String("out", "", "Markdown report (default: standard output)")
	jsonOut := flag.String("json", "", "raw results as JSON")
	from := flag.String("from", "", "write the report from this -json file of an earlier run instead of measuring (give the same -old, -new and cell flags)")
	flag.Parse()
	if *oldBin == "" || *newBin == "" {
		return fmt.Errorf("need -old and -new")
	}
	p.bins = []binary{{"old", *oldBin}, {"new", *newBin}}
	for _, t := range strings.Split(*transports, ",") {
		switch t {
		case "devfuse":
			p.transports = append(p.transports, transport{t, ""})
		case "uring":
			p.transports = append(p.transports, transport{t, "io_uring"})
		default:
			return fmt.Errorf("unknown transport %q", t)
		}
	}
	p.ops, p.users = strings.Split(*ops, ","), strings.Split(*users, ",")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var (
		env          workEnv
		results      []result
		err          error
		start        = time.Now()
		load0, load1 []byte
	)
	if *from != "" {
		b, rerr := os.ReadFile(*from)
		if rerr != nil {
			return rerr
		}
		if err := json.Unmarshal(b, &results); err != nil {
			return err
		}
		env = workEnv{src: filepath.Join(p.dir, "src"), mnt: filepath.Join(p.dir, "mnt")}
		load0, load1 = []byte("(see the run)"), []byte("(see the run)")
	} else {
		if env, err = setup(p.dir); err != nil {
			return err
		}
		load0, _ = os.ReadFile("/proc/loadavg")
		results, err = measure(ctx, p, env)
		load1, _ = os.ReadFile("/proc/loadavg")
	}
	if *jsonOut != "" && *from == "" {
		b, _ := json.MarshalIndent(results, "", " ")
		if werr := os.WriteFile(*jsonOut, b, 0o644); werr != nil {
			log.Print(werr)
		}
	}
	w := os.Stdout
	if *out != "" {
		f, ferr := os.Create(*out)
		if ferr != nil {
			return ferr
		}
		defer f.Close()
		w = f
	}
	report(w, p, env, results, start, strings.TrimSpace(string(load0)), strings.TrimSpace(string(load1)))
	return err
}

// workEnv holds the work directory's paths.
type workEnv struct{ src, mnt, logs string }

// setup makes the backing directory with the files the operations use: f
// (4 KiB) and big (64 MiB of random bytes), readable by everyone.
func setup(dir string) (workEnv, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return workEnv{}, err
	}
	e := workEnv{filepath.Join(dir, "src"), filepath.Join(dir, "mnt"), filepath.Join(dir, "logs")}
	for _, d := range []string{dir, e.src, e.mnt, e.logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return e, err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return e, err
		}
	}
	if err := os.WriteFile(filepath.Join(e.src, "f"), make([]byte, 4096), 0o644); err != nil {
		return e, err
	}
	big := filepath.Join(e.src, "big")
	if st, err := os.Stat(big); err == nil && st.Size() == 64<<20 {
		return e, nil
	}
	b := make([]byte, 64<<20)
	rnd, err := os.Open("/dev/urandom")
	if err != nil {
		return e, err
	}
	defer rnd.Close()
	if _, err := io.ReadFull(rnd, b); err != nil {
		return e, err
	}
	if err := os.WriteFile(big, b, 0o644); err != nil {
		return e, err
	}
	syscall.Sync()
	return e, nil
}
