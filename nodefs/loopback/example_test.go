//go:build linux

package loopback_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringfuse/ringfuse/nodefs"
	"github.com/ringfuse/ringfuse/nodefs/loopback"
)

// Serve a host directory as a node tree. Needs root.
func ExampleNew() {
	src, _ := os.MkdirTemp("", "src")
	defer os.RemoveAll(src)
	os.WriteFile(filepath.Join(src, "file"), []byte("on the host"), 0o644)
	dir, _ := os.MkdirTemp("", "mnt")
	defer os.Remove(dir)

	root, err := loopback.New(src, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer root.FS().Close()
	s, err := nodefs.Mount(dir, root, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Unmount()
	data, err := os.ReadFile(filepath.Join(dir, "file"))
	fmt.Printf("%s %v\n", data, err)
	// Output: on the host <nil>
}
