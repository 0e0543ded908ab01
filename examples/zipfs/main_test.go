package main

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/nodefs"
)

// testZip returns an archive with a nested file, an empty directory and
// a member whose name climbs out of the tree.
func testZip(t *testing.T) *zip.Reader {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range map[string]string{"top.txt": "top", "d/e/deep.txt": "deep", "empty/": "", "../escape": "x"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(data))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

func TestZipfs(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			fsys, err := nodefs.New(&root{zr: testZip(t)})
			if err != nil {
				t.Fatal(err)
			}
			mnt := testmount.Mount(t, fsys, testmount.Options{Transport: tr}).Dir()
			for name, want := range map[string]string{"top.txt": "top", "d/e/deep.txt": "deep"} {
				if b, err := os.ReadFile(filepath.Join(mnt, name)); err != nil || string(b) != want {
					t.Errorf("read %s: %q, %v", name, b, err)
				}
			}
			ents, err := os.ReadDir(mnt)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if err != nil || !slices.Equal(names, []string{"d", "empty", "top.txt"}) {
				t.Errorf("readdir: %v, %v", names, err)
			}
			if st, err := os.Stat(filepath.Join(mnt, "d/e/deep.txt")); err != nil || st.Size() != 4 {
				t.Errorf("stat deep.txt: %v, %v", st, err)
			}
			if err := os.WriteFile(filepath.Join(mnt, "top.txt"), nil, 0); err == nil {
				t.Error("wrote into the archive")
			}
		})
	}
}
