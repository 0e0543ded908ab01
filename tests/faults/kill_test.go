package faults

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringfuse/ringfuse/internal/testmount"
	"github.com/ringfuse/ringfuse/mount"
)

// The writer children of TestKilledDaemonRestart. Each one writes files
// named w<ID>-<SEQ> in a directory of the mount, record by record, and
// fsyncs every syncEvery records; after each successful fsync it prints
// "ack NAME RECORDS" on standard output: those records are acknowledged
// and must survive the daemon's death. At its first error it prints
// "err OP ERRNO" and exits with writerFailed.
const (
	recSize     = 8 << 10 // bytes per record
	recsPerFile = 24      // records before a writer starts a new file
	syncEvery   = 3       // records between two fsyncs
	maxFiles    = 2000    // a writer stops there if nobody kills the daemon
	nWriters    = 4       // writer processes
	// writerFailed is a writer's exit status after an I/O error.
	writerFailed = 3
	// minAcks is how many fsyncs each writer must have had acknowledged
	// before the daemon is killed.
	minAcks = 4
)

// record returns the content of record r of file name: a header naming
// it, then letters that depend on the file, the record and the position,
// so that a record written at the wrong place or torn shows.
func record(name string, r int) []byte {
	b := make([]byte, recSize)
	h := fmt.Sprintf("%s record %d\n", name, r)
	copy(b, h)
	seed := 0
	for _, c := range name {
		seed = seed*31 + int(c)
	}
	for i := len(h); i < recSize; i++ {
		b[i] = 'a' + byte((seed+r*7+i)%26)
	}
	return b
}

// writerMain is the body of a writer child: DIR ID.
func writerMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "writer: want DIR ID")
		return 2
	}
	dir := args[0]
	id, err := strconv.Atoi(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 2
	}
	fail := func(op string, err error) int {
		fmt.Printf("err %s %d %v\n", op, errnoOf(err), err)
		return writerFailed
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail("open dir", err)
	}
	for seq := range maxFiles {
		name := fmt.Sprintf("w%d-%04d", id, seq)
		fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return fail("create", err)
		}
		for r := range recsPerFile {
			rec := record(name, r)
			for off := 0; off < len(rec); {
				n, err := unix.Pwrite(fd, rec[off:], int64(r*recSize+off))
				if err != nil {
					return fail("write", err)
				}
				off += n
			}
			if (r+1)%syncEvery == 0 {
				if err := unix.Fsync(fd); err != nil {
					return fail("fsync", err)
				}
				fmt.Printf("ack %s %d\n", name, r+1)
			}
		}
		if err := unix.Close(fd); err != nil {
			return fail("close", err)
		}
	}
	return 0
}

// writer is a running writer child, as seen by the test.
type writer struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	acked  map[string]int // file name → records acknowledged by fsync
	nAcks  int
	errOp  string
	errNo  syscall.Errno
	stderr bytes.Buffer
	done   chan struct{} // closed once the child is reaped
	exit   error
}

func startWriter(t *testing.T, dir string, id int) *writer {
	t.Helper()
	w := &writer{acked: map[string]int{}, done: make(chan struct{})}
	w.cmd = exec.Command(os.Args[0], dir, strconv.Itoa(id))
	w.cmd.Env = append(os.Environ(), roleEnv+"="+roleWriter)
	w.cmd.Stderr = &w.stderr
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.line(sc.Text())
		}
		w.exit = w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

// line records one line of the child's output.
func (w *writer) line(s string) {
	f := strings.Fields(s)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case len(f) == 3 && f[0] == "ack":
		n, _ := strconv.Atoi(f[2])
		w.acked[f[1]] = n
		w.nAcks++
	case len(f) >= 3 && f[0] == "err":
		w.errOp = f[1]
		n, _ := strconv.Atoi(f[2])
		w.errNo = syscall.Errno(n)
	}
}

func (w *writer) acks() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nAcks
}

// checkPrefix checks that data is a prefix of the records of file name
// and holds at least the acked records.
func checkPrefix(name string, data []byte, acked int) error {
	if len(data) < acked*recSize {
		return fmt.Errorf("%s: %d bytes, but %d records (%d bytes) were acknowledged by fsync", name, len(data), acked, acked*recSize)
	}
	for r := 0; r*recSize < len(data); r++ {
		want := record(name, r)
		got := data[r*recSize : min(len(data), (r+1)*recSize)]
		if !bytes.Equal(got, want[:len(got)]) {
			return fmt.Errorf("%s: record %d differs from what was written", name, r)
		}
	}
	return nil
}

// TestKilledDaemonRestart SIGKILLs the daemon while writer processes write
// and fsync files through it. The writers must fail with ENOTCONN or
// ECONNABORTED (over io_uring also ECANCELED or EINTR, see isDaemonGone) rather
// than hang, the dead mount must answer ENOTCONN and
// unmount, and a daemon restarted on the same mount point must show every
// byte that fsync acknowledged, as must the backing directory. Unacknowledged
// tails may be shorter, but never different from what was written.
func TestKilledDaemonRestart(t *testing.T) {
	for _, tr := range testmount.Transports {
		t.Run(tr, func(t *testing.T) {
			src, mnt := t.TempDir(), t.TempDir()
			d := startDaemon(t, tr, src, mnt)
			if err := within(t, opTimeout, "mkdir", func() error { return os.Mkdir(filepath.Join(mnt, "data"), 0o755) }); err != nil {
				t.Fatal(err)
			}
			var ws []*writer
			for i := range nWriters {
				ws = append(ws, startWriter(t, filepath.Join(mnt, "data"), i))
			}
			deadline := time.Now().Add(opTimeout)
			for _, w := range ws {
				for w.acks() < minAcks {
					select {
					case <-w.done:
						t.Fatalf("writer ended early: %v (%s %v)\n%s", w.exit, w.errOp, w.errNo, w.stderr.String())
					default:
					}
					if time.Now().After(deadline) {
						t.Fatalf("writers made no progress: %d acks after %v", w.acks(), opTimeout)
					}
					time.Sleep(pollInterval)
				}
			}
			d.cmd.Process.Kill()
			d.wait(t)
			for i, w := range ws {
				waitClosed(t, w.done, opTimeout, fmt.Sprintf("writer %d after the daemon died", i))
				if ee, ok := w.exit.(*exec.ExitError); !ok || ee.ExitCode() != writerFailed {
					t.Errorf("writer %d: exit %v, want status %d\n%s", i, w.exit, writerFailed, w.stderr.String())
				}
				if !isDaemonGone(tr, w.errNo) {
					t.Errorf("writer %d: %s failed with %v, want ENOTCONN or ECONNABORTED (or ECANCELED or EINTR over io_uring)", i, w.errOp, w.errNo)
				}
				t.Logf("writer %d: %d fsyncs acknowledged, then %s: %v", i, w.acks(), w.errOp, w.errNo)
			}
			waitConnGone(t, mnt)
			if err := within(t, opTimeout, "unmount of the dead mount", func() error { return mount.Unmount(mnt) }); err != nil {
				t.Fatalf("unmount of the dead mount: %v", err)
			}
			checkUnmounted(t, mnt)

			d2 := startDaemon(t, tr, src, mnt)
			for _, root := range []string{filepath.Join(mnt, "data"), filepath.Join(src, "data")} {
				var files, acked int
				err := within(t, opTimeout, "verify "+root, func() error {
					var err error
					files, acked, err = verifyWriters(root, ws)
					return err
				})
				if err != nil {
					t.Errorf("%s: %v", root, err)
				}
				t.Logf("%s: %d files match what was written, %d fsync-acknowledged records present", root, files, acked)
			}
			d2.stop(t)
		})
	}
}

// verifyWriters checks every file in dir against the writers' records and
// acknowledgements, and counts the files and acknowledged records it
// checked.
func verifyWriters(dir string, ws []*writer) (files, acked int, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	seen := map[string]bool{}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return 0, 0, err
		}
		n := 0
		for _, w := range ws {
			if a, ok := w.acked[e.Name()]; ok {
				n = a
			}
		}
		if err := checkPrefix(e.Name(), data, n); err != nil {
			return 0, 0, err
		}
		seen[e.Name()] = true
		files++
		acked += n
	}
	for _, w := range ws {
		for name := range w.acked {
			if !seen[name] {
				return 0, 0, fmt.Errorf("%s: acknowledged by fsync, but missing", name)
			}
		}
	}
	return files, acked, nil
}
