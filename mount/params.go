package mount

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Kernel parameters read by this package. The library reads them and never
// writes them; changing them is the administrator's decision.
const (
	// EnableUringParam is the fuse module parameter that allows FUSE over
	// io_uring ("Y" or "N"). It exists only in kernels built with
	// CONFIG_FUSE_IO_URING (Linux 6.14 and later).
	EnableUringParam = "/sys/module/fuse/parameters/enable_uring"

	// MaxPagesLimitParam is the sysctl fs.fuse.max_pages_limit: the most
	// pages a server may ask for in FUSE_INIT's max_pages.
	MaxPagesLimitParam = "/proc/sys/fs/fuse/max_pages_limit"

	// DefaultMaxPagesLimit is the kernel's max_pages_limit when the sysctl
	// is absent (FUSE_DEFAULT_MAX_PAGES_LIMIT, also the value of kernels
	// before the sysctl existed).
	DefaultMaxPagesLimit = 256
)

// Paths of the parameters; variables so that tests can redirect them.
var (
	enableUringPath   = EnableUringParam
	maxPagesLimitPath = MaxPagesLimitParam
)

// UringEnabled reports whether the kernel allows FUSE over io_uring, by
// reading [EnableUringParam]. It reads the file on every call, because root
// may change the parameter at run time; a server should call it once per
// mount. If the file is missing, the kernel was built without
// CONFIG_FUSE_IO_URING (or the fuse module is not loaded) and the error wraps
// [ErrNotSupported].
func UringEnabled() (bool, error) {
	b, err := os.ReadFile(enableUringPath)
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("mount: FUSE over io_uring: %s missing (kernel without CONFIG_FUSE_IO_URING, or fuse not loaded): %w",
			enableUringPath, ErrNotSupported)
	}
	if err != nil {
		return false, fmt.Errorf("mount: read %s: %w", enableUringPath, err)
	}
	switch v := strings.TrimSpace(string(b)); v {
	case "Y", "y", "1":
		return true, nil
	case "N", "n", "0":
		return false, nil
	default:
		return false, fmt.Errorf("mount: %s: unexpected value %q", enableUringPath, v)
	}
}

// MaxPagesLimit returns the kernel's limit on FUSE_INIT's max_pages, read
// from [MaxPagesLimitParam], or [DefaultMaxPagesLimit] if the sysctl does not
// exist.
func MaxPagesLimit() (uint32, error) {
	b, err := os.ReadFile(maxPagesLimitPath)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultMaxPagesLimit, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mount: read %s: %w", maxPagesLimitPath, err)
	}
	v := strings.TrimSpace(string(b))
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("mount: %s: unexpected value %q", maxPagesLimitPath, v)
	}
	return uint32(n), nil
}
