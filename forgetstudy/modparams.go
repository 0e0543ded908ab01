package forgetstudy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FuseParamDir holds the fuse module's parameters.
const FuseParamDir = "/sys/module/fuse/parameters"

// seriesParams are the module parameters of the kernel series
// (kernel/SERIES.md) with their off values. Every real-kernel run sets
// each one the kernel has to its variant's value or to off, so that no
// run inherits another's.
var seriesParams = []struct{ name, off string }{
	{"uring_forget_batch", "N"},
	{"uring_forget_cap", "0"},
	{"uring_forget_threshold", "0"},
	{"uring_forget_delay_ms", "0"},
	{"uring_small_ents", "N"},
}

// paramPlan is the writes that give a variant its module parameters:
// want's values, every other series parameter the kernel has off. It
// fails with [ErrNotSupported] if want names a parameter the kernel lacks.
func paramPlan(want map[string]string, have func(string) bool) (map[string]string, error) {
	plan := map[string]string{}
	known := map[string]bool{}
	for _, sp := range seriesParams {
		known[sp.name] = true
		if have(sp.name) {
			plan[sp.name] = sp.off
		}
	}
	for k, v := range want {
		if !known[k] {
			return nil, fmt.Errorf("forgetstudy: %s is not a parameter of the series", k)
		}
		if !have(k) {
			return nil, fmt.Errorf("%w: the kernel has no fuse module parameter %s (not the patched kernel?)", ErrNotSupported, k)
		}
		plan[k] = v
	}
	return plan, nil
}

// setParams writes the plan into dir and returns a function that restores
// the values read before.
func setParams(dir string, plan map[string]string) (restore func() error, err error) {
	old := map[string]string{}
	restore = func() error {
		var errs []error
		for k, v := range old {
			errs = append(errs, os.WriteFile(filepath.Join(dir, k), []byte(v+"\n"), 0))
		}
		return errors.Join(errs...)
	}
	for k, v := range plan {
		p := filepath.Join(dir, k)
		b, err := os.ReadFile(p)
		if err != nil {
			return restore, errors.Join(err, restore())
		}
		old[k] = strings.TrimSpace(string(b))
		if err := os.WriteFile(p, []byte(v+"\n"), 0); err != nil {
			return restore, errors.Join(fmt.Errorf("set %s=%s: %w", k, v, err), restore())
		}
	}
	return restore, nil
}

// haveParam says whether the running kernel's fuse module has parameter
// name.
func haveParam(name string) bool {
	_, err := os.Stat(filepath.Join(FuseParamDir, name))
	return err == nil
}
