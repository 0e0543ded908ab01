package forgetstudy

import (
	"math/bits"
	"strconv"
)

// HistogramBuckets is the number of buckets of a [Histogram], the same as
// the server's batch-size histogram.
const HistogramBuckets = 18

// Histogram counts forget messages by the number of forgets they carry:
// bucket i holds messages of [2^i, 2^(i+1)) forgets, and the last bucket
// everything from 2^17 up.
type Histogram [HistogramBuckets]uint64

// Add counts one message of n forgets; n < 1 is ignored.
func (h *Histogram) Add(n int) {
	if n < 1 {
		return
	}
	h[bucketOf(n)]++
}

func bucketOf(n int) int {
	return min(bits.Len(uint(n))-1, HistogramBuckets-1)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o Histogram) {
	for i := range h {
		h[i] += o[i]
	}
}

// Sub returns h minus o, bucket by bucket, clamped at zero: the messages
// counted between two snapshots.
func (h Histogram) Sub(o Histogram) Histogram {
	var d Histogram
	for i := range h {
		if h[i] > o[i] {
			d[i] = h[i] - o[i]
		}
	}
	return d
}

// Total returns the number of messages counted.
func (h Histogram) Total() uint64 {
	var t uint64
	for _, n := range h {
		t += n
	}
	return t
}

// histogramFrom copies a server batch histogram (any length).
func histogramFrom(src []uint64) Histogram {
	var h Histogram
	for i, n := range src {
		h[min(i, HistogramBuckets-1)] += n
	}
	return h
}

// BucketLabel names bucket i: "1", "2–3", "4–7", ..., "≥131072".
func BucketLabel(i int) string {
	lo := 1 << i
	switch {
	case i == HistogramBuckets-1:
		return "≥" + strconv.Itoa(lo)
	case i == 0:
		return "1"
	}
	return strconv.Itoa(lo) + "–" + strconv.Itoa(2*lo-1)
}
