package harness

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func fakeBinary(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildConfigsRingfuseMissing(t *testing.T) {
	_, err := BuildConfigs([]string{"native", "devfuse", "uring-qd8"}, ConfigParams{}, nil)
	if err == nil || !strings.Contains(err.Error(), "-ringfuse") || !strings.Contains(err.Error(), "uring-qd8") {
		t.Errorf("err = %v, want one naming -ringfuse and uring-qd8", err)
	}
	_, err = BuildConfigs([]string{"devfuse"}, ConfigParams{Ringfuse: "/no/such/ringfuse"}, nil)
	if err == nil || !strings.Contains(err.Error(), "/no/such/ringfuse") {
		t.Errorf("err = %v, want one naming the missing path", err)
	}
	_, err = BuildConfigs([]string{"gofuse"}, ConfigParams{}, nil)
	if err == nil || !strings.Contains(err.Error(), "-gofuse") {
		t.Errorf("err = %v, want one naming -gofuse", err)
	}
}

func TestBuildConfigs(t *testing.T) {
	rf := fakeBinary(t, "ringfuse")
	gf := fakeBinary(t, "gofuse-loopback")
	p := ConfigParams{
		Ringfuse:       rf,
		RingfuseOpts:   []string{"nopassthrough"},
		RingfuseStats:  true,
		Gofuse:         gf,
		GofuseAsyncDIO: true,
		Opts:           []string{"entry_timeout=1", "attr_timeout=0.5", "allow_other"},
	}
	hp := Config{Name: "hp", Argv: []string{"/opt/hp", "{src}", "{mnt}"}}
	cfgs, err := BuildConfigs([]string{"native", "devfuse", "uring-qd32", "uring-qd8-idle", "gofuse", "hp", "native"}, p, []Config{hp})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cfgs {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"native", "devfuse", "uring-qd32", "uring-qd8-idle", "gofuse", "hp"}) {
		t.Fatalf("names = %v", names)
	}
	if !cfgs[0].Native() || cfgs[1].Native() {
		t.Error("Native() wrong")
	}
	opts := "entry_timeout=1,attr_timeout=0.5,allow_other,nopassthrough"
	want := map[string][]string{
		"devfuse":        {rf, "mount", "--stats", "-o", opts, "/s", "/m"},
		"uring-qd32":     {rf, "mount", "--stats", "-o", opts + ",io_uring,io_uring_q_depth=32", "/s", "/m"},
		"uring-qd8-idle": {rf, "mount", "--stats", "-o", opts + ",io_uring,io_uring_q_depth=8,io_uring_sched_idle", "/s", "/m"},
		"gofuse":         {gf, "-async-dio", "-entry-timeout=1s", "-attr-timeout=500ms", "-allow-other", "/s", "/m"},
		"hp":             {"/opt/hp", "/s", "/m"},
	}
	for _, c := range cfgs[1:] {
		if got := c.Expand("/s", "/m"); !slices.Equal(got, want[c.Name]) {
			t.Errorf("%s: argv %q, want %q", c.Name, got, want[c.Name])
		}
	}
}

func TestBuildConfigsErrors(t *testing.T) {
	gf := fakeBinary(t, "gofuse-loopback")
	for name, tc := range map[string]struct {
		names []string
		p     ConfigParams
	}{
		"unknown":        {[]string{"nfs"}, ConfigParams{}},
		"bad depth":      {[]string{"uring-qdx"}, ConfigParams{Ringfuse: gf}},
		"gofuse word":    {[]string{"gofuse"}, ConfigParams{Gofuse: gf, Opts: []string{"writeback_cache"}}},
		"gofuse timeout": {[]string{"gofuse"}, ConfigParams{Gofuse: gf, Opts: []string{"entry_timeout=soon"}}},
		"not executable": {[]string{"devfuse"}, ConfigParams{Ringfuse: t.TempDir()}},
	} {
		if _, err := BuildConfigs(tc.names, tc.p, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("hp=/opt/passthrough_hp --nopassthrough -o io_uring {src} {mnt}")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "hp" || !slices.Equal(c.Argv, []string{"/opt/passthrough_hp", "--nopassthrough", "-o", "io_uring", "{src}", "{mnt}"}) {
		t.Errorf("ParseConfig = %+v", c)
	}
	for _, bad := range []string{"hp", "=/bin/x {mnt}", "hp=", "hp=/bin/x {src}"} {
		if _, err := ParseConfig(bad); err == nil {
			t.Errorf("ParseConfig(%q): no error", bad)
		}
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"fio", "--name=a b", "it's", "{src}", ""})
	if want := `fio '--name=a b' 'it'\''s' {src} ''`; got != want {
		t.Errorf("shellJoin = %s, want %s", got, want)
	}
}
