package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// opcodeLine matches a request count line of ringfuse's statistics
// ("  LOOKUP           6").
var opcodeLine = regexp.MustCompile(`^\s+([A-Z][A-Z0-9_]*)\s+(\d+)$`)

// daemonStats asks the daemon for its statistics (SIGUSR1, printed to its
// standard error, which is logPath) and returns the request counts per
// opcode, summed over its channels.
func daemonStats(pid int, logPath string) (map[string]uint64, error) {
	st, err := os.Stat(logPath)
	if err != nil {
		return nil, err
	}
	off := st.Size()
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(logPath)
		if err != nil {
			return nil, err
		}
		chunk := b[min(off, int64(len(b))):]
		// The memory line ends a dump.
		if i := bytes.Index(chunk, []byte("\nmemory:")); i >= 0 || bytes.HasPrefix(chunk, []byte("memory:")) {
			return parseCounts(chunk), nil
		}
	}
	return nil, fmt.Errorf("no statistics from pid %d in %s", pid, logPath)
}

func parseCounts(b []byte) map[string]uint64 {
	m := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if g := opcodeLine.FindStringSubmatch(sc.Text()); g != nil {
			n, _ := strconv.ParseUint(g[2], 10, 64)
			m[g[1]] += n
		}
		if strings.HasPrefix(sc.Text(), "memory:") {
			break
		}
	}
	return m
}

// perfEvents are the credential system calls counted in the -count round.
var perfEvents = []string{"setfsuid", "setfsgid", "setgroups"}

// perfRun is a perf stat attached to the daemon, with its events enabled
// and disabled through its control descriptors.
type perfRun struct {
	cmd      *exec.Cmd
	out      string
	ctl, ack *os.File
	ackR     *bufio.Reader
}

// startPerf attaches perf stat to pid with its events disabled.
func startPerf(pid int, out string) (*perfRun, error) {
	var ev []string
	for _, e := range perfEvents {
		ev = append(ev, "syscalls:sys_enter_"+e)
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ackR, ackW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("perf", "stat", "-x,", "-o", out, "-D", "-1", "--control", "fd:3,4",
		"-e", strings.Join(ev, ","), "-p", strconv.Itoa(pid))
	cmd.ExtraFiles = []*os.File{ctlR, ackW} // perf's stderr says "Events enabled" each time: dropped
	err = cmd.Start()
	ctlR.Close()
	ackW.Close()
	if err != nil {
		return nil, err
	}
	return &perfRun{cmd, out, ctlW, ackR, bufio.NewReader(ackR)}, nil
}

// control sends perf a command and waits for its acknowledgement.
func (p *perfRun) control(c string) error {
	if _, err := p.ctl.WriteString(c + "\n"); err != nil {
		return err
	}
	// perf writes the acknowledgement with its terminating NUL.
	line, err := p.ackR.ReadString('\n')
	if err != nil || strings.TrimLeft(line, "\x00") != "ack\n" {
		return fmt.Errorf("perf %s: %q %v", c, line, err)
	}
	return nil
}

// stop ends perf and returns its counts.
func (p *perfRun) stop() (map[string]uint64, error) {
	derr := p.control("disable")
	p.ctl.Close()
	p.ack.Close()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	_ = p.cmd.Wait()
	if derr != nil {
		return nil, derr
	}
	b, err := os.ReadFile(p.out)
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		m[strings.TrimPrefix(f[2], "syscalls:sys_enter_")] = n
	}
	return m, nil
}
