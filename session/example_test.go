package session_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringfuse/ringfuse/fs/hello"
	"github.com/ringfuse/ringfuse/session"
)

// Mount a filesystem, use it, unmount it. Needs root.
func ExampleMount() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.Remove(dir)
	s, err := session.Mount(dir, &hello.FS{Name: "greeting", Data: []byte("hello from ringfuse\n")}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Unmount()
	data, err := os.ReadFile(filepath.Join(dir, "greeting"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(data))
	// Output: hello from ringfuse
}
