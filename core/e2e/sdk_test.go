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

// TestPluginOutsideRepository follows docs/writing-a-plugin.md outside the
// repository: it runs the commands of its step 1 (a folder, go mod init,
// the SDK required from a checkout through a replace), writes the plugin
// from its marked code blocks, and builds and tests it against the SDK
// module alone: the conformance suite among its tests.
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

	// Step 1 as the guide writes it: its commands, run from a folder that
	// holds a ringside checkout as ../ringside of the plugin's folder.
	work := t.TempDir()
	if err := os.Symlink(root, filepath.Join(work, "ringside")); err != nil {
		t.Fatal(err)
	}
	steps, err := guideSetup(guide)
	if err != nil {
		t.Fatalf("docs/writing-a-plugin.md: %v", err)
	}
	setup := exec.Command("sh", "-e", "-c", steps)
	setup.Dir = work
	setup.Env = append(os.Environ(), "GOWORK=off")
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("the guide's step 1:\n%s\n%v\n%s", steps, err, out)
	}
	dir := filepath.Join(work, "pager-plugin")
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The SDK's go.sum stands in for the checksum database, which this
	// machine cannot reach: go mod tidy then verifies the modules it takes
	// from the module cache or the proxy against it.
	sdkDir := filepath.Join(root, "plugins", "sdk")
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
	if !strings.Contains(string(mod), sdkModule+" v0.0.0 => ") {
		t.Errorf("the plugin's module graph does not take the SDK from the checkout:\n%s", mod)
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

// guideSetup returns the commands of the guide's step 1 for an SDK that is
// not published: the block that makes the folder and its module, and the
// block that requires the SDK from a checkout, joined into one script.
func guideSetup(guide []byte) (string, error) {
	step := string(guide)
	start := strings.Index(step, "\n## 1. ")
	if start < 0 {
		return "", fmt.Errorf("no section \"## 1.\"")
	}
	step = step[start:]
	if end := strings.Index(step[1:], "\n## "); end >= 0 {
		step = step[:end+1]
	}
	var script []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(step, -1) {
		block := strings.TrimSpace(m[1])
		if strings.HasPrefix(block, "mkdir ") || strings.HasPrefix(block, "go mod edit -require=") {
			script = append(script, block)
		}
	}
	if len(script) != 2 {
		return "", fmt.Errorf("step 1 has %d of its two setup blocks (mkdir …, go mod edit -require=…)", len(script))
	}
	return strings.Join(script, "\n"), nil
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
