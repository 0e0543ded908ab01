package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/nodefs"
)

func TestMemfs(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys, err := nodefs.New(&dir{})
			if err != nil {
				t.Fatal(err)
			}
			mnt := testmount.Mount(t, fsys, testmount.Options{Transport: tr}).Dir()
			p := func(s string) string { return filepath.Join(mnt, s) }
			if err := os.MkdirAll(p("a/b"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p("a/b/f"), []byte("data"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(p("a/b/f"), p("g")); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(p("g")); err != nil || string(b) != "data" {
				t.Errorf("read g: %q, %v", b, err)
			}
			if err := os.Remove(p("a")); !errors.Is(err, syscall.ENOTEMPTY) {
				t.Errorf("rmdir a: %v, want ENOTEMPTY", err)
			}
			if err := os.Remove(p("a/b")); err != nil {
				t.Error(err)
			}
			if err := os.Remove(p("g")); err != nil {
				t.Error(err)
			}
			if ents, err := os.ReadDir(mnt); err != nil || len(ents) != 1 || ents[0].Name() != "a" {
				t.Errorf("readdir: %v, %v", ents, err)
			}
		})
	}
}
