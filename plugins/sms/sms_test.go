package sms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

const (
	testSID     = fakes.TwilioAccountSID
	testToken   = fakes.TwilioAuthToken
	testFrom    = "+15005550006"
	testTo      = "+818012345678"
	testService = "MG9752274e9e519418a7406176694466fa"
)

// newTwilio starts a fake Twilio for testSID that answers as answer says
// (nil: 201 queued).
func newTwilio(t *testing.T, answer func(*fakes.SMS) fakes.SMSAnswer) *fakes.Twilio {
	t.Helper()
	f := fakes.StartTwilio(fakes.TwilioOptions{AccountSID: testSID, AuthToken: testToken, Answer: answer})
	t.Cleanup(f.Close)
	return f
}

// twilioErr answers a Twilio error, with header pairs.
func twilioErr(status, code int, msg string, header ...string) func(*fakes.SMS) fakes.SMSAnswer {
	a := fakes.SMSAnswer{Status: status, Code: code, Message: msg, Header: map[string]string{}}
	for i := 0; i+1 < len(header); i += 2 {
		a.Header[header[i]] = header[i+1]
	}
	return func(*fakes.SMS) fakes.SMSAnswer { return a }
}

func configured(t *testing.T, endpoint string) *Plugin {
	t.Helper()
	return sdktest.Configured(t, New(), Config{AccountSID: testSID, AuthToken: testToken, From: testFrom, Endpoint: endpoint})
}

func delivery(body ...string) *sdk.Delivery {
	d := &sdk.Delivery{
		ID: "d1", Attempt: 1, Route: "r",
		Call: sdk.Call{
			SID: "151ad995-749c-4a28-893f-636700469db1", FromServiceID: "linecorp.com", FromUserID: "9286",
			ToServiceID: "linecorp.com", ToUserID: "2809", Type: "A", Param: "cGFyYW0=",
		},
		Deadline: time.Now().Add(time.Minute),
	}
	if len(body) > 0 {
		d.Templates = map[string]string{"body": body[0]}
	}
	return d
}

func phone(tok string) sdk.Device { return sdk.Device{Kind: DeviceKind, Token: tok} }

func TestDeliverForm(t *testing.T) {
	tw := newTwilio(t, nil)
	p := configured(t, tw.URL+"/")
	body := "Call from 9286: tap to answer ✆ & more"
	id, err := p.Deliver(context.Background(), delivery(body), phone(testTo))
	if err != nil {
		t.Fatal(err)
	}
	if id != "SM00000000000000000000000000000001" {
		t.Errorf("provider id %q; want the message sid", id)
	}
	reqs := tw.Messages()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/2010-04-01/Accounts/"+testSID+"/Messages.json" {
		t.Errorf("path %s", r.Path)
	}
	if r.User != testSID || r.Pass != testToken {
		t.Errorf("basic auth %q:%q", r.User, r.Pass)
	}
	if r.Form.Get("To") != testTo || r.Form.Get("From") != testFrom || r.Form.Get("Body") != body || len(r.Form) != 3 {
		t.Errorf("form %v", r.Form)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("content type %q", ct)
	}
}

// TestDeliverSender checks which form field carries each kind of sender:
// a Messaging Service SID goes as MessagingServiceSid, every other sender
// as From, never both.
func TestDeliverSender(t *testing.T) {
	tests := []struct {
		name, from, field string
	}{
		{"e164 number", testFrom, "From"},
		{"short code", "12345", "From"},
		{"alphanumeric", "Ringside", "From"},
		{"alphanumeric starting MG", "MGabc", "From"},
		{"messaging service", testService, "MessagingServiceSid"},
		{"messaging service upper hex", "MG9752274E9E519418A7406176694466FA", "MessagingServiceSid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw := newTwilio(t, nil)
			p := sdktest.Configured(t, New(), Config{AccountSID: testSID, AuthToken: testToken, From: tc.from, Endpoint: tw.URL})
			if _, err := p.Deliver(context.Background(), delivery("hi"), phone(testTo)); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			msgs := tw.Messages()
			if len(msgs) != 1 {
				t.Fatalf("got %d requests; want 1", len(msgs))
			}
			form := msgs[0].Form
			other := map[string]string{"From": "MessagingServiceSid", "MessagingServiceSid": "From"}[tc.field]
			if got := form.Get(tc.field); got != tc.from {
				t.Errorf("%s: got %q; want %q", tc.field, got, tc.from)
			}
			if form.Has(other) {
				t.Errorf("%s: got %q; want none", other, form.Get(other))
			}
			if form.Get("To") != testTo || form.Get("Body") != "hi" || len(form) != 3 {
				t.Errorf("form: got %v; want To, %s and Body", form, tc.field)
			}
			if msgs[0].Status != http.StatusCreated {
				t.Errorf("fake Twilio answered %d; want 201", msgs[0].Status)
			}
		})
	}
}

func TestDefaultBody(t *testing.T) {
	tw := newTwilio(t, nil)
	p := configured(t, tw.URL)
	d := delivery()
	d.Call.Type = "V"
	if _, err := p.Deliver(context.Background(), d, phone(testTo)); err != nil {
		t.Fatal(err)
	}
	if got := tw.Messages()[0].Form.Get("Body"); got != "Incoming video call from 9286" {
		t.Errorf("default body %q", got)
	}
}

func TestDeliverRefusedLocally(t *testing.T) {
	tw := newTwilio(t, nil)
	p := configured(t, tw.URL)
	tests := []struct {
		name, token, body, want string
	}{
		{"not e164", "08012345678", "hi", "not an E.164"},
		{"letters", "+81abc", "hi", "not an E.164"},
		{"empty token", "", "hi", "not an E.164"},
		{"empty body", testTo, " \n", "rendered empty"},
		{"too long", testTo, strings.Repeat("あ", MaxBody+1), "at most 1600"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Deliver(context.Background(), delivery(tc.body), phone(tc.token))
			if de, _ := sdk.Classify(err); de.Class != sdk.ClassPermanent || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (%v); want permanent %q", err, de.Class, tc.want)
			}
			if tc.token != "" && len(tc.token) > 8 && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error holds the whole number: %v", err)
			}
		})
	}
	if n := len(tw.Messages()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	// Exactly MaxBody characters is fine.
	if _, err := p.Deliver(context.Background(), delivery(strings.Repeat("あ", MaxBody)), phone(testTo)); err != nil {
		t.Errorf("a %d-character body: %v", MaxBody, err)
	}
}

func TestDeliverErrors(t *testing.T) {
	tests := []struct {
		name   string
		answer func(*fakes.SMS) fakes.SMSAnswer
		class  sdk.Class
		after  time.Duration
		want   string
		auth   bool // logged as a credentials problem
	}{
		{"21211 invalid To", twilioErr(400, 21211, "The 'To' number +818012345678 is not a valid phone number."), sdk.ClassPermanent, 0, "code 21211 (invalid To number)", false},
		{"21614 not mobile", twilioErr(400, 21614, "'To' number is not a valid mobile number"), sdk.ClassPermanent, 0, "code 21614", false},
		{"21610 unsubscribed", twilioErr(400, 21610, "Attempt to send to unsubscribed recipient"), sdk.ClassPermanent, 0, "unsubscribed", false},
		{"21612 unreachable", twilioErr(400, 21612, "The 'To' phone number is not currently reachable via SMS"), sdk.ClassPermanent, 0, "code 21612", false},
		{"21408 region", twilioErr(400, 21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: 818012345678"), sdk.ClassPermanent, 0, "code 21408", false},
		{"21606 from", twilioErr(400, 21606, "The From phone number +15005550006 is not a valid, SMS-capable inbound phone number"), sdk.ClassPermanent, 0, "code 21606", false},
		{"401 auth", twilioErr(401, 20003, "Authenticate"), sdk.ClassPermanent, 0, "twilio answered 401 code 20003", true},
		{"404 account", twilioErr(404, 20404, "The requested resource was not found"), sdk.ClassPermanent, 0, "404", true},
		{"429 retry-after", twilioErr(429, 20429, "Too Many Requests", "Retry-After", "7"), sdk.ClassRetry, 7 * time.Second, "429 code 20429", false},
		{"429 bare", twilioErr(429, 20429, "Too Many Requests"), sdk.ClassRetry, 0, "429", false},
		{"21611 queue full", twilioErr(400, 21611, "This 'From' number has exceeded the maximum number of queued messages"), sdk.ClassRetry, 0, "code 21611", false},
		{"500", twilioErr(500, 20500, "Internal Server Error"), sdk.ClassRetry, 0, "500", false},
		{"503 date", twilioErr(503, 0, "", "Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat)), sdk.ClassRetry, 90 * time.Second, "503", false},
		{"502 html", func(*fakes.SMS) fakes.SMSAnswer { return fakes.SMSAnswer{Status: 502, Raw: "<html>bad gateway</html>"} }, sdk.ClassRetry, 0, "502", false},
		{"400 other", twilioErr(400, 21999, "Something"), sdk.ClassPermanent, 0, "21999", false},
		{"302", twilioErr(302, 0, "", "Location", "https://example.com/"), sdk.ClassPermanent, 0, "302", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tw := newTwilio(t, tc.answer)
			p := configured(t, tw.URL)
			var logged []string
			p.log = func(msg string, args ...any) { logged = append(logged, fmt.Sprint(msg, args)) }
			_, err := p.Deliver(context.Background(), delivery("hi"), phone(testTo))
			de, failed := sdk.Classify(err)
			if !failed || de.Class != tc.class {
				t.Fatalf("got %v (%v); want %v", err, de.Class, tc.class)
			}
			if tc.after > 0 && (de.After < tc.after-2*time.Second || de.After > tc.after) {
				t.Errorf("retry after %v; want %v", de.After, tc.after)
			}
			if tc.after == 0 && de.After != 0 {
				t.Errorf("retry after %v; want none", de.After)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			for _, secret := range []string{testTo, "818012345678", testToken} {
				if strings.Contains(err.Error(), secret) || strings.Contains(strings.Join(logged, " "), secret) {
					t.Errorf("error or log holds %q: %v %v", secret, err, logged)
				}
			}
			if tc.auth != (len(logged) == 1) {
				t.Errorf("credentials log lines: %q", logged)
			}
		})
	}
}

func TestCredentialsLoggedOncePerMinute(t *testing.T) {
	tw := newTwilio(t, twilioErr(401, 20003, "Authenticate"))
	p := configured(t, tw.URL)
	now := time.Now()
	p.now = func() time.Time { return now }
	var n int
	p.log = func(string, ...any) { n++ }
	for range 3 {
		_, _ = p.Deliver(context.Background(), delivery("hi"), phone(testTo))
	}
	now = now.Add(2 * time.Minute)
	d := delivery("hi")
	d.Deadline = now.Add(time.Minute)
	_, _ = p.Deliver(context.Background(), d, phone(testTo))
	if n != 2 {
		t.Errorf("logged %d times; want 2", n)
	}
}

func TestDeliverTransport(t *testing.T) {
	tw := newTwilio(t, nil)
	url := tw.URL
	tw.Close()
	p := configured(t, url)
	_, err := p.Deliver(context.Background(), delivery("hi"), phone(testTo))
	if de, _ := sdk.Classify(err); de.Class != sdk.ClassRetry || strings.Contains(err.Error(), testTo) {
		t.Fatalf("got %v; want a retry without the number", err)
	}
}

func TestDeliverDeadline(t *testing.T) {
	release := make(chan struct{})
	tw := newTwilio(t, func(*fakes.SMS) fakes.SMSAnswer { return fakes.SMSAnswer{Hold: release} })
	defer close(release)
	p := configured(t, tw.URL)
	d := delivery("hi")
	d.Deadline = time.Now().Add(200 * time.Millisecond)
	start := time.Now()
	_, err := p.Deliver(context.Background(), d, phone(testTo))
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %v", el)
	}
	if de, _ := sdk.Classify(err); de.Class != sdk.ClassRetry || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v; want a retry: deadline exceeded", err)
	}

	d.Deadline = time.Now().Add(-time.Second)
	before := len(tw.Messages())
	if _, err := p.Deliver(context.Background(), d, phone(testTo)); err == nil {
		t.Fatal("delivered past the deadline")
	}
	if len(tw.Messages()) != before {
		t.Error("sent past the deadline")
	}
}

func TestConfigure(t *testing.T) {
	ok := Config{AccountSID: testSID, AuthToken: testToken, From: testFrom}
	tests := []struct {
		name   string
		mod    func(*Config)
		attrs  []string
		warned bool
	}{
		{"ok", func(*Config) {}, nil, false},
		{"short code", func(c *Config) { c.From = "12345" }, nil, false},
		{"alphanumeric", func(c *Config) { c.From = "Ringside" }, nil, false},
		{"messaging service", func(c *Config) { c.From = testService }, nil, false},
		{"messaging service too short", func(c *Config) { c.From = testService[:33] }, []string{"from"}, false},
		{"messaging service too long", func(c *Config) { c.From = testService + "0" }, []string{"from"}, false},
		{"messaging service not hex", func(c *Config) { c.From = "MG9752274e9e519418a7406176694466fz" }, []string{"from"}, false},
		{"account sid as from", func(c *Config) { c.From = testSID }, []string{"from"}, false},
		{"default endpoint", func(c *Config) { c.Endpoint = "" }, nil, false},
		{"loopback http", func(c *Config) { c.Endpoint = "http://127.0.0.1:8080" }, nil, false},
		{"remote http warns", func(c *Config) { c.Endpoint = "http://twilio.internal" }, []string{"endpoint"}, true},
		{"bad sid", func(c *Config) { c.AccountSID = "SK0123" }, []string{"account_sid"}, false},
		{"empty token", func(c *Config) { c.AuthToken = "" }, []string{"auth_token"}, false},
		{"token newline", func(c *Config) { c.AuthToken = testToken + "\n" }, []string{"auth_token"}, false},
		{"bad from", func(c *Config) { c.From = "+1 415 555" }, []string{"from"}, false},
		{"long alpha", func(c *Config) { c.From = "RingsideCalls" }, []string{"from"}, false},
		{"bad endpoint", func(c *Config) { c.Endpoint = "ftp://x" }, []string{"endpoint"}, false},
		{"endpoint creds", func(c *Config) { c.Endpoint = "https://u:p@api.twilio.com" }, []string{"endpoint"}, false},
		{"all bad", func(c *Config) { *c = Config{Endpoint: "api.twilio.com"} }, []string{"account_sid", "auth_token", "from", "endpoint"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			diags := New().Configure(context.Background(), cfg)
			var got []string
			warned := true
			for _, d := range diags {
				if d.Attribute == "" {
					t.Fatalf("diagnostic not at an attribute: %v", d)
				}
				got = append(got, d.Attribute)
				warned = warned && d.Severity == sdk.SeverityWarning
				if strings.Contains(d.Summary, testToken) {
					t.Errorf("diagnostic quotes the auth token: %v", d)
				}
				if d.Attribute == "from" && strings.HasPrefix(cfg.From, "MG") && !strings.Contains(d.Summary, "Messaging Service SID") {
					t.Errorf("diagnostic %q does not say what a Messaging Service SID looks like", d.Summary)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.attrs) || (len(got) > 0 && warned != tc.warned) {
				t.Errorf("got %v (warning %v); want %v (warning %v)", got, warned, tc.attrs, tc.warned)
			}
		})
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{"+818012345678": "+81…78", "+1234567": "…", "": "…", "+4420790000000": "+44…00"} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestConcurrentDevices(t *testing.T) {
	tw := newTwilio(t, nil)
	p := configured(t, tw.URL)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := p.Deliver(context.Background(), delivery("hi"), phone(fmt.Sprintf("+8180%08d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(tw.Messages()); n != 20 {
		t.Errorf("%d requests", n)
	}
}
