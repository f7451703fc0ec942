package webhook

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

const lineParam = fakes.LineParam

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// newRecorder starts a fake app server that answers as answer says (nil:
// 204).
func newRecorder(t *testing.T, answer func(*fakes.WebhookRequest) fakes.WebhookAnswer) *fakes.Webhook {
	t.Helper()
	f := fakes.StartWebhook(fakes.WebhookOptions{Answer: answer})
	t.Cleanup(f.Close)
	return f
}

// answerWith answers every request with status, body and header pairs
// (an empty value sends no header).
func answerWith(status int, body string, header ...string) func(*fakes.WebhookRequest) fakes.WebhookAnswer {
	a := fakes.WebhookAnswer{Status: status, Body: body, Header: map[string]string{}}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] != "" {
			a.Header[header[i]] = header[i+1]
		}
	}
	return func(*fakes.WebhookRequest) fakes.WebhookAnswer { return a }
}

func delivery(param string) *sdk.Delivery {
	return &sdk.Delivery{
		ID:      "msg_2ZQ0a1b2c3",
		Attempt: 1,
		Route:   "default",
		Call: sdk.Call{
			SID:           "151ad995-749c-4a28-893f-636700469db1",
			FromServiceID: "linecorp.com",
			FromUserID:    "9286",
			ToServiceID:   "linecorp.com",
			ToUserID:      "2809",
			Type:          "A",
			Param:         param,
			AppSvrData:    "stid",
		},
		PayloadJSON: []byte(`{"cc_param":"` + param + `","sid":"151ad995-749c-4a28-893f-636700469db1","app_caller_uid":"9286","video":false,"ring":3,"nested":{"a":[1,"b",null]}}`),
		Deadline:    time.Now().Add(time.Minute),
	}
}

func TestDeliverBody(t *testing.T) {
	tests := []struct {
		name  string
		param string
	}{
		{"line example", lineParam},
		{"plus slash and padding", "+/+/ab+c/d=="},
		{"html characters", "<a&b>="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t, nil)
			p := sdktest.Configured(t, New(), Config{URL: rec.URL + "/hooks/call"})
			if _, err := p.Deliver(context.Background(), delivery(tc.param), sdk.Device{}); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			reqs := rec.Requests("")
			if len(reqs) != 1 {
				t.Fatalf("got %d requests; want 1", len(reqs))
			}
			want := `{"sid":"151ad995-749c-4a28-893f-636700469db1","from_service_id":"linecorp.com","from_user_id":"9286",` +
				`"to_service_id":"linecorp.com","to_user_id":"2809","type":"A","cc_param":"` + tc.param + `",` +
				`"app_svr_data":"stid","route":"default",` +
				`"payload":{"cc_param":"` + tc.param + `","sid":"151ad995-749c-4a28-893f-636700469db1","app_caller_uid":"9286","video":false,"ring":3,"nested":{"a":[1,"b",null]}}}`
			if got := string(reqs[0].Body); got != want {
				t.Errorf("body:\ngot  %s\nwant %s", got, want)
			}
			if reqs[0].Method != http.MethodPost || reqs[0].Path != "/hooks/call" {
				t.Errorf("got %s %s; want POST /hooks/call", reqs[0].Method, reqs[0].Path)
			}
		})
	}
}

func TestDeliverEmptyPayload(t *testing.T) {
	rec := newRecorder(t, nil)
	p := sdktest.Configured(t, New(), Config{URL: rec.URL})
	d := delivery(lineParam)
	d.PayloadJSON = nil
	if _, err := p.Deliver(context.Background(), d, sdk.Device{}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := string(rec.Requests("")[0].Body); !strings.HasSuffix(got, `"payload":{}}`) {
		t.Errorf("got body %s; want an empty payload object", got)
	}
}

func TestDeliverInvalidPayload(t *testing.T) {
	rec := newRecorder(t, nil)
	p := sdktest.Configured(t, New(), Config{URL: rec.URL})
	d := delivery(lineParam)
	d.PayloadJSON = []byte(`{"a":`)
	_, err := p.Deliver(context.Background(), d, sdk.Device{})
	if de, _ := sdk.Classify(err); de.Class != sdk.ClassPermanent {
		t.Fatalf("got %v (%v); want permanent", err, de.Class)
	}
	if n := len(rec.Requests("")); n != 0 {
		t.Errorf("got %d requests; want none", n)
	}
}

func TestDeliverHeaders(t *testing.T) {
	rec := newRecorder(t, nil)
	p := sdktest.Configured(t, New(), Config{
		URL:     rec.URL,
		Headers: map[string]string{"Authorization": "Bearer s3cr3t", "x-tenant": "acme"},
	})
	d := delivery(lineParam)
	if _, err := p.Deliver(context.Background(), d, sdk.Device{}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	h := rec.Requests("")[0].Header
	for name, want := range map[string]string{
		"Content-Type":  "application/json",
		"Authorization": "Bearer s3cr3t",
		"X-Tenant":      "acme",
		"User-Agent":    "ringside-webhook/" + Version,
		HeaderID:        d.ID,
	} {
		if got := h.Get(name); got != want {
			t.Errorf("header %s: got %q; want %q", name, got, want)
		}
	}
	if h.Get(HeaderTimestamp) == "" {
		t.Errorf("header %s missing", HeaderTimestamp)
	}
	if got := h.Get(HeaderSignature); got != "" {
		t.Errorf("header %s: got %q without a secret; want none", HeaderSignature, got)
	}
}

func TestDeliverSignature(t *testing.T) {
	rec := fakes.StartWebhook(fakes.WebhookOptions{Secret: testSecret})
	t.Cleanup(rec.Close)
	p := sdktest.Configured(t, New(), Config{URL: rec.URL, Secret: testSecret})
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}

	d := delivery(lineParam)
	for attempt := 1; attempt <= 2; attempt++ {
		d.Attempt = attempt
		if _, err := p.Deliver(context.Background(), d, sdk.Device{}); err != nil {
			t.Fatalf("attempt %d: Deliver: %v", attempt, err)
		}
	}
	reqs := rec.Requests("")
	if len(reqs) != 2 {
		t.Fatalf("got %d requests; want 2", len(reqs))
	}
	for i, r := range reqs {
		if err := wh.Verify(r.Body, r.Header); err != nil || r.SigErr != nil {
			t.Errorf("attempt %d: Verify: %v; the receiver's: %v", i+1, err, r.SigErr)
		}
		if got := r.Header.Get(HeaderID); got != d.ID {
			t.Errorf("attempt %d: webhook-id %q; want %q", i+1, got, d.ID)
		}
		if got := r.Header.Get(HeaderSignature); !strings.HasPrefix(got, "v1,") {
			t.Errorf("attempt %d: webhook-signature %q; want v1,…", i+1, got)
		}
	}

	// A different secret, or a changed body, does not verify.
	other, _ := standardwebhooks.NewWebhook("whsec_" + "b3RoZXIgc2VjcmV0IGtleQ==")
	if err := other.Verify(reqs[0].Body, reqs[0].Header); err == nil {
		t.Error("Verify with another secret: got nil; want an error")
	}
	if err := wh.Verify(append(reqs[0].Body, ' '), reqs[0].Header); err == nil {
		t.Error("Verify of a changed body: got nil; want an error")
	}
}

func TestDeliverStatus(t *testing.T) {
	tests := []struct {
		code   int
		class  sdk.Class // meaningful when !ok
		ok     bool
		reason string
	}{
		{200, 0, true, ""},
		{201, 0, true, ""},
		{202, 0, true, ""},
		{204, 0, true, ""},
		{301, sdk.ClassPermanent, false, "redirect"},
		{302, sdk.ClassPermanent, false, "redirect"},
		{307, sdk.ClassPermanent, false, "redirect"},
		{308, sdk.ClassPermanent, false, "redirect"},
		{400, sdk.ClassPermanent, false, "webhook answered 400"},
		{401, sdk.ClassPermanent, false, "webhook answered 401"},
		{403, sdk.ClassPermanent, false, "webhook answered 403"},
		{404, sdk.ClassPermanent, false, "webhook answered 404"},
		{410, sdk.ClassPermanent, false, "webhook answered 410"},
		{422, sdk.ClassPermanent, false, "webhook answered 422"},
		{408, sdk.ClassRetry, false, "webhook answered 408"},
		{429, sdk.ClassRetry, false, "webhook answered 429"},
		{500, sdk.ClassRetry, false, "webhook answered 500"},
		{502, sdk.ClassRetry, false, "webhook answered 502"},
		{503, sdk.ClassRetry, false, "webhook answered 503"},
		{504, sdk.ClassRetry, false, "webhook answered 504"},
		{599, sdk.ClassRetry, false, "webhook answered 599"},
	}
	target := newRecorder(t, nil)
	t.Cleanup(func() {
		for _, r := range target.Requests("") {
			t.Errorf("redirect followed to %s", r.Path)
		}
	})

	for _, tc := range tests {
		t.Run(http.StatusText(tc.code), func(t *testing.T) {
			rec := newRecorder(t, answerWith(tc.code, "some body", "Location", target.URL+"/elsewhere"))
			p := sdktest.Configured(t, New(), Config{URL: rec.URL})
			d := delivery(lineParam)
			id, err := p.Deliver(context.Background(), d, sdk.Device{})
			if tc.ok {
				if err != nil || id != d.ID {
					t.Fatalf("got (%q, %v); want (%q, nil)", id, err, d.ID)
				}
				return
			}
			de, failed := sdk.Classify(err)
			if !failed || de.Class != tc.class {
				t.Fatalf("got %v (class %v); want class %v", err, de.Class, tc.class)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("got error %q; want it to contain %q", err, tc.reason)
			}
			if id != "" {
				t.Errorf("got provider id %q on failure; want empty", id)
			}
		})
	}
}

func TestDeliverProviderID(t *testing.T) {
	tests := []struct {
		name      string
		requestID string
		want      string // "" means the webhook-id
	}{
		{"none", "", ""},
		{"receiver's id", "req-42", "req-42"},
		{"too long", strings.Repeat("x", maxRequestID+1), ""},
		{"not printable", "a b", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t, answerWith(http.StatusOK, "", "X-Request-Id", tc.requestID))
			p := sdktest.Configured(t, New(), Config{URL: rec.URL})
			d := delivery(lineParam)
			want := tc.want
			if want == "" {
				want = d.ID
			}
			if got, err := p.Deliver(context.Background(), d, sdk.Device{}); err != nil || got != want {
				t.Errorf("got (%q, %v); want (%q, nil)", got, err, want)
			}
		})
	}
}

func TestDeliverRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header string
		want   time.Duration
	}{
		{"seconds", "7", 7 * time.Second},
		{"zero seconds", "0", 0},
		{"http date", now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"http date in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"rfc 850 date", now.Add(90 * time.Second).Format("Monday, 02-Jan-06 15:04:05 GMT"), 90 * time.Second},
		{"garbage", "soon", 0},
		{"negative", "-3", 0},
		{"absent", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t, answerWith(http.StatusServiceUnavailable, "", "Retry-After", tc.header))
			p := sdktest.Configured(t, New(), Config{URL: rec.URL})
			p.now = func() time.Time { return now }
			d := delivery(lineParam)
			d.Deadline = time.Time{} // the fixed clock is far from the real one
			_, err := p.Deliver(context.Background(), d, sdk.Device{})
			de, _ := sdk.Classify(err)
			if de.Class != sdk.ClassRetry || de.After != tc.want {
				t.Errorf("got class %v after %v; want retry after %v", de.Class, de.After, tc.want)
			}
		})
	}
}

// slowServer answers only when the test ends or when the client goes
// away.
func slowServer(t *testing.T) *fakes.Webhook {
	t.Helper()
	release := make(chan struct{})
	srv := newRecorder(t, func(*fakes.WebhookRequest) fakes.WebhookAnswer { return fakes.WebhookAnswer{Hold: release} })
	t.Cleanup(func() { close(release) })
	return srv
}

func TestDeliverTimeout(t *testing.T) {
	const slack = 500 * time.Millisecond
	tests := []struct {
		name     string
		timeout  time.Duration
		ctxLeft  time.Duration // 0: no ctx deadline
		deadline time.Duration // Delivery.Deadline from now; 0: none
		want     time.Duration // when Deliver must have returned
	}{
		{"capped by ctx deadline", 5 * time.Second, 200 * time.Millisecond, time.Minute, 200 * time.Millisecond},
		{"capped by delivery deadline", 5 * time.Second, 0, 200 * time.Millisecond, 200 * time.Millisecond},
		{"configured timeout", 150 * time.Millisecond, 0, time.Minute, 150 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := slowServer(t)
			p := sdktest.Configured(t, New(), Config{URL: srv.URL, Timeout: tc.timeout})
			ctx := context.Background()
			if tc.ctxLeft > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxLeft)
				defer cancel()
			}
			d := delivery(lineParam)
			d.Deadline = time.Time{}
			if tc.deadline > 0 {
				d.Deadline = time.Now().Add(tc.deadline)
			}
			start := time.Now()
			_, err := p.Deliver(ctx, d, sdk.Device{})
			took := time.Since(start)
			if took > tc.want+slack {
				t.Errorf("Deliver took %v; want at most %v", took, tc.want+slack)
			}
			de, failed := sdk.Classify(err)
			if !failed || de.Class != sdk.ClassRetry {
				t.Fatalf("got %v (class %v); want retry", err, de.Class)
			}
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out") {
				t.Errorf("got %q; want a timeout", err)
			}
		})
	}
}

func TestDeliverDeadlinePassed(t *testing.T) {
	rec := newRecorder(t, nil)
	p := sdktest.Configured(t, New(), Config{URL: rec.URL})
	d := delivery(lineParam)
	d.Deadline = time.Now().Add(-time.Second)
	_, err := p.Deliver(context.Background(), d, sdk.Device{})
	if de, _ := sdk.Classify(err); de.Class != sdk.ClassRetry {
		t.Fatalf("got %v; want retry", err)
	}
	if n := len(rec.Requests("")); n != 0 {
		t.Errorf("got %d requests after the deadline; want none", n)
	}
}

func TestDeliverRedactsURL(t *testing.T) {
	rec := newRecorder(t, answerWith(http.StatusNotFound, ""))
	closed := fakes.StartWebhook(fakes.WebhookOptions{})
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name  string
		url   string
		class sdk.Class
	}{
		{"4xx", strings.Replace(rec.URL, "http://", "http://alice:hunter2@", 1) + "/hook?token=tok3n", sdk.ClassPermanent},
		{"transport error", strings.Replace(closedURL, "http://", "http://alice:hunter2@", 1) + "/hook?token=tok3n", sdk.ClassRetry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := sdktest.Configured(t, New(), Config{URL: tc.url, Secret: testSecret})
			_, err := p.Deliver(context.Background(), delivery(lineParam), sdk.Device{})
			de, failed := sdk.Classify(err)
			if !failed || de.Class != tc.class {
				t.Fatalf("got %v (class %v); want %v", err, de.Class, tc.class)
			}
			msg := err.Error()
			for _, secret := range []string{"alice", "hunter2", "tok3n", "token=", testSecret, strings.TrimPrefix(testSecret, "whsec_"), lineParam} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains %q", msg, secret)
				}
			}
			if !strings.Contains(msg, "/hook") {
				t.Errorf("error %q does not name the path", msg)
			}
		})
	}
	// The credentials in the URL are still used on the wire.
	reqs := rec.Requests("")
	if len(reqs) != 1 {
		t.Fatalf("got %d requests; want 1", len(reqs))
	}
	if user, pass, ok := (&http.Request{Header: reqs[0].Header}).BasicAuth(); !ok || user != "alice" || pass != "hunter2" {
		t.Errorf("got basic auth (%q, %q, %v); want alice's", user, pass, ok)
	}
	if reqs[0].Path != "/hook?token=tok3n" {
		t.Errorf("got path %q; want the query kept", reqs[0].Path)
	}
}

func TestDeliverConcurrent(t *testing.T) {
	rec := newRecorder(t, nil)
	p := sdktest.Configured(t, New(), Config{URL: rec.URL, Secret: testSecret})
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if _, err := p.Deliver(context.Background(), delivery(lineParam), sdk.Device{}); err != nil {
				t.Errorf("Deliver: %v", err)
			}
		})
	}
	wg.Wait()
	if n := len(rec.Requests("")); n != 64 {
		t.Errorf("got %d requests; want 64", n)
	}
}

func TestDeliverUnconfigured(t *testing.T) {
	_, err := New().Deliver(context.Background(), delivery(lineParam), sdk.Device{})
	if de, _ := sdk.Classify(err); de.Class != sdk.ClassPermanent {
		t.Errorf("got %v; want permanent", err)
	}
}

func TestConfigure(t *testing.T) {
	const bad = "whsec_not*base64!"
	tests := []struct {
		name string
		cfg  Config
		attr string // "" means valid
	}{
		{"minimal", Config{URL: "https://app.example.com/ringside"}, ""},
		{"all set", Config{URL: "http://127.0.0.1:8080/x?k=v", Secret: testSecret, Headers: map[string]string{"Authorization": "Bearer x", "X-A": "b\tc"}, Timeout: time.Second}, ""},
		{"url missing", Config{}, "url"},
		{"url relative", Config{URL: "/ringside/incoming-call"}, "url"},
		{"url no scheme", Config{URL: "app.example.com/x"}, "url"},
		{"url ftp", Config{URL: "ftp://app.example.com/x"}, "url"},
		{"url no host", Config{URL: "https:///x"}, "url"},
		{"url unparsable", Config{URL: "http://host:port/x"}, "url"},
		{"url fragment", Config{URL: "https://app.example.com/x#frag"}, "url"},
		{"secret without prefix", Config{URL: "https://a.example", Secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, ""},
		{"secret unpadded", Config{URL: "https://a.example", Secret: "whsec_YWJjZA"}, ""},
		{"secret unpadded without prefix", Config{URL: "https://a.example", Secret: "YWJjZA"}, ""},
		{"secret not base64", Config{URL: "https://a.example", Secret: bad}, "secret"},
		{"secret url base64", Config{URL: "https://a.example", Secret: "whsec_-_8="}, "secret"},
		{"secret url base64 without prefix", Config{URL: "https://a.example", Secret: "ab_cd-ef"}, "secret"},
		{"secret three padding", Config{URL: "https://a.example", Secret: "whsec_YWJjZA==="}, "secret"},
		{"secret three characters", Config{URL: "https://a.example", Secret: "whsec_YWJ"}, "secret"},
		{"secret one dangling character", Config{URL: "https://a.example", Secret: "whsec_YWJjZ"}, "secret"},
		{"secret trailing newline", Config{URL: "https://a.example", Secret: testSecret + "\n"}, "secret"},
		{"secret inner space", Config{URL: "https://a.example", Secret: "whsec_YWJj ZA=="}, "secret"},
		{"secret empty key", Config{URL: "https://a.example", Secret: "whsec_"}, "secret"},
		{"secret padding only", Config{URL: "https://a.example", Secret: "whsec_=="}, "secret"},
		{"header name", Config{URL: "https://a.example", Headers: map[string]string{"X Bad": "1"}}, "headers"},
		{"header empty name", Config{URL: "https://a.example", Headers: map[string]string{"": "1"}}, "headers"},
		{"header content-type", Config{URL: "https://a.example", Headers: map[string]string{"content-type": "text/plain"}}, "headers"},
		{"header webhook-id", Config{URL: "https://a.example", Headers: map[string]string{"Webhook-Id": "x"}}, "headers"},
		{"header webhook-signature", Config{URL: "https://a.example", Headers: map[string]string{"webhook-signature": "x"}}, "headers"},
		{"header host", Config{URL: "https://a.example", Headers: map[string]string{"Host": "x"}}, "headers"},
		{"header value newline", Config{URL: "https://a.example", Headers: map[string]string{"X-A": "a\r\nX-B: b"}}, "headers"},
		{"timeout negative", Config{URL: "https://a.example", Timeout: -time.Second}, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			diags := New().Configure(context.Background(), tc.cfg)
			if tc.attr == "" {
				if diags != nil {
					t.Fatalf("got %v; want nothing", diags)
				}
				return
			}
			if len(diags) != 1 || diags[0].Attribute != tc.attr || !diags.HasError() {
				t.Fatalf("got %v; want an error at %q", diags, tc.attr)
			}
			msg := diags.String()
			if tc.cfg.Secret != "" && strings.Contains(msg, strings.TrimPrefix(tc.cfg.Secret, "whsec_")) && tc.cfg.Secret != "whsec_" {
				t.Errorf("error %q contains the secret", msg)
			}
			if strings.Contains(msg, "Bearer") || strings.Contains(msg, "X-B: b") {
				t.Errorf("error %q contains a header value", msg)
			}
		})
	}
}

func TestConfigureReportsEveryAttribute(t *testing.T) {
	diags := New().Configure(context.Background(), Config{URL: "nope", Secret: "no pe", Timeout: -1})
	got := map[string]bool{}
	for _, d := range diags {
		got[d.Attribute] = d.Severity == sdk.SeverityError
	}
	for _, attr := range []string{"url", "secret", "timeout"} {
		if !got[attr] {
			t.Errorf("no error at %q in %v", attr, diags)
		}
	}
}

func TestConfigureDefaultTimeout(t *testing.T) {
	p := sdktest.Configured(t, New(), Config{URL: "https://a.example"})
	if p.timeout != DefaultTimeout {
		t.Errorf("got timeout %v; want %v", p.timeout, DefaultTimeout)
	}
}
