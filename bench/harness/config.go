package harness

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is one way of presenting the backing directory at a path.
type Config struct {
	// Name identifies the configuration in reports ("native", "devfuse").
	Name string
	// Argv is the mount command run in the foreground for each run. The
	// words "{src}" and "{mnt}" are replaced by the backing directory and
	// the mountpoint. A nil Argv means no daemon: workloads run on the
	// backing directory itself.
	Argv []string
}

// Native reports whether the configuration has no daemon.
func (c Config) Native() bool { return c.Argv == nil }

// Expand returns Argv with {src} and {mnt} replaced.
func (c Config) Expand(src, mnt string) []string {
	out := make([]string, len(c.Argv))
	for i, a := range c.Argv {
		a = strings.ReplaceAll(a, "{src}", src)
		out[i] = strings.ReplaceAll(a, "{mnt}", mnt)
	}
	return out
}

// CommandLine returns Argv joined with spaces, for reports.
func (c Config) CommandLine() string {
	if c.Native() {
		return "(none: the backing directory itself)"
	}
	return shellJoin(c.Argv)
}

// ConfigParams says how to build the built-in configurations.
type ConfigParams struct {
	// Ringfuse is the path of the ringfuse binary, needed by devfuse and
	// uring-qd*.
	Ringfuse string
	// RingfuseOpts are extra -o words for the ringfuse configurations only
	// (for example the word that turns kernel passthrough off).
	RingfuseOpts []string
	// RingfuseStats adds --stats, so ringfuse prints its statistics into the
	// daemon log at exit.
	RingfuseStats bool
	// Gofuse is the path of the gofuse-loopback binary, needed by gofuse.
	Gofuse string
	// GofuseAsyncDIO passes -async-dio, so that go-fuse negotiates
	// FUSE_ASYNC_DIO as libfuse does by default; without it the kernel
	// keeps one O_DIRECT request per file in flight and QD32 jobs run as QD1.
	GofuseAsyncDIO bool
	// Opts are the libfuse-style -o words every FUSE configuration gets,
	// such as "entry_timeout=1" and "attr_timeout=1". gofuse understands
	// entry_timeout, attr_timeout and allow_other.
	Opts []string
}

// BuiltinConfigs lists the names accepted by [BuildConfigs], in report order.
// Any uring-qdN is accepted, and uring-qdN-idle adds io_uring_sched_idle.
var BuiltinConfigs = []string{"native", "devfuse", "uring-qd1", "uring-qd8", "uring-qd32", "gofuse"}

// BuildConfigs returns the named built-in configurations. extra holds
// user-defined configurations that names may also select. It fails, naming
// the missing flag, when a binary a configuration needs is not given or
// does not exist.
func BuildConfigs(names []string, p ConfigParams, extra []Config) ([]Config, error) {
	var out []Config
	var errs []error
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		if i := slices.IndexFunc(extra, func(c Config) bool { return c.Name == name }); i >= 0 {
			out = append(out, extra[i])
			continue
		}
		c, err := builtinConfig(name, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

func builtinConfig(name string, p ConfigParams) (Config, error) {
	switch {
	case name == "native":
		return Config{Name: name}, nil
	case name == "devfuse":
		return ringfuseConfig(name, p, nil)
	case strings.HasPrefix(name, "uring-qd"):
		// uring-qdN, or uring-qdN-idle for queue threads in the
		// SCHED_IDLE class.
		depth, idle := strings.CutSuffix(strings.TrimPrefix(name, "uring-qd"), "-idle")
		qd, err := strconv.Atoi(depth)
		if err != nil || qd <= 0 {
			return Config{}, fmt.Errorf("config %s: bad queue depth", name)
		}
		words := []string{"io_uring", "io_uring_q_depth=" + strconv.Itoa(qd)}
		if idle {
			words = append(words, "io_uring_sched_idle")
		}
		return ringfuseConfig(name, p, words)
	case name == "gofuse":
		return gofuseConfig(p)
	}
	return Config{}, fmt.Errorf("unknown config %q (built in: %s)", name, strings.Join(BuiltinConfigs, ", "))
}

func ringfuseConfig(name string, p ConfigParams, words []string) (Config, error) {
	if p.Ringfuse == "" {
		return Config{}, fmt.Errorf("config %s needs the ringfuse binary: pass -ringfuse /path/to/ringfuse", name)
	}
	if err := checkExecutable(p.Ringfuse); err != nil {
		return Config{}, fmt.Errorf("config %s: -ringfuse: %w", name, err)
	}
	argv := []string{p.Ringfuse, "mount"}
	if p.RingfuseStats {
		argv = append(argv, "--stats")
	}
	if o := slices.Concat(p.Opts, p.RingfuseOpts, words); len(o) > 0 {
		argv = append(argv, "-o", strings.Join(o, ","))
	}
	return Config{Name: name, Argv: append(argv, "{src}", "{mnt}")}, nil
}

func gofuseConfig(p ConfigParams) (Config, error) {
	if p.Gofuse == "" {
		return Config{}, errors.New("config gofuse needs the gofuse-loopback binary: pass -gofuse or run from the ringfuse/bench module")
	}
	if err := checkExecutable(p.Gofuse); err != nil {
		return Config{}, fmt.Errorf("config gofuse: %w", err)
	}
	argv := []string{p.Gofuse}
	if p.GofuseAsyncDIO {
		argv = append(argv, "-async-dio")
	}
	for _, w := range p.Opts {
		k, v, _ := strings.Cut(w, "=")
		switch k {
		case "entry_timeout", "attr_timeout":
			secs, err := strconv.ParseFloat(v, 64)
			if err != nil || secs < 0 {
				return Config{}, fmt.Errorf("config gofuse: -o %s: want seconds", w)
			}
			d := time.Duration(secs * float64(time.Second))
			argv = append(argv, "-"+strings.ReplaceAll(k, "_", "-")+"="+d.String())
		case "allow_other":
			argv = append(argv, "-allow-other")
		default:
			return Config{}, fmt.Errorf("config gofuse: -o word %q has no gofuse-loopback equivalent", w)
		}
	}
	return Config{Name: "gofuse", Argv: append(argv, "{src}", "{mnt}")}, nil
}

// ParseConfig parses a user-defined configuration "NAME=COMMAND", where
// COMMAND is split on spaces and uses {src} and {mnt}, for example
// "hp=/opt/passthrough_hp --nopassthrough {src} {mnt}".
func ParseConfig(spec string) (Config, error) {
	name, cmd, ok := strings.Cut(spec, "=")
	argv := strings.Fields(cmd)
	if !ok || name == "" || len(argv) == 0 {
		return Config{}, fmt.Errorf("config %q: want NAME=COMMAND", spec)
	}
	if !strings.Contains(cmd, "{mnt}") {
		return Config{}, fmt.Errorf("config %q: the command must contain {mnt}", spec)
	}
	return Config{Name: name, Argv: argv}, nil
}

func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// shellJoin joins words, quoting those a shell would split.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		if w == "" || strings.ContainsAny(w, " \t\n'\"\\$`;&|<>*?()[]#~") {
			w = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		q[i] = w
	}
	return strings.Join(q, " ")
}
