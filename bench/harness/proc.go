package harness

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// ProcSample is a snapshot of a process's accumulated cost.
type ProcSample struct {
	// CPUTicks is utime+stime of the whole thread group from
	// /proc/PID/stat, in clock ticks (see [ClockTicks]).
	CPUTicks uint64
	// Ctxsw is voluntary_ctxt_switches + nonvoluntary_ctxt_switches summed
	// over /proc/PID/task/*/status. Threads that have exited are not counted.
	Ctxsw uint64
	// Threads is the number of tasks summed into Ctxsw.
	Threads int
}

// SampleProc reads the CPU time and context switches of process pid.
func SampleProc(pid int) (ProcSample, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return ProcSample{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	utime, stime, err := ParseProcStat(b)
	if err != nil {
		return ProcSample{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	s := ProcSample{CPUTicks: utime + stime}
	tasks, err := os.ReadDir(dir + "/task")
	if err != nil {
		return ProcSample{}, fmt.Errorf("sample pid %d: %w", pid, err)
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, "task", t.Name(), "status"))
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited while we listed
		}
		if err != nil {
			return ProcSample{}, fmt.Errorf("sample pid %d: %w", pid, err)
		}
		n, err := ParseCtxsw(b)
		if err != nil {
			return ProcSample{}, fmt.Errorf("sample pid %d task %s: %w", pid, t.Name(), err)
		}
		s.Ctxsw += n
		s.Threads++
	}
	return s, nil
}

// ParseProcStat returns the utime and stime fields (14 and 15, in clock
// ticks) of a /proc/PID/stat line. The command name may contain spaces and
// parentheses, so fields are counted from the last ')'.
func ParseProcStat(b []byte) (utime, stime uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("proc stat: no ')' after the command name")
	}
	// After ") " come field 3 (state) onwards; utime is field 14.
	f := bytes.Fields(b[i+1:])
	const utimeIdx = 14 - 3
	if len(f) <= utimeIdx+1 {
		return 0, 0, fmt.Errorf("proc stat: %d fields after the command name, want at least %d", len(f), utimeIdx+2)
	}
	if utime, err = strconv.ParseUint(string(f[utimeIdx]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("proc stat: utime: %w", err)
	}
	if stime, err = strconv.ParseUint(string(f[utimeIdx+1]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("proc stat: stime: %w", err)
	}
	return utime, stime, nil
}

// ParseCtxsw returns voluntary_ctxt_switches + nonvoluntary_ctxt_switches
// from a /proc/PID/status or /proc/PID/task/TID/status file.
func ParseCtxsw(b []byte) (uint64, error) {
	var sum uint64
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		switch string(key) {
		case "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches":
			n, err := strconv.ParseUint(string(bytes.TrimSpace(val)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("proc status: %s: %w", key, err)
			}
			sum += n
			found++
		}
	}
	if found != 2 {
		return 0, errors.New("proc status: missing ctxt_switches lines")
	}
	return sum, nil
}

// atClkTck is AT_CLKTCK from <elf.h>.
const atClkTck = 17

// ClockTicks returns the clock-tick rate used by /proc/PID/stat, taken from
// the AT_CLKTCK auxiliary vector entry, or 100 (USER_HZ on Linux) when that
// cannot be read.
var ClockTicks = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if hz, ok := ParseAuxvClkTck(b); ok {
		return hz
	}
	return 100
})

// ParseAuxvClkTck finds AT_CLKTCK in a 64-bit little-endian auxiliary vector.
func ParseAuxvClkTck(b []byte) (int, bool) {
	for len(b) >= 16 {
		k := binary.LittleEndian.Uint64(b)
		v := binary.LittleEndian.Uint64(b[8:])
		b = b[16:]
		if k == 0 {
			break
		}
		if k == atClkTck && v > 0 {
			return int(v), true
		}
	}
	return 0, false
}
