package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringside/ringside/plugins/fakes"
)

// routeTestDir copies the route test fixtures (testdata/routetest, less
// the goldens) into a new working folder.
func routeTestDir(t *testing.T) string {
	t.Helper()
	t.Setenv("RINGSIDE_TEST_UNSET_KEY_ID", "")
	src := filepath.Join(testdataDir, "routetest")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, e := range entries {
		if !e.IsDir() && !strings.HasSuffix(e.Name(), ".golden") {
			copyFile(t, filepath.Join(src, e.Name()), filepath.Join(dir, e.Name()))
		}
	}
	t.Chdir(dir)
	return dir
}

func TestRouteTestGoldens(t *testing.T) {
	routeTestDir(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		golden string
	}{
		{"pass", []string{"pass.test.hcl"}, ExitOK, "pass.golden"},
		{"pass json", []string{"-json", "pass.test.hcl"}, ExitOK, "pass_json.golden"},
		{"fail", []string{"fail.test.hcl"}, ExitError, "fail.golden"},
		{"fail json", []string{"-json", "fail.test.hcl"}, ExitError, "fail_json.golden"},
		{"malformed", []string{"malformed.test.hcl", "syntax.test.hcl"}, ExitError, "malformed.golden"},
		{"malformed json", []string{"-json", "malformed.test.hcl", "syntax.test.hcl"}, ExitError, "malformed.golden"},
		{"names and calls the config refuses", []string{"badcall.test.hcl"}, ExitError, "badcall.golden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(append([]string{"test", "-config", "config.hcl"}, tc.args...), &out, &errb, testBuiltins)
			if code != tc.code {
				t.Fatalf("exit: got %d; want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			golden(t, filepath.Join("routetest", tc.golden), out.String()+errb.String())
		})
	}
}

// -json prints one object a line, each with the test's name, file, line,
// whether it passed and its failures.
func TestRouteTestJSONLines(t *testing.T) {
	routeTestDir(t)
	var out, errb bytes.Buffer
	if code := Main([]string{"test", "-json", "fail.test.hcl", "pass.test.hcl"}, &out, &errb, testBuiltins); code != ExitError {
		t.Fatalf("exit %d; want 1\n%s%s", code, out.String(), errb.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 11 {
		t.Fatalf("got %d lines; want 11 (one per test)\n%s", len(lines), out.String())
	}
	passed := 0
	for _, line := range lines {
		var r struct {
			Name, File string
			Line       int
			Pass       *bool
			Failures   []struct {
				At, What      string
				Expected, Got json.RawMessage
			}
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if r.Name == "" || r.File == "" || r.Line == 0 || r.Pass == nil || r.Failures == nil {
			t.Errorf("want name, file, line, pass and failures: %s", line)
		}
		if *r.Pass {
			passed++
			if len(r.Failures) != 0 {
				t.Errorf("a passing test with failures: %s", line)
			}
		}
		for _, f := range r.Failures {
			if !strings.HasPrefix(f.At, r.File+":") || f.What == "" || f.Expected == nil || f.Got == nil {
				t.Errorf("want at (file:line), what, expected and got: %s", line)
			}
		}
	}
	if passed != 7 {
		t.Errorf("%d tests passed; want 7", passed)
	}
}

func TestRouteTestCommand(t *testing.T) {
	dir := routeTestDir(t)
	// A folder holding a config and its passing tests, side by side.
	if err := os.Mkdir("side", 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"config.hcl", "pass.test.hcl"} {
		copyFile(t, name, filepath.Join("side", name))
	}
	if err := os.Mkdir("empty", 0o700); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(testdataDir, "bad.hcl"), "bad.hcl")
	side := filepath.Join("side", "pass.test.hcl")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{name: "the tests beside the config", args: []string{"-config", "side/config.hcl"}, code: ExitOK, stdout: "--- PASS: nobody is unrouted (" + side + ":42)\n"},
		{name: "the tests beside the default config", args: nil, code: ExitError, stderr: "malformed.test.hcl:3:5: error: Unsupported argument"},
		{name: "a folder", args: []string{"side"}, code: ExitOK, stdout: "ok  6 tests\n"},
		{name: "an absolute folder", args: []string{filepath.Join(dir, "side")}, code: ExitOK, stdout: "ok  6 tests\n"},
		{name: "a file given twice runs once", args: []string{"pass.test.hcl", "pass.test.hcl"}, code: ExitOK, stdout: "ok  6 tests\n"},
		{name: "-run picks tests by name", args: []string{"-run", "^gold", "pass.test.hcl", "fail.test.hcl"}, code: ExitOK, stdout: "ok  2 tests\n"},
		{name: "-run matching nothing", args: []string{"-run", "nothing", "pass.test.hcl"}, code: ExitOK, stderr: `no test matches -run "nothing"`},
		{name: "-run with a bad regexp", args: []string{"-run", "(", "pass.test.hcl"}, code: ExitUsage, stderr: "ringside test: -run: error parsing regexp"},
		{name: "no test file beside the config", args: []string{"-config", "empty/config.hcl"}, code: ExitUsage, stderr: "no test files in empty (the folder of empty/config.hcl): route test files are named *.test.hcl"},
		{name: "a folder without tests", args: []string{"empty"}, code: ExitUsage, stderr: "no test files in empty: route test files are named *.test.hcl"},
		{name: "a file not named *.test.hcl", args: []string{"config.hcl"}, code: ExitUsage, stderr: "config.hcl: route test files are named *.test.hcl"},
		{name: "a missing path", args: []string{"missing.test.hcl"}, code: ExitUsage, stderr: "missing.test.hcl"},
		{name: "flags after the paths", args: []string{"pass.test.hcl", "-json"}, code: ExitUsage, stderr: `unexpected argument "-json": flags go before the paths`},
		{name: "an unknown flag", args: []string{"-bogus"}, code: ExitUsage, stderr: "ringside test [-config FILE] [-json] [-run REGEXP] [PATH...]"},
		{name: "-h", args: []string{"-h"}, code: ExitOK, stdout: "flags of ringside test:"},
		{name: "a config with errors", args: []string{"-config", "bad.hcl", "pass.test.hcl"}, code: ExitError, stderr: "bad.hcl:9:"},
		{name: "a missing config", args: []string{"-config", "missing.hcl", "pass.test.hcl"}, code: ExitError, stderr: "missing.hcl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(append([]string{"test"}, tc.args...), &out, &errb, testBuiltins)
			if code != tc.code {
				t.Fatalf("exit: got %d; want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout: got %q; want it to contain %q", out.String(), tc.stdout)
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr: got %q; want it to contain %q", errb.String(), tc.stderr)
			}
		})
	}
}

// A failure never prints a device token whole, nor a secret of the test
// file in its diagnostics.
func TestRouteTestHidesTokens(t *testing.T) {
	routeTestDir(t)
	const token = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e7f8e"
	text := `test "tokens" {
  call { type = "V" }
  device "console" { token = "` + token + `" }
  device "fcm" { token = "` + token + `" }
  expect {
    notifier "desk" {
      payload = { video = false }
    }
  }
}
`
	if err := os.WriteFile("tokens.test.hcl", []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"test", "tokens.test.hcl"}, {"test", "-json", "tokens.test.hcl"}} {
		var out, errb bytes.Buffer
		if code := Main(args, &out, &errb, testBuiltins); code != ExitError {
			t.Fatalf("exit %d; want 1\n%s%s", code, out.String(), errb.String())
		}
		got := out.String() + errb.String()
		if strings.Contains(got, token) || strings.Contains(got, token[10:40]) {
			t.Errorf("%v printed the token:\n%s", args, got)
		}
		if !strings.Contains(got, "No notifier serves this device kind") || !strings.Contains(got, "payload") {
			t.Errorf("%v: want the device kind warning and the payload failure:\n%s", args, got)
		}
	}
}

// shippedEnv are the environment variables the shipped configs read.
var shippedEnv = []string{
	"APNS_KEY_ID", "APNS_TEAM_ID", "APNS_KEY_FILE", "APNS_TOPIC", "APNS_PRODUCTION",
	"FCM_CREDENTIALS", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM",
	"RINGSIDE_NOTIFY_TOKEN", "RINGSIDE_ADMIN_TOKEN",
}

// shippedCredentials is an environment that enables every notifier of
// the shipped configs, with credentials the plugins accept (made here).
func shippedCredentials(t *testing.T) map[string]string {
	t.Helper()
	creds := t.TempDir()
	key, err := fakes.NewAPNs(fakes.APNsOptions{}).WriteP8(creds)
	if err != nil {
		t.Fatal(err)
	}
	account := filepath.Join(creds, "service-account.json")
	if err := os.WriteFile(account, fakes.NewFCM(fakes.FCMOptions{}).ServiceAccount("http://127.0.0.1:9/token"), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"APNS_KEY_ID": fakes.APNsKeyID, "APNS_TEAM_ID": fakes.APNsTeamID, "APNS_KEY_FILE": key,
		"APNS_TOPIC": "com.example.planet.voip", "FCM_CREDENTIALS": account,
		"TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef", "TWILIO_AUTH_TOKEN": "twilio-auth-token",
		"TWILIO_FROM": "+15005550006",
	}
}

// The example tests shipped beside config.hcl pass against it and against
// dist/config.hcl, with or without push credentials in the environment;
// testdata/routetest/shipped holds what each setting does besides.
func TestRouteTestShippedConfigs(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	shipped := filepath.Join(testdataDir, "routetest", "shipped")
	for _, setting := range []struct {
		name  string
		env   map[string]string
		tests string
	}{
		{"without credentials", nil, "defaults.test.hcl"},
		{"with credentials", shippedCredentials(t), "credentials.test.hcl"},
	} {
		for _, config := range []string{"config.hcl", filepath.Join("dist", "config.hcl")} {
			t.Run(setting.name+"/"+config, func(t *testing.T) {
				for _, name := range shippedEnv {
					t.Setenv(name, setting.env[name])
				}
				t.Chdir(root)
				var out, errb bytes.Buffer
				args := []string{"test", "-config", config, "config.test.hcl", filepath.Join(shipped, setting.tests)}
				if code := Main(args, &out, &errb, testBuiltins); code != ExitOK {
					t.Fatalf("exit %d; want 0\n%s%s", code, out.String(), errb.String())
				}
				if errb.Len() > 0 || !strings.HasPrefix(out.String(), "--- PASS: ") || strings.Contains(out.String(), "FAIL") {
					t.Errorf("want every test to pass, and no diagnostic:\n%s%s", out.String(), errb.String())
				}
			})
		}
	}
}

func TestPayloadDiffs(t *testing.T) {
	for _, tc := range []struct {
		name, want, got string
		diffs           []string
	}{
		{"subset", `{"a":1}`, `{"a":1,"b":2}`, nil},
		{"equal numbers", `{"a":1.0,"b":100}`, `{"a":1,"b":1e2}`, nil},
		{"different numbers", `{"a":1}`, `{"a":1.5}`, []string{".a"}},
		{"missing key", `{"a":1,"z":{"x":true}}`, `{"a":1}`, []string{".z"}},
		{"nested", `{"a":{"b":[1,{"c":"d"}]}}`, `{"a":{"b":[1,{"c":"e","f":1}]}}`, []string{".a.b[1].c"}},
		{"array lengths", `{"a":[1]}`, `{"a":[1,2]}`, []string{".a"}},
		{"array elements", `{"a":[1,{"x":1}]}`, `{"a":[1,{"x":1,"y":2}]}`, nil},
		{"types", `{"a":"1","b":null,"c":false}`, `{"a":1,"b":null,"c":0}`, []string{".a", ".c"}},
		{"odd keys", `{"a b":1}`, `{"a b":2}`, []string{`."a b"`}},
		{"not an object", `{"a":1}`, `null`, []string{"."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := decodeTestJSON([]byte(tc.want))
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeTestJSON([]byte(tc.got))
			if err != nil {
				t.Fatal(err)
			}
			var diffs []string
			for _, p := range payloadDiffs(want, got, nil) {
				diffs = append(diffs, payloadPath(p))
			}
			if strings.Join(diffs, " ") != strings.Join(tc.diffs, " ") {
				t.Errorf("got %q; want %q", diffs, tc.diffs)
			}
		})
	}
}

// Route tests cover event routes: a call block's on makes its call a Call
// Event or a Group Call Event, with that kind's fields, and a field of
// another kind is an error at its line.
func TestRouteTestEvents(t *testing.T) {
	src := filepath.Join(testdataDir, "routetest", "events")
	dir := t.TempDir()
	for _, name := range []string{"config.hcl", "events.test.hcl", "badevent.test.hcl", "badgroup.test.hcl"} {
		copyFile(t, filepath.Join(src, name), filepath.Join(dir, name))
	}
	t.Chdir(dir)
	for _, tc := range []struct {
		file   string
		code   int
		golden string
	}{
		{"events.test.hcl", ExitOK, "events.golden"},
		{"badevent.test.hcl", ExitError, "badevent.golden"},
		{"badgroup.test.hcl", ExitError, "badgroup.golden"},
	} {
		var out, errb bytes.Buffer
		if code := Main([]string{"test", "-config", "config.hcl", tc.file}, &out, &errb, testBuiltins); code != tc.code {
			t.Fatalf("%s: exit %d; want %d\n%s%s", tc.file, code, tc.code, out.String(), errb.String())
		}
		golden(t, filepath.Join("routetest", "events", tc.golden), out.String()+errb.String())
	}
}
