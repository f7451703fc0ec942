package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// FuzzLoad loads arbitrary files: Load never panics, a nil Config always
// comes with an error diagnostic, every diagnostic subject lies inside the
// file, a Config never comes with an error, and the diagnostics render as
// UTF-8, whatever the bytes.
// Loaded configs also go through the test schemas (ApplySchema).
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/errors/*.hcl")
	seeds = append(seeds, "testdata/full/config.hcl", "../../config.hcl")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(""))
	f.Add([]byte("server {\n  notify_token = \"x\n}\n"))
	// One file per fuzz process, rewritten for each input (inputs run one
	// at a time in a process).
	path := filepath.Join(f.TempDir(), "config.hcl")
	f.Fuzz(func(t *testing.T, src []byte) {
		if err := os.WriteFile(path, src, 0o600); err != nil {
			t.Fatal(err)
		}
		opt := Options{Builtins: testBuiltins, Getenv: func(string) string { return "" }}
		cfg, diags := Load(path, opt)
		checkDiags(t, path, src, diags)
		if cfg == nil {
			if !diags.HasErrors() {
				t.Fatalf("nil Config without an error diagnostic: %v", diags)
			}
			withSubject := false
			for _, d := range diags {
				withSubject = withSubject || d.Severity == hcl.DiagError && d.Subject != nil
			}
			if !withSubject {
				t.Fatalf("nil Config, but no error diagnostic points into the file: %v", diags)
			}
		} else if diags.HasErrors() {
			t.Fatalf("a Config with error diagnostics: %v", diags)
		}
		if cfg != nil {
			for _, n := range cfg.Notifiers {
				if s, ok := testSchemas[n.Plugin]; ok {
					more := cfg.ApplySchema(n, s)
					checkDiags(t, path, src, more)
					diags = append(diags, more...)
				}
			}
		}
		renderDiags(t, cfg, diags)
	})
}

// renderDiags writes the diagnostics as validate does (through cfg when
// there is one): a panic fails, and so does output that is not UTF-8.
func renderDiags(t *testing.T, cfg *Config, diags hcl.Diagnostics) {
	t.Helper()
	var out bytes.Buffer
	if cfg != nil {
		cfg.WriteDiagnostics(&out, diags)
	} else {
		WriteDiagnostics(&out, nil, diags)
	}
	if !utf8.Valid(out.Bytes()) {
		t.Fatalf("diagnostics are not UTF-8:\n%q", out.String())
	}
}

// checkDiags checks that every subject and context range lies inside src.
func checkDiags(t *testing.T, path string, src []byte, diags hcl.Diagnostics) {
	t.Helper()
	lines := bytes.Count(src, []byte("\n")) + 1
	in := func(what string, d *hcl.Diagnostic, r *hcl.Range) {
		if r == nil {
			return
		}
		if r.Filename != path {
			t.Fatalf("%s of %q names file %q; want %q", what, d.Summary, r.Filename, path)
		}
		for _, p := range []hcl.Pos{r.Start, r.End} {
			if p.Byte < 0 || p.Byte > len(src) || p.Line < 1 || p.Line > lines || p.Column < 1 {
				t.Fatalf("%s of %q is outside the file (%d bytes, %d lines): %+v", what, d.Summary, len(src), lines, *r)
			}
		}
		if r.End.Byte < r.Start.Byte {
			t.Fatalf("%s of %q ends before it starts: %+v", what, d.Summary, *r)
		}
	}
	for _, d := range diags {
		in("subject", d, d.Subject)
		in("context", d, d.Context)
	}
}
