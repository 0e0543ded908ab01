package security

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv marks a re-executed test binary that runs operations for a
// test instead of tests.
const childEnv = "RINGFUSE_SECURITY_CHILD"

// childUmask is the umask children run under, so that the modes of the
// nodes they create do not depend on the environment.
const childUmask = 0o022

// childBin is a copy of the test binary that every user may execute (the
// go build directory is private to root). TestMain sets it.
var childBin string

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain())
	}
	if os.Geteuid() != 0 {
		fmt.Println("security tests need root; skipping")
		os.Exit(0)
	}
	dir, err := copyTestBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// copyTestBinary copies the running test binary into a fresh directory
// that every user may search and sets childBin. It returns the directory.
func copyTestBinary() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "ringfuse-security-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return dir, err
	}
	in, err := os.Open(self)
	if err != nil {
		return dir, err
	}
	defer in.Close()
	childBin = filepath.Join(dir, "security.test")
	out, err := os.OpenFile(childBin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return dir, err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return dir, err
	}
	return dir, out.Close()
}

// cred is a user the tests act as. Users need not exist in /etc/passwd.
type cred struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

// The ids of the users below. sharedGID is a group that some users have
// as a supplementary group.
const (
	nobodyID  = 65534
	userID    = 1000
	sharedGID = 1234
)

var (
	root    = cred{name: "root"}
	nobody  = cred{name: "nobody", uid: nobodyID, gid: nobodyID}
	nobodyG = cred{name: "nobody+1234", uid: nobodyID, gid: nobodyID, groups: []uint32{sharedGID}}
	user    = cred{name: "user1000", uid: userID, gid: userID}
)

// op is one operation a child performs. Path and Path2 are absolute.
type op struct {
	Op     string
	Path   string
	Path2  string `json:",omitempty"`
	Target string `json:",omitempty"` // a symlink's target, stored as is
	Name   string `json:",omitempty"` // an xattr name
	Data   string `json:",omitempty"`
	Mode   uint32 `json:",omitempty"`
	Flags  int    `json:",omitempty"`
	UID    int    `json:",omitempty"`
	GID    int    `json:",omitempty"`
	N      int    `json:",omitempty"`
	// Out is the output a test expects (not sent to the child).
	Out string `json:"-"`
}

// result is what an op gave: Err is "" or the errno's name ("EACCES").
type result struct {
	Err string
	Out string `json:",omitempty"`
}

func (r result) String() string {
	s := r.Err
	if s == "" {
		s = "ok"
	}
	if r.Out != "" {
		s += " " + strings.TrimSpace(r.Out)
	}
	return s
}

// childMain runs the ops on standard input and writes their results.
func childMain() int {
	syscall.Umask(childUmask)
	var ops []op
	if err := json.NewDecoder(os.Stdin).Decode(&ops); err != nil {
		fmt.Fprintln(os.Stderr, "child: decode:", err)
		return 2
	}
	res := make([]result, len(ops))
	for i, o := range ops {
		res[i] = do(o)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "child: encode:", err)
		return 2
	}
	return 0
}

// runAs runs ops as c in a child process and returns their results.
func runAs(t *testing.T, c cred, ops ...op) []result {
	t.Helper()
	res, err := runAsErr(c, ops...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// runAsErr is runAs for goroutines other than the test's.
func runAsErr(c cred, ops ...op) ([]result, error) {
	in, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(childBin)
	cmd.Env = []string{childEnv + "=1", "PATH=/usr/bin:/bin", "GORACE=halt_on_error=1 atexit_sleep_ms=0"}
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	for _, o := range ops {
		if o.Op == "writefd" {
			// Opened here, as root: the child writes through a
			// descriptor it could not have opened itself.
			f, err := os.OpenFile(o.Path, os.O_WRONLY|o.Flags, 0)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			cmd.ExtraFiles = []*os.File{f}
			break
		}
	}
	if c.uid != 0 || c.gid != 0 || c.groups != nil {
		groups := c.groups
		if groups == nil {
			groups = []uint32{}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: c.uid, Gid: c.gid, Groups: groups}}
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("child as %s: %v: %s", c.name, err, stderr.String())
	}
	var res []result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || len(res) != len(ops) {
		return nil, fmt.Errorf("child as %s: bad output %q (%v): %s", c.name, stdout.String(), err, stderr.String())
	}
	return res, nil
}

// errName names the errno in err ("" for nil).
func errName(err error) string {
	if err == nil {
		return ""
	}
	var e syscall.Errno
	if pe, ok := err.(*os.PathError); ok {
		err = pe.Err
	}
	if le, ok := err.(*os.LinkError); ok {
		err = le.Err
	}
	if se, ok := err.(*os.SyscallError); ok {
		err = se.Err
	}
	e, ok := err.(syscall.Errno)
	if !ok {
		return err.Error()
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// statLine summarizes the attributes the tests compare.
func statLine(st *unix.Stat_t) string {
	return fmt.Sprintf("mode=%#o uid=%d gid=%d nlink=%d", st.Mode, st.Uid, st.Gid, st.Nlink)
}

// do performs one op in the calling process.
func do(o op) result {
	var err error
	var out string
	switch o.Op {
	case "stat", "lstat":
		var st unix.Stat_t
		if o.Op == "stat" {
			err = unix.Stat(o.Path, &st)
		} else {
			err = unix.Lstat(o.Path, &st)
		}
		if err == nil {
			out = statLine(&st)
		}
	case "readdir":
		var ents []os.DirEntry
		ents, err = os.ReadDir(o.Path)
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		out = strings.Join(names, ",")
	case "read":
		var b []byte
		b, err = os.ReadFile(o.Path)
		out = string(b)
	case "write":
		// Flags add to O_WRONLY (O_CREAT, O_TRUNC, O_APPEND...).
		var fd int
		fd, err = unix.Open(o.Path, unix.O_WRONLY|o.Flags|unix.O_CLOEXEC, o.Mode)
		if err == nil {
			_, err = unix.Write(fd, []byte(o.Data))
			if cerr := unix.Close(fd); err == nil {
				err = cerr
			}
		}
	case "writefd":
		// The descriptor runAs opened as root, always fd 3.
		_, err = unix.Write(3, []byte(o.Data))
	case "open":
		var fd int
		fd, err = unix.Open(o.Path, o.Flags|unix.O_CLOEXEC, o.Mode)
		if err == nil {
			unix.Close(fd)
		}
	case "truncate":
		err = unix.Truncate(o.Path, int64(o.N))
	case "chmod":
		err = unix.Chmod(o.Path, o.Mode)
	case "chmodnofollow":
		// chmod of the node itself, a symlink included: through /proc
		// on an O_PATH descriptor, which does not follow the link.
		err = onPathFd(o.Path, func(p string) error { return unix.Chmod(p, o.Mode) })
	case "chown":
		err = unix.Chown(o.Path, o.UID, o.GID)
	case "lchown":
		err = unix.Lchown(o.Path, o.UID, o.GID)
	case "mkdir":
		err = unix.Mkdir(o.Path, o.Mode)
	case "mknod":
		err = unix.Mknod(o.Path, o.Mode, 0)
	case "symlink":
		err = unix.Symlink(o.Target, o.Path)
	case "link":
		err = unix.Linkat(unix.AT_FDCWD, o.Path, unix.AT_FDCWD, o.Path2, o.Flags)
	case "linkfd":
		// linkat(fd, "", AT_EMPTY_PATH) of an O_PATH descriptor: links
		// the object itself, wherever it is (needs CAP_DAC_READ_SEARCH).
		var fd int
		fd, err = unix.Open(o.Path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Linkat(fd, "", unix.AT_FDCWD, o.Path2, unix.AT_EMPTY_PATH)
			unix.Close(fd)
		}
	case "unlink":
		err = unix.Unlink(o.Path)
	case "rmdir":
		err = unix.Rmdir(o.Path)
	case "rename":
		err = unix.Renameat2(unix.AT_FDCWD, o.Path, unix.AT_FDCWD, o.Path2, uint(o.Flags))
	case "setxattr":
		err = unix.Setxattr(o.Path, o.Name, []byte(o.Data), 0)
	case "lsetxattr":
		err = unix.Lsetxattr(o.Path, o.Name, []byte(o.Data), 0)
	case "setfacl":
		// Name is "access" or "default", Data the ACL's short form.
		err = setACL(o.Path, "system.posix_acl_"+o.Name, o.Data)
	case "lremovexattr":
		err = unix.Lremovexattr(o.Path, o.Name)
	case "lutimes":
		ts := []unix.Timespec{{Sec: int64(o.N)}, {Sec: int64(o.N)}}
		err = unix.UtimesNanoAt(unix.AT_FDCWD, o.Path, ts, unix.AT_SYMLINK_NOFOLLOW)
	case "utimes":
		ts := []unix.Timespec{{Sec: int64(o.N)}, {Sec: int64(o.N)}}
		err = unix.UtimesNanoAt(unix.AT_FDCWD, o.Path, ts, 0)
	case "access":
		err = unix.Faccessat(unix.AT_FDCWD, o.Path, o.Mode, o.Flags)
	case "readlink":
		buf := make([]byte, unix.PathMax)
		var n int
		n, err = unix.Readlink(o.Path, buf)
		if err == nil {
			out = string(buf[:n])
		}
	case "hammer":
		// The client side of the rename race: rounds of raceRound on
		// the mount at Path until the file Path2 exists or N rounds.
		n, viaS := 0, 0
		for ; n < o.N; n++ {
			if _, err := os.Lstat(o.Path2); err == nil {
				break
			}
			viaS += raceRound(o.Path, n)
		}
		out = fmt.Sprint(n, " ", viaS)
	default:
		if f, ok := loopOps[o.Op]; ok {
			out, err = f(o)
		} else {
			err = fmt.Errorf("unknown op %q", o.Op)
		}
	}
	return result{Err: errName(err), Out: out}
}

// onPathFd opens path without following a final symlink (O_PATH) and
// runs f on its /proc/self/fd name.
func onPathFd(path string, f func(string) error) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return f(fmt.Sprintf("/proc/self/fd/%d", fd))
}
