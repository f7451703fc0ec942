package fcm

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

const lineParam = fakes.LineParam

const testToken = "fGcmT0ken-abcdefghijklmnopqrstuvwxyz:APA91bHexample_0123456789"

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testProject = fakes.FCMProject

// env is a fake FCM (with its token endpoint), a service-account key file
// that reaches it and a plugin configured with both.
type env struct {
	fcm   *fakes.FCM
	p     *Plugin
	creds string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{fcm: fakes.StartFCM(fakes.FCMOptions{})}
	t.Cleanup(e.fcm.Close)
	var err error
	if e.creds, err = e.fcm.WriteServiceAccount(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	e.p = sdktest.Configured(t, New(), Config{CredentialsFile: e.creds, Endpoint: e.fcm.Endpoint()})
	if t, ok := t.(*testing.T); ok {
		t.Cleanup(func() {
			if f := e.fcm.TokenErrors(); len(f) > 0 {
				t.Errorf("token requests refused by the fake: %v", f)
			}
		})
	}
	return e
}

// delivery is LINE's example call with payload JSON, due in 59.5 s.
func delivery(payload string) *sdk.Delivery {
	r := sdktest.NewRequest()
	r.PayloadJSON = []byte(payload)
	r.Deadline = time.Now().Add(59500 * time.Millisecond)
	return r.Delivery()
}

const defaultPayload = `{"cc_param":"` + lineParam + `","sid":"151ad995-749c-4a28-893f-636700469db1","app_caller_sid":"linecorp.com","app_caller_uid":"9286","app_callee_sid":"linecorp.com","app_callee_uid":"2809","app_call_type":"A","app_svr_data":"stid"}`

func TestDeliverMessageJSON(t *testing.T) {
	e := newEnv(t)
	payload := strings.TrimSuffix(defaultPayload, "}") +
		`,"app_caller_uid":"Alice","count":3,"ratio":1.50,"video":false,"tags":["a","b"],"meta":{"k": "v", "n": 1},"gone":null,"text":"x+y/z="}`
	// app_caller_uid appears twice above; the host never renders that, but
	// the last one wins as in any JSON decoder.
	d := delivery(payload)
	id, err := e.p.Deliver(context.Background(), d, sdk.Device{Kind: "fcm", Token: testToken})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if id != "projects/"+testProject+"/messages/0:1700000000000000%abcdef" {
		t.Errorf("provider id %q", id)
	}
	reqs := e.fcm.Sends()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/v1/projects/"+testProject+"/messages:send" {
		t.Errorf("path %q", r.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if tp := r.Header.Get("Traceparent"); tp != "" {
		// No span in ctx: nothing to propagate. (The e2e test covers traces.)
		t.Logf("traceparent %q", tp)
	}
	var got any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatalf("body: %v\n%s", err, r.Body)
	}
	want := map[string]any{
		"message": map[string]any{
			"token": testToken,
			"data": map[string]any{
				"cc_param":       lineParam,
				"sid":            "151ad995-749c-4a28-893f-636700469db1",
				"app_caller_sid": "linecorp.com",
				"app_caller_uid": "Alice",
				"app_callee_sid": "linecorp.com",
				"app_callee_uid": "2809",
				"app_call_type":  "A",
				"app_svr_data":   "stid",
				"count":          "3",
				"ratio":          "1.50",
				"video":          "false",
				"tags":           `["a","b"]`,
				"meta":           `{"k":"v","n":1}`,
				"text":           "x+y/z=",
			},
			"android": map[string]any{
				"priority": "high",
				"ttl":      "60s",
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", "  ")
		wb, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("message:\n%s\nwant:\n%s", gb, wb)
	}
	if n := e.fcm.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestTokenCachedAcrossDeliveries(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		if _, err := e.p.Deliver(context.Background(), delivery(defaultPayload), sdk.Device{Kind: "fcm", Token: testToken}); err != nil {
			t.Fatalf("Deliver %d: %v", i, err)
		}
	}
	if n := e.fcm.TokenRequests(); n != 1 {
		t.Errorf("%d token requests for 5 deliveries, want 1", n)
	}
}

func TestPriorityNormal(t *testing.T) {
	e := newEnv(t)
	p := New()
	err := p.Configure(context.Background(), Config{CredentialsFile: e.creds, Endpoint: e.fcm.Endpoint(), Priority: "normal"})
	if len(err) != 1 || err.HasError() || err[0].Attribute != "priority" {
		t.Fatalf("Configure: %v, want a warning on priority", err)
	}
	if _, err := p.Deliver(context.Background(), delivery(defaultPayload), sdk.Device{Kind: "fcm", Token: testToken}); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Message struct{ Android struct{ Priority string } }
	}
	_ = json.Unmarshal(e.fcm.Sends()[0].Body, &m)
	if m.Message.Android.Priority != "normal" {
		t.Errorf("priority %q", m.Message.Android.Priority)
	}
}

func TestData(t *testing.T) {
	d := delivery(`{"cc_param":"P","sid":"S","app_call_type":"V","n":-1e3,"b":true,"s":"","z":null}`)
	d.Call.Param, d.Call.SID, d.Call.AppSvrData = "P", "S", ""
	got, err := Data(d)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"cc_param": "P", "sid": "S", "app_call_type": "V", "n": "-1e3", "b": "true", "s": "",
		// absent from this payload, filled in from the call:
		"app_caller_sid": "linecorp.com", "app_caller_uid": "9286", "app_callee_sid": "linecorp.com", "app_callee_uid": "2809",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Data = %v\nwant %v", got, want)
	}
	if n := DataSize(map[string]string{"ab": "cde", "é": "€"}); n != 2+3+2+3 {
		t.Errorf("DataSize = %d", n)
	}
	for _, k := range []string{"from", "message_type", "collapse_key", "google.x", "gcm.n.e", "notification"} {
		if _, err := Data(delivery(`{"` + k + `":"x"}`)); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("key %q: %v", k, err)
		}
	}
	if _, err := Data(delivery(`[1]`)); err == nil {
		t.Error("a non-object payload was accepted")
	}
}

func TestTTL(t *testing.T) {
	for _, tc := range []struct {
		left time.Duration
		want time.Duration
		ok   bool
	}{
		{60 * time.Second, 60 * time.Second, true},
		{59*time.Second + time.Nanosecond, 60 * time.Second, true},
		{59500 * time.Millisecond, 60 * time.Second, true},
		{time.Millisecond, time.Second, true},
		{0, 0, false},
		{-time.Second, 0, false},
	} {
		got, ok := TTL(testNow.Add(tc.left), testNow)
		if got != tc.want || ok != tc.ok {
			t.Errorf("TTL(%v left) = %v, %v; want %v, %v", tc.left, got, ok, tc.want, tc.ok)
		}
	}
	if got, ok := TTL(time.Time{}, testNow); got != 60*time.Second || !ok {
		t.Errorf("TTL(no deadline) = %v, %v", got, ok)
	}
}

func TestDeadlinePassedSendsNothing(t *testing.T) {
	e := newEnv(t)
	d := delivery(defaultPayload)
	d.Deadline = time.Now().Add(-time.Millisecond)
	_, err := e.p.Deliver(context.Background(), d, sdk.Device{Kind: "fcm", Token: testToken})
	checkOutcome(t, err, sdk.ClassRetry, 0, "deadline passed")
	if n := len(e.fcm.Sends()); n != 0 {
		t.Errorf("%d requests sent after the deadline", n)
	}
}

func TestDataLimit(t *testing.T) {
	e := newEnv(t)
	// A 4 KiB param, the most LINE allows, cannot fit with its key.
	d := delivery(defaultPayload)
	d.Call.Param = strings.Repeat("A", 4096)
	d.PayloadJSON = []byte(`{"cc_param":"` + d.Call.Param + `"}`)
	_, err := e.p.Deliver(context.Background(), d, sdk.Device{Kind: "fcm", Token: testToken})
	checkOutcome(t, err, sdk.ClassPermanent, 0, "over FCM's 4096-byte limit")
	if n := len(e.fcm.Sends()); n != 0 {
		t.Errorf("%d requests sent for an oversized message", n)
	}

	// Exactly 4096 bytes of keys and values is sent.
	data, _ := Data(delivery(defaultPayload))
	size := DataSize(data)
	d = delivery(strings.TrimSuffix(defaultPayload, "}") + `,"pad":"` + strings.Repeat("x", MaxDataBytes-size-3) + `"}`)
	if _, err := e.p.Deliver(context.Background(), d, sdk.Device{Kind: "fcm", Token: testToken}); err != nil {
		t.Errorf("a 4096-byte message: %v", err)
	}
	d = delivery(strings.TrimSuffix(defaultPayload, "}") + `,"pad":"` + strings.Repeat("x", MaxDataBytes-size-2) + `"}`)
	_, err = e.p.Deliver(context.Background(), d, sdk.Device{Kind: "fcm", Token: testToken})
	checkOutcome(t, err, sdk.ClassPermanent, 0, "4097 bytes")
}

func TestOutcomes(t *testing.T) {
	withRetryAfter := func(v string, a fakes.FCMAnswer) fakes.FCMAnswer {
		a.Header = map[string]string{"Retry-After": v}
		return a
	}
	errAnswer := func(status int, rpc, code string) fakes.FCMAnswer {
		return fakes.FCMAnswer{Status: status, RPCStatus: rpc, ErrorCode: code, Message: "message about " + testToken}
	}
	tests := []struct {
		name   string
		answer fakes.FCMAnswer
		class  sdk.Class
		after  time.Duration
		reason string
	}{
		{"unregistered", errAnswer(404, "NOT_FOUND", "UNREGISTERED"), sdk.ClassGone, 0, "404 UNREGISTERED"},
		{"invalid argument", errAnswer(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), sdk.ClassPermanent, 0, "malformed registration token"},
		{"invalid argument, no detail", errAnswer(400, "INVALID_ARGUMENT", ""), sdk.ClassPermanent, 0, "400 INVALID_ARGUMENT"},
		{"sender id mismatch", errAnswer(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), sdk.ClassPermanent, 0, "another Firebase project"},
		{"permission denied", errAnswer(403, "PERMISSION_DENIED", ""), sdk.ClassPermanent, 0, "403 PERMISSION_DENIED"},
		{"unauthenticated", errAnswer(401, "UNAUTHENTICATED", ""), sdk.ClassPermanent, 0, "401 UNAUTHENTICATED"},
		{"third party auth", errAnswer(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"), sdk.ClassPermanent, 0, "THIRD_PARTY_AUTH_ERROR"},
		{"not found without UNREGISTERED", errAnswer(404, "NOT_FOUND", ""), sdk.ClassPermanent, 0, "wrong project_id or endpoint"},
		{"quota exceeded", withRetryAfter("7", errAnswer(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")), sdk.ClassRetry, 7 * time.Second, "429 QUOTA_EXCEEDED"},
		{"quota exceeded, no Retry-After", errAnswer(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), sdk.ClassRetry, 0, "429 QUOTA_EXCEEDED"},
		{"internal", errAnswer(500, "INTERNAL", "INTERNAL"), sdk.ClassRetry, 0, "500 INTERNAL"},
		{"unavailable", withRetryAfter("3", errAnswer(503, "UNAVAILABLE", "UNAVAILABLE")), sdk.ClassRetry, 3 * time.Second, "503 UNAVAILABLE"},
		{"unavailable, no Retry-After", errAnswer(503, "UNAVAILABLE", ""), sdk.ClassRetry, 0, "503 UNAVAILABLE"},
		{"unavailable, long Retry-After", withRetryAfter("121", errAnswer(503, "UNAVAILABLE", "UNAVAILABLE")), sdk.ClassRetry, 121 * time.Second, "503 UNAVAILABLE"},
		{"unavailable, HTML", fakes.FCMAnswer{Status: 503, Header: map[string]string{"Retry-After": "2"}, Raw: "<html>busy</html>"}, sdk.ClassRetry, 2 * time.Second, "503 Service Unavailable"},
		{"bad gateway", errAnswer(502, "UNAVAILABLE", ""), sdk.ClassRetry, 0, "502"},
		{"other 4xx", errAnswer(409, "ABORTED", ""), sdk.ClassRetry, 0, "409 ABORTED"},
		{"precondition", errAnswer(400, "FAILED_PRECONDITION", ""), sdk.ClassPermanent, 0, "400 FAILED_PRECONDITION"},
	}
	e := newEnv(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.fcm.SetAnswer(func(*fakes.FCMSend) fakes.FCMAnswer { return tc.answer })
			before := len(e.fcm.Sends())
			start := time.Now()
			_, err := e.p.Deliver(context.Background(), delivery(defaultPayload), sdk.Device{Kind: "fcm", Token: testToken})
			checkOutcome(t, err, tc.class, tc.after, tc.reason)
			if n := len(e.fcm.Sends()) - before; n != 1 {
				t.Errorf("%d requests for one Deliver, want 1 (the host owns retries)", n)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("Deliver took %v", el)
			}
			if err != nil && strings.Contains(err.Error(), testToken) {
				t.Errorf("the error shows the device token: %v", err)
			}
		})
	}
}

// A deadline hit while FCM is slow is a retry, not a permanent failure.
func TestDeadlineWhileFCMHangs(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	defer close(release)
	e.fcm.SetAnswer(func(*fakes.FCMSend) fakes.FCMAnswer {
		return fakes.FCMAnswer{Status: 503, RPCStatus: "UNAVAILABLE", Message: "late", Hold: release}
	})
	d := delivery(defaultPayload)
	d.Deadline = time.Now().Add(300 * time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), d.Deadline)
	defer cancel()
	_, err := e.p.Deliver(ctx, d, sdk.Device{Kind: "fcm", Token: testToken})
	checkOutcome(t, err, sdk.ClassRetry, 0, "deadline reached")
}

func TestNetworkErrorIsRetry(t *testing.T) {
	e := newEnv(t)
	p := New()
	// Port 1: nothing listens there.
	sdktest.Configured(t, p, Config{CredentialsFile: e.creds, Endpoint: "http://127.0.0.1:1/v1"})
	start := time.Now()
	_, err := p.Deliver(context.Background(), delivery(defaultPayload), sdk.Device{Kind: "fcm", Token: testToken})
	checkOutcome(t, err, sdk.ClassRetry, 0, "request failed")
	if el := time.Since(start); el > time.Second {
		t.Errorf("Deliver took %v: the SDK's own retries were not cut", el)
	}
}

func TestOAuthOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		answer fakes.TokenAnswer
		class  sdk.Class
		after  time.Duration
		reason string
	}{
		{"invalid grant", fakes.TokenAnswer{Status: 400, Error: "invalid_grant", Description: "Invalid JWT Signature."},
			sdk.ClassPermanent, 0, "400 invalid_grant: Invalid JWT Signature."},
		{"unavailable", fakes.TokenAnswer{Status: 503, Header: map[string]string{"Retry-After": "4"}}, sdk.ClassRetry, 4 * time.Second, "token endpoint answered 503"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.fcm.SetTokenAnswer(&tc.answer)
			_, err := e.p.Deliver(context.Background(), delivery(defaultPayload), sdk.Device{Kind: "fcm", Token: testToken})
			checkOutcome(t, err, tc.class, tc.after, tc.reason)
			if n := len(e.fcm.Sends()); n != 0 {
				t.Errorf("%d FCM requests without an access token", n)
			}
			if n := e.fcm.TokenRequests(); n != 1 {
				t.Errorf("%d token requests, want 1", n)
			}
		})
	}
}

func checkOutcome(t *testing.T, err error, class sdk.Class, after time.Duration, reason string) {
	t.Helper()
	de, failed := sdk.Classify(err)
	if !failed {
		t.Fatalf("delivered, want %s (%q)", class, reason)
	}
	if de.Class != class || de.After != after {
		t.Errorf("outcome %s after %v (%v), want %s after %v", de.Class, de.After, err, class, after)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("reason %q does not contain %q", err.Error(), reason)
	}
}

func TestConfigureErrors(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := dir + "/" + name
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := string(e.fcm.ServiceAccount(""))
	sa := func(edit func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal([]byte(good), &m)
		edit(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	keyBody := strings.Split(e.fcm.KeyPEM(), "\n")[1]
	tests := []struct {
		name string
		cfg  Config
		attr string
		msg  string
	}{
		{"missing file", Config{CredentialsFile: dir + "/nope.json"}, "credentials_file", "no such file"},
		{"empty", Config{}, "credentials_file", "must name"},
		{"not JSON", Config{CredentialsFile: write("a.json", "-----BEGIN PRIVATE KEY-----\n"+keyBody)}, "credentials_file", "not a JSON service-account key"},
		{"wrong type", Config{CredentialsFile: write("b.json", sa(func(m map[string]any) { m["type"] = "authorized_user" }))}, "credentials_file", `"type" must be "service_account"`},
		{"no email", Config{CredentialsFile: write("c.json", sa(func(m map[string]any) { delete(m, "client_email") }))}, "credentials_file", "no client_email"},
		{"bad key", Config{CredentialsFile: write("d.json", sa(func(m map[string]any) {
			m["private_key"] = "-----BEGIN PRIVATE KEY-----\n" + keyBody[:40] + "\n-----END PRIVATE KEY-----\n"
		}))}, "credentials_file", "private_key cannot be parsed"},
		{"no key", Config{CredentialsFile: write("e.json", sa(func(m map[string]any) { delete(m, "private_key") }))}, "credentials_file", "private_key is missing"},
		{"bad token_uri", Config{CredentialsFile: write("f.json", sa(func(m map[string]any) { m["token_uri"] = "ftp://x" }))}, "credentials_file", "token_uri"},
		{"no project", Config{CredentialsFile: write("g.json", sa(func(m map[string]any) { delete(m, "project_id") }))}, "project_id", "must be set"},
		{"bad project", Config{CredentialsFile: e.creds, ProjectID: "a/b"}, "project_id", "not a valid project id"},
		{"bad priority", Config{CredentialsFile: e.creds, Priority: "urgent"}, "priority", `"high" or "normal"`},
		{"bad endpoint", Config{CredentialsFile: e.creds, Endpoint: "fcm.googleapis.com"}, "endpoint", "absolute http or https URL"},
		{"endpoint query", Config{CredentialsFile: e.creds, Endpoint: "https://x/v1?key=secret"}, "endpoint", "query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			diags := New().Configure(context.Background(), tc.cfg)
			if len(diags) == 0 || diags[0].Severity != sdk.SeverityError {
				t.Fatalf("Configure: %v, want an attribute error", diags)
			}
			if ae := diags[0]; ae.Attribute != tc.attr || !strings.Contains(ae.Summary, tc.msg) {
				t.Errorf("error %q on %q, want %q on %q", ae.Summary, ae.Attribute, tc.msg, tc.attr)
			}
			if msg := diags.String(); strings.Contains(msg, keyBody[:20]) || strings.Contains(msg, "secret") {
				t.Errorf("the error shows key material: %v", diags)
			}
		})
	}

	// project_id overrides the credentials'.
	p := New()
	sdktest.Configured(t, p, Config{CredentialsFile: e.creds, ProjectID: "other-project", Endpoint: e.fcm.Endpoint() + "/"})
	if _, err := p.Deliver(context.Background(), delivery(defaultPayload), sdk.Device{Kind: "fcm", Token: testToken}); err != nil {
		t.Fatal(err)
	}
	if got := e.fcm.Sends()[0].Path; got != "/v1/projects/other-project/messages:send" {
		t.Errorf("path %q", got)
	}
}

func TestNotConfigured(t *testing.T) {
	_, err := New().Deliver(context.Background(), delivery(defaultPayload), sdk.Device{Kind: "fcm", Token: testToken})
	checkOutcome(t, err, sdk.ClassPermanent, 0, "not configured")
}

func BenchmarkDeliver(b *testing.B) {
	e := newEnv(b)
	dev := sdk.Device{Kind: "fcm", Token: testToken}
	d := delivery(defaultPayload)
	d.Deadline = time.Now().Add(time.Hour)
	if _, err := e.p.Deliver(context.Background(), d, dev); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.p.Deliver(context.Background(), d, dev); err != nil {
			b.Fatal(err)
		}
	}
}
