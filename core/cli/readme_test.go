package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeBlocks returns the hcl code blocks of the README's section
// "Changing the rules safely", in order.
func readmeBlocks(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "## Changing the rules safely")
	if start < 0 {
		t.Fatal(`README.md has no section "Changing the rules safely"`)
	}
	s = s[start+1:]
	if end := strings.Index(s, "\n## "); end >= 0 {
		s = s[:end]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatch(s, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// The README's worked example holds: its route, added to the shipped
// config before route "all", passes the shipped tests and its own; without
// its fallback line the shipped test the README names fails where it says.
func TestReadmeRuleChange(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, root)
	if len(blocks) != 2 || !strings.HasPrefix(blocks[0], `route "video"`) || !strings.HasPrefix(blocks[1], "test ") {
		t.Fatalf("want the README's route and test blocks, got %d blocks:\n%s", len(blocks), strings.Join(blocks, "---\n"))
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
		t.Errorf("with the README's route: exit %d; want 0 and 6 tests passing\n%s", code, out)
	}
	noFallback := regexp.MustCompile(`(?m)^\s*fallback\s*=.*\n`).ReplaceAllString(blocks[0], "")
	code, out := run(noFallback)
	if code != ExitError || !strings.Contains(out, "--- FAIL: the app server always answers, so SMS is never needed at once") || !strings.Contains(out, "config.test.hcl:48:") {
		t.Errorf("without the fallback line: exit %d; want 1 and the SMS test failing at config.test.hcl:48, as the README says\n%s", code, out)
	}
}
