package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file whose last line ends in "\r" (CRLF or old Mac line endings, no
// final "\n") with an error at its very end: the diagnostic must render
// with its source line and caret. validate and serve print it; a refused
// reload logs it.
func TestWriteDiagnosticsTrailingCR(t *testing.T) {
	for _, src := range []string{"A=#0\r", "server {\r\n}\r\nx = # todo\r"} {
		path := filepath.Join(t.TempDir(), "config.hcl")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, diags := Load(path, Options{Builtins: testBuiltins, Getenv: func(string) string { return "" }})
		if cfg != nil || !diags.HasErrors() {
			t.Fatalf("%q: want an error", src)
		}
		var out bytes.Buffer
		var panicked any
		func() {
			defer func() { panicked = recover() }()
			WriteDiagnostics(&out, nil, diags)
		}()
		if panicked != nil {
			t.Fatalf("WriteDiagnostics panics on %q: %v", src, panicked)
		}
		if !strings.Contains(out.String(), path+":") || !strings.Contains(out.String(), "^") {
			t.Errorf("%q: diagnostics without position or caret:\n%s", src, out.String())
		}
	}
}
