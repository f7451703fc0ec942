package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

// TestMain serves the plugin when sdktest launches this test binary as a
// plugin process.
func TestMain(m *testing.M) {
	sdktest.Main(m, main)
}

// fakeSlack records posted messages and answers with status and body.
type fakeSlack struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []map[string]any
}

func newFakeSlack(t *testing.T, status int, body string, header ...string) *fakeSlack {
	t.Helper()
	f := &fakeSlack{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		f.mu.Lock()
		f.msgs = append(f.msgs, m)
		f.mu.Unlock()
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func configured(t *testing.T, cfg Config) *Slack {
	t.Helper()
	s := New()
	sdktest.Configured(t, s, cfg)
	return s
}

func delivery(text ...string) *sdk.Delivery {
	d := &sdk.Delivery{ID: "d1", Attempt: 1, Call: sdktest.LineCall(), Deadline: time.Now().Add(time.Minute)}
	if len(text) > 0 {
		d.Templates = map[string]string{"text": text[0]}
	}
	return d
}

func TestPost(t *testing.T) {
	f := newFakeSlack(t, 200, "ok", "X-Slack-Req-Id", "req-42")
	s := configured(t, Config{WebhookURL: f.URL + "/services/T0/B0/secret", Username: "ringside", IconEmoji: ":telephone:"})
	id, err := s.Deliver(context.Background(), delivery("*9286* is calling"), sdk.Device{})
	if err != nil || id != "req-42" {
		t.Fatalf("got %q, %v", id, err)
	}
	d := delivery()
	d.Call.FromUserID = "<!channel>"
	if _, err := s.Deliver(context.Background(), d, sdk.Device{}); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"text": "*9286* is calling", "username": "ringside", "icon_emoji": ":telephone:", "unfurl_links": false},
		{"text": ":telephone_receiver: Incoming audio call from &lt;!channel&gt; to 2809", "username": "ringside", "icon_emoji": ":telephone:", "unfurl_links": false},
	}
	for i, m := range f.msgs {
		for k, v := range want[i] {
			if m[k] != v {
				t.Errorf("message %d: %s = %#v; want %#v", i, k, m[k], v)
			}
		}
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		status int
		body   string
		header []string
		class  sdk.Class
		after  time.Duration
		want   string
	}{
		{400, "invalid_payload", nil, sdk.ClassPermanent, 0, "400 invalid_payload"},
		{403, "action_prohibited", nil, sdk.ClassPermanent, 0, "action_prohibited"},
		{404, "no_service", nil, sdk.ClassPermanent, 0, "no_service"},
		{410, "channel_is_archived", nil, sdk.ClassPermanent, 0, "channel_is_archived"},
		{302, "", []string{"Location", "https://example.com"}, sdk.ClassPermanent, 0, "302"},
		{429, "rate_limited", []string{"Retry-After", "3"}, sdk.ClassRetry, 3 * time.Second, "429 rate_limited"},
		{500, "<html>oops</html>", nil, sdk.ClassRetry, 0, "500"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			f := newFakeSlack(t, tc.status, tc.body, tc.header...)
			s := configured(t, Config{WebhookURL: f.URL + "/services/T0/B0/secret"})
			_, err := s.Deliver(context.Background(), delivery("x"), sdk.Device{})
			de, failed := sdk.Classify(err)
			if !failed || de.Class != tc.class || de.After != tc.after || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (%v after %v); want %v after %v with %q", err, de.Class, de.After, tc.class, tc.after, tc.want)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "<html>") {
				t.Errorf("error quotes the URL or the body: %v", err)
			}
		})
	}
}

func TestConfigure(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		attr string
		warn bool
	}{
		{Config{WebhookURL: "https://hooks.slack.com/services/T/B/x"}, "", false},
		{Config{WebhookURL: "https://proxy.example.com/slack"}, "webhook_url", true},
		{Config{WebhookURL: "http://hooks.slack.com/services/T/B/x"}, "webhook_url", false},
		{Config{WebhookURL: "hooks.slack.com/services/T/B/zzz"}, "webhook_url", false},
		{Config{WebhookURL: "https://hooks.slack.com/x", IconEmoji: "phone"}, "icon_emoji", false},
		{Config{WebhookURL: "https://hooks.slack.com/x", Timeout: -time.Second}, "timeout", false},
	} {
		diags := New().Configure(context.Background(), tc.cfg)
		switch {
		case tc.attr == "" && diags != nil:
			t.Errorf("%+v: %v", tc.cfg, diags)
		case tc.attr != "" && (len(diags) != 1 || diags[0].Attribute != tc.attr || (diags[0].Severity == sdk.SeverityWarning) != tc.warn):
			t.Errorf("%+v: got %v; want at %s (warning %v)", tc.cfg, diags, tc.attr, tc.warn)
		}
		if strings.Contains(diags.String(), tc.cfg.WebhookURL) {
			t.Errorf("a diagnostic quotes the webhook URL: %v", diags)
		}
	}
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, sdktest.Suite{
		Config: func(peer string) map[string]any {
			return map[string]any{"webhook_url": peer + "/services/T000/B000/XXXXsecretXXXX", "username": "ringside"}
		},
		Invalid: []sdktest.Invalid{
			{Name: "not a url", Config: map[string]any{"webhook_url": "hooks.slack.com/services/T000/B000/XXXXsecretXXXX"}, Attribute: "webhook_url"},
			{Name: "bad emoji", Config: map[string]any{"webhook_url": "https://hooks.slack.com/services/T/B/x", "icon_emoji": "phone"}, Attribute: "icon_emoji"},
		},
	})
}
