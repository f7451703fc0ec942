package config

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// feedbackBase is a file with a routed notifier, one for feedback and a
// disabled one; a feedback block appended to it starts on line 15.
const feedbackBase = `notifier "app" {
  plugin = "webhook"
  url    = "http://127.0.0.1:8080/calls"
}
notifier "events" {
  plugin = "webhook"
  url    = "http://127.0.0.1:8080/events"
}
notifier "off" {
  plugin  = "webhook"
  url     = "http://127.0.0.1:8080/off"
  enabled = false
}
route "all" { notify = ["app"] }
`

// loadFeedback loads feedbackBase with block appended.
func loadFeedback(t *testing.T, block string) (*Config, string) {
	t.Helper()
	path := writeConfig(t, feedbackBase+block)
	cfg, diags := Load(path, Options{Builtins: testBuiltins, Getenv: noEnv})
	var buf bytes.Buffer
	WriteDiagnostics(&buf, nil, diags)
	if !diags.HasErrors() {
		return cfg, buf.String()
	}
	return nil, buf.String()
}

// TestFeedbackDecode: no block is no feedback; an empty notifier-only
// block takes every default; each attribute is read.
func TestFeedbackDecode(t *testing.T) {
	cfg, diags := loadFeedback(t, "")
	if cfg == nil || cfg.Feedback != nil {
		t.Fatalf("no block: got %+v (%s); want no feedback", cfg, diags)
	}
	for _, tc := range []struct {
		name  string
		block string
		want  Feedback
	}{
		{"defaults", `feedback { notifier = "events" }`, Feedback{Notifier: "events",
			Events: []string{"pruned", "failed", "expired"}, Batch: DefaultFeedbackBatch, Queue: DefaultFeedbackQueue,
			RetryFor: DefaultFeedbackRetryFor, FlushAfter: DefaultFeedbackFlushAfter}},
		{"every attribute", `feedback {
  notifier    = "events"
  events      = ["delivered", "pruned"]
  batch       = 1000
  queue       = 5
  retry_for   = "1h"
  flush_after = "10s"
}`, Feedback{Notifier: "events", Events: []string{"delivered", "pruned"}, Batch: 1000, Queue: 5,
			RetryFor: time.Hour, FlushAfter: 10 * time.Second}},
		{"the routed notifier", `feedback { notifier = "app" }`, Feedback{Notifier: "app",
			Events: []string{"pruned", "failed", "expired"}, Batch: DefaultFeedbackBatch, Queue: DefaultFeedbackQueue,
			RetryFor: DefaultFeedbackRetryFor, FlushAfter: DefaultFeedbackFlushAfter}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := loadFeedback(t, tc.block)
			if cfg == nil || cfg.Feedback == nil {
				t.Fatalf("got no feedback:\n%s", diags)
			}
			got := *cfg.Feedback
			if got.DeclRange.Start.Line != 15 || got.NotifierRange.Start.Line < 15 {
				t.Errorf("ranges: block at line %d, notifier at line %d; want 15, 15 or later", got.DeclRange.Start.Line, got.NotifierRange.Start.Line)
			}
			if got.Notifier != tc.want.Notifier || !slices.Equal(got.Events, tc.want.Events) || got.Batch != tc.want.Batch ||
				got.Queue != tc.want.Queue || got.RetryFor != tc.want.RetryFor || got.FlushAfter != tc.want.FlushAfter {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

// TestFeedbackErrors: each mistake in the block is an error at its
// attribute (the file:line:col and the caret), saying what is expected.
func TestFeedbackErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block string
		want  []string // in the rendered diagnostics, in order
	}{
		{"no notifier", `feedback {}`,
			[]string{"config.hcl:15:1: error: feedback has no notifier", `notifier = "app_events"`}},
		{"unknown notifier", `feedback { notifier = "nope" }`,
			[]string{`config.hcl:15:23: error: Unknown notifier "nope"`, "^^^^^^", "(app, events, off)"}},
		{"disabled notifier", `feedback { notifier = "off" }`,
			[]string{`config.hcl:15:23: error: Notifier "off" is disabled`, "enable it or remove the feedback block"}},
		{"notifier not a string", `feedback { notifier = ["events"] }`,
			[]string{"config.hcl:15:23: error: notifier must be a string"}},
		{"unknown event", "feedback {\n  notifier = \"events\"\n  events = [\"pruned\", \"bounced\"]\n}",
			[]string{`config.hcl:17:23: error: Unknown feedback event "bounced"`, `"pruned", "failed", "expired" and "delivered"`}},
		{"events empty", "feedback {\n  notifier = \"events\"\n  events = []\n}",
			[]string{"config.hcl:17:12: error: events is empty", "remove the feedback block"}},
		{"event twice", "feedback {\n  notifier = \"events\"\n  events = [\"pruned\", \"pruned\"]\n}",
			[]string{`config.hcl:17:23: error: Feedback event "pruned" is listed twice`}},
		{"events not a list", "feedback {\n  notifier = \"events\"\n  events = 3\n}",
			[]string{"config.hcl:17:12: error: events must be a list of strings"}},
		{"batch too large", "feedback {\n  notifier = \"events\"\n  batch = 1001\n}",
			[]string{"config.hcl:17:11: error: batch is too large", "At most 1000 events go in one request. Got 1001."}},
		{"batch zero", "feedback {\n  notifier = \"events\"\n  batch = 0\n}",
			[]string{"config.hcl:17:11: error: batch must be at least 1", "omit it for the default, 100"}},
		{"queue not whole", "feedback {\n  notifier = \"events\"\n  queue = 1.5\n}",
			[]string{"config.hcl:17:11: error: queue must be a whole number"}},
		{"retry_for a number", "feedback {\n  notifier = \"events\"\n  retry_for = 10\n}",
			[]string{"config.hcl:17:15: error: retry_for must be a duration string", `"10s"`}},
		{"retry_for negative", "feedback {\n  notifier = \"events\"\n  retry_for = \"-1s\"\n}",
			[]string{"config.hcl:17:15: error: retry_for must be more than 0"}},
		{"flush_after too long", "feedback {\n  notifier = \"events\"\n  flush_after = \"11s\"\n}",
			[]string{"config.hcl:17:17: error: flush_after is longer than 10s", `got "11s"`}},
		{"two blocks", "feedback { notifier = \"events\" }\nfeedback { notifier = \"events\" }",
			[]string{"config.hcl:16:1: error: Duplicate feedback block", "config.hcl:15:1"}},
		{"unknown attribute", "feedback {\n  notifier = \"events\"\n  url = \"http://x\"\n}",
			[]string{"config.hcl:17:3: error: Unsupported argument", `"url"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := loadFeedback(t, tc.block)
			if cfg != nil {
				t.Fatalf("loaded with feedback %+v; want an error", cfg.Feedback)
			}
			rest := diags
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("diagnostics lack %q (in order):\n%s", w, diags)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestFeedbackErrorsAll: one block with a mistake in each attribute
// reports every one of them, not only the first.
func TestFeedbackErrorsAll(t *testing.T) {
	_, diags := loadFeedback(t, `feedback {
  notifier    = "nope"
  events      = ["bounced"]
  batch       = 0
  queue       = 0
  retry_for   = "0s"
  flush_after = "1m"
}`)
	for line := 16; line <= 21; line++ {
		if !strings.Contains(diags, fmt.Sprintf("config.hcl:%d:", line)) {
			t.Errorf("no error at line %d:\n%s", line, diags)
		}
	}
}

// TestFeedbackNotifierWithDevices: the check that needs the plugin's
// schema (the notifier's device kind) points at feedback.notifier.
func TestFeedbackNotifierWithDevices(t *testing.T) {
	path := writeConfig(t, feedbackBase+"feedback { notifier = \"app\" }\n")
	cfg, diags := Load(path, Options{Builtins: testBuiltins, Getenv: noEnv})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	// As if app's plugin delivered to apns devices by default.
	diags = cfg.ApplySchema(cfg.Notifiers[0], Schema{DeviceKind: "apns"})
	var buf bytes.Buffer
	WriteDiagnostics(&buf, cfg.Files, diags)
	if want := `config.hcl:15:23: error: feedback notifier "app" delivers to apns devices`; !strings.Contains(buf.String(), want) {
		t.Fatalf("diagnostics lack %q:\n%s", want, buf.String())
	}
}
