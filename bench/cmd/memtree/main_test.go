package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestVariants(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the variants mount with mount(2)")
	}
	src := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	os.MkdirAll(filepath.Join(src, "statfiles"), 0o755)
	os.WriteFile(filepath.Join(src, "fiofile"), data, 0o644)
	os.WriteFile(filepath.Join(src, "statfiles", "f0"), nil, 0o644)
	ents, err := load(src)
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]func(mnt string) (func() error, error){
		"nodefs":       func(m string) (func() error, error) { return serveNodefs(m, ents, false) },
		"nodefs-uring": func(m string) (func() error, error) { return serveNodefs(m, ents, true) },
		"raw":          func(m string) (func() error, error) { return serveRaw(m, ents, false) },
		"raw-uring":    func(m string) (func() error, error) { return serveRaw(m, ents, true) },
		"gofuse":       func(m string) (func() error, error) { return serveGofuse(m, ents) },
	}
	for name, serve := range variants {
		t.Run(name, func(t *testing.T) {
			mnt := t.TempDir()
			unmount, err := serve(mnt)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := unmount(); err != nil {
					t.Error(err)
				}
			}()
			f, err := os.Open(filepath.Join(mnt, "fiofile"))
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			if n, err := f.ReadAt(buf, 8192); err != nil || !bytes.Equal(buf[:n], data[8192:8192+4096]) {
				t.Errorf("read at 8192: %d, %v", n, err)
			}
			f.Close()
			if _, err := os.Stat(filepath.Join(mnt, "statfiles", "f0")); err != nil {
				t.Error(err)
			}
			d := filepath.Join(mnt, "new")
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range 50 {
				if err := os.WriteFile(filepath.Join(d, fmt.Sprint(i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if ents, err := os.ReadDir(d); err != nil || len(ents) != 50 {
				t.Errorf("readdir new: %d entries, %v", len(ents), err)
			}
		})
	}
}
