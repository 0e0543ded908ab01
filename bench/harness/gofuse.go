package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ModulePath is the import path of the benchmark module.
const ModulePath = "github.com/ringfuse/ringfuse/bench"

// FindModuleDir returns the directory of the ringfuse/bench module that
// contains dir, by looking for its go.mod in dir and its parents.
func FindModuleDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+ModulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s module above the current directory", ModulePath)
		}
		dir = parent
	}
}

// BuildGofuse builds cmd/gofuse-loopback of the module in moduleDir into
// outDir and returns the binary's path.
func BuildGofuse(ctx context.Context, moduleDir, outDir string) (string, error) {
	if moduleDir == "" {
		return "", errors.New("build gofuse-loopback: no module directory")
	}
	out := filepath.Join(outDir, "gofuse-loopback")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/gofuse-loopback")
	cmd.Dir = moduleDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build gofuse-loopback: %w\n%s", err, b)
	}
	return out, nil
}
