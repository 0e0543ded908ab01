package harness

import (
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// The testdata files are fio 3.33 output from
//
//	fio --name=randread-4k-qd1 --filename=F --size=64M --rw=randread --bs=4k --ioengine=psync
//	    --direct=1 --time_based=1 --runtime=1 --group_reporting=1 --randrepeat=0
//	    --percentile_list=50:99 --output-format=json
//
// and the same with randwrite, io_uring and iodepth=32, on ext4.
func TestParseFioJSON(t *testing.T) {
	b, err := os.ReadFile("testdata/fio-randread-psync.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseFioJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != "fio-3.33" {
		t.Errorf("version %q", r.Version)
	}
	rd := r.Read
	if math.Abs(rd.IOPS-18811.188811) > 1e-6 || rd.TotalIOs != 18830 || rd.BWBytes != 77050629 {
		t.Errorf("read = %+v", rd)
	}
	if rd.P50us != 46.848 || rd.P99us != 90.624 {
		t.Errorf("read p50, p99 = %v, %v; want 46.848, 90.624", rd.P50us, rd.P99us)
	}
	if r.Write.TotalIOs != 0 || r.Write.IOPS != 0 || !math.IsNaN(r.Write.P50us) || !math.IsNaN(r.Write.P99us) {
		t.Errorf("write = %+v, want zero with NaN latencies", r.Write)
	}

	b, err = os.ReadFile("testdata/fio-randwrite-iouring.json")
	if err != nil {
		t.Fatal(err)
	}
	// fio may print warnings before the JSON object.
	b = append([]byte("fio: some warning\n"), b...)
	r, err = ParseFioJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Write.TotalIOs != 80482 || r.Write.P50us != 321.536 || r.Write.P99us != 2408.448 || r.Read.TotalIOs != 0 {
		t.Errorf("randwrite result = %+v", r)
	}
}

func TestParseFioJSONErrors(t *testing.T) {
	good, err := os.ReadFile("testdata/fio-randread-psync.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"empty":          "",
		"not json":       "fio: engine io_uring not loadable",
		"truncated":      string(good[:len(good)/2]),
		"no jobs":        `{"fio version": "fio-3.33", "jobs": []}`,
		"job error":      `{"jobs": [{"jobname": "x", "error": 5}]}`,
		"no percentiles": `{"jobs": [{"jobname": "x", "read": {"iops": 10, "total_ios": 10}}]}`,
		"bad key":        `{"jobs": [{"jobname": "x", "read": {"iops": 10, "total_ios": 10, "clat_ns": {"percentile": {"p50": 1}}}}]}`,
	} {
		if _, err := ParseFioJSON([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestFioArgs(t *testing.T) {
	p := DefaultParams()
	j := &FioJob{JobName: "randread-4k-qd32", RW: "randread", BS: "4k", IODepth: 32}
	args := j.Args(p, "/m/fiofile", 2500*time.Millisecond)
	for _, want := range []string{"fio", "--filename=/m/fiofile", "--size=256M", "--rw=randread", "--bs=4k",
		"--ioengine=io_uring", "--iodepth=32", "--direct=1", "--runtime=2500ms", "--allow_file_create=0",
		"--percentile_list=50:99", "--output-format=json"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	qd1 := &FioJob{JobName: "randread-4k-qd1", RW: "randread", BS: "4k", IODepth: 1}
	if c := qd1.Command(p); !strings.Contains(c, "--ioengine=psync") || !strings.Contains(c, "--runtime=5s") || !strings.Contains(c, "DIR/fiofile") {
		t.Errorf("Command = %s", c)
	}
	if fioSize(3<<30) != "3072M" || fioSize(1000) != "1000" {
		t.Errorf("fioSize: %s, %s", fioSize(3<<30), fioSize(1000))
	}
	if fioDuration(time.Second) != "1s" || fioDuration(time.Microsecond) != "1ms" {
		t.Errorf("fioDuration: %s, %s", fioDuration(time.Second), fioDuration(time.Microsecond))
	}
}

func TestPrepareFioFile(t *testing.T) {
	path := t.TempDir() + "/f"
	if err := prepareFioFile(path, 3<<20); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() != 3<<20 {
		t.Fatalf("stat = %v, %v", st, err)
	}
	mtime := st.ModTime()
	time.Sleep(10 * time.Millisecond)
	if err := prepareFioFile(path, 3<<20); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); !st.ModTime().Equal(mtime) {
		t.Error("a file of the right size was rewritten")
	}
}
