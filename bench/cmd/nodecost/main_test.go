package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLastHeap(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	if got := lastHeap(p); got != -1 {
		t.Errorf("lastHeap of a missing log = %d, want -1", got)
	}
	log := "gc 1 @0.010s 1%: 0.012+0.45+0.003 ms clock, 0.024+0.1/0.2/0+0.006 ms cpu, 3->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P\n" +
		"nodes alive: 12  forgets for unknown nodes: 0\n" +
		"gc 2 @1.2s 2%: 0.01+1.2+0.01 ms clock, 0.02+0.3/1.1/0+0.02 ms cpu, 230->241->200 MB, 260 MB goal, 0 MB stacks, 0 MB globals, 2 P\n"
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := lastHeap(p), int64(200<<20); got != want {
		t.Errorf("lastHeap = %d, want %d (the live heap of the last collection)", got, want)
	}
	if err := os.WriteFile(p, []byte("nodes alive: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := lastHeap(p); got != -1 {
		t.Errorf("lastHeap of a log without collections = %d, want -1", got)
	}
}

func TestFilePath(t *testing.T) {
	for _, c := range []struct {
		i, perDir int
		want      string
	}{
		{0, 1000, "/r/d0/f0"},
		{999, 1000, "/r/d0/f999"},
		{1000, 1000, "/r/d1/f0"},
		{123456, 1000, "/r/d123/f456"},
	} {
		if got := filePath("/r", c.i, c.perDir); got != c.want {
			t.Errorf("filePath(%d, %d) = %q, want %q", c.i, c.perDir, got, c.want)
		}
	}
}

func TestRSS(t *testing.T) {
	cur, hwm, err := rss(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cur <= 0 || hwm < cur {
		t.Errorf("VmRSS %d, VmHWM %d: want 0 < VmRSS <= VmHWM", cur, hwm)
	}
}
