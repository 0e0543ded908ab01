package harness

import (
	"encoding/binary"
	"os"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses; utime=1234, stime=56.
	line := "4242 (my (odd) daemon) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 56 7 8 20 0 9 0 12345 100000 200 " +
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	u, s, err := ParseProcStat([]byte(line))
	if err != nil || u != 1234 || s != 56 {
		t.Fatalf("ParseProcStat = %d, %d, %v; want 1234, 56, nil", u, s, err)
	}
	for _, bad := range []string{"", "1 (x S 1 2", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u s"} {
		if _, _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("ParseProcStat(%q): no error", bad)
		}
	}
}

func TestParseCtxsw(t *testing.T) {
	status := "Name:\tgofuse-loopback\nState:\tS (sleeping)\nThreads:\t7\n" +
		"voluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n"
	n, err := ParseCtxsw([]byte(status))
	if err != nil || n != 157 {
		t.Fatalf("ParseCtxsw = %d, %v; want 157", n, err)
	}
	if _, err := ParseCtxsw([]byte("Name:\tx\nvoluntary_ctxt_switches:\t1\n")); err == nil {
		t.Error("ParseCtxsw without nonvoluntary line: no error")
	}
	if _, err := ParseCtxsw([]byte("voluntary_ctxt_switches:\tx\nnonvoluntary_ctxt_switches:\t1\n")); err == nil {
		t.Error("ParseCtxsw with a bad number: no error")
	}
}

func TestSampleProcSelf(t *testing.T) {
	a, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn some CPU and switch context so the counters move.
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i
	}
	_ = x
	for range 10 {
		os.ReadFile("/proc/self/stat")
	}
	b, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if a.Threads < 1 || b.Threads < 1 {
		t.Errorf("threads = %d, %d", a.Threads, b.Threads)
	}
	if b.CPUTicks < a.CPUTicks {
		t.Errorf("CPU ticks went backwards: %d -> %d", a.CPUTicks, b.CPUTicks)
	}
	if _, err := SampleProc(1 << 30); err == nil {
		t.Error("SampleProc of a missing pid: no error")
	}
}

func TestParseAuxvClkTck(t *testing.T) {
	var b []byte
	for _, kv := range [][2]uint64{{6, 4096}, {atClkTck, 250}, {0, 0}} {
		b = binary.LittleEndian.AppendUint64(b, kv[0])
		b = binary.LittleEndian.AppendUint64(b, kv[1])
	}
	if hz, ok := ParseAuxvClkTck(b); !ok || hz != 250 {
		t.Errorf("ParseAuxvClkTck = %d, %v; want 250", hz, ok)
	}
	if _, ok := ParseAuxvClkTck(b[16*2:]); ok {
		t.Error("ParseAuxvClkTck found AT_CLKTCK after AT_NULL")
	}
	if hz := ClockTicks(); hz <= 0 {
		t.Errorf("ClockTicks() = %d", hz)
	}
}
