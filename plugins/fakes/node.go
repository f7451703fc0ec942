package fakes

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// NodeModule returns node and the folder of the npm package name, which
// the tests that check ringside against an independent implementation run
// through Node. The package is installed with `npm install --prefix
// $RINGSIDE_NPM_DIR name@version` (default $HOME/.cache/ringside-npm;
// .ci/run installs it). NodeModule skips the test, saying why, when node
// or the package is missing, and logs a version other than version.
func NodeModule(t testing.TB, name, version string) (node, module string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("node is not installed: the check against npm %s needs it (.ci/run installs it)", name)
	}
	dir := os.Getenv("RINGSIDE_NPM_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Skipf("no RINGSIDE_NPM_DIR and no home folder: %v", err)
		}
		dir = filepath.Join(home, ".cache", "ringside-npm")
	}
	module = filepath.Join(dir, "node_modules", name)
	raw, err := os.ReadFile(filepath.Join(module, "package.json"))
	if err != nil {
		t.Skipf("npm package %s is not in %s (npm install --prefix %s %s@%s): %v", name, dir, dir, name, version, err)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil || pkg.Version != version {
		t.Logf("%s version %q (the test was written against %s)", name, pkg.Version, version)
	}
	return node, module
}
