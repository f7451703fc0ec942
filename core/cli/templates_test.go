package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringside/ringside/plugins/fakes"
)

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
