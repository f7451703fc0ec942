package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ringside/ringside/core/internal/logtest"
	"github.com/ringside/ringside/core/internal/pluginhost"
	"github.com/ringside/ringside/core/internal/telemetry"
	"github.com/ringside/ringside/plugins/webhook"
)

// TestMain serves the webhook plugin when Start launches this test binary
// as `plugin webhook`.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "plugin" && os.Args[2] == "webhook" {
		webhook.Serve()
		os.Exit(0)
	}
	code := m.Run()
	pluginhost.Cleanup()
	os.Exit(code)
}

// Start names each disabled notifier a route names in one WARN line, with
// why, and gauges the configured and enabled notifiers; a reload does both
// again.
func TestStartReportsDisabledNotifiers(t *testing.T) {
	const text = `
notifier "hook" {
  plugin = "webhook"
  url    = "http://127.0.0.1:9/hook"
}

notifier "ios" {
  plugin  = "webhook"
  devices = "apns"
  enabled = env("APNS_KEY_ID") != ""
  url     = "http://127.0.0.1:9/ios"
}

notifier "spare" {
  plugin  = "webhook"
  enabled = false
  url     = "http://127.0.0.1:9/spare"
}

route "a" {
  notify   = ["hook", "ios"]
  continue = true
}

route "b" {
  notify = ["ios"]
}
`
	path := filepath.Join(t.TempDir(), "config.hcl")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var logs logtest.Buffer
	m := telemetry.NewMetrics()
	opt := Options{Builtins: []string{"webhook"}, Executable: exe, Getenv: func(string) string { return "" }, Logger: logs.Logger(), Metrics: m}
	cfg, diags := LoadConfig(path, opt)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	rt, diags := Start(context.Background(), cfg, opt)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	check := func(when string) {
		t.Helper()
		warns := logs.Find("notifier disabled: the routes naming it deliver nothing through it")
		if len(warns) != 1 {
			t.Fatalf("%s: got %d disabled lines; want 1 (ios, named twice; spare is named by no route)\n%s", when, len(warns), logs.String())
		}
		w := warns[0]
		if w["level"] != "WARN" || w["notifier"] != "ios" || w["plugin"] != "webhook" ||
			w["reason"] != `enabled = env("APNS_KEY_ID") != "" is false: APNS_KEY_ID is not set` {
			t.Errorf("%s: got %v", when, w)
		}
		if got := testutil.ToFloat64(m.Notifiers); got != 3 {
			t.Errorf("%s: ringside_notifiers = %v; want 3", when, got)
		}
		if got := testutil.ToFloat64(m.NotifiersEnabled); got != 1 {
			t.Errorf("%s: ringside_notifiers_enabled = %v; want 1", when, got)
		}
	}
	check("start")
	if d := rt.Disabled["ios"]; d.Kind != "apns" || d.Plugin != "webhook" {
		t.Errorf("runtime's disabled ios: got %+v", d)
	}
	if p := rt.Planner(nil); p.Disabled["spare"].Reason == "" || p.Notifiers["hook"] == nil {
		t.Errorf("planner: got disabled %v, notifiers %v", p.Disabled, p.Notifiers)
	}

	logs = logtest.Buffer{}
	m.SetNotifiers(0, 0)
	opt.Logger = logs.Logger()
	next, diags := rt.Reload(context.Background(), cfg, opt)
	if diags.HasErrors() {
		rt.Close()
		t.Fatal(diags)
	}
	defer next.Close()
	check("reload")
}
