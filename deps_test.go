package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyRules keeps the dependency rules of STYLE.md: core imports
// no concrete plugin, and the plugin SDK and the plugins import no core.
func TestDependencyRules(t *testing.T) {
	const mod = "github.com/ringside/ringside/"
	tests := []struct {
		pkgs      string
		forbidden []string
		allowed   []string
	}{
		{"./core/...", []string{mod + "plugins/"}, []string{mod + "plugins/sdk"}},
		{"./plugins/...", []string{mod + "core/"}, nil},
		// External plugin examples are built on the SDK alone, like a
		// third party's (examples/loadtest is a tool and may use core).
		{"./examples/console-plugin", []string{mod + "core/"}, nil},
		{"./examples/slack-plugin", []string{mod + "core/"}, nil},
		{"./examples/app-server", []string{mod + "core/"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.pkgs, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-test=false", "-f", "{{.ImportPath}}", tc.pkgs).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				for _, f := range tc.forbidden {
					if !strings.HasPrefix(dep, f) || hasAnyPrefix(dep, tc.allowed) {
						continue
					}
					t.Errorf("%s depends on %s", tc.pkgs, dep)
				}
			}
		})
	}
}

// TestPluginsDependOnlyOnSDK checks each plugin package is a plain SDK
// user: it imports no other plugin.
func TestPluginsDependOnlyOnSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./plugins/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const plugins = "github.com/ringside/ringside/plugins/"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, plugins) && !strings.HasPrefix(imp, plugins+"sdk") && !strings.HasPrefix(f[0], imp) {
				t.Errorf("%s imports another plugin, %s", f[0], imp)
			}
		}
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
