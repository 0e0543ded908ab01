package harness

// Fuzz targets of the parsers of external tool output: fio's JSON,
// fs_mark's table, mountinfo, /proc/PID/stat and status, the auxiliary
// vector and -config specs. Each must never panic; where a parser has an
// inverse (the tool's own format), the fuzzed values must round-trip.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseFioJSON: any input parses or fails without a panic; a success
// reports percentiles exactly when its direction did I/O. A fio document
// built from fuzzed numbers must parse back to them.
func FuzzParseFioJSON(f *testing.F) {
	for _, name := range []string{"testdata/fio-randread-psync.json", "testdata/fio-randwrite-iouring.json"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, 1.0, 2.0, int64(3), 4.0, 5.0)
		}
	}
	f.Add([]byte("note: both iodepth >= 1 and synchronous I/O engine are selected\n{}"), 0.0, 0.0, int64(0), 0.0, 0.0)
	f.Add([]byte(`{"jobs":[{"read":{"total_ios":1,"clat_ns":{"percentile":{"50.000000":1,"abc":2}}}}]}`), 1e9, 1e12, int64(1)<<40, 1e3, 1e9)
	f.Fuzz(func(t *testing.T, raw []byte, iops, bw float64, total int64, p50, p99 float64) {
		if r, err := ParseFioJSON(raw); err == nil {
			for _, d := range []FioDir{r.Read, r.Write} {
				if (d.TotalIOs == 0) != (math.IsNaN(d.P50us) || math.IsNaN(d.P99us)) {
					t.Fatalf("%q: direction %+v: percentiles do not match the I/O count", raw, d)
				}
			}
		}

		finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
		if !finite(iops) || !finite(bw) || !finite(p50) || !finite(p99) {
			return // JSON cannot carry them
		}
		doc := map[string]any{
			"fio version": "fio-3.33",
			"jobs": []any{map[string]any{
				"jobname": "fuzz", "error": 0,
				"read": map[string]any{"iops": iops, "bw_bytes": bw, "total_ios": total,
					"clat_ns": map[string]any{"percentile": map[string]float64{"50.000000": p50, "99.000000": p99}}},
				"write": map[string]any{"iops": 0, "bw_bytes": 0, "total_ios": 0},
			}},
		}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseFioJSON(append([]byte("fio: some warning\n"), b...))
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		want := FioDir{IOPS: iops, BWBytes: bw, TotalIOs: total, P50us: p50 / 1e3, P99us: p99 / 1e3}
		if total == 0 {
			want.P50us, want.P99us = math.NaN(), math.NaN()
		}
		if !sameDir(r.Read, want) || r.Version != "fio-3.33" || r.Write.TotalIOs != 0 {
			t.Fatalf("%s: parsed %+v, want read %+v", b, r, want)
		}
	})
}

func sameDir(a, b FioDir) bool {
	same := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
	return same(a.IOPS, b.IOPS) && same(a.BWBytes, b.BWBytes) && a.TotalIOs == b.TotalIOs && same(a.P50us, b.P50us) && same(a.P99us, b.P99us)
}

// FuzzParseFsmark: any output parses or fails without a panic; a success
// has grown counts and a positive, finite rate. A table built from fuzzed
// per-loop file counts and rates must give their total and the combined
// rate.
func FuzzParseFsmark(f *testing.F) {
	if b, err := os.ReadFile("testdata/fsmark-t2-L2.txt"); err == nil {
		f.Add(b, uint16(100), uint16(200), uint32(1000))
	}
	f.Add([]byte("FSUse%        Count         Size    Files/sec     App Overhead\n     5        10000            0       1234.5            12345\n"), uint16(1), uint16(1), uint32(1))
	f.Add([]byte("FSUse% Count Size Files/sec\n 1 10 0 1e-300\n 2 20 0 1e300\n"), uint16(0), uint16(7), uint32(0))
	f.Add([]byte("FSUse% Count Size Files/sec\n 1 10 0 0x1p-1074\n"), uint16(5), uint16(0), uint32(1<<31))
	f.Fuzz(func(t *testing.T, raw []byte, n1, n2 uint16, rate uint32) {
		if r, err := ParseFsmark(raw); err == nil {
			if r.Files <= 0 || r.Loops <= 0 || !(r.FilesPerSec > 0) || math.IsInf(r.FilesPerSec, 0) {
				t.Fatalf("%q: parsed %+v", raw, r)
			}
		}

		if n1 == 0 || n2 == 0 || rate == 0 {
			return
		}
		r1, r2 := float64(rate), float64(rate)/2
		text := fmt.Sprintf("# fs_mark header\n\nFSUse%%        Count         Size    Files/sec     App Overhead\n"+
			"     1 %12d            0 %12.1f            100\n     2 %12d            0 %12.1f            100\n",
			n1, r1, int(n1)+int(n2), r2)
		r, err := ParseFsmark([]byte(text))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		want := float64(int(n1)+int(n2)) / (float64(n1)/r1 + float64(n2)/r2)
		if r.Files != int64(n1)+int64(n2) || r.Loops != 2 || math.Abs(r.FilesPerSec-want) > 1e-9*want {
			t.Fatalf("%q: parsed %+v, want %d files at %v/s", text, r, int(n1)+int(n2), want)
		}
	})
}

// mangleMountinfo escapes a path as the kernel's seq_path does.
func mangleMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzParseMountinfo: any text parses or fails without a panic. A line
// built from fuzzed paths, escaped as the kernel escapes them, must parse
// back to them.
func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte("22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"), uint32(40), uint32(53), "/", "/tmp/a b\\c", "fuse.ringfuse", "src dir")
	f.Add([]byte("1 2 3:4 / / rw - x y z\n\n5 6 7:8 /a /b ro master:1 - - - -\n"), uint32(1), uint32(1), "/\t", "-", "fuse", "\\040")
	f.Add([]byte(" - "), uint32(0), uint32(1<<32-1), "", "/x", "", "")
	f.Fuzz(func(t *testing.T, raw []byte, id, minor uint32, root, mnt, fstype, source string) {
		if es, err := ParseMountinfo(bytes.NewReader(raw)); err == nil {
			for _, e := range es {
				_ = e.IsFUSE()
				_ = e.ConnectionID()
			}
		}
		field := func(s string) string {
			s = strings.Map(func(r rune) rune {
				if r == 0 {
					return -1
				}
				return r
			}, s)
			if s == "" {
				return "none"
			}
			return s
		}
		path := func(s string) string { return "/" + strings.TrimPrefix(field(s), "/") } // absolute, as the kernel shows them
		want := MountEntry{ID: int(id &^ (1 << 31)), Major: 0, Minor: minor, Root: path(root), MountPoint: path(mnt),
			FSType: strings.Join(strings.Fields(field(fstype)), "_"), Source: field(source)}
		if want.FSType == "" {
			want.FSType = "none"
		}
		line := fmt.Sprintf("%d 1 %d:%d %s %s rw,relatime shared:1 - %s %s rw,user_id=0\n",
			want.ID, want.Major, want.Minor, mangleMountinfo(want.Root), mangleMountinfo(want.MountPoint),
			want.FSType, mangleMountinfo(want.Source))
		es, err := ParseMountinfo(strings.NewReader(line))
		if err != nil || len(es) != 1 || es[0] != want {
			t.Fatalf("%q: parsed %+v, %v; want %+v", line, es, err, want)
		}
	})
}

// FuzzParseProc: /proc/PID/stat, /proc/PID/status and auxv parsers never
// panic, and a stat line with a fuzzed command name and times parses back
// to the times.
func FuzzParseProc(f *testing.F) {
	f.Add([]byte("1234 (ring fuse) S 1 1234 1234 0 -1 4194560 100 0 0 0 17 42 0 0 20 0 5 0 100 0 0\n"), "a) b (c", uint64(17), uint64(42))
	f.Add([]byte("Name:\tx\nvoluntary_ctxt_switches:\t5\nnonvoluntary_ctxt_switches:\t7\n"), "", uint64(0), ^uint64(0))
	aux := binary.LittleEndian.AppendUint64(nil, 6)
	aux = binary.LittleEndian.AppendUint64(aux, 4096)
	aux = binary.LittleEndian.AppendUint64(aux, 17)
	aux = binary.LittleEndian.AppendUint64(aux, 100)
	f.Add(aux, "x", uint64(1), uint64(2))
	f.Fuzz(func(t *testing.T, raw []byte, comm string, utime, stime uint64) {
		_, _, _ = ParseProcStat(raw)
		_, _ = ParseCtxsw(raw)
		if hz, ok := ParseAuxvClkTck(raw); ok && hz <= 0 {
			t.Fatalf("clock ticks %d", hz)
		}
		if strings.ContainsAny(comm, "\n\x00") {
			return
		}
		line := fmt.Sprintf("1234 (%s) S 1 1234 1234 0 -1 4194560 100 0 0 0 %d %d 0 0 20 0 5 0 100 0 0\n", comm, utime, stime)
		u, s, err := ParseProcStat([]byte(line))
		if err != nil || u != utime || s != stime {
			t.Fatalf("%q: %d, %d, %v; want %d, %d", line, u, s, err, utime, stime)
		}
		status := "voluntary_ctxt_switches:\t" + strconv.FormatUint(utime>>1, 10) + "\nnonvoluntary_ctxt_switches:\t" + strconv.FormatUint(stime>>1, 10) + "\n"
		if n, err := ParseCtxsw([]byte(status)); err != nil || n != utime>>1+stime>>1 {
			t.Fatalf("%q: %d, %v", status, n, err)
		}
	})
}

// FuzzParseConfig: a spec parses or fails without a panic, and a success
// has a name, a command, and {mnt} in it.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"hp=/opt/passthrough_hp --nopassthrough {src} {mnt}", "=x {mnt}", "a=", "a={src}", "a= \t{mnt}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := ParseConfig(spec)
		if err != nil {
			return
		}
		if c.Name == "" || len(c.Argv) == 0 || !strings.Contains(strings.Join(c.Argv, " "), "{mnt}") {
			t.Fatalf("%q: parsed %+v", spec, c)
		}
	})
}
