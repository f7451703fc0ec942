package sdk

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoCoreImports keeps the SDK free of ringside's core: plugin authors
// import the SDK alone.
func TestNoCoreImports(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(gobin, "list", "-deps", "github.com/ringside/ringside/plugins/sdk/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		if strings.HasPrefix(dep, "github.com/ringside/ringside/") && !strings.HasPrefix(dep, "github.com/ringside/ringside/plugins/sdk") {
			t.Errorf("the SDK depends on %s", dep)
		}
	}
	// Nor does its module require ringside's: a plugin's build pulls the
	// SDK's modules alone.
	out, err = exec.Command(gobin, "list", "-m", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if mod, _, _ := strings.Cut(strings.TrimSpace(line), " "); mod == "github.com/ringside/ringside" {
			t.Errorf("the SDK module requires %s", strings.TrimSpace(line))
		}
	}
}
