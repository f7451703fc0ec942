package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The dependency rules: core imports no concrete plugin, only the plugin
// host imports the wire protocol (pluginpb), the plugin SDK imports
// nothing of core, a plugin imports no core and no other plugin (its tests
// may import plugins/fakes), and the examples are built like a third
// party's, without core.

const mod = "github.com/ringside/ringside/"

// goList runs go list with args in dir (a folder of the repository, ""
// for the main module's) and returns its output's lines.
func goList(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = filepath.Join(root, dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s in %s: %v\n%s", strings.Join(args, " "), cmd.Dir, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// sdkPackages is the folder and the pattern that list the plugin SDK's
// packages: its own module when plugins/sdk has a go.mod, else the main
// module's plugins/sdk/....
func sdkPackages() (dir, pattern string) {
	if _, err := os.Stat(filepath.Join(root, "plugins", "sdk", "go.mod")); err == nil {
		return "plugins/sdk", "./..."
	}
	return "", "./plugins/sdk/..."
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// TestDependencyRules checks that no package of a set depends, directly
// or not, on a forbidden package.
func TestDependencyRules(t *testing.T) {
	sdkDir, sdkPattern := sdkPackages()
	tests := []struct {
		name      string
		dir, pkgs string
		forbidden []string
		allowed   []string
	}{
		{"core imports no concrete plugin", "", "./core/...", []string{mod + "plugins/"}, []string{mod + "plugins/sdk/", mod + "plugins/sdk "}},
		{"the plugin SDK imports nothing of core", sdkDir, sdkPattern, []string{mod + "core/"}, nil},
		{"plugins import no core", "", "./plugins/...", []string{mod + "core/"}, nil},
		// The device directory is core's own store: no protocol or SDK type
		// reaches it.
		{"the directory imports no plugin code", "", "./core/internal/directory/...", []string{mod + "plugins/"}, nil},
		// The examples are built on the SDK alone, like a third party's
		// (the load test on the fakes as well).
		{"examples/console-plugin imports no core", "", "./examples/console-plugin", []string{mod + "core/"}, nil},
		{"examples/slack-plugin imports no core", "", "./examples/slack-plugin", []string{mod + "core/"}, nil},
		{"examples/app-server imports no core", "", "./examples/app-server", []string{mod + "core/"}, nil},
		{"examples/loadtest imports no core", "", "./examples/loadtest", []string{mod + "core/"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, dep := range goList(t, tc.dir, "-deps", "-test=false", "-f", "{{.ImportPath}}", tc.pkgs) {
				if hasAnyPrefix(dep, tc.forbidden) && !hasAnyPrefix(dep+" ", tc.allowed) {
					t.Errorf("%s depends on %s", tc.pkgs, dep)
				}
			}
		})
	}
}

// TestOnlyTheHostImportsPluginpb checks that no package of the main
// module but the plugin host (core/internal/pluginhost and below) imports
// the plugin protocol's generated code, in its code or its tests: the rest
// of core speaks its own types. The load generator is the one other host:
// its floor server drives ringside's apns plugin over the protocol itself,
// to measure what the protocol costs without ringside.
func TestOnlyTheHostImportsPluginpb(t *testing.T) {
	const pluginpb = mod + "plugins/sdk/pluginpb"
	for _, line := range goList(t, "", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "./...") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == mod+"core/internal/pluginhost" || strings.HasPrefix(f[0], mod+"core/internal/pluginhost/") ||
			f[0] == mod+"examples/loadtest" {
			continue
		}
		if contains(f[1:], pluginpb) {
			t.Errorf("%s imports %s; only the plugin host may", f[0], pluginpb)
		}
	}
}

// TestPluginsDependOnlyOnSDK checks that each plugin package is a plain
// SDK user: it imports no other plugin, and its tests none but the fakes.
func TestPluginsDependOnlyOnSDK(t *testing.T) {
	const plugins = mod + "plugins/"
	// plugin is the plugin a package of plugins/ belongs to.
	plugin := func(pkg string) string {
		name, _, _ := strings.Cut(strings.TrimPrefix(pkg, plugins), "/")
		return name
	}
	for _, line := range goList(t, "", "-f", `{{.ImportPath}} {{join .Imports " "}} | {{join .TestImports " "}} {{join .XTestImports " "}}`, "./plugins/...") {
		pkg, rest, _ := strings.Cut(line, " ")
		code, tests, _ := strings.Cut(rest, "|")
		check := func(imports string, allowed ...string) {
			for _, imp := range strings.Fields(imports) {
				if strings.HasPrefix(imp, plugins) && plugin(imp) != plugin(pkg) && !contains(allowed, plugin(imp)) {
					t.Errorf("%s imports another plugin, %s", pkg, imp)
				}
			}
		}
		check(code, "sdk")
		check(tests, "sdk", "fakes")
	}
}
