package posixtest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringfuse/ringfuse/posixtest"
)

// TestNative runs the suite on a plain local directory, which checks the
// suite itself.
func TestNative(t *testing.T) {
	// One directory for all cases: Run makes a private subdirectory for
	// each. t.TempDir makes 0700 directories; the credential cases run
	// children as uid 65534, which must search every ancestor.
	base := t.TempDir()
	for _, p := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	posixtest.Run(t, func(t *testing.T) posixtest.Env {
		return posixtest.Env{Dir: base, Native: true, DefaultPermissions: true}
	})
}

// TestCaseNames checks that case names are unique and usable as subtest
// names.
func TestCaseNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range posixtest.All {
		if c.Name == "" || strings.ContainsAny(c.Name, " /") || c.Run == nil {
			t.Errorf("bad case %q", c.Name)
		}
		if seen[c.Name] {
			t.Errorf("duplicate case %q", c.Name)
		}
		seen[c.Name] = true
	}
}
