package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/directory"
	goldenfile "github.com/ringside/ringside/core/internal/golden"
	"github.com/ringside/ringside/plugins/apns"
	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/fcm"
	"github.com/ringside/ringside/plugins/sms"
	"github.com/ringside/ringside/plugins/webhook"
)

// testBuiltins are the built-in plugins the test binary serves: the
// webhook most tests' configs use, and the apns, fcm and sms plugins the
// shipped config.hcl names and whose Configure checks the template
// attributes a notifier sets.
var testBuiltins = map[string]Builtin{"webhook": webhook.Serve, "apns": apns.Serve, "fcm": fcm.Serve, "sms": sms.Serve}

// TestMain serves built-in plugins when ringside (here: the test binary)
// launches itself as `plugin NAME`.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "plugin" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr, testBuiltins))
	}
	os.Exit(m.Run())
}

const lineExample = "from_user_id=9286&from_service_id=linecorp.com&to_user_id=2809&to_service_id=linecorp.com&sid=151ad995-749c-4a28-893f-636700469db1&type=A&stid=stid&param=eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ%3D%3D"

// videoExample is the LINE example as a video call.
var videoExample = strings.Replace(lineExample, "type=A", "type=V", 1)

// setup copies the configs into a new folder, the route tests' as good.hcl
// and one with errors as bad.hcl, and writes a directory with one console
// device for the LINE example's callee; it returns the folder.
func setup(t *testing.T) string {
	t.Helper()
	t.Setenv("RINGSIDE_TEST_UNSET_KEY_ID", "")
	dir := t.TempDir()
	copyFile(t, filepath.Join(testdataDir, "routetest", "config.hcl"), filepath.Join(dir, "good.hcl"))
	copyFile(t, filepath.Join(testdataDir, "bad.hcl"), filepath.Join(dir, "bad.hcl"))
	store, err := directory.OpenSQLite(filepath.Join(dir, "devices.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if err := store.Put(context.Background(), "linecorp.com", "2809", "console", "abcdef0123456789-desk", at); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMainCommands(t *testing.T) {
	dir := setup(t)
	t.Chdir(dir)
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // substring, or golden file name ending in .golden
		stderr     string // substring
		goldenName string
	}{
		{name: "version", args: []string{"version"}, code: ExitOK, stdout: "ringside dev\n"},
		{name: "version takes no argument", args: []string{"version", "x"}, code: ExitUsage, stderr: "usage: ringside version"},
		{name: "unknown command", args: []string{"frobnicate"}, code: ExitUsage, stderr: `unknown command "frobnicate"`},
		{name: "help", args: []string{"help"}, code: ExitOK, stdout: "ringside explain"},
		{name: "--help", args: []string{"--help"}, code: ExitOK, stdout: "ringside validate"},
		{name: "-h", args: []string{"-h"}, code: ExitOK, stdout: "ringside calls [-admin ADDR] [-token T] [-follow] [SID]"},
		{name: "-help", args: []string{"-help"}, code: ExitOK, stdout: "ringside [serve]"},
		{name: "subcommand -h", args: []string{"validate", "-h"}, code: ExitOK, stdout: "flags of ringside validate:"},
		{name: "unknown flag gives usage", args: []string{"-bogus"}, code: ExitUsage, stderr: "usage:\n  ringside [serve]"},
		{name: "explain unknown flag gives usage", args: []string{"explain", "-x"}, code: ExitUsage, stderr: "ringside explain [-config FILE]"},
		{name: "serve with a missing config names it", args: []string{"-config", "missing.hcl"}, code: ExitError, stderr: "missing.hcl"},
		{name: "serve takes no argument", args: []string{"serve", "extra"}, code: ExitUsage, stderr: "unexpected argument"},
		{name: "serve unknown flag", args: []string{"serve", "-bogus"}, code: ExitUsage, stderr: "flag provided but not defined: -bogus"},
		{name: "validate good", args: []string{"validate", "-config", "good.hcl"}, code: ExitOK, stdout: "good.hcl: ok (5 notifiers (3 enabled), 3 routes)"},
		{name: "validate a file argument", args: []string{"validate", "good.hcl"}, code: ExitOK, stdout: "good.hcl: ok (5 notifiers (3 enabled), 3 routes)"},
		{name: "validate a missing file argument names it", args: []string{"validate", "missing.hcl"}, code: ExitError, stdout: "missing.hcl"},
		{name: "validate two files", args: []string{"validate", "good.hcl", "bad.hcl"}, code: ExitUsage, stderr: `unexpected argument "good.hcl"`},
		{name: "validate -config and a file", args: []string{"validate", "-config", "good.hcl", "bad.hcl"}, code: ExitUsage, stderr: "given by -config already"},
		{name: "validate default path", args: []string{"validate"}, code: ExitError, stdout: "config.hcl"},
		{name: "validate bad", args: []string{"validate", "-config", "bad.hcl"}, code: ExitError, goldenName: "validate_bad.golden"},
		{name: "validate flags after arguments are refused", args: []string{"validate", "x", "-config", "good.hcl"}, code: ExitUsage, stderr: `unexpected argument "-config": flags go before the file`},
		{name: "explain", args: []string{"explain", "-config", "good.hcl", videoExample}, code: ExitOK, goldenName: "explain.golden"},
		{name: "explain json", args: []string{"explain", "-config", "good.hcl", "-json", "http://host/notify_cb?" + videoExample}, code: ExitOK, goldenName: "explain_json.golden"},
		{name: "explain a call the first routes do not match", args: []string{"explain", "-config", "good.hcl", lineExample}, code: ExitOK, stdout: "routes: all\n"},
		{name: "explain invalid query", args: []string{"explain", "-config", "good.hcl", "type=X"}, code: ExitUsage, stderr: "invalid callback"},
		{name: "explain without query", args: []string{"explain", "-config", "good.hcl"}, code: ExitUsage, stderr: "usage: ringside explain"},
		{name: "explain bad config", args: []string{"explain", "-config", "bad.hcl", lineExample}, code: ExitError, stderr: "bad.hcl:9:"},
		{name: "plugin without name", args: []string{"plugin"}, code: ExitUsage, stderr: "usage: ringside plugin NAME"},
		{name: "plugin unknown", args: []string{"plugin", "nope"}, code: ExitUsage, stderr: `no built-in plugin "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(tc.args, &out, &errb, testBuiltins)
			if code != tc.code {
				t.Fatalf("exit: got %d; want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			if tc.stdout != "" && !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout: got %q; want it to contain %q", out.String(), tc.stdout)
			}
			if tc.stderr != "" && !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr: got %q; want it to contain %q", errb.String(), tc.stderr)
			}
			if tc.goldenName != "" {
				golden(t, tc.goldenName, out.String()+errb.String())
			}
		})
	}
}

// copyFile copies the file src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.Check(t, filepath.Join(testdataDir, name), got)
}

// testdataDir is absolute: the tests change directory.
var testdataDir = func() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "testdata")
}()

// A config that routes nobody is an error for validate (and serve), at
// the end of the file, unless it says ring_nobody = true (then a warning).
func TestValidateNoRoute(t *testing.T) {
	const notifier = `notifier "hook" {
  plugin = "webhook"
  url    = "http://127.0.0.1:9/hook"
}
`
	for _, tc := range []struct {
		name, text string
		code       int
		want       string
	}{
		{"empty file", "", ExitError, "empty.hcl:1:1: error: The configuration has no route"},
		{"cut after a block", notifier, ExitError, "cut.hcl:4:1: error: The configuration has no route"},
		{"on purpose", "ring_nobody = true\n" + notifier, ExitOK, "nobody.hcl:1:15: warning: This configuration rings nobody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := map[string]string{"empty file": "empty.hcl", "cut after a block": "cut.hcl", "on purpose": "nobody.hcl"}[tc.name]
			for _, cmd := range []string{"validate", "serve"} {
				if cmd == "serve" && tc.code == ExitOK {
					continue
				}
				if code, got := runOn(t, cmd, name, tc.text); code != tc.code || !strings.Contains(got, tc.want) {
					t.Errorf("%s: exit %d; want %d and %q\n%s", cmd, code, tc.code, tc.want, got)
				}
			}
		})
	}
}

// validate prints the lines of its diagnostics with the secrets on them
// hidden: a URL's credentials and query, header values, a signing secret.
func TestValidateHidesSecrets(t *testing.T) {
	const text = `notifier "hook" {
  plugin  = "webhook"
  url     = "ftp://ringside:urlPASSWORD1@127.0.0.1:9/hook?apikey=queryKEY2"
  secret  = "whsec_bm90LWJhc2U2NAsecretSIGN3!"
  headers = { "Bad Name" = "Bearer headerVALUE4" }
}

route "all" {
  notify = ["hook"]
}
`
	code, got := runOn(t, "validate", "secrets.hcl", text)
	if code != ExitError || strings.Count(got, "error:") < 3 {
		t.Fatalf("exit %d; want 1 and errors at url, secret and headers:\n%s", code, got)
	}
	for _, planted := range []string{"urlPASSWORD1", "queryKEY2", "secretSIGN3", "headerVALUE4"} {
		if strings.Contains(got, planted) {
			t.Errorf("validate printed %s:\n%s", planted, got)
		}
	}
	if !strings.Contains(got, `url     = "ftp://<redacted>@127.0.0.1:9/hook?apikey=<redacted>"`) {
		t.Errorf("want the url line with its secrets hidden:\n%s", got)
	}
}

// validate reports a notifier without the template its other attributes
// need at that attribute's line, and a template they ignore, as a warning,
// at its own: the plugins learn at Configure which templates the block
// sets.
func TestValidateTemplates(t *testing.T) {
	secrets := t.TempDir()
	peer := fakes.NewAPNs(fakes.APNsOptions{})
	p8, err := peer.WriteP8(secrets)
	if err != nil {
		t.Fatal(err)
	}
	sa := filepath.Join(secrets, "sa.json")
	if err := os.WriteFile(sa, fakes.NewFCM(fakes.FCMOptions{}).ServiceAccount("http://127.0.0.1:1/token"), 0o600); err != nil {
		t.Fatal(err)
	}
	ios := func(lines ...string) string {
		return fmt.Sprintf("notifier \"ios\" {\n  plugin   = \"apns\"\n  team_id  = %q\n  key_id   = %q\n  key_file = %q\n%s\n}\n\nroute \"all\" {\n  notify = [\"ios\"]\n}\n",
			peer.TeamID(), peer.KeyID(), p8, strings.Join(lines, "\n"))
	}
	android := func(lines ...string) string {
		return fmt.Sprintf("notifier \"android\" {\n  plugin           = \"fcm\"\n  credentials_file = %q\n%s\n}\n\nroute \"all\" {\n  notify = [\"android\"]\n}\n",
			sa, strings.Join(lines, "\n"))
	}
	tests := []struct {
		name   string
		config string
		code   int
		// want are substrings of the output; a "LINE" in one is the line
		// number of the config's first line containing at.
		want []string
		at   string
	}{
		{
			name:   "apns alert without body",
			config: ios(`  topic     = "com.example.planet"`, `  push_type = "alert"`, `  title     = "Missed call"`),
			code:   ExitError, at: "push_type",
			want: []string{"cfg.hcl:LINE:15: error: plugin apns rejected push_type", `alert pushes need body, the text of the alert: add body = "…"`},
		},
		{
			name:   "apns alert with body",
			config: ios(`  topic     = "com.example.planet"`, `  push_type = "alert"`, `  body      = "You missed a call from ${call.from_user_id}"`),
			code:   ExitOK, want: []string{"cfg.hcl: ok (1 notifiers (1 enabled), 1 routes)"},
		},
		{
			name:   "apns alert with its own aps",
			config: ios(`  topic     = "com.example.planet"`, `  push_type = "alert"`, `  payload   = { aps = { alert = "Missed call" } }`),
			code:   ExitOK, want: []string{"cfg.hcl: ok"},
		},
		{
			name:   "apns voip with an alert template",
			config: ios(`  topic = "com.example.planet.voip"`, `  title = "Incoming call"`),
			code:   ExitOK, at: "title",
			want: []string{"cfg.hcl:LINE:11: warning: plugin apns warns about title", "ignored for push_type voip", "cfg.hcl: ok"},
		},
		{
			name:   "fcm notification without body",
			config: android(`  message = "notification"`, `  title   = "Missed call"`),
			code:   ExitError, at: "message",
			want: []string{"cfg.hcl:LINE:13: error: plugin fcm rejected message", `notification messages need body, the text shown: add body = "…"`},
		},
		{
			name:   "fcm data message with a notification template",
			config: android(`  tag = call.sid`),
			code:   ExitOK, at: "tag",
			want: []string{"cfg.hcl:LINE:9: warning: plugin fcm warns about tag", "ignored for data messages", "cfg.hcl: ok"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runOn(t, "validate", "cfg.hcl", tc.config)
			if code != tc.code {
				t.Errorf("exit code %d; want %d:\n%s", code, tc.code, out)
			}
			line := 0
			if tc.at != "" {
				for i, l := range strings.Split(tc.config, "\n") {
					if strings.HasPrefix(strings.TrimSpace(l), tc.at+" ") {
						line = i + 1
						break
					}
				}
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "LINE", fmt.Sprint(line)); !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// runOn writes text to the file name in a new working folder and runs the
// command cmd on it; it returns the exit code and the output.
func runOn(t *testing.T, cmd, name, text string) (int, string) {
	t.Helper()
	t.Chdir(t.TempDir())
	if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main([]string{cmd, "-config", name}, &out, &errb, testBuiltins)
	return code, out.String() + errb.String()
}

// explain shows a notifier whose payload does not render for the call
// with its error, and the rest of the plan, instead of failing.
func TestExplainRenderError(t *testing.T) {
	dir := setup(t)
	t.Chdir(dir)
	b, err := os.ReadFile("good.hcl")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), `caller = upper(call.from_user_id)`, `caller = call.extra["caller"]`, 1)
	if err := os.WriteFile("render.hcl", []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	explainGoldens(t, "render.hcl", videoExample, "explain_render_error")
}

// explainGoldens runs explain with config on query, as text and as JSON,
// and checks that both succeed and match the golden files base.golden and
// base_json.golden.
func explainGoldens(t *testing.T, config, query, base string) {
	t.Helper()
	for _, tc := range []struct {
		args   []string
		golden string
	}{
		{[]string{"explain", "-config", config, query}, base + ".golden"},
		{[]string{"explain", "-config", config, "-json", query}, base + "_json.golden"},
	} {
		var out, errb bytes.Buffer
		if code := Main(tc.args, &out, &errb, testBuiltins); code != ExitOK {
			t.Fatalf("%s: exit %d; want 0\n%s%s", tc.golden, code, out.String(), errb.String())
		}
		golden(t, tc.golden, out.String()+errb.String())
	}
}

// explain lists the disabled notifiers a route names with why (ios, whose
// enabled reads an unset variable, and pager, enabled = false), and the
// callee's devices that only they (or no notifier) would serve; validate
// counts them as configured but not enabled.
func TestExplainDisabled(t *testing.T) {
	dir := setup(t)
	t.Chdir(dir)
	store, err := directory.OpenSQLite("devices.db")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, d := range [][2]string{{"apns", "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e7f8e"}, {"fcm", "fcm-registration-token-0123456789"}} {
		if err := store.Put(context.Background(), "linecorp.com", "2809", d[0], d[1], at); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	gold := strings.Replace(lineExample, "from_service_id=linecorp.com", "from_service_id=gold", 1) + "&tier=gold"
	explainGoldens(t, "good.hcl", gold, "explain_disabled")
	var out, errb bytes.Buffer
	if code := Main([]string{"validate", "good.hcl"}, &out, &errb, testBuiltins); code != ExitOK || !strings.Contains(out.String(), "good.hcl: ok (5 notifiers (3 enabled), 3 routes)") {
		t.Errorf("validate: exit %d\n%s%s", code, out.String(), errb.String())
	}
}
