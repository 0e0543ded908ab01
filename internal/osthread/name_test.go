//go:build linux

package osthread

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSetName(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	SetName("ringfuse-test-long-name")
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/comm")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "ringfuse-test-l" {
		t.Errorf("thread name %q, want the first 15 bytes %q", got, "ringfuse-test-l")
	}
	SetName("main") // the test's thread returns to the pool
}
