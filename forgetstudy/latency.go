package forgetstudy

import (
	"math"
	"slices"
	"time"
)

// IO is one completed read, from a fio latency log or a model's reader.
// A window counts the reads in flight during it: issued before its end
// and completed at or after its start. A read stuck behind a storm thus
// counts in the window it was issued in, not only in a later one when it
// finally completes (or in none, if it completes after the last window),
// and a read issued just before the storm and stuck through it counts in
// the storm's windows too.
type IO struct {
	// T is the issue time in Unix nanoseconds. fio logs the completion
	// time in whole milliseconds, and ParseLatLog subtracts the latency
	// from it: T is then good to a millisecond.
	T int64
	// Lat is the completion latency.
	Lat time.Duration
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted, ascending values: the smallest value with at least p% of the
// values at or below it. It returns 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Window summarizes the reads of ios (sorted by T) in flight during
// [from, to), Unix nanoseconds: issued before to and completed at or after
// from. Its IOPS counts the reads issued in the window.
func Window(ios []IO, from, to int64) Latency {
	return window(ios, from, to, maxLat(ios))
}

// window is Window for ios whose latencies are at most longest.
func window(ios []IO, from, to int64, longest time.Duration) Latency {
	l := Latency{Span: time.Duration(to - from)}
	if to <= from {
		l.Span = 0
		return l
	}
	lo, hi := windowBounds(ios, from, to)
	lat := make([]time.Duration, 0, hi-lo)
	// Reads issued before from and still in flight at from.
	for i := lo - 1; i >= 0 && ios[i].T >= from-int64(longest); i-- {
		if ios[i].T+int64(ios[i].Lat) >= from {
			lat = append(lat, ios[i].Lat)
		}
	}
	for _, io := range ios[lo:hi] {
		lat = append(lat, io.Lat)
	}
	slices.Sort(lat)
	l.N = len(lat)
	l.P50 = Percentile(lat, 50)
	l.P99 = Percentile(lat, 99)
	l.IOPS = float64(hi-lo) / l.Span.Seconds()
	return l
}

// lastDone returns the completion time of the read of ios that completed
// last, in Unix nanoseconds: where a log ends (its last read issued may
// have been stuck past the others).
func lastDone(ios []IO) int64 {
	var t int64
	for _, io := range ios {
		t = max(t, io.T+int64(io.Lat))
	}
	return t
}

// maxLat returns the longest latency in ios.
func maxLat(ios []IO) time.Duration {
	var m time.Duration
	for _, io := range ios {
		m = max(m, io.Lat)
	}
	return m
}

// windowBounds returns the index range of ios (sorted by T) with
// from ≤ T < to.
func windowBounds(ios []IO, from, to int64) (int, int) {
	lo, _ := slices.BinarySearchFunc(ios, from, func(io IO, t int64) int { return cmp64(io.T, t) })
	hi, _ := slices.BinarySearchFunc(ios, to, func(io IO, t int64) int { return cmp64(io.T, t) })
	return lo, hi
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// WindowSeries cuts [from, to) into windows of width, aligned so that one
// window starts exactly at origin, and returns each window's start
// relative to origin, its read count and its p99. ios must be sorted by T.
func WindowSeries(ios []IO, origin, from, to int64, width time.Duration) []LatPoint {
	w := int64(width)
	if w <= 0 || to <= from {
		return nil
	}
	// First window start at or before from, on the origin grid.
	start := origin + floorDiv(from-origin, w)*w
	var pts []LatPoint
	longest := maxLat(ios)
	for s := start; s < to; s += w {
		l := window(ios, s, s+w, longest)
		pts = append(pts, LatPoint{T: time.Duration(s - origin), N: l.N, P99: l.P99})
	}
	return pts
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// sortIOs sorts by issue time, which fio's completion-ordered log is not
// in, so that windows can binary-search.
func sortIOs(ios []IO) {
	slices.SortStableFunc(ios, func(a, b IO) int { return cmp64(a.T, b.T) })
}

// Spread is a median with its range over runs.
type Spread struct {
	Median, Min, Max float64
	// N is the number of values (NaN ones excluded); zero means no data.
	N int
}

// SpreadOf returns the median, minimum and maximum of xs, ignoring NaNs.
// The median of an even count is the mean of the two middle values.
func SpreadOf(xs []float64) Spread {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Spread{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return Spread{Median: med, Min: v[0], Max: v[n-1], N: n}
}
