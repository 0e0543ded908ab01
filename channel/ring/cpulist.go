package ring

import (
	"fmt"
	"strconv"
	"strings"
)

// parseCPUList counts the CPUs of a kernel CPU list such as "0-63" or
// "0,2-3" (Documentation/admin-guide/cputopology.rst).
func parseCPUList(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty CPU list")
	}
	n := 0
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 31)
		if err != nil {
			return 0, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 31); err != nil || b < a {
				return 0, fmt.Errorf("bad CPU list %q", s)
			}
		}
		n += int(b-a) + 1
	}
	return n, nil
}
