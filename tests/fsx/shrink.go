package fsx

import "time"

// Budget bounds a shrink. The zero Budget is unbounded.
type Budget struct {
	// MaxTests is the largest number of predicate calls; 0 means no
	// limit.
	MaxTests int
	// Deadline stops shrinking once passed; the zero time means none.
	Deadline time.Time
}

// Predicate replays a candidate sequence. It returns 0 if the candidate
// does not fail, and otherwise the length of a prefix of the candidate
// that is enough to fail (len(candidate) when it cannot tell).
type Predicate[T any] func(candidate []T) int

// Shrink reduces items, which fail, to a smaller sequence that still
// fails, by delta debugging: it tries removing chunks of halving size
// (len/2, len/4, ... single items), keeps every removal after which the
// predicate still fails, and cuts the sequence to the prefix the
// predicate reports. Without a budget the result is 1-minimal: removing
// any single item makes it pass (an empty sequence is tried too). It returns the result and the number of
// predicate calls made.
func Shrink[T any](items []T, fails Predicate[T], budget Budget) ([]T, int) {
	cur := items
	tests := 0
	spent := func() bool {
		return budget.MaxTests > 0 && tests >= budget.MaxTests ||
			!budget.Deadline.IsZero() && time.Now().After(budget.Deadline)
	}
	for n := 2; len(cur) > 0; {
		n = min(n, len(cur))
		chunk := (len(cur) + n - 1) / n
		removed := false
		for start := 0; start < len(cur); {
			if spent() {
				return cur, tests
			}
			end := min(start+chunk, len(cur))
			cand := make([]T, 0, len(cur)-(end-start))
			cand = append(append(cand, cur[:start]...), cur[end:]...)
			tests++
			if k := fails(cand); k > 0 {
				// The next chunk now starts at start: do not advance.
				cur = cand[:min(k, len(cand))]
				removed = true
				continue
			}
			start = end
		}
		switch {
		case removed:
			n = max(n-1, 2)
		case chunk == 1:
			return cur, tests // no single item can go: 1-minimal
		default:
			n *= 2
		}
	}
	return cur, tests
}
