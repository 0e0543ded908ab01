package mount

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// withFile points *path at a file holding content (or at a missing file if
// content is nil) for the duration of the test.
func withFile(t *testing.T, path *string, content []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "param")
	if content != nil {
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := *path
	*path = p
	t.Cleanup(func() { *path = old })
}

func TestUringEnabledParse(t *testing.T) {
	for _, tt := range []struct {
		content string
		want    bool
		ok      bool
	}{
		{"Y\n", true, true},
		{"N\n", false, true},
		{"1", true, true},
		{"0\n", false, true},
		{"maybe\n", false, false},
		{"", false, false},
	} {
		withFile(t, &enableUringPath, []byte(tt.content))
		got, err := UringEnabled()
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("UringEnabled() with %q = %v, %v; want %v, ok=%v", tt.content, got, err, tt.want, tt.ok)
		}
	}
	withFile(t, &enableUringPath, nil)
	if _, err := UringEnabled(); !errors.Is(err, ErrNotSupported) {
		t.Errorf("UringEnabled() with a missing parameter: %v, want ErrNotSupported", err)
	}
}

func TestMaxPagesLimitParse(t *testing.T) {
	withFile(t, &maxPagesLimitPath, []byte("1024\n"))
	if n, err := MaxPagesLimit(); n != 1024 || err != nil {
		t.Errorf("MaxPagesLimit() = %d, %v; want 1024", n, err)
	}
	withFile(t, &maxPagesLimitPath, []byte("lots\n"))
	if _, err := MaxPagesLimit(); err == nil {
		t.Errorf("MaxPagesLimit() with garbage: no error")
	}
	withFile(t, &maxPagesLimitPath, nil)
	if n, err := MaxPagesLimit(); n != DefaultMaxPagesLimit || err != nil {
		t.Errorf("MaxPagesLimit() with a missing sysctl = %d, %v; want %d", n, err, DefaultMaxPagesLimit)
	}
}

// TestKernelParams reads the real parameters. On the project's machines the
// kernel has CONFIG_FUSE_IO_URING, so a missing parameter fails the test.
func TestKernelParams(t *testing.T) {
	on, err := UringEnabled()
	if err != nil {
		t.Fatalf("UringEnabled: %v", err)
	}
	n, err := MaxPagesLimit()
	if err != nil || n == 0 {
		t.Fatalf("MaxPagesLimit() = %d, %v", n, err)
	}
	t.Logf("enable_uring=%v max_pages_limit=%d", on, n)
}
