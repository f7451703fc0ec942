package apns

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/sdk"
)

// missedCall is the payload of a call event as the host renders it.
const missedCall = `{"sid":"151ad995-749c-4a28-893f-636700469db1","event":"call_end","outcome":"missed",` +
	`"app_caller_uid":"9286","n":1.5}`

// TestDeliverPushTypes checks each push type's headers and exact body
// through the fake APNs.
func TestDeliverPushTypes(t *testing.T) {
	const bundle = "com.example.planet"
	alertTmpl := map[string]string{
		"title": "Missed call", "subtitle": "Audio", "body": "You missed a call from 9286",
		"thread_id": "missed-calls", "category": "MISSED_CALL",
	}
	tests := []struct {
		name      string
		pushType  string
		topic     string
		priority  int
		payload   string
		templates map[string]string
		// header is what apns-push-type, apns-topic, apns-priority and
		// apns-collapse-id must be ("" for none).
		header map[string]string
		body   string
	}{
		{
			name: "voip ignores alert templates", pushType: "voip", topic: testTopic, payload: missedCall,
			templates: map[string]string{"title": "Missed call", "body": "x"},
			header:    map[string]string{"apns-push-type": "voip", "apns-topic": testTopic, "apns-priority": "10", "apns-collapse-id": ""},
			body:      missedCall,
		},
		{
			name: "alert", pushType: "alert", topic: bundle, payload: missedCall, templates: alertTmpl,
			header: map[string]string{"apns-push-type": "alert", "apns-topic": bundle, "apns-priority": "10", "apns-collapse-id": ""},
			body: strings.TrimSuffix(missedCall, "}") + `,"aps":{"alert":{"title":"Missed call","subtitle":"Audio",` +
				`"body":"You missed a call from 9286"},"sound":"default","thread-id":"missed-calls","category":"MISSED_CALL"}}`,
		},
		{
			name: "alert with body only", pushType: "alert", topic: bundle, priority: 5, payload: missedCall,
			templates: map[string]string{"body": "Missed call"},
			header:    map[string]string{"apns-push-type": "alert", "apns-topic": bundle, "apns-priority": "5"},
			body:      strings.TrimSuffix(missedCall, "}") + `,"aps":{"alert":{"body":"Missed call"},"sound":"default"}}`,
		},
		{
			name: "alert with a sound rendered empty is silent", pushType: "alert", topic: bundle, payload: `{}`,
			templates: map[string]string{"body": "Missed call", "sound": "", "title": ""},
			header:    map[string]string{"apns-push-type": "alert"},
			body:      `{"aps":{"alert":{"body":"Missed call"}}}`,
		},
		{
			name: "alert with its own sound and a collapse id", pushType: "alert", topic: bundle, payload: missedCall,
			templates: map[string]string{"body": "Missed call", "sound": "ring.caf", "collapse_id": "151ad995-749c-4a28-893f-636700469db1"},
			header:    map[string]string{"apns-push-type": "alert", "apns-collapse-id": "151ad995-749c-4a28-893f-636700469db1"},
			body:      strings.TrimSuffix(missedCall, "}") + `,"aps":{"alert":{"body":"Missed call"},"sound":"ring.caf"}}`,
		},
		{
			name: "alert whose payload has its own aps", pushType: "alert", topic: bundle,
			payload:   `{"sid":"s","aps":{"alert":"hi","badge":1}}`,
			templates: map[string]string{"collapse_id": "s"},
			header:    map[string]string{"apns-push-type": "alert", "apns-collapse-id": "s"},
			body:      `{"sid":"s","aps":{"alert":"hi","badge":1}}`,
		},
		{
			name: "background", pushType: "background", topic: bundle, payload: missedCall,
			templates: map[string]string{"title": "ignored"},
			header:    map[string]string{"apns-push-type": "background", "apns-topic": bundle, "apns-priority": "5", "apns-collapse-id": ""},
			body:      strings.TrimSuffix(missedCall, "}") + `,"aps":{"content-available":1}}`,
		},
		{
			name: "background of an empty payload", pushType: "background", topic: bundle, payload: `{}`,
			header: map[string]string{"apns-push-type": "background", "apns-priority": "5"},
			body:   `{"aps":{"content-available":1}}`,
		},
		{
			name: "background whose payload has its own aps", pushType: "background", topic: bundle,
			payload: `{"aps":{"content-available":1,"x":2}}`,
			header:  map[string]string{"apns-push-type": "background"},
			body:    `{"aps":{"content-available":1,"x":2}}`,
		},
		{
			name: "voip with a collapse id", pushType: "voip", topic: testTopic, payload: missedCall,
			templates: map[string]string{"collapse_id": strings.Repeat("c", MaxCollapseID)},
			header:    map[string]string{"apns-push-type": "voip", "apns-collapse-id": strings.Repeat("c", MaxCollapseID)},
			body:      missedCall,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenSetup(t)
			p := s.plugin(t, func(c *Config) { c.PushType, c.Topic, c.Priority = tc.pushType, tc.topic, tc.priority })
			d := delivery()
			d.PayloadJSON = []byte(tc.payload)
			d.Templates = tc.templates
			if _, err := p.Deliver(context.Background(), d, device()); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			pushes := s.fake.Pushes()
			if len(pushes) != 1 {
				t.Fatalf("got %d pushes; want 1", len(pushes))
			}
			r := pushes[0]
			if r.JWTErr != nil || r.Status != 200 {
				t.Errorf("fake answered %d (provider token: %v)", r.Status, r.JWTErr)
			}
			tc.header["apns-expiration"] = strconv.FormatInt(d.Deadline.Unix(), 10)
			for h, want := range tc.header {
				if got := r.Header.Get(h); got != want {
					t.Errorf("%s: %q; want %q", h, got, want)
				}
			}
			if string(r.Body) != tc.body {
				t.Errorf("body\n%s\nwant\n%s", r.Body, tc.body)
			}
		})
	}
}

// Alert templates on another push type are logged once per notifier, as
// ignored.
func TestDeliverIgnoredTemplatesLoggedOnce(t *testing.T) {
	for _, pushType := range []string{"voip", "background"} {
		t.Run(pushType, func(t *testing.T) {
			s := newTokenSetup(t)
			p := s.plugin(t, func(c *Config) {
				c.PushType = pushType
				if pushType != "voip" {
					c.Topic = "com.example.planet"
				}
			})
			d := delivery()
			d.Templates = map[string]string{"title": "t", "body": "b", "collapse_id": "x"}
			for range 3 {
				if _, err := p.Deliver(context.Background(), d, device()); err != nil {
					t.Fatal(err)
				}
			}
			warned := s.logs.warnings()
			if len(warned) != 1 || warned[0]["attributes"] != "title,body" ||
				!strings.Contains(warned[0]["msg"].(string), "ignored for push_type "+pushType) {
				t.Errorf("warnings %v; want one naming title,body as ignored for push_type %s", warned, pushType)
			}
		})
	}
	t.Run("warned at Configure", func(t *testing.T) {
		// Configure warned about title: only body is logged.
		s := newTokenSetup(t)
		p := New()
		p.rootCAs = s.fake.CertPool()
		p.log = slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		ctx := sdk.ContextWithBlock(context.Background(), sdk.Block{Templates: []string{"title"}})
		if diags := p.Configure(ctx, s.cfg); len(diags) != 1 || diags[0].Attribute != "title" {
			t.Fatalf("Configure: %v; want a warning at title", diags)
		}
		d := delivery()
		d.Templates = map[string]string{"title": "t"}
		if _, err := p.Deliver(context.Background(), d, device()); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s.logs.String(), "ignored") {
			t.Errorf("logs %s; want nothing: Configure warned about title", s.logs)
		}
		d.Templates = map[string]string{"title": "t", "body": "b"}
		if _, err := p.Deliver(context.Background(), d, device()); err != nil {
			t.Fatal(err)
		}
		warned := s.logs.warnings()
		if len(warned) != 1 || warned[0]["attributes"] != "body" {
			t.Errorf("warnings %v; want one naming body", warned)
		}
	})
	t.Run("none set", func(t *testing.T) {
		s := newTokenSetup(t)
		p := s.plugin(t)
		d := delivery()
		d.Templates = map[string]string{"collapse_id": "x"}
		if _, err := p.Deliver(context.Background(), d, device()); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s.logs.String(), "ignored") {
			t.Errorf("logs %s; want nothing ignored", s.logs)
		}
	})
}

// Alert and collapse-id deliveries that cannot succeed are refused before
// anything is sent, naming the attribute at fault.
func TestDeliverAlertRefusedBeforeSending(t *testing.T) {
	tests := []struct {
		name      string
		pushType  string
		payload   string
		templates map[string]string
		want      []string
	}{
		{name: "alert without body", pushType: "alert", templates: map[string]string{"title": "Missed call"},
			want: []string{"body is not set", "alert push"}},
		{name: "alert without templates", pushType: "alert",
			want: []string{"body is not set"}},
		{name: "alert body rendered empty", pushType: "alert", templates: map[string]string{"body": " \n"},
			want: []string{"body rendered empty"}},
		{name: "alert templates and the payload's own aps", pushType: "alert", payload: `{"aps":{"alert":"x"}}`,
			templates: map[string]string{"title": "t", "body": "b"},
			want:      []string{`own "aps"`, "title, body", "does not merge"}},
		{name: "alert payload not JSON", pushType: "alert", payload: `{"a":}`, templates: map[string]string{"body": "b"},
			want: []string{"not a JSON object"}},
		{name: "background payload not JSON", pushType: "background", payload: `{"a" "b"}`,
			want: []string{"not a JSON object"}},
		{name: "alert over 4 KB with its aps", pushType: "alert",
			payload:   `{"x":"` + strings.Repeat("a", MaxPayload-len(`{"x":""}`)) + `"}`,
			templates: map[string]string{"body": "b"},
			want:      []string{"over APNs' 4096-byte limit for alert pushes"}},
		{name: "collapse_id over 64 bytes", pushType: "alert", templates: map[string]string{"body": "b", "collapse_id": strings.Repeat("c", MaxCollapseID+1)},
			want: []string{"collapse_id", "65 bytes", "at most 64"}},
		{name: "voip collapse_id over 64 bytes", pushType: "voip", templates: map[string]string{"collapse_id": strings.Repeat("c", MaxCollapseID+1)},
			want: []string{"collapse_id"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenSetup(t)
			p := s.plugin(t, func(c *Config) {
				c.PushType = tc.pushType
				if tc.pushType != "voip" {
					c.Topic = "com.example.planet"
				}
			})
			d := delivery()
			if tc.payload != "" {
				d.PayloadJSON = []byte(tc.payload)
			}
			d.Templates = tc.templates
			_, err := p.Deliver(context.Background(), d, device())
			de, failed := sdk.Classify(err)
			if !failed || de.Class != sdk.ClassPermanent {
				t.Fatalf("got %v (class %v); want permanent", err, de.Class)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if n := len(s.fake.Pushes()); n != 0 {
				t.Errorf("%d pushes sent; want none", n)
			}
		})
	}
	t.Run("alert of exactly 4 KB with its aps is sent", func(t *testing.T) {
		s := newTokenSetup(t)
		p := s.plugin(t, func(c *Config) { c.PushType, c.Topic = "alert", "com.example.planet" })
		suffix := `,"aps":{"alert":{"body":"b"},"sound":"default"}}`
		d := delivery()
		d.PayloadJSON = []byte(`{"x":"` + strings.Repeat("a", MaxPayload-len(`{"x":"`)-len(`"`)-len(suffix)) + `"}`)
		d.Templates = map[string]string{"body": "b"}
		d.Deadline = time.Now().Add(time.Minute)
		if _, err := p.Deliver(context.Background(), d, device()); err != nil {
			t.Fatal(err)
		}
		if r := s.fake.Pushes(); len(r) != 1 || len(r[0].Body) != MaxPayload || r[0].Status != 200 {
			t.Errorf("want one push of %d bytes, answered 200", MaxPayload)
		}
	})
}
