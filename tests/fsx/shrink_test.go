package fsx

import (
	"slices"
	"testing"
	"time"
)

// seq returns 0, 1, ..., n-1.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// containsInOrder reports whether want is a subsequence of s.
func containsInOrder(s, want []int) bool {
	j := 0
	for _, v := range s {
		if j < len(want) && v == want[j] {
			j++
		}
	}
	return j == len(want)
}

// subsequenceFails fails while the candidate still holds want in order,
// as a bug that needs a few particular operations would.
func subsequenceFails(want []int, calls *int) Predicate[int] {
	return func(c []int) int {
		*calls++
		if containsInOrder(c, want) {
			return len(c)
		}
		return 0
	}
}

func TestShrinkFindsSubsequence(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{1000, []int{3, 17, 998}},
		{1000, []int{500}},
		{64, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{5, []int{0, 4}},
		{1, []int{0}},
	} {
		calls := 0
		got, tests := Shrink(seq(tc.n), subsequenceFails(tc.want, &calls), Budget{})
		if !slices.Equal(got, tc.want) {
			t.Errorf("n=%d want %v: shrunk to %v", tc.n, tc.want, got)
		}
		if tests != calls {
			t.Errorf("n=%d: reported %d tests, predicate called %d times", tc.n, tests, calls)
		}
	}
}

// TestShrinkOneMinimal checks the promise of an unbounded shrink: the
// result fails, and removing any single item makes it pass, for a
// predicate with several minimal answers (any two even numbers above 10
// and any multiple of 7).
func TestShrinkOneMinimal(t *testing.T) {
	fails := func(c []int) int {
		evens, sevens := 0, 0
		for _, v := range c {
			if v > 10 && v%2 == 0 {
				evens++
			}
			if v%7 == 0 {
				sevens++
			}
		}
		if evens >= 2 && sevens >= 1 {
			return len(c)
		}
		return 0
	}
	got, _ := Shrink(seq(300), fails, Budget{})
	if fails(got) == 0 {
		t.Fatalf("shrunk to %v, which passes", got)
	}
	for i := range got {
		c := slices.Delete(slices.Clone(got), i, i+1)
		if fails(c) != 0 {
			t.Errorf("shrunk to %v, but %v without item %d still fails", got, c, got[i])
		}
	}
	if len(got) > 3 {
		t.Errorf("shrunk to %d items %v, want at most 3", len(got), got)
	}
}

// TestShrinkUsesPrefix checks that the prefix the predicate reports is
// kept and the rest dropped without further calls.
func TestShrinkUsesPrefix(t *testing.T) {
	calls := 0
	// Fails once 40 and 41 were both seen; everything after the later
	// of them is reported as unneeded.
	fails := func(c []int) int {
		calls++
		seen := 0
		for i, v := range c {
			if v == 40 || v == 41 {
				seen++
			}
			if seen == 2 {
				return i + 1
			}
		}
		return 0
	}
	got, _ := Shrink(seq(10000), fails, Budget{})
	if !slices.Equal(got, []int{40, 41}) {
		t.Errorf("shrunk to %v, want [40 41]", got)
	}
	// Bisecting 10,000 items down to two needs a few dozen calls, not
	// thousands.
	if calls > 200 {
		t.Errorf("%d predicate calls", calls)
	}
}

func TestShrinkBudget(t *testing.T) {
	calls := 0
	got, tests := Shrink(seq(1000), subsequenceFails([]int{1, 500, 999}, &calls), Budget{MaxTests: 5})
	if tests != 5 || calls != 5 {
		t.Errorf("budget of 5 tests: made %d (%d calls)", tests, calls)
	}
	if !containsInOrder(got, []int{1, 500, 999}) {
		t.Errorf("stopped at %v, which no longer fails", got)
	}
	calls = 0
	_, tests = Shrink(seq(1000), subsequenceFails([]int{1, 500, 999}, &calls), Budget{Deadline: time.Now().Add(-time.Second)})
	if tests != 0 {
		t.Errorf("past deadline: made %d tests", tests)
	}
}

// TestShrinkNeverPasses: a sequence that fails only as a whole stays
// whole.
func TestShrinkWhole(t *testing.T) {
	fails := func(c []int) int {
		if len(c) == 50 {
			return 50
		}
		return 0
	}
	if got, _ := Shrink(seq(50), fails, Budget{}); len(got) != 50 {
		t.Errorf("shrunk to %d items", len(got))
	}
}

func TestKeepRoundTrip(t *testing.T) {
	for _, s := range []string{"3", "0-4", "1,3,5-9,12", "7,8"} {
		idx, err := parseKeep(s)
		if err != nil {
			t.Fatal(err)
		}
		want := s
		if s == "7,8" {
			want = "7-8"
		}
		if got := formatKeep(idx); got != want {
			t.Errorf("formatKeep(parseKeep(%q)) = %q, want %q", s, got, want)
		}
	}
	for _, s := range []string{"x", "5-3", "-1", "1,,2"} {
		if _, err := parseKeep(s); err == nil {
			t.Errorf("parseKeep(%q) succeeded", s)
		}
	}
}

// TestGeneratorDeterministic checks that a stream depends on its seed
// only, and that prefixes agree, which -fsx.keep relies on.
func TestGeneratorDeterministic(t *testing.T) {
	a, b := Ops(42, 2000), Ops(42, 500)
	if !slices.Equal(a[:500], b) {
		t.Fatal("the first 500 operations of seed 42 differ between runs")
	}
	if slices.Equal(Ops(43, 500), b) {
		t.Fatal("seeds 42 and 43 give the same stream")
	}
	var seen [numKinds]int
	for _, op := range a {
		seen[op.Kind]++
	}
	for k, n := range seen {
		if n == 0 {
			t.Errorf("2000 operations of seed 42 have no %v", Kind(k))
		}
	}
}
