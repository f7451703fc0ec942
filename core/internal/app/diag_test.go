package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/config"
	goldenfile "github.com/ringside/ringside/core/internal/golden"
)

// A plugin that does not start is reported at its plugin block's command
// (at its sha256 for a checksum mismatch), once whatever the number of
// notifiers using it, saying what happened and what to do: what
// `ringside validate` prints, in testdata/start_*.golden (the test's
// folder shows as $DIR).
func TestPluginStartDiagnostics(t *testing.T) {
	const sh = "#!/bin/sh\n"
	for _, tc := range []struct {
		name    string
		files   map[string]string // name → contents of a file
		mode    os.FileMode       // the files' mode; 0 is 0o755
		timeout time.Duration     // PluginStartTimeout; 0 is the default
		command string
		extra   string // more of the plugin block
	}{
		{name: "missing", command: `["./plugins/console"]`},
		{name: "not_in_path", command: `["ringside-no-such-plugin"]`},
		{name: "not_executable", files: map[string]string{"console": sh}, mode: 0o644, command: `["./console"]`},
		{name: "folder", files: map[string]string{"plugins/x": sh}, command: `["./plugins"]`},
		{name: "checksum", files: map[string]string{"console": sh + "exit 0\n"}, command: `["./console"]`,
			extra: `  sha256  = "0000000000000000000000000000000000000000000000000000000000000000"` + "\n"},
		{name: "exits_at_once", files: map[string]string{"console": sh + "exit 3\n"}, command: `["./console", "-v"]`},
		{name: "not_a_plugin", files: map[string]string{"console": sh + "echo 'usage: console [-v] FILE'\nexec sleep 5\n"}, command: `["./console"]`},
		{name: "other_protocol", files: map[string]string{"console": sh + "echo '1|99|tcp|127.0.0.1:1|grpc'\nexec sleep 5\n"}, command: `["./console"]`},
		{name: "hangs", files: map[string]string{"console": sh + "exec sleep 5\n"}, timeout: 300 * time.Millisecond, command: `["./console"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, text := range tc.files {
				path := filepath.Join(dir, name)
				mode := tc.mode
				if mode == 0 {
					mode = 0o755
				}
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(text), mode); err != nil {
					t.Fatal(err)
				}
			}
			src := "plugin \"console\" {\n  command = " + tc.command + "\n" + tc.extra + "}\n\n" +
				"notifier \"desk\" {\n  plugin = \"console\"\n}\n\n" +
				"notifier \"lobby\" {\n  plugin = \"console\"\n}\n\n" +
				"route \"all\" {\n  notify = [\"desk\", \"lobby\"]\n}\n"
			path := filepath.Join(dir, "config.hcl")
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			opt := Options{Builtins: []string{"webhook"}, Getenv: func(string) string { return "" }, PluginStartTimeout: tc.timeout}
			cfg, diags := LoadConfig(path, opt)
			if diags.HasErrors() {
				t.Fatalf("load: %v", diags)
			}
			rt, diags := Start(context.Background(), cfg, opt)
			if rt != nil {
				rt.Close()
				t.Fatal("Start succeeded")
			}
			if len(diags) != 1 {
				t.Errorf("%d diagnostics; want 1 for the plugin block: %v", len(diags), diags)
			}
			var buf bytes.Buffer
			WriteDiagnostics(&buf, cfg, diags)
			got := strings.ReplaceAll(buf.String(), dir, "$DIR")
			goldenfile.Check(t, filepath.Join("testdata", "start_"+tc.name+".golden"), got)
		})
	}
}

// notStarted keeps a built-in plugin's failure at its notifier, with the
// error as it is: the binary is ringside itself.
func TestNotStartedBuiltin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.hcl")
	src := "notifier \"hook\" {\n  plugin = \"webhook\"\n  url    = \"http://127.0.0.1:9/\"\n}\n\nroute \"all\" {\n  notify = [\"hook\"]\n}\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(path, config.Options{Builtins: []string{"webhook"}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	n := cfg.Notifiers[0]
	rt := &Runtime{Config: cfg, Tracing: tracingSettings(cfg, os.Getenv)}
	d := notStarted(n, nil, rt.spec(n, "/nonexistent/ringside", nil), os.ErrNotExist)
	if d.Subject == nil || d.Subject.Start.Line != 1 || d.Summary != `plugin "webhook" of notifier "hook" did not start` || d.Detail != os.ErrNotExist.Error() {
		t.Errorf("got %s at %v: %s", d.Summary, d.Subject, d.Detail)
	}
}
