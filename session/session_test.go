package session_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ringfuse/ringfuse/fs/hello"
	"github.com/ringfuse/ringfuse/session"
)

func TestHelloDevFuse(t *testing.T) {
	dir := t.TempDir()
	s, err := session.Mount(dir, &hello.FS{Name: "greeting", Data: []byte("hello, world\n")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Unmount(); err != nil {
			t.Error(err)
		}
	}()
	got, err := os.ReadFile(filepath.Join(dir, "greeting"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello, world\n" {
		t.Errorf("read %q", got)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "greeting" {
		t.Errorf("readdir: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("stat missing: %v", err)
	}
	st := s.Server().Stats()
	if st.Requests("devfuse", "LOOKUP") == 0 {
		t.Errorf("no LOOKUP counted: %+v", st.Channels["devfuse"])
	}
}
