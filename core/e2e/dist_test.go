package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The production kit in dist/: the systemd unit, the example config, and
// the build docs/install.md describes.

// TestDistSystemdUnit: systemd-analyze verify finds nothing to say about
// the shipped unit, its ExecStart pointed at the binary under test, and the
// unit reloads on SIGHUP and waits longer than a drain for a stop.
func TestDistSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit is not verified")
	}
	b, err := os.ReadFile(filepath.Join(root, "dist", "systemd", "ringside.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"ExecStart=/usr/local/bin/ringside serve -config /etc/ringside/config.hcl\n",
		"ExecReload=/bin/kill -HUP $MAINPID\n",
		"StateDirectory=ringside\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit has no line %q", want)
		}
	}
	// A stop waits for shutdown_grace (10s by default), about a second to
	// stop the plugins, and up to 5s to flush spans.
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)$`).FindStringSubmatch(unit)
	if m == nil {
		t.Error("the unit sets no TimeoutStopSec")
	} else if d, err := time.ParseDuration(m[1]); err != nil || d <= 16*time.Second {
		t.Errorf("TimeoutStopSec=%s: want a duration above 16s (shutdown_grace 10s + 6s)", m[1])
	}

	path := filepath.Join(t.TempDir(), "ringside.service")
	writeFile(t, path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/ringside", ringsideBin)))
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDistConfig: the example production config is valid as shipped, with
// no secret in the environment.
func TestDistConfig(t *testing.T) {
	code, stdout, stderr := run(t, t.TempDir(), "validate", "-config", filepath.Join(root, "dist", "config.hcl"))
	if code != 0 || !strings.Contains(stdout, "config.hcl: ok (4 notifiers") {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestDistStaticBuild: the build docs/install.md gives (CGO_ENABLED=0, the
// version stamped) makes a binary with no dynamic loader that prints the
// stamped version and commit.
func TestDistStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("a build without cgo compiles every package again: skipped under -short")
	}
	bin := filepath.Join(t.TempDir(), "ringside")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags",
		"-s -w -X github.com/ringside/ringside/core/cli.Version=v1.2.3 -X github.com/ringside/ringside/core/cli.Commit=0123abc",
		"-o", bin, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary names a dynamic loader (PT_INTERP): not static")
		}
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	if got := string(out); !strings.HasPrefix(got, "ringside v1.2.3\ncommit 0123abc\ngo") {
		t.Errorf("version printed %q; want it to start with \"ringside v1.2.3\\ncommit 0123abc\\ngo\"", got)
	}
}
