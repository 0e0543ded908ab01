package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ringfuse/ringfuse/fs/passthrough"
	"github.com/ringfuse/ringfuse/mount"
	"github.com/ringfuse/ringfuse/session"
)

const mountUsage = `Usage: ringfuse mount [-o OPTIONS] [--stats] [--debug] [--cpuprofile FILE] SOURCE MOUNTPOINT
       ringfuse SOURCE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s] [--stats]

Serves the directory SOURCE at MOUNTPOINT: "ringfuse mount" in the
foreground, the second form in the background once the mount is ready
(unless -f or -d). SIGINT, SIGTERM or SIGHUP unmounts and exits; SIGUSR1
prints statistics to standard error. As root it mounts with mount(2);
any other user mounts through fusermount3 (Debian package fuse3), which
needs write access to MOUNTPOINT, and allow_other then needs
user_allow_other in /etc/fuse.conf.

Options (-o, comma separated, libfuse style):
  allow_other            let other users use the mount; the daemon acts as
                         each caller (fsuid, fsgid, groups), and the kernel
                         checks modes and ACLs first (default_permissions)
  default_permissions    let the kernel check file modes and POSIX ACLs
                         (the default with allow_other or user_id=)
  no_default_permissions leave every permission check to the backing
                         filesystem, done as the caller; names are then
                         not cached (entry_timeout=0 unless given), since a
                         cached name lets the next user skip the search
                         permission of its directories
  user_id=N, group_id=N  the user the mount is for (default: the caller;
                         root only)
  auto_unmount           unmount even when the daemon dies (kill -9)
  ro                     read-only mount
  fsname=NAME            source shown in /proc/mounts (default: SOURCE)
  subtype=NAME           type shown as fuse.NAME (default: ringfuse)
  max_read=N             largest READ in bytes
  suid, dev, noexec, noatime (mount(8) adds rw,dev,suid for root; the
                         words defaults, nofail, _netdev, auto, noauto,
                         relatime and x-* are for mount(8) and ignored)
  entry_timeout=SECONDS  name cache lifetime (default 1; 0 disables)
  attr_timeout=SECONDS   attribute cache lifetime (default 1; 0 disables)
  max_write=N            largest WRITE in bytes (default 1048576)
  max_background=N       background requests in flight (default 64)
  passthrough            kernel passthrough of reads and writes (off by default)
  io_uring               serve over FUSE-over-io_uring (needs
                         /sys/module/fuse/parameters/enable_uring = Y)
  io_uring_q_depth=N     ring entries per CPU queue (default 8)
  io_uring_threads=N     threads (each with its own ring) per CPU queue (default 1)
  io_uring_forget        ask a 7.46 kernel to deliver FORGET over the ring
  io_uring_small_ents=N  of each queue's entries, N get a small payload buffer
                         (needs the series' uring_small_ents kernel parameter)
  io_uring_small_payload=BYTES
                         payload size of those entries (default 8192)
  io_uring_single_issuer, io_uring_defer_taskrun, io_uring_coop_taskrun,
  io_uring_sqpoll        io_uring setup flags of the queue rings (for
                         benchmarks; defer_taskrun implies single_issuer)
  io_uring_no_affinity   do not pin each queue's thread to its CPU
  io_uring_no_file_io    call the passthrough's Read and Write on a queue
                         thread or its pool instead of doing them as
                         asynchronous reads and writes on the queue's ring
                         (the default; io_uring_file_io asks for it)
  io_uring_sched_idle    run queue threads in the SCHED_IDLE class (with a
                         starvation guard) so clients stay on their CPU
  readers=N              /dev/fuse reader threads (default 4)
  fd_cache=N             O_PATH descriptors the passthrough keeps (default 1024)

Flags:
`

// config is everything the mount command was asked for.
type config struct {
	session      session.Options
	uring        bool
	uringDepth   int
	uringForgt   bool
	uringSmall   int
	uringSmallSz int
	uringThreads int
	uringSetup   []string // io_uring setup flags by option name
	fdCache      int
	passthru     bool
}

// parseOptions turns -o words into a config.
func parseOptions(words []string, source string) (*config, error) {
	mo, rest, err := mount.ParseOptions(words)
	if err != nil {
		return nil, err
	}
	c := &config{}
	noDefault := false
	for _, w := range rest {
		noDefault = noDefault || w == "no_default_permissions"
	}
	// The passthrough acts as each caller, so the backing filesystem
	// checks every call. A mount other users reach still gets the kernel's
	// checks first by default: they see the whole path (a name cached by
	// one user is otherwise walked by another without a LOOKUP, skipping
	// the search permission of its directories) and refuse early.
	if (mo.AllowOther || mo.UserID != nil || mo.GroupID != nil) && !noDefault {
		mo.DefaultPermissions = true
	}
	if noDefault && mo.DefaultPermissions {
		return nil, errors.New("default_permissions and no_default_permissions contradict each other")
	}
	// With the kernel checking, let it check POSIX ACLs too.
	c.session.Server.PosixACL = mo.DefaultPermissions
	// The passthrough applies the umask itself, unless a default ACL
	// decides (fs/passthrough: createMode).
	c.session.Server.ApplyUmask = true
	c.session.Mount = mo
	if c.session.Mount.FSName == "" {
		c.session.Mount.FSName = source
	}
	for _, w := range rest {
		key, val, hasVal := strings.Cut(w, "=")
		num := func() (int, error) {
			n, err := strconv.Atoi(val)
			if !hasVal || err != nil || n < 0 {
				return 0, fmt.Errorf("option %s: want a non-negative number", w)
			}
			return n, nil
		}
		seconds := func() (time.Duration, error) {
			f, err := strconv.ParseFloat(val, 64)
			if !hasVal || err != nil || f < 0 {
				return 0, fmt.Errorf("option %s: want seconds", w)
			}
			if f == 0 {
				return -1, nil // server.Options: negative means no caching
			}
			return time.Duration(f * float64(time.Second)), nil
		}
		if strings.HasPrefix(key, "x-") {
			continue // fstab comments for tools such as systemd
		}
		switch key {
		case "entry_timeout":
			c.session.Server.EntryTimeout, err = seconds()
		case "attr_timeout":
			c.session.Server.AttrTimeout, err = seconds()
		case "max_write":
			var n int
			n, err = num()
			c.session.Server.MaxWrite = uint32(n)
		case "max_background":
			var n int
			n, err = num()
			if n > 65535 {
				err = fmt.Errorf("option %s: at most 65535", w)
			}
			c.session.Server.MaxBackground = uint16(n)
		case "passthrough":
			c.passthru = true
			c.session.Server.Passthrough = true
		case "io_uring":
			c.uring = true
		case "io_uring_q_depth":
			c.uringDepth, err = num()
			if err == nil && c.uringDepth == 0 {
				err = fmt.Errorf("option %s: the depth must be at least 1", w)
			}
		case "io_uring_threads":
			c.uringThreads, err = num()
		case "io_uring_forget":
			c.uringForgt = true
		case "io_uring_small_ents":
			c.uringSmall, err = num()
		case "io_uring_small_payload":
			c.uringSmallSz, err = num()
		case "io_uring_single_issuer", "io_uring_defer_taskrun", "io_uring_coop_taskrun", "io_uring_sqpoll", "io_uring_no_affinity", "io_uring_sched_idle", "io_uring_file_io", "io_uring_no_file_io":
			c.uringSetup = append(c.uringSetup, key)
		case "readers":
			c.session.Readers, err = num()
		case "fd_cache":
			c.fdCache, err = num()
		case "no_default_permissions":
			// handled above
		case "defaults", "nofail", "_netdev", "auto", "noauto", "relatime":
			// mount(8)'s words (fstab); relatime is the kernel's default.
		default:
			return nil, fmt.Errorf("unknown option %q (see ringfuse mount --help)", w)
		}
		if err != nil {
			return nil, err
		}
	}
	if noDefault && c.session.Server.EntryTimeout == 0 {
		// Without the kernel's checks, only a LOOKUP as the caller
		// checks the search permission of a path's directories, and the
		// kernel walks a cached name without one.
		c.session.Server.EntryTimeout = -1
	}
	if (c.uringDepth > 0 || c.uringThreads > 0 || c.uringForgt || c.uringSmall > 0 || c.uringSmallSz > 0 || len(c.uringSetup) > 0) && !c.uring {
		return nil, errors.New("the io_uring_* options need -o io_uring")
	}
	return c, nil
}

// runMount serves SOURCE at MOUNTPOINT as args say: in the foreground if
// fg (the "mount" command), or with -f or -d; otherwise it goes to the
// background once the mount is ready.
func runMount(args []string, fg bool) error {
	fl := flag.NewFlagSet("mount", flag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), mountUsage)
		fl.PrintDefaults()
	}
	var opts []string
	fl.Func("o", "mount options, comma separated (see above)", func(s string) error {
		opts = append(opts, s)
		return nil
	})
	foreground := fl.Bool("f", false, "stay in the foreground")
	debugShort := fl.Bool("d", false, "log every request to standard error (implies -f)")
	single := fl.Bool("s", false, "serve one request at a time per channel: one /dev/fuse reader, io_uring queues of depth 1")
	stats := fl.Bool("stats", false, "print statistics when unmounted")
	debug := fl.Bool("debug", false, "log every request to standard error")
	cpuprofile := fl.String("cpuprofile", "", "write a Go CPU profile of the daemon to `file` while mounted")
	if err := fl.Parse(reorder(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitCode(2) // the flag package printed the problem and the usage
	}
	if fl.NArg() != 2 {
		return fmt.Errorf("%w: want SOURCE and MOUNTPOINT, got %q", errUsage, fl.Args())
	}
	source, mnt := fl.Arg(0), fl.Arg(1)
	abs, err := filepath.Abs(source)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(abs); err != nil {
		return fmt.Errorf("source: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("source %s is not a directory", source)
	}
	cfg, err := parseOptions(opts, abs)
	if err != nil {
		return err
	}
	cfg.session.Server.Debug = *debug || *debugShort
	if *single {
		cfg.session.Readers = 1
		if cfg.uringDepth == 0 {
			cfg.uringDepth = 1
		}
	}
	if err := applyUring(cfg); err != nil {
		return err
	}
	ready := readyFD()
	if !fg && !*foreground && !cfg.session.Server.Debug && ready < 0 {
		return background(args)
	}
	return serve(abs, mnt, cfg, ready, *stats, *cpuprofile)
}

// serve mounts the passthrough of abs at mnt and serves it until a signal
// or an unmount ends it. A ready descriptor (not -1) is a background
// child's pipe to its parent, told once the mount is ready.
func serve(abs, mnt string, cfg *config, ready int, stats bool, cpuprofile string) error {
	// New files get exactly the mode the kernel sends (the caller's umask
	// is applied already), not one masked again by the daemon's.
	syscall.Umask(0)
	fsys, err := passthrough.New(abs, &passthrough.Options{FdCacheSize: cfg.fdCache, Passthrough: cfg.passthru})
	if err != nil {
		return err
	}
	defer fsys.Close()

	if cpuprofile != "" {
		stop, err := startCPUProfile(cpuprofile)
		if err != nil {
			return err
		}
		defer stop()
	}

	sigs := make(chan os.Signal, 4)
	// SIGHUP ends the daemon like SIGTERM, as in libfuse: a daemon whose
	// terminal went away must not leave a dead mount behind.
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
	s, err := session.Mount(mnt, fsys, &cfg.session)
	if err != nil {
		return err
	}
	if cfg.session.Server.Debug {
		fmt.Fprintf(os.Stderr, "ringfuse: serving %s at %s over %s\n", abs, s.Dir(), transport(s, cfg))
	}
	if ready >= 0 {
		if err := detach(ready); err != nil {
			s.Unmount()
			return err
		}
	}
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGUSR1 {
				printStats(s)
				continue
			}
			uerr := s.Unmount()
			if stats {
				printStats(s)
			}
			return uerr
		case <-s.Done():
			// Unmounted from outside (umount, fusectl abort).
			err := s.Unmount()
			if stats {
				printStats(s)
			}
			if serr := s.Err(); serr != nil {
				return serr
			}
			return err
		}
	}
}

// transport describes the channel that serves s, for -d.
func transport(s *session.Session, cfg *config) string {
	if r := s.Ring(); r != nil && r.Err() == nil {
		st := r.Stats()
		return fmt.Sprintf("io_uring (%d queues of depth %d)", st.Queues, st.Depth)
	}
	n := cfg.session.Readers
	if n <= 0 {
		n = max(4, runtime.GOMAXPROCS(0))
	}
	return fmt.Sprintf("/dev/fuse (%d readers)", n)
}

// takesValue reports whether flag a, written without "=", consumes the next
// argument.
func takesValue(a string) bool {
	switch strings.TrimLeft(a, "-") {
	case "o", "cpuprofile":
		return true
	}
	return false
}

// reorder moves flags after the positional arguments to the front, so
// "ringfuse mount SRC MNT -o ro" works as libfuse users expect.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			return append(flags, pos...)
		case takesValue(a) && i+1 < len(args):
			flags = append(flags, a, args[i+1])
			i++
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
		default:
			pos = append(pos, a)
		}
	}
	return append(flags, pos...)
}

// startCPUProfile starts Go's CPU profiler writing to path and returns the
// function that stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "ringfuse: cpuprofile: %v\n", err)
		}
	}, nil
}

// printStats writes the server's statistics, and the io_uring channel's if
// it serves, to standard error.
func printStats(s *session.Session) {
	st := s.Server().Stats()
	st.WriteTo(os.Stderr)
	if r := s.Ring(); r != nil && r.Err() == nil {
		rs := r.Stats()
		fmt.Fprintf(os.Stderr, "io_uring: %d queues of depth %d; %d commits (per queue %v), %d served on the pool, %d as reads and writes on the ring, %d enters, %d retries, %d stranded, %d starvation demotions\n",
			rs.Queues, rs.Depth, rs.Commits, rs.QueueCommits, rs.Pooled, rs.FileIO, rs.Enters, rs.Retries, rs.Stranded, rs.Demotions)
	}
	printMemory()
}

// memoryClasses are the runtime/metrics classes printMemory reports: where
// the process's memory is, so that a daemon that stays large after a
// forget storm shows whether it is live nodes or runtime metadata.
var memoryClasses = []struct{ label, name string }{
	{"heap objects", "/memory/classes/heap/objects:bytes"},
	{"heap free", "/memory/classes/heap/free:bytes"},
	{"released", "/memory/classes/heap/released:bytes"},
	{"stacks", "/memory/classes/heap/stacks:bytes"},
	{"mspan", "/memory/classes/metadata/mspan/inuse:bytes"},
	{"mspan free", "/memory/classes/metadata/mspan/free:bytes"},
	{"metadata other", "/memory/classes/metadata/other:bytes"},
	{"other", "/memory/classes/other:bytes"},
}

// printMemory writes the Go runtime's memory classes to standard error.
func printMemory() {
	samples := make([]metrics.Sample, len(memoryClasses))
	for i, c := range memoryClasses {
		samples[i].Name = c.name
	}
	metrics.Read(samples)
	var b strings.Builder
	b.WriteString("memory:")
	for i, c := range memoryClasses {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			continue
		}
		fmt.Fprintf(&b, " %s %.1f MiB,", c.label, float64(samples[i].Value.Uint64())/(1<<20))
	}
	fmt.Fprintln(os.Stderr, strings.TrimSuffix(b.String(), ","))
}
