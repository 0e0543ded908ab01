package harness

import (
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseFsmark(t *testing.T) {
	// fs_mark 3.3: -n 500 -s 0 -S 0 -L 2 -t 2, so 1000 files per loop.
	b, err := os.ReadFile("testdata/fsmark-t2-L2.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseFsmark(b)
	if err != nil {
		t.Fatal(err)
	}
	want := 2000 / (1000/76107.0 + 1000/69993.8)
	if r.Files != 2000 || r.Loops != 2 || math.Abs(r.FilesPerSec-want) > 1e-6 {
		t.Errorf("ParseFsmark = %+v, want 2000 files, 2 loops, %.1f files/s", r, want)
	}

	one := "\n#  fs_mark  -d  d  -n  2000  -s  0  -S  0  -L  1  -t  2\n#\tVersion 3.3, 2 thread(s)\n\n" +
		"FSUse%        Count         Size    Files/sec     App Overhead\n" +
		"    68         4000            0      67588.9            13665\n"
	r, err = ParseFsmark([]byte(one))
	if err != nil || r.Files != 4000 || r.FilesPerSec != 67588.9 {
		t.Errorf("ParseFsmark(one loop) = %+v, %v", r, err)
	}
}

func TestParseFsmarkErrors(t *testing.T) {
	hdr := "FSUse%        Count         Size    Files/sec     App Overhead\n"
	for name, in := range map[string]string{
		"usage":     "Usage: fs_mark\n\t-h <print usage and exit>\n",
		"no rows":   hdr,
		"short row": hdr + "68 4000\n",
		"bad rate":  hdr + "68 4000 0 fast 1\n",
		"zero rate": hdr + "68 4000 0 0 1\n",
		"shrinking": hdr + "68 4000 0 10 1\n68 3000 0 10 1\n",
	} {
		if _, err := ParseFsmark([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestFsmarkArgs(t *testing.T) {
	p := DefaultParams()
	f := &Fsmark{JobName: "fsmark-2", Threads: 2}
	got := f.Args(p, "fsmark.tmp", "/s/fs_log.txt")
	want := []string{"fs_mark", "-d", "fsmark.tmp", "-l", "/s/fs_log.txt", "-n", "10000", "-s", "0", "-S", "0", "-L", "1", "-t", "2"}
	if !slices.Equal(got, want) {
		t.Errorf("Args = %q, want %q", got, want)
	}
	if c := f.Command(p); !strings.HasPrefix(c, "cd DIR && fs_mark -d fsmark.tmp") {
		t.Errorf("Command = %s", c)
	}
}
