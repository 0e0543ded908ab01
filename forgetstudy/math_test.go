package forgetstudy

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	us := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Microsecond
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name string
		vals []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", us(7), 50, 7 * time.Microsecond},
		{"one p99", us(7), 99, 7 * time.Microsecond},
		{"odd median", us(1, 2, 3), 50, 2 * time.Microsecond},
		// Nearest rank: ceil(0.5*4) = 2nd value, not an interpolation.
		{"even median", us(1, 2, 3, 4), 50, 2 * time.Microsecond},
		{"1..100 p50", us(hundred...), 50, 50 * time.Microsecond},
		{"1..100 p99", us(hundred...), 99, 99 * time.Microsecond},
		{"1..100 p100", us(hundred...), 100, 100 * time.Microsecond},
		// With 10 values p99 is the maximum: ceil(9.9) = 10.
		{"10 values p99", us(1, 2, 3, 4, 5, 6, 7, 8, 9, 1000), 99, 1000 * time.Microsecond},
		{"tiny p", us(5, 6), 0.001, 5 * time.Microsecond},
	} {
		if got := Percentile(tc.vals, tc.p); got != tc.want {
			t.Errorf("%s: Percentile(p%v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

// ios builds a log: one read per millisecond from start, latencies in µs.
func ios(startMs int64, latUs ...int) []IO {
	r := make([]IO, len(latUs))
	for i, l := range latUs {
		r[i] = IO{T: (startMs + int64(i)) * int64(time.Millisecond), Lat: time.Duration(l) * time.Microsecond}
	}
	return r
}

func TestWindow(t *testing.T) {
	ms := int64(time.Millisecond)
	log := ios(1000, 100, 200, 300, 400, 5000, 600) // t = 1000..1005 ms
	for _, tc := range []struct {
		name          string
		from, to      int64
		n             int
		p50, p99      time.Duration
		iops          float64
		wantZeroSpan  bool
		wantNoReading bool
	}{
		{name: "all", from: 1000 * ms, to: 1006 * ms, n: 6, p50: 300 * time.Microsecond, p99: 5 * time.Millisecond, iops: 1000},
		// [from, to): the read at 1003 ms is out, the one at 1001 in.
		{name: "half-open", from: 1001 * ms, to: 1003 * ms, n: 2, p50: 200 * time.Microsecond, p99: 300 * time.Microsecond, iops: 1000},
		{name: "spike only", from: 1004 * ms, to: 1005 * ms, n: 1, p50: 5 * time.Millisecond, p99: 5 * time.Millisecond, iops: 1000},
		{name: "before the log", from: 0, to: 999 * ms, wantNoReading: true},
		{name: "after the log", from: 2000 * ms, to: 3000 * ms, wantNoReading: true},
		{name: "empty window", from: 1002 * ms, to: 1002 * ms, wantZeroSpan: true, wantNoReading: true},
	} {
		l := Window(log, tc.from, tc.to)
		if tc.wantZeroSpan && l.Span != 0 {
			t.Errorf("%s: span %v, want 0", tc.name, l.Span)
		}
		if tc.wantNoReading {
			if l.N != 0 || l.P99 != 0 {
				t.Errorf("%s: %+v, want no reads", tc.name, l)
			}
			continue
		}
		if l.N != tc.n || l.P50 != tc.p50 || l.P99 != tc.p99 || math.Abs(l.IOPS-tc.iops) > 1e-6 {
			t.Errorf("%s: got N %d p50 %v p99 %v IOPS %v, want %d %v %v %v", tc.name, l.N, l.P50, l.P99, l.IOPS, tc.n, tc.p50, tc.p99, tc.iops)
		}
	}
}

func TestWindowSeries(t *testing.T) {
	ms := int64(time.Millisecond)
	// Reads at 995..1024 ms; the trigger (origin) at 1000 ms; a 9 ms
	// spike completes at 1012 ms.
	lat := make([]int, 30)
	for i := range lat {
		lat[i] = 100
	}
	lat[17] = 9000
	log := ios(995, lat...)
	pts := WindowSeries(log, 1000*ms, 995*ms, 1025*ms, 10*time.Millisecond)
	want := []LatPoint{
		{T: -10 * time.Millisecond, N: 5, P99: 100 * time.Microsecond}, // [990, 1000): reads 995..999
		{T: 0, N: 10, P99: 100 * time.Microsecond},
		{T: 10 * time.Millisecond, N: 10, P99: 9 * time.Millisecond},
		// [1020, 1025): reads 1020..1024, and the spike, issued at
		// 1012 ms and in flight until 1021 ms.
		{T: 20 * time.Millisecond, N: 6, P99: 9 * time.Millisecond},
	}
	if len(pts) != len(want) {
		t.Fatalf("%d windows, want %d: %+v", len(pts), len(want), pts)
	}
	for i := range want {
		if pts[i] != want[i] {
			t.Errorf("window %d = %+v, want %+v", i, pts[i], want[i])
		}
	}
	if got := WindowSeries(log, 0, 10, 5, time.Millisecond); got != nil {
		t.Errorf("empty range: %v", got)
	}
}

func TestFloorDiv(t *testing.T) {
	for _, c := range [][3]int64{{7, 2, 3}, {-7, 2, -4}, {-6, 2, -3}, {0, 5, 0}, {-1, 10, -1}} {
		if got := floorDiv(c[0], c[1]); got != c[2] {
			t.Errorf("floorDiv(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

func TestSpreadOf(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		in          []float64
		med, lo, hi float64
		n           int
		wantNaN     bool
		name        string
	}{
		{name: "odd", in: []float64{3, 1, 2}, med: 2, lo: 1, hi: 3, n: 3},
		{name: "even", in: []float64{4, 1, 3, 2}, med: 2.5, lo: 1, hi: 4, n: 4},
		{name: "nan ignored", in: []float64{nan, 5, nan}, med: 5, lo: 5, hi: 5, n: 1},
		{name: "all nan", in: []float64{nan}, wantNaN: true},
		{name: "none", in: nil, wantNaN: true},
	} {
		s := SpreadOf(tc.in)
		if tc.wantNaN {
			if s.N != 0 || !math.IsNaN(s.Median) {
				t.Errorf("%s: %+v, want no data", tc.name, s)
			}
			continue
		}
		if s.Median != tc.med || s.Min != tc.lo || s.Max != tc.hi || s.N != tc.n {
			t.Errorf("%s: %+v, want median %v [%v–%v] of %d", tc.name, s, tc.med, tc.lo, tc.hi, tc.n)
		}
	}
	b, err := SpreadOf(nil).MarshalJSON()
	if err != nil || string(b) != `{"Median":null,"Min":null,"Max":null,"N":0}` {
		t.Errorf("MarshalJSON of no data = %s, %v", b, err)
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	for _, n := range []int{0, -3, 1, 1, 2, 3, 4, 7, 8, 509, 65538, 1 << 17, 1 << 30} {
		h.Add(n)
	}
	want := map[int]uint64{0: 2, 1: 2, 2: 2, 3: 1, 8: 1, 16: 1, 17: 2}
	for i, n := range h {
		if n != want[i] {
			t.Errorf("bucket %d (%s) = %d, want %d", i, BucketLabel(i), n, want[i])
		}
	}
	if h.Total() != 11 {
		t.Errorf("Total = %d, want 11 (0 and negative sizes are not messages)", h.Total())
	}
	var g Histogram
	g.Add(1)
	g.Add(300)
	d := h.Sub(g)
	if d[0] != 1 || d[8] != 0 || d[1] != 2 {
		t.Errorf("Sub: %v", d)
	}
	if z := g.Sub(h); z[8] != 0 || z[0] != 0 {
		t.Errorf("Sub clamps at zero: %v", z)
	}
	g.Merge(h)
	if g.Total() != 13 {
		t.Errorf("Merge: total %d, want 13", g.Total())
	}
	// The server's histogram has the same bucket bounds; a longer one
	// folds into the last bucket.
	src := make([]uint64, HistogramBuckets+2)
	src[0], src[HistogramBuckets-1], src[HistogramBuckets+1] = 5, 1, 2
	if f := histogramFrom(src); f[0] != 5 || f[HistogramBuckets-1] != 3 {
		t.Errorf("histogramFrom: %v", f)
	}
	for i, want := range map[int]string{0: "1", 1: "2–3", 3: "8–15", 16: "65536–131071", 17: "≥131072"} {
		if got := BucketLabel(i); got != want {
			t.Errorf("BucketLabel(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 512: "512ns", 65_432: "65.4µs", 137_000: "137µs", 2_920_000: "2.92ms",
		1_500_000_000: "1.50s", 150 * time.Second: "150s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%d) = %q, want %q", int64(d), got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 200000: "200,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := groupThousands(n); got != want {
			t.Errorf("groupThousands(%d) = %q, want %q", n, got, want)
		}
	}
	if got := cell(Spread{Median: 2e6, Min: 1e6, Max: 3e6, N: 3}, fDur); got != "2.00ms [1.00ms–3.00ms]" {
		t.Errorf("cell = %q", got)
	}
	if got := cell(Spread{N: 0}, fDur); got != "–" {
		t.Errorf("empty cell = %q", got)
	}
	if got := cell(Spread{Median: 5, Min: 5, Max: 5, N: 3}, fCount); got != "5" {
		t.Errorf("cell without spread = %q", got)
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tforgetstudy.test\nVmPeak:\t  999 kB\nVmRSS:\t   20480 kB\nRssAnon:\t 1 kB\n"
	if got := parseVmRSS([]byte(status)); got != 20480<<10 {
		t.Errorf("parseVmRSS = %d", got)
	}
	if got := parseVmRSS([]byte("Name: x\n")); got != 0 {
		t.Errorf("no VmRSS: %d", got)
	}
	if rss, _ := (&procStatus{fd: -1}).read(); rss != 0 {
		t.Error("closed procStatus reports RSS")
	}
	ps := openProcStatus()
	defer ps.close()
	if r, th := ps.read(); r < 1<<20 || th < 1 {
		t.Errorf("own RSS %d bytes, %d threads: implausible", r, th)
	}
}

func TestTreePath(t *testing.T) {
	for i, want := range map[int]string{0: "d0/f0", 9999: "d0/f9999", 10000: "d1/f10000", 999_999: "d99/f999999"} {
		if got := string(treePath(nil, i)); got != want {
			t.Errorf("treePath(%d) = %q, want %q", i, got, want)
		}
		if !strings.HasPrefix(want, treeDir(i)+"/") {
			t.Errorf("treeDir(%d) = %q", i, treeDir(i))
		}
	}
}

func TestParams(t *testing.T) {
	p := Params{}.WithDefaults()
	if p.Inodes != 200_000 || p.QueueDepth != 8 || p.Runs != 3 || p.Read.FileSize != 64<<20 || p.Read.BlockSize != 4096 || p.WorkDir == "" {
		t.Errorf("defaults: %+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	bad := p
	bad.Read.Runtime = p.StormDelay
	if bad.Validate() == nil {
		t.Error("a read runtime no longer than the storm delay validated")
	}
	bad = p
	bad.Read.BlockSize = 1000
	if bad.Validate() == nil {
		t.Error("a block size that is not a multiple of 512 validated")
	}
	one := Params{Inodes: 1_000_000}.WithDefaults()
	if one.Inodes != 1_000_000 || one.Validate() != nil {
		t.Error("a million inodes rejected")
	}
}
