package fakes

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// jwt signs a compact JWS of header and claims with sign.
func jwt(t *testing.T, header, claims map[string]any, sign func(digest []byte) []byte) string {
	t.Helper()
	part := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	in := part(header) + "." + part(claims)
	sum := sha256.Sum256([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(sign(sum[:]))
}

// providerToken is an ES256 provider token of f's team issued at iat,
// signed with f's key (or another's).
func providerToken(t *testing.T, f *APNs, iat time.Time, key *ecdsa.PrivateKey) string {
	t.Helper()
	return jwt(t, map[string]any{"alg": "ES256", "kid": f.KeyID()}, map[string]any{"iss": f.TeamID(), "iat": iat.Unix()},
		func(digest []byte) []byte {
			r, s, err := ecdsa.Sign(rand.Reader, key, digest)
			if err != nil {
				t.Fatal(err)
			}
			return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		})
}

func parseP8(t *testing.T, b []byte) *ecdsa.PrivateKey {
	t.Helper()
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey)
}

func send(t *testing.T, c *http.Client, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestAPNs(t *testing.T) {
	f := StartAPNs(APNsOptions{Topic: "com.example.app.voip"})
	t.Cleanup(f.Close)
	key := parseP8(t, f.P8())
	other := parseP8(t, NewAPNs(APNsOptions{}).P8())
	good := providerToken(t, f, time.Now(), key)
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.CertPool()}, ForceAttemptHTTP2: true}}
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.CertPool()}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	const token = "8b5f3f7a0c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbc"
	tests := []struct {
		name         string
		client       *http.Client
		method, path string
		bearer       string
		header       map[string]string
		body         string
		status       int
		reason       string
	}{
		{name: "a VoIP push", status: 200},
		{name: "5120 bytes of VoIP payload", body: `{"x":"` + strings.Repeat("a", APNsMaxVoIPPayload-8) + `"}`, status: 200},
		{name: "5121 bytes of VoIP payload", body: `{"x":"` + strings.Repeat("a", APNsMaxVoIPPayload-7) + `"}`, status: 413, reason: "PayloadTooLarge"},
		{name: "4097 bytes of alert payload", header: map[string]string{"apns-push-type": "alert"}, body: `{"x":"` + strings.Repeat("a", APNsMaxPayload-7) + `"}`, status: 413, reason: "PayloadTooLarge"},
		{name: "HTTP/1.1", client: h1, status: 404, reason: "BadPath"},
		{name: "GET", method: "GET", status: 405, reason: "MethodNotAllowed"},
		{name: "no token in the path", path: "/3/device/", status: 404, reason: "BadPath"},
		{name: "another path", path: "/3/devices/" + token, status: 404, reason: "BadPath"},
		{name: "no provider token", bearer: "-", status: 403, reason: "MissingProviderToken"},
		{name: "a token signed by another key", bearer: providerToken(t, f, time.Now(), other), status: 403, reason: "InvalidProviderToken"},
		{name: "a token of another key id", bearer: jwt(t, map[string]any{"alg": "ES256", "kid": "OTHER12345"}, map[string]any{"iss": f.TeamID(), "iat": time.Now().Unix()}, func([]byte) []byte { return make([]byte, 64) }), status: 403, reason: "InvalidProviderToken"},
		{name: "a token older than an hour", bearer: providerToken(t, f, time.Now().Add(-61*time.Minute), key), status: 403, reason: "ExpiredProviderToken"},
		{name: "an unknown push type", header: map[string]string{"apns-push-type": "fax"}, status: 400, reason: "InvalidPushType"},
		{name: "no topic", header: map[string]string{"apns-topic": ""}, status: 400, reason: "MissingTopic"},
		{name: "another topic", header: map[string]string{"apns-topic": "com.example.other.voip"}, status: 400, reason: "TopicDisallowed"},
		{name: "priority 7", header: map[string]string{"apns-priority": "7"}, status: 400, reason: "BadPriority"},
		{name: "an expiration that is not a number", header: map[string]string{"apns-expiration": "soon"}, status: 400, reason: "BadExpirationDate"},
		{name: "a background push at priority 10", header: map[string]string{"apns-push-type": "background", "apns-priority": "10"}, status: 400, reason: "BadPriority"},
		{name: "a background push at priority 5", header: map[string]string{"apns-push-type": "background", "apns-priority": "5"}, status: 200},
		{name: "a collapse id of 64 bytes", header: map[string]string{"apns-collapse-id": strings.Repeat("c", APNsMaxCollapseID)}, status: 200},
		{name: "a collapse id of 65 bytes", header: map[string]string{"apns-collapse-id": strings.Repeat("c", APNsMaxCollapseID+1)}, status: 400, reason: "BadCollapseId"},
		{name: "no payload", body: "-", status: 400, reason: "PayloadEmpty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, method, path, bearer, body := h2, "POST", "/3/device/"+token, good, `{"sid":"s"}`
			if tc.client != nil {
				c = tc.client
			}
			method, path = cmp.Or(tc.method, method), cmp.Or(tc.path, path)
			bearer, body = cmp.Or(tc.bearer, bearer), cmp.Or(tc.body, body)
			req, _ := http.NewRequest(method, f.URL+path, strings.NewReader(strings.TrimPrefix(body, "-")))
			req.Header.Set("apns-push-type", "voip")
			req.Header.Set("apns-topic", "com.example.app.voip")
			if bearer != "-" {
				req.Header.Set("Authorization", "bearer "+bearer)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			status, hdr, got := send(t, c, req)
			var answer struct{ Reason string }
			_ = json.Unmarshal([]byte(got), &answer)
			if status != tc.status || answer.Reason != tc.reason || hdr.Get("apns-id") == "" {
				t.Errorf("got %d %q (apns-id %q); want %d %q", status, got, hdr.Get("apns-id"), tc.status, tc.reason)
			}
		})
	}
	pushes := f.Pushes()
	if len(pushes) == 0 || pushes[0].Token != token || pushes[0].Proto != 2 || pushes[0].Status != 200 || pushes[0].JWTErr != nil {
		t.Errorf("first push recorded as %+v", pushes[0])
	}
	if c := f.Counts(); c.Pushes != 4 || c.BadTokens != 4 || c.Malformed != len(tests)-8 {
		t.Errorf("counts %+v; want 4 pushes, 4 bad tokens, %d malformed", c, len(tests)-8)
	}
}

func TestAPNsAnswer(t *testing.T) {
	hold := make(chan struct{})
	f := StartAPNs(APNsOptions{SkipTokenCheck: true, Answer: func(p *Push) Answer {
		if p.N == 1 {
			return Answer{Status: 410, Reason: "Unregistered", Timestamp: 1767225600123}
		}
		return Answer{Hold: hold}
	}})
	t.Cleanup(f.Close)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.CertPool()}, ForceAttemptHTTP2: true}}
	post := func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", f.URL+"/3/device/ab", strings.NewReader("{}"))
		req.Header.Set("apns-topic", "t")
		return c.Do(req)
	}
	resp, err := post(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 410 || strings.TrimSpace(string(b)) != `{"reason":"Unregistered","timestamp":1767225600123}` {
		t.Errorf("got %d %s", resp.StatusCode, b)
	}
	// A held push whose client goes away is recorded unanswered.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := post(ctx); err == nil {
		t.Fatal("a held push was answered")
	}
	time.Sleep(100 * time.Millisecond) // the stream's reset reaches the fake
	close(hold)
	for deadline := time.Now().Add(5 * time.Second); f.InFlight() > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if p := f.Pushes(); len(p) != 2 || p[0].Status != 410 || p[1].Status != 0 {
		t.Errorf("pushes %+v; want the 410, then one unanswered", p)
	}
}

func TestAPNsCertAuth(t *testing.T) {
	f := StartAPNs(APNsOptions{CertAuth: true})
	t.Cleanup(f.Close)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.CertPool()}, ForceAttemptHTTP2: true}}
	if _, err := c.Post(f.URL+"/3/device/ab", "application/json", strings.NewReader("{}")); err == nil {
		t.Error("a client without a certificate was served")
	}
}

// assertion is a jwt-bearer assertion of f's service account for aud,
// signed with key.
func assertion(t *testing.T, f *FCM, aud, scope string, key *rsa.PrivateKey) string {
	t.Helper()
	now := time.Now().Unix()
	return jwt(t, map[string]any{"alg": "RS256", "kid": f.KeyID}, map[string]any{"iss": f.ClientEmail, "aud": aud, "scope": scope, "iat": now, "exp": now + 3600},
		func(digest []byte) []byte {
			sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest)
			if err != nil {
				t.Fatal(err)
			}
			return sig
		})
}

func TestFCM(t *testing.T) {
	f := StartFCM(FCMOptions{})
	t.Cleanup(f.Close)
	var sa struct {
		PrivateKey string `json:"private_key"`
		TokenURI   string `json:"token_uri"`
		ProjectID  string `json:"project_id"`
	}
	if err := json.Unmarshal(f.ServiceAccount(""), &sa); err != nil || sa.TokenURI != f.TokenURL() || sa.ProjectID != FCMProject {
		t.Fatalf("service account %+v %v", sa, err)
	}
	blk, _ := pem.Decode([]byte(sa.PrivateKey))
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key := k.(*rsa.PrivateKey)
	otherKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	grant := func(assertion string) (int, string) {
		resp, err := http.PostForm(f.TokenURL(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name      string
		assertion string
		status    int
	}{
		{"valid", assertion(t, f, f.TokenURL(), fcmScope, key), 200},
		{"another key", assertion(t, f, f.TokenURL(), fcmScope, otherKey), 400},
		{"another audience", assertion(t, f, "https://oauth2.googleapis.com/token", fcmScope, key), 400},
		{"another scope", assertion(t, f, f.TokenURL(), "https://www.googleapis.com/auth/cloud-platform.read-only", key), 400},
	} {
		if status, body := grant(tc.assertion); status != tc.status || (status == 200 && !strings.Contains(body, f.AccessToken)) {
			t.Errorf("%s: %d %s; want %d", tc.name, status, body, tc.status)
		}
	}
	if n, errs := f.TokenRequests(), f.TokenErrors(); n != 4 || len(errs) != 3 {
		t.Errorf("%d token requests, refused %v; want 4, 3 refused", n, errs)
	}

	f.SetAnswer(func(s *FCMSend) FCMAnswer {
		if s.Token == "gone" {
			return FCMAnswer{Status: 404, RPCStatus: "NOT_FOUND", ErrorCode: "UNREGISTERED", Message: "Requested entity was not found."}
		}
		return FCMAnswer{}
	})
	msg := func(path, bearer, body string) (int, string) {
		req, _ := http.NewRequest("POST", f.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("Content-Type", "application/json")
		status, _, b := send(t, http.DefaultClient, req)
		return status, b
	}
	msgPath := "/v1/projects/" + FCMProject + "/messages:send"
	for _, tc := range []struct {
		name, path, bearer, body string
		status                   int
		want                     string
	}{
		{"a message", msgPath, f.AccessToken, `{"message":{"token":"t1","data":{"a":"b"}}}`, 200, `"name":"projects/` + FCMProject + `/messages/`},
		{"an unregistered token", msgPath, f.AccessToken, `{"message":{"token":"gone"}}`, 404, `"errorCode":"UNREGISTERED"`},
		{"another access token", msgPath, "ya29.other", `{"message":{"token":"t1"}}`, 401, `"UNAUTHENTICATED"`},
		{"a data value that is not a string", msgPath, f.AccessToken, `{"message":{"token":"t1","data":{"a":1}}}`, 400, `"INVALID_ARGUMENT"`},
		{"no token", msgPath, f.AccessToken, `{"message":{"data":{"a":"b"}}}`, 400, `"INVALID_ARGUMENT"`},
		{"a notification", msgPath, f.AccessToken, `{"message":{"token":"t1","notification":{"title":"T","body":"B"},"android":{"priority":"high","notification":{"sound":"default","tag":"s","channel_id":"c"}}}}`, 200, `"name":`},
		{"an unknown notification field", msgPath, f.AccessToken, `{"message":{"token":"t1","notification":{"text":"B"}}}`, 400, `Unknown name \"text\" at 'message.notification'`},
		{"an unknown android.notification field", msgPath, f.AccessToken, `{"message":{"token":"t1","android":{"notification":{"channel":"c"}}}}`, 400, `at 'message.android.notification'`},
		{"a notification title that is not a string", msgPath, f.AccessToken, `{"message":{"token":"t1","notification":{"title":1}}}`, 400, `'message.notification.title' (TYPE_STRING)`},
		{"another path", "/v1/projects/" + FCMProject + "/messages", f.AccessToken, `{}`, 404, `"NOT_FOUND"`},
	} {
		if status, body := msg(tc.path, tc.bearer, tc.body); status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s; want %d with %s", tc.name, status, body, tc.status, tc.want)
		}
	}
	if s := f.Sends(); len(s) != 9 || s[0].Token != "t1" || s[0].Project != FCMProject || s[0].Status != 200 {
		t.Errorf("sends %+v", s)
	}
}

func TestTwilio(t *testing.T) {
	f := StartTwilio(TwilioOptions{Answer: func(m *SMS) SMSAnswer {
		if m.Form.Get("To") == "+818000000429" {
			return SMSAnswer{Status: 429, Code: 20429, Message: "Too Many Requests", Header: map[string]string{"Retry-After": "1"}}
		}
		return SMSAnswer{}
	}})
	t.Cleanup(f.Close)
	post := func(path, user, pass string, form url.Values) (int, http.Header, string) {
		req, _ := http.NewRequest("POST", f.URL+path, strings.NewReader(form.Encode()))
		req.SetBasicAuth(user, pass)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return send(t, http.DefaultClient, req)
	}
	path := "/2010-04-01/Accounts/" + TwilioAccountSID + "/Messages.json"
	form := func(to, body string) url.Values {
		return url.Values{"To": {to}, "From": {"+15005550006"}, "Body": {body}}
	}
	for _, tc := range []struct {
		name, path, pass string
		form             url.Values
		status           int
		want             string
	}{
		{"a message", path, TwilioAuthToken, form("+818012345678", "hi"), 201, `"sid":"SM00000000000000000000000000000001"`},
		{"a 429", path, TwilioAuthToken, form("+818000000429", "hi"), 429, `"code":20429`},
		{"a wrong auth token", path, "nope", form("+818012345678", "hi"), 401, `"code":20003`},
		{"another account", "/2010-04-01/Accounts/AC00/Messages.json", TwilioAuthToken, form("+818012345678", "hi"), 404, `"code":20404`},
		{"no To", path, TwilioAuthToken, form("", "hi"), 400, `"code":21604`},
		{"no Body", path, TwilioAuthToken, form("+818012345678", ""), 400, `"code":21602`},
		{"1601 characters", path, TwilioAuthToken, form("+818012345678", strings.Repeat("あ", 1601)), 400, `"code":21617`},
		{"a messaging service", path, TwilioAuthToken, url.Values{"To": {"+818012345678"}, "MessagingServiceSid": {"MG9752274e9e519418a7406176694466fa"}, "Body": {"hi"}}, 201, `"status":"queued"`},
		{"no sender", path, TwilioAuthToken, url.Values{"To": {"+818012345678"}, "Body": {"hi"}}, 400, `"code":21603`},
	} {
		status, hdr, body := post(tc.path, TwilioAccountSID, tc.pass, tc.form)
		if status != tc.status || !strings.Contains(body, tc.want) || (status == 429 && hdr.Get("Retry-After") != "1") {
			t.Errorf("%s: %d %s; want %d with %s", tc.name, status, body, tc.status, tc.want)
		}
	}
	if m := f.Messages(); len(m) != 9 || m[0].Form.Get("Body") != "hi" || m[0].User != TwilioAccountSID || m[0].Status != 201 {
		t.Errorf("messages %+v", m)
	}
}

func TestWebhook(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	f := StartWebhook(WebhookOptions{Secret: secret, Answer: func(r *WebhookRequest) WebhookAnswer {
		if r.N == 1 {
			return WebhookAnswer{Status: 503, Header: map[string]string{"Retry-After": "2"}}
		}
		return WebhookAnswer{}
	}})
	t.Cleanup(f.Close)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	post := func(id string, body []byte, sign *standardwebhooks.Webhook) int {
		now := time.Now()
		sig, err := sign.Sign(id, now, body)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", f.URL+"/hook?k=v", strings.NewReader(string(body)))
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
		req.Header.Set("webhook-signature", sig)
		status, _, _ := send(t, http.DefaultClient, req)
		return status
	}
	body := []byte(`{"sid":"s1","to_user_id":"2809"}`)
	other, _ := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("another secret")))
	for i, tc := range []struct {
		sign   *standardwebhooks.Webhook
		status int
	}{{wh, 503}, {wh, 204}, {other, 401}} {
		if got := post("msg_1", body, tc.sign); got != tc.status {
			t.Errorf("request %d: %d; want %d", i+1, got, tc.status)
		}
	}
	reqs := f.Requests("s1")
	if len(reqs) != 3 || reqs[1].N != 2 || reqs[0].ID != "msg_1" || reqs[0].ToUser != "2809" || reqs[0].Path != "/hook?k=v" ||
		reqs[0].SigErr != nil || reqs[2].SigErr == nil || f.Delivered("s1") != 1 {
		t.Errorf("requests %+v, delivered %d", reqs, f.Delivered("s1"))
	}
}

func TestOTLP(t *testing.T) {
	f := StartOTLP()
	t.Cleanup(f.Close)
	for _, gzip := range []bool{false, true} {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(f.URL + "/v1/traces")}
		if gzip {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}
		exp, err := otlptracehttp.New(t.Context(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		_, span := tp.Tracer("test").Start(t.Context(), fmt.Sprint("span gzip=", gzip))
		span.End()
		if err := tp.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if s, ok := f.Find(func(s Span) bool { return s.Name == fmt.Sprint("span gzip=", gzip) }); !ok || len(s.Trace()) != 32 || s.Parent() != "" {
			t.Errorf("gzip=%v: span %v %v; got:\n%s", gzip, s, ok, f.Dump())
		}
	}
	resp, err := http.Post(f.URL+"/v1/traces", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d; want 415", resp.StatusCode)
	}
}

// RunNode hands node its input and arguments and decodes what it prints.
func TestRunNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: RunNode runs it")
	}
	const echo = `
const c = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify({n: c.n + 1, arg: process.argv[1]}));
`
	var got map[string]any
	RunNode(t, node, echo, map[string]int{"n": 41}, &got, "an argument")
	if want := map[string]any{"n": 42.0, "arg": "an argument"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}
