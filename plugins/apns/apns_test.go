package apns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sideshow/apns2"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

// delivery is the LINE example as the host hands it over: the default keys
// plus a notifier payload with a bool, a number and a nested object.
func delivery() *sdk.Delivery {
	payload := `{"cc_param":"` + lineParam + `","sid":"151ad995-749c-4a28-893f-636700469db1",` +
		`"app_caller_sid":"linecorp.com","app_caller_uid":"9286","app_callee_sid":"linecorp.com",` +
		`"app_callee_uid":"2809","app_call_type":"A","app_svr_data":"stid",` +
		`"caller":"9286","meta":{"n":1.5,"tags":["a","b"]},"video":false}`
	r := sdktest.NewRequest()
	r.PayloadJSON = []byte(payload)
	r.Deadline = time.Now().Add(60 * time.Second).Truncate(time.Second)
	return r.Delivery()
}

func device() sdk.Device { return sdk.Device{Kind: "apns", Token: testToken} }

func TestDeliverVoIPPush(t *testing.T) {
	s := newTokenSetup(t)
	p := s.plugin(t)
	d := delivery()
	id, err := p.Deliver(context.Background(), d, device())
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	reqs := s.fake.Pushes()
	if len(reqs) != 1 {
		t.Fatalf("got %d pushes; want 1", len(reqs))
	}
	r := reqs[0]
	if id != "5e0f0a6b-0000-4000-8000-000000000001" {
		t.Errorf("provider id %q; want the fake's apns-id", id)
	}
	if r.JWTErr != nil {
		t.Errorf("provider token: %v", r.JWTErr)
	}
	if r.Proto != 2 {
		t.Errorf("HTTP/%d; want HTTP/2", r.Proto)
	}
	if r.Token != testToken {
		t.Errorf("path token %q; want %q", r.Token, testToken)
	}
	for h, want := range map[string]string{
		"apns-push-type":  "voip",
		"apns-topic":      testTopic,
		"apns-priority":   "10",
		"apns-expiration": strconv.FormatInt(d.Deadline.Unix(), 10),
		"Content-Type":    "application/json; charset=utf-8",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s: %q; want %q", h, got, want)
		}
	}
	if r.Header.Get("apns-id") != "" || r.Header.Get("apns-collapse-id") != "" {
		t.Errorf("unexpected apns-id or apns-collapse-id header: %v", r.Header)
	}
	// The body is the rendered payload byte for byte: keys in order, JSON
	// types kept.
	if string(r.Body) != string(d.PayloadJSON) {
		t.Errorf("body\n%s\nwant\n%s", r.Body, d.PayloadJSON)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["cc_param"] != lineParam || body["app_caller_sid"] != "linecorp.com" || body["video"] != false {
		t.Errorf("body keys: %v", body)
	}
}

func TestDeliverConfiguredHeaders(t *testing.T) {
	s := newTokenSetup(t)
	p := s.plugin(t, func(c *Config) { c.PushType, c.Priority, c.Topic = "alert", 5, "com.example.planet" })
	d := delivery()
	d.Templates = map[string]string{"body": "You missed a call"}
	d.Deadline = time.Time{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Deliver(ctx, d, device()); err != nil {
		t.Fatal(err)
	}
	h := s.fake.Pushes()[0].Header
	if h.Get("apns-push-type") != "alert" || h.Get("apns-priority") != "5" || h.Get("apns-topic") != "com.example.planet" {
		t.Errorf("headers %v", h)
	}
	if h.Get("apns-expiration") != "" {
		t.Errorf("apns-expiration %q without a deadline; want none", h.Get("apns-expiration"))
	}
}

// outcomeCase is an APNs answer and what Deliver must make of it.
type outcomeCase struct {
	name   string
	answer fakes.Answer
	class  sdk.Class // ignored when ok
	ok     bool
	// prod configures production = true.
	prod bool
	// want are substrings of the outcome's reason.
	want []string
	// level is the log level of the outcome's line.
	level string
}

var outcomeCases = []outcomeCase{
	{name: "200", answer: fakes.Answer{Status: 200}, ok: true, level: "DEBUG"},
	{name: "410 Unregistered", answer: fakes.Answer{Status: 410, Reason: "Unregistered", Timestamp: 1767225600123}, class: sdk.ClassGone,
		want: []string{"410 Unregistered", "8b5f3f…"}, level: "INFO"},
	{name: "400 BadDeviceToken sandbox", answer: fakes.Answer{Status: 400, Reason: "BadDeviceToken"}, class: sdk.ClassPermanent,
		want: []string{"400 BadDeviceToken", "sandbox", "production = true"}, level: "WARN"},
	{name: "400 BadDeviceToken production", prod: true, answer: fakes.Answer{Status: 400, Reason: "BadDeviceToken"}, class: sdk.ClassPermanent,
		want: []string{"400 BadDeviceToken", "production = false"}, level: "WARN"},
	{name: "400 DeviceTokenNotForTopic", answer: fakes.Answer{Status: 400, Reason: "DeviceTokenNotForTopic"}, class: sdk.ClassPermanent,
		want: []string{"DeviceTokenNotForTopic", testTopic, ".voip"}, level: "WARN"},
	{name: "400 TopicDisallowed", answer: fakes.Answer{Status: 400, Reason: "TopicDisallowed"}, class: sdk.ClassPermanent,
		want: []string{"TopicDisallowed", testTopic, ".p8 key"}, level: "WARN"},
	{name: "400 BadPriority", answer: fakes.Answer{Status: 400, Reason: "BadPriority"}, class: sdk.ClassPermanent,
		want: []string{"400 BadPriority", "malformed"}, level: "WARN"},
	{name: "403 ExpiredProviderToken twice", answer: fakes.Answer{Status: 403, Reason: "ExpiredProviderToken"}, class: sdk.ClassRetry,
		want: []string{"ExpiredProviderToken", "refreshed once"}, level: "WARN"},
	{name: "403 InvalidProviderToken", answer: fakes.Answer{Status: 403, Reason: "InvalidProviderToken"}, class: sdk.ClassPermanent,
		want: []string{"403 InvalidProviderToken", "team_id, key_id and key_file"}, level: "ERROR"},
	{name: "404 BadPath", answer: fakes.Answer{Status: 404, Reason: "BadPath"}, class: sdk.ClassPermanent,
		want: []string{"404 BadPath", "does not look like APNs"}, level: "ERROR"},
	{name: "413 PayloadTooLarge", answer: fakes.Answer{Status: 413, Reason: "PayloadTooLarge"}, class: sdk.ClassPermanent,
		want: []string{"413 PayloadTooLarge"}, level: "WARN"},
	{name: "429 TooManyRequests", answer: fakes.Answer{Status: 429, Reason: "TooManyRequests"}, class: sdk.ClassRetry,
		want: []string{"429 TooManyRequests"}, level: "WARN"},
	{name: "500 InternalServerError", answer: fakes.Answer{Status: 500, Reason: "InternalServerError"}, class: sdk.ClassRetry,
		want: []string{"500 InternalServerError"}, level: "WARN"},
	{name: "503 ServiceUnavailable", answer: fakes.Answer{Status: 503, Reason: "ServiceUnavailable"}, class: sdk.ClassRetry,
		want: []string{"503 ServiceUnavailable"}, level: "WARN"},
	{name: "502 non-JSON body", answer: fakes.Answer{Status: 502, Raw: "<html>bad gateway</html>"}, class: sdk.ClassRetry,
		want: []string{"no APNs answer", "not JSON"}, level: "WARN"},
	{name: "418 undocumented 4xx", answer: fakes.Answer{Status: 418, Reason: "Teapot"}, class: sdk.ClassPermanent,
		want: []string{"418 Teapot"}, level: "WARN"},
	{name: "202 undocumented", answer: fakes.Answer{Status: 202, Reason: "Odd"}, class: sdk.ClassRetry,
		want: []string{"202 Odd", "does not document"}, level: "WARN"},
}

// TestOutcomes pushes each answer through a fake APNs and checks the
// outcome, its reason and log line; together the cases cover every row of
// the outcome table.
func TestOutcomes(t *testing.T) {
	covered := map[int]bool{}
	for _, tc := range outcomeCases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenSetup(t)
			s.fake.SetAnswer(func(*fakes.Push) fakes.Answer { return tc.answer })
			p := s.plugin(t, func(c *Config) { c.Production = tc.prod })
			p.env = map[bool]string{true: "production", false: "sandbox"}[tc.prod] // the endpoint is the fake
			id, err := p.Deliver(context.Background(), delivery(), device())
			status := tc.answer.Status
			if tc.answer.Raw != "" {
				status = 0 // apns2 reports a non-JSON body as an error
			}
			covered[match(status, tc.answer.Reason)] = true

			if tc.ok {
				if err != nil || id == "" {
					t.Fatalf("got (%q, %v); want delivered with the apns-id", id, err)
				}
			} else {
				de, failed := sdk.Classify(err)
				if !failed || de.Class != tc.class {
					t.Fatalf("got %v (class %v); want %v", err, de.Class, tc.class)
				}
				if id != "" {
					t.Errorf("provider id %q on failure", id)
				}
				if de.After != 0 {
					t.Errorf("retry after %v; APNs sends no Retry-After", de.After)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("reason %q lacks %q", err, w)
					}
				}
				if tc.class == sdk.ClassGone {
					if want := time.UnixMilli(tc.answer.Timestamp).Truncate(time.Second); !de.At.Equal(want) {
						t.Errorf("gone at %v; want APNs' timestamp %v", de.At, want)
					}
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("reason %q holds the whole token", err)
				}
			}
			lines := s.logs.lines()
			if len(lines) == 0 || lines[len(lines)-1]["level"] != tc.level {
				t.Errorf("log lines %v; want the last at %s", lines, tc.level)
			}
			wantPushes := 1
			if tc.answer.Reason == apns2.ReasonExpiredProviderToken {
				wantPushes = 2
			}
			if n := len(s.fake.Pushes()); n != wantPushes {
				t.Errorf("got %d pushes; want %d", n, wantPushes)
			}
			if strings.Contains(s.logs.String(), testToken) || strings.Contains(s.logs.String(), lineParam) {
				t.Errorf("logs hold the whole token or cc_param:\n%s", s.logs)
			}
		})
	}
	t.Run("transport error", func(t *testing.T) {
		s := newTokenSetup(t)
		p := s.plugin(t)
		s.fake.Close()
		_, err := p.Deliver(context.Background(), delivery(), device())
		covered[match(0, "")] = true
		if de, _ := sdk.Classify(err); de.Class != sdk.ClassRetry || !strings.Contains(err.Error(), "no APNs answer") {
			t.Fatalf("got %v (class %v); want a retry", err, de.Class)
		}
		if strings.Contains(err.Error(), testToken) || strings.Contains(s.logs.String(), testToken) {
			t.Errorf("error %q or logs hold the whole token", err)
		}
	})
	for i, r := range outcomes {
		if !covered[i] {
			t.Errorf("row %d of the outcome table (%d-%d %q → %v) has no test", i, r.status, r.statusMax, r.reason, r.act)
		}
	}
}

func TestGoneWithoutTimestamp(t *testing.T) {
	s := newTokenSetup(t)
	s.fake.SetAnswer(func(*fakes.Push) fakes.Answer { return fakes.Answer{Status: 410, Reason: "ExpiredToken"} })
	_, err := s.plugin(t).Deliver(context.Background(), delivery(), device())
	if de, _ := sdk.Classify(err); de.Class != sdk.ClassGone || !de.At.IsZero() {
		t.Errorf("got %v (class %v, at %v); want gone at an unknown time", err, de.Class, de.At)
	}
}

func TestExpiredProviderTokenRefreshed(t *testing.T) {
	s := newTokenSetup(t)
	s.fake.SetAnswer(func(p *fakes.Push) fakes.Answer {
		if p.N == 1 {
			return fakes.Answer{Status: 403, Reason: "ExpiredProviderToken"}
		}
		return fakes.Answer{}
	})
	p := s.plugin(t)
	id, err := p.Deliver(context.Background(), delivery(), device())
	if err != nil || id == "" {
		t.Fatalf("got (%q, %v); want delivered on the second try", id, err)
	}
	reqs := s.fake.Pushes()
	if len(reqs) != 2 {
		t.Fatalf("got %d pushes; want 2", len(reqs))
	}
	if reqs[0].Bearer == reqs[1].Bearer {
		t.Error("the second try reused the rejected provider token")
	}
	if reqs[1].JWTErr != nil {
		t.Errorf("fresh token: %v", reqs[1].JWTErr)
	}
	if got := p.refreshes.Load(); got != 1 {
		t.Errorf("%d refreshes; want 1", got)
	}
}

// Deliveries that meet ExpiredProviderToken together refresh the token once.
func TestExpiredProviderTokenRefreshedOnce(t *testing.T) {
	s := newTokenSetup(t)
	var mu sync.Mutex
	var first string
	s.fake.SetAnswer(func(r *fakes.Push) fakes.Answer {
		mu.Lock()
		defer mu.Unlock()
		if first == "" {
			first = r.Bearer
		}
		if r.Bearer == first {
			return fakes.Answer{Status: 403, Reason: "ExpiredProviderToken"}
		}
		return fakes.Answer{}
	})
	p := s.plugin(t)
	deliverConcurrently(t, p, 32)
	if got := p.refreshes.Load(); got != 1 {
		t.Errorf("%d refreshes for 32 concurrent expiries; want 1", got)
	}
}

// deliverConcurrently makes n concurrent Deliver calls of delivery() to
// device() and waits for them; each must succeed.
func deliverConcurrently(t *testing.T, p *Plugin, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := p.Deliver(context.Background(), delivery(), device()); err != nil {
				t.Errorf("Deliver: %v", err)
			}
		})
	}
	wg.Wait()
}

// Pushes run concurrently as HTTP/2 streams on one connection: none waits
// for another's answer.
func TestDeliverConcurrentMultiplexed(t *testing.T) {
	s := newTokenSetup(t)
	p := s.plugin(t)
	if _, err := p.Deliver(context.Background(), delivery(), device()); err != nil { // connect
		t.Fatal(err)
	}
	const n = 200
	release := make(chan struct{})
	var once sync.Once
	s.fake.SetAnswer(func(*fakes.Push) fakes.Answer {
		if s.fake.InFlight() >= n {
			once.Do(func() { close(release) })
		}
		return fakes.Answer{Hold: release}
	})
	go func() { // do not hang if the pushes never all arrive
		time.Sleep(5 * time.Second)
		once.Do(func() { close(release) })
	}()
	deliverConcurrently(t, p, n)
	if got := s.fake.Counts().MaxInFlight; got < n {
		t.Errorf("at most %d pushes in flight at once; want %d", got, n)
	}
	conns := map[string]bool{}
	for _, r := range s.fake.Pushes() {
		conns[r.Remote] = true
		if r.Proto != 2 {
			t.Fatalf("HTTP/%d; want HTTP/2", r.Proto)
		}
	}
	if len(conns) != 1 {
		t.Errorf("%d connections; want 1 shared HTTP/2 connection", len(conns))
	}
}

// A burst of first pushes waits for one TLS connection instead of dialling
// APNs once per push.
func TestDeliverColdBurstDialsOnce(t *testing.T) {
	s := newTokenSetup(t)
	p := s.plugin(t)
	deliverConcurrently(t, p, 50)
	if n := s.fake.Conns(); n != 1 {
		t.Errorf("%d connections for a burst of 50 first pushes; want 1", n)
	}
}

// Configure opens the connection to APNs before the first push, without
// a request on it, and the first push uses that connection.
func TestConfigureWarmsTheConnection(t *testing.T) {
	s := newTokenSetup(t)
	p := s.plugin(t)
	deadline := time.Now().Add(10 * time.Second)
	for s.fake.Conns() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no connection to APNs 10s after Configure")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Time for a request, had one been sent on it.
	time.Sleep(100 * time.Millisecond)
	if c := s.fake.Counts(); c != (fakes.APNsCounts{}) {
		t.Fatalf("requests at APNs after Configure alone: %+v; want none", c)
	}
	if _, err := p.Deliver(context.Background(), delivery(), device()); err != nil {
		t.Fatal(err)
	}
	if n := s.fake.Conns(); n != 1 {
		t.Errorf("%d connections after the first push; want the warmed one alone", n)
	}
	if c := s.fake.Counts(); c.Pushes != 1 || c.Malformed != 0 {
		t.Errorf("counts after one push: %+v", c)
	}
}

// Configured only to check its block (validate, explain, test, diff), the
// plugin opens no connection to APNs.
func TestConfigureCheckOnlyDialsNothing(t *testing.T) {
	s := newTokenSetup(t)
	p := New()
	p.rootCAs = s.fake.CertPool()
	sdktest.Configured(t, p, s.cfg, sdktest.CheckOnly())
	// A warm connection is open within milliseconds (see
	// TestConfigureWarmsTheConnection); give one ample time.
	time.Sleep(300 * time.Millisecond)
	if n := s.fake.Conns(); n != 0 {
		t.Errorf("%d connections to APNs after a check-only Configure; want none", n)
	}
}

// The push is a client span of the delivery's trace that records neither the
// path nor the token, and carries the trace context to APNs.
func TestDeliverSpan(t *testing.T) {
	rec := sdktest.RecordSpans(t)

	s := newTokenSetup(t)
	p := s.plugin(t)
	ctx, parent := otel.Tracer("test").Start(context.Background(), "deliver")
	if _, err := p.Deliver(ctx, delivery(), device()); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var push sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.Name() == "HTTP POST" {
			push = sp
		}
	}
	if push == nil {
		t.Fatal("no HTTP POST span")
	}
	if push.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Error("the push span is not a child of the delivery's span")
	}
	for _, kv := range push.Attributes() {
		if v := kv.Value.String(); strings.Contains(v, testToken[:16]) || strings.Contains(v, "/3/device") {
			t.Errorf("span attribute %s=%q holds the path", kv.Key, v)
		}
	}
	if tp := s.fake.Pushes()[0].Header.Get("Traceparent"); !strings.Contains(tp, parent.SpanContext().TraceID().String()) {
		t.Errorf("traceparent %q does not carry the trace", tp)
	}
}

func TestDeliverHonoursDeadline(t *testing.T) {
	s := newTokenSetup(t)
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	s.fake.SetAnswer(func(*fakes.Push) fakes.Answer { return fakes.Answer{Hold: never} })
	p := s.plugin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Deliver(ctx, delivery(), device())
	if took := time.Since(start); took > time.Second {
		t.Errorf("Deliver took %v; want about 200ms", took)
	}
	if de, _ := sdk.Classify(err); de.Class != sdk.ClassRetry {
		t.Errorf("got %v (class %v); want retry", err, de.Class)
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error %q holds the whole token", err)
	}
}

// Deliveries that cannot succeed are refused before anything is sent.
func TestDeliverRefusedBeforeSending(t *testing.T) {
	big := func(size int) []byte {
		pad := size - len(`{"cc_param":"","x":""}`) - len(lineParam)
		return []byte(`{"cc_param":"` + lineParam + `","x":"` + strings.Repeat("a", pad) + `"}`)
	}
	tests := []struct {
		name    string
		token   string
		payload []byte
		past    bool
		class   sdk.Class
		want    string
	}{
		{name: "empty token", token: "", class: sdk.ClassPermanent, want: "empty"},
		{name: "token with a slash", token: "abc/../../3/device/x", class: sdk.ClassPermanent, want: "not hex"},
		{name: "token with a query", token: "abcdef?x=1", class: sdk.ClassPermanent, want: "not hex"},
		{name: "token too long", token: strings.Repeat("a", 513), class: sdk.ClassPermanent, want: "more than 512"},
		{name: "payload over 5 KB", token: testToken, payload: big(MaxVoIPPayload + 1), class: sdk.ClassPermanent, want: "5121 bytes, over APNs' 5120-byte limit"},
		{name: "payload not JSON", token: testToken, payload: []byte(`{"cc_param":`), class: sdk.ClassPermanent, want: "not a JSON object"},
		{name: "payload not an object", token: testToken, payload: []byte(`["x"]`), class: sdk.ClassPermanent, want: "not a JSON object"},
		{name: "deadline passed", token: testToken, past: true, class: sdk.ClassRetry, want: "deadline passed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTokenSetup(t)
			p := s.plugin(t)
			d := delivery()
			if tc.payload != nil {
				d.PayloadJSON = tc.payload
			}
			if tc.past {
				d.Deadline = time.Now().Add(-time.Second)
			}
			_, err := p.Deliver(context.Background(), d, sdk.Device{Kind: "apns", Token: tc.token})
			de, failed := sdk.Classify(err)
			if !failed || de.Class != tc.class || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (class %v); want %v containing %q", err, de.Class, tc.class, tc.want)
			}
			if n := len(s.fake.Pushes()); n != 0 {
				t.Errorf("%d pushes sent; want none", n)
			}
		})
	}
	t.Run("payload of exactly 5 KB is sent", func(t *testing.T) {
		s := newTokenSetup(t)
		d := delivery()
		d.PayloadJSON = big(MaxVoIPPayload)
		if _, err := s.plugin(t).Deliver(context.Background(), d, device()); err != nil {
			t.Fatal(err)
		}
		if r := s.fake.Pushes(); len(r) != 1 || len(r[0].Body) != MaxVoIPPayload {
			t.Errorf("want one push of %d bytes", MaxVoIPPayload)
		}
	})
	t.Run("non-voip limit is 4 KB", func(t *testing.T) {
		s := newTokenSetup(t)
		d := delivery()
		d.PayloadJSON = big(MaxPayload + 1)
		d.Templates = map[string]string{"body": "You missed a call"}
		_, err := s.plugin(t, func(c *Config) { c.PushType, c.Topic = "alert", "com.example.planet" }).Deliver(context.Background(), d, device())
		if de, _ := sdk.Classify(err); de.Class != sdk.ClassPermanent || !strings.Contains(err.Error(), "4096-byte limit for alert") {
			t.Errorf("got %v; want permanent over 4096", err)
		}
	})
}

func TestDeliverUnconfigured(t *testing.T) {
	_, err := New().Deliver(context.Background(), delivery(), device())
	if de, _ := sdk.Classify(err); de.Class != sdk.ClassPermanent {
		t.Errorf("got %v; want permanent", err)
	}
}

func TestRedact(t *testing.T) {
	err := fmt.Errorf("Post %q: %w", "https://api.push.apple.com/3/device/"+testToken, errors.New("connection reset"))
	if got := redact(err); strings.Contains(got, testToken) || !strings.Contains(got, "8b5f3f…") {
		t.Errorf("redact: %q", got)
	}
}

func BenchmarkDeliver(b *testing.B) {
	s := newTokenSetup(b, fakes.APNsOptions{Discard: true})
	p := s.plugin(b)
	d := delivery()
	ctx := context.Background()
	if _, err := p.Deliver(ctx, d, device()); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Deliver(ctx, d, device()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := p.Deliver(ctx, d, device()); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
