package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The plugin SDK is a Go module of its own (plugins/sdk): `go test ./...` at
// the repository's root does not reach its tests, and a plugin author builds
// against it alone. These tests run its suite, and build the plugin of
// docs/writing-a-plugin.md as a module outside the repository.

// sdkModule is the module path of the plugin SDK.
const sdkModule = "github.com/ringside/ringside/plugins/sdk"

// sdkGoCmd is a go command run in dir, outside any workspace, that ends with
// the test.
func sdkGoCmd(t *testing.T, dir string, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	return cmd
}

// TestSDKModule runs the plugin SDK module's own tests.
func TestSDKModule(t *testing.T) {
	args := []string{"test", "-count=1"}
	if testing.Short() {
		args = append(args, "-short")
	}
	cmd := sdkGoCmd(t, filepath.Join(root, "plugins", "sdk"), append(args, "./...")...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test ./... in plugins/sdk: %v\n%s", err, out)
	}
}

// fileMarker marks a code block of the guide as part of a file of the
// guide's plugin: `<!-- file: main.go -->` on the line before its fence.
var fileMarker = regexp.MustCompile(`^<!-- file: ([A-Za-z0-9_./-]+) -->$`)

// guideFiles returns the files the marked code blocks of the guide make,
// each the concatenation of its blocks in order.
func guideFiles(guide []byte) (map[string]string, error) {
	files := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(guide))
	file, line := "", 0
	inBlock := false
	for sc.Scan() {
		line++
		l := sc.Text()
		switch {
		case inBlock && strings.TrimSpace(l) == "```":
			inBlock, file = false, ""
		case inBlock:
			files[file] += l + "\n"
		case file != "":
			if !strings.HasPrefix(l, "```") {
				return nil, fmt.Errorf("line %d: the marker for %s is not followed by a code block", line, file)
			}
			inBlock = true
			if files[file] != "" {
				files[file] += "\n"
			}
		default:
			if m := fileMarker.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
				file = m[1]
			}
		}
	}
	if inBlock {
		return nil, fmt.Errorf("a code block of %s is not closed", file)
	}
	return files, sc.Err()
}

// TestPluginOutsideRepository builds the plugin of docs/writing-a-plugin.md
// from its marked code blocks as a module of its own, outside the
// repository, which requires the SDK module alone (through the replace the
// guide describes for an unpublished SDK), and runs its tests: the
// conformance suite among them.
func TestPluginOutsideRepository(t *testing.T) {
	guide, err := os.ReadFile(filepath.Join(root, "docs", "writing-a-plugin.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := guideFiles(guide)
	if err != nil {
		t.Fatalf("docs/writing-a-plugin.md: %v", err)
	}
	for _, name := range []string{"main.go", "main_test.go"} {
		if files[name] == "" {
			t.Fatalf("docs/writing-a-plugin.md marks no code block of %s (<!-- file: %s --> before its fence)", name, name)
		}
	}

	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sdkDir := filepath.Join(root, "plugins", "sdk")
	goMod := fmt.Sprintf("module example.com/pager-plugin\n\ngo 1.26.0\n\nrequire %s v0.0.0\n\nreplace %s => %s\n", sdkModule, sdkModule, sdkDir)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(sdkDir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}

	// go mod tidy fills in what the SDK needs, from the module cache or the
	// module proxy.
	if out, err := sdkGoCmd(t, dir, "mod", "tidy").CombinedOutput(); err != nil {
		if sdkCannotFetch(out) {
			t.Skipf("go mod tidy cannot fetch the SDK's dependencies here: %v\n%s", err, out)
		}
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}
	mod, err := exec.Command("go", "-C", dir, "list", "-m", "all").Output()
	if err != nil {
		t.Fatalf("go list -m all: %v", err)
	}
	if strings.Contains(string(mod), "github.com/ringside/ringside ") || strings.Contains(string(mod), "github.com/ringside/ringside\n") {
		t.Errorf("the plugin's module graph holds ringside's own module:\n%s", mod)
	}
	if out, err := sdkGoCmd(t, dir, "vet", "./...").CombinedOutput(); err != nil {
		t.Fatalf("go vet of the guide's plugin: %v\n%s", err, out)
	}
	if out, err := sdkGoCmd(t, dir, "build", "-o", filepath.Join(t.TempDir(), "pager-plugin"), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build of the guide's plugin: %v\n%s", err, out)
	}
	out, err := sdkGoCmd(t, dir, "test", "-count=1", "-v", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go test of the guide's plugin: %v\n%s", err, out)
	}
	for _, name := range []string{"TestConformance", "TestDeliver"} {
		if !strings.Contains(string(out), "--- PASS: "+name+" ") {
			t.Errorf("the guide's %s did not pass:\n%s", name, out)
		}
	}
}

// sdkCannotFetch reports whether a go command's output says it could not
// reach the module proxy (an offline machine, a module not cached).
func sdkCannotFetch(out []byte) bool {
	for _, s := range []string{"dial tcp", "no such host", "GOPROXY=off", "module lookup disabled", "connection refused", "i/o timeout", "TLS handshake timeout"} {
		if bytes.Contains(out, []byte(s)) {
			return true
		}
	}
	return false
}
