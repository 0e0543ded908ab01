package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/nodefs"
)

func TestHello(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys, err := nodefs.New(&root{})
			if err != nil {
				t.Fatal(err)
			}
			dir := testmount.Mount(t, fsys, testmount.Options{Transport: tr}).Dir()
			if b, err := os.ReadFile(filepath.Join(dir, "hello.txt")); err != nil || string(b) != "hello, world\n" {
				t.Errorf("read: %q, %v", b, err)
			}
			if err := os.WriteFile(filepath.Join(dir, "hello.txt"), nil, 0); err == nil {
				t.Error("wrote a read-only file")
			}
		})
	}
}
