// Command heapresidue measures what the Go runtime keeps after its heap has
// grown and shrunk again: the resident memory a process still has once
// every object of a peak is garbage and debug.FreeOSMemory has returned
// the free pages. It is the floor under a FUSE daemon's memory after a
// forget storm, and it depends on how the peak was allocated:
//
//	small   N objects of -size bytes each (per-node structs)
//	chunks  the same bytes in 64 KiB objects (a slab of nodes)
//	map     a map of N 16-byte keys to 8-byte values (a node table)
//
// Each case runs in a fresh process (the command re-executes itself), so
// that one case's leftovers do not hide another's. Example:
//
//	go run ./cmd/heapresidue -n 1000000
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
)

// classes are the runtime/metrics classes the report shows, with labels.
var classes = []struct{ label, name string }{
	{"mspan", "/memory/classes/metadata/mspan/inuse:bytes"},
	{"mspan free", "/memory/classes/metadata/mspan/free:bytes"},
	{"metadata other", "/memory/classes/metadata/other:bytes"},
}

// chunkSize is the size of a chunk in the chunks case: above the largest
// small size class (32 KiB), so that each chunk has a span of its own.
const chunkSize = 64 << 10

func main() {
	n := flag.Int("n", 1_000_000, "objects (or map entries) at the peak")
	sizes := flag.String("size", "16,48,112", "object sizes of the small and chunks cases, comma separated")
	one := flag.String("case", "", "run one case in this process (used by the parent)")
	flag.Parse()
	if *one != "" {
		f := strings.Fields(*one)
		size, _ := strconv.Atoi(f[1])
		run(f[0], size, *n)
		return
	}
	fmt.Printf("%-7s %6s %9s %9s %9s %9s   %s\n", "case", "size", "before", "peak", "after", "kept", "runtime metadata before → after (MiB)")
	var cases [][2]string
	for _, s := range strings.Split(*sizes, ",") {
		cases = append(cases, [2]string{"small", s}, [2]string{"chunks", s})
	}
	cases = append(cases, [2]string{"map", "24"})
	for _, c := range cases {
		cmd := exec.Command(os.Args[0], "-n", strconv.Itoa(*n), "-case", c[0]+" "+c[1])
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "heapresidue: case %s %s: %v\n", c[0], c[1], err)
			os.Exit(1)
		}
	}
}

// sink keeps the peak reachable until the case drops it.
var sink []any

// run builds one case's peak, drops it, and prints the report line.
func run(kind string, size, n int) {
	debug.FreeOSMemory()
	before, metaBefore := rss(), meta()
	switch kind {
	case "small":
		for range n {
			b := make([]byte, size)
			b[0] = 1 // touch it, as a node's fields would be
			sink = append(sink, b)
		}
	case "chunks":
		for range (n*size + chunkSize - 1) / chunkSize {
			b := make([]byte, chunkSize)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			sink = append(sink, b)
		}
	case "map":
		type key struct{ dev, ino uint64 }
		m := make(map[key]uint64)
		for i := range n {
			m[key{1, uint64(i)}] = uint64(i)
		}
		sink = append(sink, m)
	default:
		fmt.Fprintf(os.Stderr, "heapresidue: unknown case %q\n", kind)
		os.Exit(2)
	}
	runtime.GC()
	peak := rss()
	sink = nil
	debug.FreeOSMemory()
	after, metaAfter := rss(), meta()
	var b strings.Builder
	for i, c := range classes {
		fmt.Fprintf(&b, "%s %.2f → %.2f, ", c.label, metaBefore[i], metaAfter[i])
	}
	fmt.Printf("%-7s %6d %7.1f M %7.1f M %7.1f M %7.1f M   %s\n", kind, size, before, peak, after, after-before, strings.TrimSuffix(b.String(), ", "))
}

// rss returns the process's VmRSS in MiB.
func rss() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, _ := strconv.ParseFloat(f[0], 64)
			return kb / 1024
		}
	}
	return 0
}

// meta returns the runtime metadata classes in MiB.
func meta() []float64 {
	s := make([]metrics.Sample, len(classes))
	for i, c := range classes {
		s[i].Name = c.name
	}
	metrics.Read(s)
	r := make([]float64, len(s))
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			r[i] = float64(s[i].Value.Uint64()) / (1 << 20)
		}
	}
	return r
}
