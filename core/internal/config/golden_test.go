package config

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	goldenfile "github.com/ringside/ringside/core/internal/golden"
)

var testBuiltins = []string{"apns", "fcm", "sms", "webhook"}

// testSchemas stand in for what the built-in plugins report.
var testSchemas = map[string]Schema{
	"apns": {DeviceKind: "apns", Attributes: []Attribute{
		{Name: "team_id", Type: AttrString},
		{Name: "key_id", Type: AttrString},
		{Name: "key_file", Type: AttrString, Path: true},
		{Name: "certificate_file", Type: AttrString, Path: true},
		{Name: "certificate_password", Type: AttrString, Sensitive: true},
		{Name: "topic", Type: AttrString},
		{Name: "push_type", Type: AttrString},
		{Name: "priority", Type: AttrNumber},
		{Name: "production", Type: AttrBool},
		{Name: "endpoint", Type: AttrString},
	}},
	"fcm": {DeviceKind: "fcm", Attributes: []Attribute{
		{Name: "credentials_file", Type: AttrString, Path: true},
		{Name: "project_id", Type: AttrString},
		{Name: "priority", Type: AttrString},
		{Name: "endpoint", Type: AttrString},
	}},
	"webhook": {Attributes: []Attribute{
		{Name: "url", Type: AttrString, Required: true},
		{Name: "secret", Type: AttrString, Sensitive: true},
		{Name: "headers", Type: AttrStringMap},
		{Name: "timeout", Type: AttrDuration},
	}},
	"console": {DeviceKind: "console"},
	"sms": {DeviceKind: "phone", Attributes: []Attribute{
		{Name: "account_sid", Type: AttrString, Required: true},
		{Name: "auth_token", Type: AttrString, Required: true, Sensitive: true},
		{Name: "from", Type: AttrString, Required: true},
		{Name: "body", Type: AttrString, Required: true, Template: true},
		{Name: "endpoint", Type: AttrString},
		{Name: "recipients", Type: AttrStringList},
	}},
}

// loadAndApply is what `ringside validate` does: Load, then each notifier's schema.
func loadAndApply(t *testing.T, path string, getenv func(string) string) (*Config, hcl.Diagnostics) {
	t.Helper()
	cfg, diags := Load(path, Options{Builtins: testBuiltins, Getenv: getenv})
	if diags.HasErrors() {
		return nil, diags
	}
	for _, n := range cfg.Notifiers {
		s, ok := testSchemas[n.Plugin]
		if !ok {
			t.Fatalf("no test schema for plugin %q", n.Plugin)
		}
		diags = append(diags, cfg.ApplySchema(n, s)...)
	}
	return cfg, diags
}

func TestErrorGoldens(t *testing.T) {
	paths, err := filepath.Glob("testdata/errors/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 20 {
		t.Fatalf("found %d error cases; want at least 20", len(paths))
	}
	env := func(name string) string {
		if name == "SET" {
			return "value"
		}
		return ""
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".hcl")
		t.Run(name, func(t *testing.T) {
			_, diags := loadAndApply(t, path, env)
			if !diags.HasErrors() {
				t.Fatalf("no error diagnostics; got %v", diags)
			}
			for _, d := range diags {
				if d.Subject == nil {
					t.Errorf("diagnostic %q has no subject", d.Summary)
				} else if d.Subject.Filename != path {
					t.Errorf("subject file %q; want %q", d.Subject.Filename, path)
				}
			}
			var buf bytes.Buffer
			WriteDiagnostics(&buf, nil, diags)
			goldenfile.Check(t, strings.TrimSuffix(path, ".hcl")+".golden", buf.String())
		})
	}
}
