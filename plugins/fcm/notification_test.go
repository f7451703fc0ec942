package fcm

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

const testSID = "151ad995-749c-4a28-893f-636700469db1"

// configured returns a plugin configured with cfg against e's fake FCM, and
// its diagnostics.
func (e *env) configured(t *testing.T, cfg Config) (*Plugin, sdk.Diagnostics) {
	t.Helper()
	cfg.CredentialsFile, cfg.Endpoint = e.creds, e.fcm.Endpoint()
	p := New()
	diags := p.Configure(context.Background(), cfg)
	if diags.HasError() {
		t.Fatalf("Configure: %v", diags)
	}
	return p, diags
}

// sentMessage decodes the only message the fake FCM received.
func sentMessage(t *testing.T, e *env) map[string]any {
	t.Helper()
	sends := e.fcm.Sends()
	if len(sends) != 1 {
		t.Fatalf("%d requests, want 1", len(sends))
	}
	var got map[string]any
	if err := json.Unmarshal(sends[0].Body, &got); err != nil {
		t.Fatalf("body: %v\n%s", err, sends[0].Body)
	}
	return got
}

func checkJSON(t *testing.T, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", "  ")
		wb, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("message:\n%s\nwant:\n%s", gb, wb)
	}
}

// defaultData is the FCM data of defaultPayload.
func defaultData() map[string]any {
	return map[string]any{
		"cc_param":       lineParam,
		"sid":            testSID,
		"app_caller_sid": "linecorp.com",
		"app_caller_uid": "9286",
		"app_callee_sid": "linecorp.com",
		"app_callee_uid": "2809",
		"app_call_type":  "A",
		"app_svr_data":   "stid",
	}
}

func TestDeliverNotificationJSON(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		templates map[string]string
		// notification and android are the message's blocks.
		notification, android map[string]any
	}{
		{
			name: "every attribute",
			cfg:  Config{Message: "notification"},
			templates: map[string]string{
				"title": "Missed call", "body": "You missed a call from 9286",
				"tag": testSID, "channel_id": "missed_calls",
			},
			notification: map[string]any{"title": "Missed call", "body": "You missed a call from 9286"},
			android: map[string]any{
				"priority": "high", "ttl": "60s",
				"notification": map[string]any{"sound": "default", "tag": testSID, "channel_id": "missed_calls"},
			},
		},
		{
			name:         "body alone, own sound, normal priority",
			cfg:          Config{Message: "notification", Sound: "missed.ogg", Priority: "normal"},
			templates:    map[string]string{"body": "You missed a call", "title": "", "tag": ""},
			notification: map[string]any{"body": "You missed a call"},
			android: map[string]any{
				"priority": "normal", "ttl": "60s",
				"notification": map[string]any{"sound": "missed.ogg"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p, diags := e.configured(t, tc.cfg)
			if len(diags) > 0 {
				t.Errorf("Configure: %v, want nothing", diags)
			}
			d := delivery(defaultPayload)
			d.Templates = tc.templates
			if _, err := p.Deliver(context.Background(), d, sdk.Device{Kind: "fcm", Token: testToken}); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			checkJSON(t, sentMessage(t, e), map[string]any{
				"message": map[string]any{
					"token":        testToken,
					"data":         defaultData(),
					"notification": tc.notification,
					"android":      tc.android,
				},
			})
		})
	}
}

// A notification whose body renders empty is never sent.
func TestNotificationEmptyBody(t *testing.T) {
	for _, templates := range []map[string]string{
		nil,
		{"title": "Missed call"},
		{"title": "Missed call", "body": " \n"},
	} {
		e := newEnv(t)
		p, _ := e.configured(t, Config{Message: "notification"})
		d := delivery(defaultPayload)
		d.Templates = templates
		_, err := p.Deliver(context.Background(), d, sdk.Device{Kind: "fcm", Token: testToken})
		checkOutcome(t, err, sdk.ClassPermanent, 0, "body rendered empty")
		if n := len(e.fcm.Sends()); n != 0 {
			t.Errorf("templates %v: %d requests sent without a body", templates, n)
		}
	}
}

// A data message notifier ignores the notification attributes, sends what
// it sends without them, and says so once in its log.
func TestDataMessageIgnoresNotificationTemplates(t *testing.T) {
	e := newEnv(t)
	var logged bytes.Buffer
	e.p.log = slog.New(slog.NewTextHandler(&logged, nil))
	templates := map[string]string{"title": "Missed call", "body": "You missed a call", "channel_id": "x", "other": "y"}
	for i := range 3 {
		d := delivery(defaultPayload)
		if i > 0 {
			d.Templates = templates
		}
		if _, err := e.p.Deliver(context.Background(), d, sdk.Device{Kind: "fcm", Token: testToken}); err != nil {
			t.Fatal(err)
		}
	}
	sends := e.fcm.Sends()
	for _, s := range sends[1:] {
		if !bytes.Equal(s.Body, sends[0].Body) {
			t.Errorf("data message with templates:\n%s\nwant it as without:\n%s", s.Body, sends[0].Body)
		}
	}
	var m map[string]map[string]any
	_ = json.Unmarshal(sends[0].Body, &m)
	checkJSON(t, m["message"]["android"], map[string]any{"priority": "high", "ttl": "60s"})
	if _, ok := m["message"]["notification"]; ok {
		t.Error("a data message has a notification block")
	}
	out := logged.String()
	if n := strings.Count(out, "ignored for data messages"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "title, body, channel_id ignored") || !strings.Contains(out, "level=WARN") {
		t.Errorf("warning %q, want title, body and channel_id named at WARN", out)
	}
}

func TestConfigureMessage(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		cfg      Config
		attr     string
		severity sdk.Severity // unused when attr is "": no diagnostics
		msg      string
	}{
		{"data by default", Config{}, "", 0, ""},
		{"data", Config{Message: "data"}, "", 0, ""},
		{"notification", Config{Message: "notification", Sound: "ring"}, "", 0, ""},
		{"unknown message", Config{Message: "alert"}, "message", sdk.SeverityError, `must be "data" or "notification", got "alert"`},
		{"sound on a data message", Config{Sound: "ring"}, "sound", sdk.SeverityWarning, "ignored for data messages"},
		{"sound with a path", Config{Message: "notification", Sound: "../ring.ogg"}, "sound", sdk.SeverityError, "sound resource"},
		{"normal priority, data", Config{Priority: "normal"}, "priority", sdk.SeverityWarning, "may be delayed"},
		{"normal priority, notification", Config{Message: "notification", Priority: "normal"}, "", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.CredentialsFile, cfg.Endpoint = e.creds, e.fcm.Endpoint()
			diags := New().Configure(context.Background(), cfg)
			if tc.attr == "" {
				if len(diags) > 0 {
					t.Errorf("Configure: %v, want nothing", diags)
				}
				return
			}
			if len(diags) != 1 {
				t.Fatalf("Configure: %v, want one diagnostic at %s", diags, tc.attr)
			}
			if d := diags[0]; d.Attribute != tc.attr || d.Severity != tc.severity || !strings.Contains(d.Summary, tc.msg) {
				t.Errorf("got %v %q at %q; want %v %q at %q", d.Severity, d.Summary, d.Attribute, tc.severity, tc.msg, tc.attr)
			}
		})
	}
}

// When the host says which templates the block sets, Configure refuses a
// notification message without body and warns at each notification
// template a data message ignores; told nothing (an older host), it leaves
// them to the deliveries.
func TestConfigureTemplates(t *testing.T) {
	e := newEnv(t)
	known := func(templates ...string) context.Context {
		return sdk.ContextWithBlock(context.Background(), sdk.Block{Templates: templates})
	}
	tests := []struct {
		name    string
		ctx     context.Context
		message string
		// want is each diagnostic as "error|warning attribute: a part of
		// its summary".
		want []string
	}{
		{"notification without body", known("tag", "title"), "notification",
			[]string{`error message: notification messages need body, the text shown: add body = "…"`}},
		{"notification with body", known("body"), "notification", nil},
		{"notification, an older host", context.Background(), "notification", nil},
		{"data with notification templates", known("body", "channel_id", "tag", "title"), "data", []string{
			"warning title: ignored for data messages", "warning body: ignored for data messages",
			"warning tag: ignored for data messages", "warning channel_id: ignored for data messages"}},
		{"data by default, with title", known("title"), "", []string{"warning title: ignored for data messages"}},
		{"data without templates", known(), "data", nil},
		{"data, an older host", context.Background(), "data", nil},
		{"unknown message", known(), "alert", []string{`error message: must be "data" or "notification"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{CredentialsFile: e.creds, Endpoint: e.fcm.Endpoint(), Message: tc.message}
			sdktest.CheckDiagnostics(t, New().Configure(tc.ctx, cfg), tc.want)
		})
	}
}

// The notification templates Configure warned about are not logged again
// at delivery; the others are, once.
func TestDataMessageLogsOnlyUnwarnedTemplates(t *testing.T) {
	e := newEnv(t)
	p := New()
	var logged bytes.Buffer
	p.log = slog.New(slog.NewTextHandler(&logged, nil))
	ctx := sdk.ContextWithBlock(context.Background(), sdk.Block{Templates: []string{"title"}})
	if diags := p.Configure(ctx, Config{CredentialsFile: e.creds, Endpoint: e.fcm.Endpoint()}); len(diags) != 1 || diags[0].Attribute != "title" {
		t.Fatalf("Configure: %v; want a warning at title", diags)
	}
	d := delivery(defaultPayload)
	d.Templates = map[string]string{"title": "Missed call"}
	if _, err := p.Deliver(context.Background(), d, sdk.Device{Kind: "fcm", Token: testToken}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logged.String(), "ignored") {
		t.Errorf("logged %q; want nothing: Configure warned about title", logged.String())
	}
	d.Templates = map[string]string{"title": "Missed call", "tag": "x"}
	for range 2 {
		if _, err := p.Deliver(context.Background(), d, sdk.Device{Kind: "fcm", Token: testToken}); err != nil {
			t.Fatal(err)
		}
	}
	if out := logged.String(); strings.Count(out, "ignored") != 1 || !strings.Contains(out, "fcm: tag ignored") {
		t.Errorf("logged %q; want tag, alone, once", out)
	}
}
