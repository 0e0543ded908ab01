package harness

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// SystemInfo describes the machine a report was measured on.
type SystemInfo struct {
	Date          string `json:"date"`
	Kernel        string `json:"kernel"`       // uname -r
	EnableUring   string `json:"enable_uring"` // /sys/module/fuse/parameters/enable_uring
	CPUs          int    `json:"cpus"`
	MemTotal      string `json:"mem_total"`
	LoadAvg       string `json:"loadavg"` // /proc/loadavg when collected
	BackingDir    string `json:"backing_dir"`
	BackingFS     string `json:"backing_fs"`
	FioVersion    string `json:"fio_version"`
	FsmarkVersion string `json:"fsmark_version"`
	GoFuse        string `json:"gofuse,omitempty"` // go-fuse version in the gofuse-loopback binary
}

// CollectSystemInfo gathers what it can; fields it cannot read say "unknown".
// gofuse is the gofuse-loopback binary, or "".
func CollectSystemInfo(backing, gofuse string) SystemInfo {
	s := SystemInfo{
		Date:          time.Now().Format(time.RFC3339),
		Kernel:        "unknown",
		EnableUring:   "unknown (no /sys/module/fuse/parameters/enable_uring)",
		CPUs:          runtime.NumCPU(),
		MemTotal:      "unknown",
		BackingDir:    backing,
		BackingFS:     "unknown",
		FioVersion:    "unknown",
		FsmarkVersion: "unknown",
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		s.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/sys/module/fuse/parameters/enable_uring"); err == nil {
		s.EnableUring = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			s.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				s.MemTotal = strings.TrimSpace(v)
			}
		}
	}
	if fstype, src, ok := mountOf(backing); ok {
		s.BackingFS = fstype + " on " + src
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "fio", "--version").Output(); err == nil {
		s.FioVersion = strings.TrimSpace(string(out))
	}
	// fs_mark has no version flag; ask the package manager.
	if out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${Version}", "fsmark").Output(); err == nil && len(out) > 0 {
		s.FsmarkVersion = "fsmark " + strings.TrimSpace(string(out)) + " (Debian)"
	}
	if gofuse != "" {
		s.GoFuse = "unknown"
		if bi, err := buildinfo.ReadFile(gofuse); err == nil {
			for _, d := range bi.Deps {
				if d.Path == "github.com/hanwen/go-fuse/v2" {
					s.GoFuse = d.Path + " " + d.Version
				}
			}
		}
	}
	return s
}

// mountOf returns the filesystem type and source of the mount holding path.
func mountOf(path string) (fstype, source string, ok bool) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	all, err := ParseMountinfo(f)
	if err != nil {
		return "", "", false
	}
	best := -1
	for i, e := range all {
		if e.MountPoint == path || e.MountPoint == "/" || strings.HasPrefix(path, e.MountPoint+string(filepath.Separator)) {
			if best < 0 || len(e.MountPoint) >= len(all[best].MountPoint) {
				best = i
			}
		}
	}
	if best < 0 {
		return "", "", false
	}
	return all[best].FSType, all[best].Source, true
}
