package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docBlocks returns the hcl code blocks of page (a path from the
// repository's root), in order; with a title, only those of its section of
// that title.
func docBlocks(t *testing.T, root, page, title string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, page))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if title != "" {
		start := strings.Index(s, "## "+title+"\n")
		if start < 0 {
			t.Fatalf("%s has no section %q", page, title)
		}
		s = s[start+1:]
		if end := strings.Index(s, "\n## "); end >= 0 {
			s = s[:end]
		}
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatch(s, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// The worked example of docs/changing-rules.md holds: its route, added to
// the shipped config before route "all", passes the shipped tests and its
// own; without its fallback line the shipped test the page names fails
// where it says.
func TestDocsRuleChange(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlocks(t, root, "docs/changing-rules.md", "")
	if len(blocks) != 2 || !strings.HasPrefix(blocks[0], `route "video"`) || !strings.HasPrefix(blocks[1], "test ") {
		t.Fatalf("want the page's route and test blocks, got %d blocks:\n%s", len(blocks), strings.Join(blocks, "---\n"))
	}
	config, err := os.ReadFile(filepath.Join(root, "config.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	shippedTests, err := os.ReadFile(filepath.Join(root, "config.test.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range shippedEnv {
		t.Setenv(name, "")
	}
	run := func(route string) (int, string) {
		dir := t.TempDir()
		candidate := strings.Replace(string(config), `route "all" {`, route+"\n"+`route "all" {`, 1)
		for name, body := range map[string]string{"candidate.hcl": candidate, "config.test.hcl": string(shippedTests), "video.test.hcl": blocks[1]} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		t.Chdir(dir)
		var out, errb bytes.Buffer
		code := Main([]string{"test", "-config", "candidate.hcl"}, &out, &errb, testBuiltins)
		return code, out.String() + errb.String()
	}
	if code, out := run(blocks[0]); code != ExitOK || !strings.Contains(out, "--- PASS: a video call goes to the app server alone (video.test.hcl:1)") || !strings.Contains(out, "ok  6 tests") {
		t.Errorf("with the page's route: exit %d; want 0 and 6 tests passing\n%s", code, out)
	}
	noFallback := regexp.MustCompile(`(?m)^\s*fallback\s*=.*\n`).ReplaceAllString(blocks[0], "")
	code, out := run(noFallback)
	if code != ExitError || !strings.Contains(out, "--- FAIL: the app server always answers, so SMS is never needed at once") || !strings.Contains(out, "config.test.hcl:48:") {
		t.Errorf("without the fallback line: exit %d; want 1 and the SMS test failing at config.test.hcl:48, as the page says\n%s", code, out)
	}
}

// The event routes of docs/events.md for the shipped config, added to it,
// load with every notifier enabled, and route a missed call to the cancel and the
// missed-call notifiers, and an answered one to neither.
func TestDocsEventRoutes(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlocks(t, root, "docs/events.md", "With the shipped config")
	if len(blocks) != 1 || !strings.Contains(blocks[0], `route "cancel"`) {
		t.Fatalf("want the page's one block of event routes, got %d:\n%s", len(blocks), strings.Join(blocks, "---\n"))
	}
	config, err := os.ReadFile(filepath.Join(root, "config.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	env := shippedCredentials(t)
	env["APNS_BUNDLE_ID"] = "com.example.planet"
	for _, name := range append(shippedEnv, "APNS_BUNDLE_ID") {
		t.Setenv(name, env[name])
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(string(config)+"\n"+blocks[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	main := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Main(args, &out, &errb, testBuiltins)
		return code, out.String() + errb.String()
	}
	if code, out := main("validate", "-config", "config.hcl"); code != ExitOK || strings.Contains(out, "error") {
		t.Fatalf("validate: exit %d\n%s", code, out)
	}
	const ended = "sid=151ad995-749c-4a28-893f-636700469db1&from_service_id=linecorp.com&from_user_id=9286&to_service_id=linecorp.com&to_user_id=2809&type=A"
	for _, tc := range []struct {
		query  string
		routes []string
	}{
		{ended + "&terminate=18&duration=0", []string{"cancel", "missed"}},
		{ended + "&terminate=16&duration=42&start_time=1764842404", nil},
	} {
		code, out := main("explain", "-json", "-on", "call_event", tc.query)
		if code != ExitOK {
			t.Fatalf("explain %s: exit %d\n%s", tc.query, code, out)
		}
		var got struct {
			Routes    []string `json:"routes"`
			Notifiers []struct {
				Name string `json:"name"`
			} `json:"notifiers"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("explain -json: %v\n%s", err, out)
		}
		if !slices.Equal(got.Routes, tc.routes) {
			t.Errorf("%s: routes %q; want %q", tc.query, got.Routes, tc.routes)
		}
		if tc.routes != nil && !slices.ContainsFunc(got.Notifiers, func(n struct {
			Name string `json:"name"`
		}) bool {
			return n.Name == "ios_missed"
		}) {
			t.Errorf("%s: ios_missed not planned:\n%s", tc.query, out)
		}
	}
}
