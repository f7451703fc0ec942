package config

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
)

func writeConfig(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, path string, getenv func(string) string) *Config {
	t.Helper()
	cfg, diags := loadAndApply(t, path, getenv)
	if diags.HasErrors() {
		var buf bytes.Buffer
		WriteDiagnostics(&buf, nil, diags)
		t.Fatalf("load %s:\n%s", path, buf.String())
	}
	return cfg
}

func noEnv(string) string { return "" }

// loadWebhook loads a file of one webhook notifier, x, whose plugin
// attributes are attrs (from line 3 on), and one route to it, and fails the
// test on an error.
func loadWebhook(t *testing.T, attrs string) *Config {
	t.Helper()
	path := writeConfig(t, "notifier \"x\" {\n  plugin = \"webhook\""+attrs+"}\nroute \"all\" {\n  notify = [\"x\"]\n}\n")
	cfg, diags := Load(path, Options{Builtins: testBuiltins, Getenv: noEnv})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

func TestDefaults(t *testing.T) {
	path := writeConfig(t, "ring_nobody = true\n")
	cfg := mustLoad(t, path, noEnv)
	dir := filepath.Dir(path)
	want := Config{
		Path: path,
		Dir:  dir,
		Server: Server{
			Listen:        "0.0.0.0:20200",
			NotifyPath:    "/notify_cb",
			CallEventPath: "/call_evt_cb", GroupCallEventPath: "/gcall_evt_cb",
			MaxIDBytes:    256,
			MaxInFlight:   10000,
			ShutdownGrace: 10 * time.Second,
			AdminListen:   "127.0.0.1:20201",
		},
		Delivery: DeliverySettings{DedupWindow: 120 * time.Second, Journal: true, FallbackAfter: 15 * time.Second},
		CallLog:  CallLog{MaxCalls: 10000, MaxAge: time.Hour},
		Log:      Log{Format: "text", Level: "info"},
		Telemetry: Telemetry{Traces: "none", Endpoint: "http://localhost:4318", ServiceName: "ringside",
			Explicit: map[string]bool{"traces": false, "endpoint": false, "service_name": false}},
		Directory:  Directory{Kind: "embedded", Path: filepath.Join(dir, "ringside.db"), CacheUsers: DefaultCacheUsers},
		RingNobody: true,
	}
	got := *cfg
	got.Files, got.Plugins, got.env, got.masks, got.secrets = nil, nil, nil, nil, nil
	if len(cfg.Plugins) != 0 || len(cfg.Notifiers) != 0 || len(cfg.Routes) != 0 {
		t.Errorf("got plugins %v, notifiers %v, routes %v; want none", cfg.Plugins, cfg.Notifiers, cfg.Routes)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if cfg.Files[path] == nil {
		t.Errorf("Files lacks %s", path)
	}
}

func TestEmptyBlocksKeepDefaults(t *testing.T) {
	path := writeConfig(t, "ring_nobody = true\nserver {}\ndelivery {}\nlog {}\ntelemetry {}\ndirectory \"embedded\" {}\n")
	cfg := mustLoad(t, path, noEnv)
	if cfg.Server.Listen != DefaultListen || cfg.Delivery.DedupWindow != DefaultDedupWindow || !cfg.Delivery.Journal ||
		cfg.Log.Level != "info" || cfg.Telemetry.ServiceName != "ringside" || cfg.Directory.Path != filepath.Join(filepath.Dir(path), "ringside.db") {
		t.Errorf("empty blocks changed defaults: %+v", cfg)
	}
}

func TestFullConfig(t *testing.T) {
	path := "testdata/full/config.hcl"
	env := map[string]string{"RINGSIDE_ADMIN_TOKEN": "adm", "APNS_KEY_ID": "KEY1"}
	cfg := mustLoad(t, path, func(k string) string { return env[k] })
	dir := "testdata/full"

	wantServer := Server{
		Listen:        "127.0.0.1:8080",
		NotifyPath:    "/cb",
		CallEventPath: "/call_evt_cb", GroupCallEventPath: "/gcall_evt_cb",
		NotifyToken:       "s3cret-token",
		AllowCIDRs:        []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")},
		TrustedProxies:    []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")},
		MaxIDBytes:        128,
		MaxInFlight:       500,
		ShutdownGrace:     3 * time.Second,
		RejectUnreachable: true,
		AdminListen:       "0.0.0.0:9090",
		AdminToken:        "adm",
		TLS:               &TLS{CertFile: filepath.Join(dir, "tls/cert.pem"), KeyFile: "/etc/ringside/key.pem"},
	}
	if !reflect.DeepEqual(cfg.Server, wantServer) {
		t.Errorf("server: got %+v\nwant %+v", cfg.Server, wantServer)
	}
	if want := (DeliverySettings{DedupWindow: 5 * time.Minute, Journal: false, FallbackAfter: 7500 * time.Millisecond}); cfg.Delivery != want {
		t.Errorf("delivery: got %+v; want %+v", cfg.Delivery, want)
	}
	if want := (Log{Format: "json", Level: "debug"}); cfg.Log != want {
		t.Errorf("log: got %+v; want %+v", cfg.Log, want)
	}
	if want := (Telemetry{Traces: "otlp", Endpoint: "https://otel.example.com:4318", ServiceName: "ringside-test",
		Explicit: map[string]bool{"traces": true, "endpoint": true, "service_name": true}}); !reflect.DeepEqual(cfg.Telemetry, want) {
		t.Errorf("telemetry: got %+v; want %+v", cfg.Telemetry, want)
	}
	if want := (Directory{Kind: "embedded", Path: filepath.Join(dir, "data/devices.db"), CacheUsers: 500_000}); cfg.Directory != want {
		t.Errorf("directory: got %+v; want %+v", cfg.Directory, want)
	}

	con := cfg.Plugins["console"]
	if con == nil {
		t.Fatal("no plugin console")
	}
	if want := []string{filepath.Join(dir, "bin/console-plugin"), "-v"}; !reflect.DeepEqual(con.Command, want) {
		t.Errorf("console command: got %q; want %q", con.Command, want)
	}
	if con.SHA256 != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" || !reflect.DeepEqual(con.Env, map[string]string{"CONSOLE_COLOR": "1"}) {
		t.Errorf("console: got %+v", con)
	}
	if con.DeclRange.Start.Line != 40 {
		t.Errorf("console DeclRange line %d; want 40", con.DeclRange.Start.Line)
	}
	if got := cfg.Plugins["bare"].Command; !reflect.DeepEqual(got, []string{"console-plugin"}) {
		t.Errorf("bare command: got %q; want a PATH name left alone", got)
	}

	names := []string{}
	for _, n := range cfg.Notifiers {
		names = append(names, n.Name)
	}
	if want := []string{"ios", "android", "hook", "text", "con"}; !reflect.DeepEqual(names, want) {
		t.Errorf("notifiers: got %q; want %q (file order)", names, want)
	}
	ios, android, hook, text, con2 := cfg.Notifiers[0], cfg.Notifiers[1], cfg.Notifiers[2], cfg.Notifiers[3], cfg.Notifiers[4]
	if ios.Plugin != "apns" || !ios.Enabled || ios.Devices != "apns-voip" || ios.TTL != 45*time.Second {
		t.Errorf("ios: got %+v", ios)
	}
	if want := []string{"caller", "video", "app_caller_uid", "retries", "tags"}; !reflect.DeepEqual(ios.PayloadKeys, want) {
		t.Errorf("ios payload keys: got %q; want %q", ios.PayloadKeys, want)
	}
	wantAttrs := map[string]cty.Value{
		"team_id":    cty.StringVal("TEAM123"),
		"key_id":     cty.StringVal("KEY1"),
		"key_file":   cty.StringVal(filepath.Join(dir, "secrets/AuthKey.p8")),
		"topic":      cty.StringVal("com.example.app.voip"),
		"priority":   cty.NumberIntVal(5),
		"production": cty.True,
	}
	if len(ios.Attrs) != len(wantAttrs) {
		t.Errorf("ios attrs: got %#v\nwant %#v", ios.Attrs, wantAttrs)
	}
	for k, want := range wantAttrs {
		if got := ios.Attrs[k]; got == cty.NilVal || !got.RawEquals(want) && !got.Equals(want).True() {
			t.Errorf("ios attr %s: got %#v; want %#v", k, got, want)
		}
	}
	if android.Enabled || android.Devices != "fcm" || android.TTL != DefaultTTL || android.Payload != nil || len(android.Attrs) != 0 {
		t.Errorf("android: got %+v", android)
	}
	if hook.Devices != "" {
		t.Errorf("hook devices %q; want \"\" (webhook has no device kind)", hook.Devices)
	}
	js, err := hook.ConfigJSON()
	if err != nil {
		t.Fatal(err)
	}
	var gotJSON map[string]any
	if err := json.Unmarshal(js, &gotJSON); err != nil {
		t.Fatal(err)
	}
	wantJSON := map[string]any{
		"url":     "https://app.example.com/ring",
		"secret":  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"headers": map[string]any{"X-Env": "test"},
		"timeout": "2s",
	}
	if !reflect.DeepEqual(gotJSON, wantJSON) {
		t.Errorf("hook ConfigJSON: got %s; want %v", js, wantJSON)
	}
	if !hook.Sensitive("secret") || hook.Sensitive("url") {
		t.Errorf("hook sensitivity: secret %v, url %v", hook.Sensitive("secret"), hook.Sensitive("url"))
	}
	js, _ = ios.ConfigJSON()
	if !strings.Contains(string(js), `"priority":5`) || !strings.Contains(string(js), `"production":true`) {
		t.Errorf("ios ConfigJSON: got %s", js)
	}
	if text.Devices != "phone" || text.Templates["body"] == nil || text.Attrs["body"] != cty.NilVal {
		t.Errorf("text: devices %q, templates %v, attrs %v", text.Devices, text.Templates, text.Attrs)
	}
	if got := text.Attrs["recipients"]; !got.RawEquals(cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")})) {
		t.Errorf("text recipients: got %#v", got)
	}
	if want := []string{"account_sid", "auth_token", "body", "from", "recipients"}; !reflect.DeepEqual(text.AttrNames(), want) {
		t.Errorf("text AttrNames: got %q; want %q", text.AttrNames(), want)
	}
	body, diags := text.Templates["body"].Value(callexpr.Context(&callback.Call{FromUserID: "9286"}))
	if diags.HasErrors() || body.AsString() != "Call from 9286" {
		t.Errorf("body: got %#v, %v", body, diags)
	}
	if con2.Plugin != "console" {
		t.Errorf("con plugin %q", con2.Plugin)
	}

	if len(cfg.Routes) != 3 {
		t.Fatalf("got %d routes; want 3", len(cfg.Routes))
	}
	video, extra, def := cfg.Routes[0], cfg.Routes[1], cfg.Routes[2]
	if video.Name != "video" || video.When == nil || !reflect.DeepEqual(video.Notify, []string{"ios", "android"}) ||
		!reflect.DeepEqual(video.Fallback, []string{"text"}) || !video.Continue {
		t.Errorf("video: got %+v", video)
	}
	if extra.When == nil || extra.Continue {
		t.Errorf("extra: got %+v", extra)
	}
	if def.When != nil || def.Fallback != nil || def.DeclRange.Start.Line != 108 {
		t.Errorf("default: got %+v", def)
	}
}

func TestEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `
ring_nobody = true
server {
  notify_token = chomp(file("token"))
  admin_token  = env("ADMIN")
  listen       = "${env("HOST")}:${env("PORT")}"
}
log {
  level = coalesce(env("UNSET"), "warn")
}
`
	path := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ADMIN": "a", "HOST": "10.1.1.1", "PORT": "7000"}
	cfg := mustLoad(t, path, func(k string) string { return env[k] })
	if cfg.Server.NotifyToken != "from-file" || cfg.Server.AdminToken != "a" || cfg.Server.Listen != "10.1.1.1:7000" || cfg.Log.Level != "warn" {
		t.Errorf("got server %+v, log %+v", cfg.Server, cfg.Log)
	}

	// Options.Getenv nil means os.Getenv.
	t.Setenv("RINGSIDE_TEST_LEVEL", "error")
	path = writeConfig(t, "ring_nobody = true\n"+`log { level = env("RINGSIDE_TEST_LEVEL") }`)
	cfg2, diags := Load(path, Options{})
	if diags.HasErrors() || cfg2.Log.Level != "error" {
		t.Errorf("os env: got %+v, %v", cfg2, diags)
	}
}

func TestLoadMissingFile(t *testing.T) {
	cfg, diags := Load("testdata/nope.hcl", Options{})
	if cfg != nil || !diags.HasErrors() {
		t.Fatalf("got %v, %v; want an error", cfg, diags)
	}
	var buf bytes.Buffer
	WriteDiagnostics(&buf, nil, diags)
	want := "error: Cannot read configuration file\n  testdata/nope.hcl: no such file or directory\n\n"
	if buf.String() != want {
		t.Errorf("got %q; want %q", buf.String(), want)
	}
}

func TestWarningKeepsConfig(t *testing.T) {
	path := writeConfig(t, `
plugin "apns" {
  command = ["/opt/apns-plugin"]
}
notifier "ios" {
  plugin = "apns"
}
route "all" {
  notify = ["ios"]
}
`)
	cfg, diags := Load(path, Options{Builtins: testBuiltins})
	if cfg == nil || diags.HasErrors() || len(diags) != 1 || diags[0].Severity != hcl.DiagWarning {
		t.Fatalf("got %v, %v; want a config and one warning", cfg, diags)
	}
	if !strings.Contains(diags[0].Summary, "replaces the built-in") || diags[0].Subject.Start.Line != 2 {
		t.Errorf("warning: %s at %v", diags[0].Summary, diags[0].Subject)
	}
}

func TestNothingHalfApplies(t *testing.T) {
	path := writeConfig(t, "server {\n  listen = \"127.0.0.1:1\"\n  max_in_flight = 0\n}\n")
	cfg, diags := Load(path, Options{})
	if cfg != nil {
		t.Errorf("got a config alongside errors: %+v", cfg)
	}
	if len(diags) != 1 || diags[0].Subject.Start.Line != 3 || diags[0].Subject.Start.Column != 19 {
		t.Errorf("got %v; want one error at 3:19", diags)
	}
}

func TestApplySchemaKeepsNothingOnError(t *testing.T) {
	cfg := loadWebhook(t, `
  url     = "https://x"
  timeout = "soon"
`)
	n := cfg.Notifiers[0]
	diags := cfg.ApplySchema(n, testSchemas["webhook"])
	if !diags.HasErrors() || n.Attrs != nil || n.Templates != nil {
		t.Errorf("got diags %v, attrs %v; want an error and no attrs", diags, n.Attrs)
	}
}

func TestAttrDiagnostic(t *testing.T) {
	cfg := mustLoad(t, "testdata/full/config.hcl", func(k string) string { return "x" })
	hook := cfg.Notifiers[2]
	d := hook.AttrDiagnostic("url", "must use https")
	if d.Severity != hcl.DiagError || d.Subject.Start.Line != 77 || d.Subject.Start.Column != 13 || d.Detail != "must use https" {
		t.Errorf("url: got %+v at %v", d, d.Subject)
	}
	for _, name := range []string{"", "nonesuch"} {
		d = hook.AttrDiagnostic(name, "bad")
		if *d.Subject != hook.DeclRange {
			t.Errorf("%q: subject %v; want the block %v", name, d.Subject, hook.DeclRange)
		}
	}
	if d = hook.AttrDiagnostic("plugin", "x"); d.Subject.Start.Line != 76 {
		t.Errorf("plugin: subject %v; want line 76", d.Subject)
	}
}

func TestWriteDiagnosticsTabsAndFiles(t *testing.T) {
	src := "server {\n\tlisten = 5\n}\n"
	path := writeConfig(t, src)
	_, diags := Load(path, Options{})
	if !diags.HasErrors() {
		t.Fatal("want an error")
	}
	// listen = 5 converts to "5", which is not HOST:PORT.
	var buf bytes.Buffer
	WriteDiagnostics(&buf, nil, diags)
	lines := strings.Split(buf.String(), "\n")
	if !strings.HasPrefix(lines[0], path+":2:11: error: ") {
		t.Errorf("header %q", lines[0])
	}
	if lines[1] != "  2 | \tlisten = 5" || lines[2] != "    | \t         ^" {
		t.Errorf("snippet:\n%q\n%q", lines[1], lines[2])
	}
	// Files given: the source comes from them, not disk.
	files := map[string]*hcl.File{path: {Bytes: []byte("server {\n\tlisten = 6\n}\n")}}
	buf.Reset()
	WriteDiagnostics(&buf, files, diags)
	if !strings.Contains(buf.String(), "\tlisten = 6") {
		t.Errorf("did not use files:\n%s", buf.String())
	}
}

func TestSensitiveValueNotEchoed(t *testing.T) {
	cfg := loadWebhook(t, `
  url    = "https://x"
  pin    = "hunter2"
`)
	s := Schema{Attributes: []Attribute{{Name: "url", Type: AttrString}, {Name: "pin", Type: AttrNumber, Sensitive: true}}}
	diags := cfg.ApplySchema(cfg.Notifiers[0], s)
	var buf bytes.Buffer
	for _, d := range diags {
		buf.WriteString(d.Summary + " " + d.Detail)
	}
	if !diags.HasErrors() || strings.Contains(buf.String(), "hunter2") {
		t.Errorf("got %q; want an error that does not repeat the value", buf.String())
	}
}

// A plugin command "./x" in a config loaded as "config.hcl" (from the
// current folder) stays a path: exec must not look "x" up in PATH.
func TestRelativeCommandFromCurrentFolder(t *testing.T) {
	t.Chdir(t.TempDir())
	src := `plugin "x" {
  command = ["./x-plugin"]
}
notifier "n" {
  plugin = "x"
}
route "all" {
  notify = ["n"]
}
`
	if err := os.WriteFile("config.hcl", []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := Load("config.hcl", Options{Builtins: testBuiltins, Getenv: noEnv})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got, want := cfg.Plugins["x"].Command[0], "."+string(filepath.Separator)+"x-plugin"; got != want {
		t.Errorf("command[0]: got %q; want %q", got, want)
	}
}
