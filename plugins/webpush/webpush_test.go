package webpush

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

// vapidKeys makes a VAPID key pair, base64url.
func vapidKeys(t testing.TB) (priv, pub string) {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(k.Bytes()), base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes())
}

// setup is a fake push service, a subscription on it and a plugin that
// trusts it.
type setup struct {
	fake *fakes.WebPush
	sub  fakes.WebPushSubscriber
	cfg  Config
	logs *sdktest.Buffer
	p    *Plugin
}

func newSetup(t testing.TB) *setup {
	t.Helper()
	priv, pub := vapidKeys(t)
	f := fakes.StartWebPush(fakes.WebPushOptions{VAPIDPublicKey: pub})
	t.Cleanup(f.Close)
	s := &setup{fake: f, sub: f.Subscribe(), logs: &sdktest.Buffer{},
		cfg: Config{VAPIDPrivateKey: priv, VAPIDPublicKey: pub, Subject: "mailto:ops@example.com"}}
	s.p = s.plugin(t)
	return s
}

func (s *setup) plugin(t testing.TB) *Plugin {
	t.Helper()
	p := New()
	tr := sdkTransport()
	tr.TLSClientConfig = &tls.Config{RootCAs: s.fake.CertPool()}
	p.client = newClient(tr)
	p.log = slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return sdktest.Configured(t, p, s.cfg)
}

// device is the setup's subscription as the host hands it: kind webpush,
// the canonical token.
func (s *setup) device(t testing.TB) sdk.Device {
	t.Helper()
	sub, err := sdk.ParseWebPushSubscription([]byte(s.sub.JSON))
	if err != nil {
		t.Fatal(err)
	}
	return sdk.Device{Kind: "webpush", Token: sub.Token(), IdempotencyID: "idem-1"}
}

func delivery() *sdk.Delivery { return sdktest.NewRequest().Delivery() }

// secrets are what no error or log may hold.
func (s *setup) secrets() []string {
	return []string{s.cfg.VAPIDPrivateKey, base64.RawURLEncoding.EncodeToString(s.sub.Auth), s.sub.Endpoint, sdktest.LineParam}
}

func (s *setup) noSecrets(t *testing.T, what string) {
	t.Helper()
	for _, sec := range s.secrets() {
		if strings.Contains(what, sec) || strings.Contains(s.logs.String(), sec) {
			t.Errorf("%q or the logs hold a secret (%.12s…)", what, sec)
		}
	}
}

func TestDeliverPush(t *testing.T) {
	s := newSetup(t)
	d := delivery()
	d.Deadline = time.Now().Add(42*time.Second + 500*time.Millisecond)
	payload := bytes.Clone(d.PayloadJSON)
	id, err := s.p.Deliver(context.Background(), d, s.device(t))
	if err != nil {
		t.Fatal(err)
	}
	pushes := s.fake.Pushes()
	if len(pushes) != 1 {
		t.Fatalf("got %d pushes; want 1", len(pushes))
	}
	got := pushes[0]
	if !strings.HasPrefix(id, s.fake.URL+"/m/") {
		t.Errorf("provider id %q; want the Location", id)
	}
	if got.DecryptErr != nil || !bytes.Equal(got.Plaintext, payload) {
		t.Errorf("plaintext %q (%v); want the payload %s", got.Plaintext, got.DecryptErr, payload)
	}
	if !bytes.Equal(d.PayloadJSON, payload) {
		t.Errorf("the host's payload was changed to %q", d.PayloadJSON)
	}
	for h, want := range map[string]string{"TTL": "42", "Urgency": "high", "Topic": Topic(d.Call.SID), "Content-Encoding": "aes128gcm"} {
		if v := got.Header.Get(h); v != want {
			t.Errorf("%s: %q; want %q", h, v, want)
		}
	}
	if got.Claims.Sub != "mailto:ops@example.com" || got.Claims.Aud != s.fake.URL {
		t.Errorf("claims %+v; want sub mailto:ops@example.com, aud %s", got.Claims, s.fake.URL)
	}
	s.noSecrets(t, id)
}

func TestTopic(t *testing.T) {
	a, b := Topic("151ad995-749c-4a28-893f-636700469db1"), Topic("other")
	if len(a) != 32 || a == b || strings.Trim(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Errorf("Topic: %q, %q; want 32 distinct base64url characters", a, b)
	}
	if again := Topic("151ad995-749c-4a28-893f-636700469db1"); again != a {
		t.Errorf("Topic is not stable: %q, then %q", a, again)
	}
}

func TestTTLAtLeastZero(t *testing.T) {
	s := newSetup(t)
	d := delivery()
	d.Deadline = time.Now().Add(300 * time.Millisecond)
	if _, err := s.p.Deliver(context.Background(), d, s.device(t)); err != nil {
		t.Fatal(err)
	}
	if v := s.fake.Pushes()[0].Header.Get("TTL"); v != "0" {
		t.Errorf("TTL %q; want 0 with under a second left", v)
	}
}

// outcomeCases is one case per row of the outcome table.
var outcomeCases = []struct {
	name   string
	answer fakes.WebPushAnswer
	class  sdk.Class // 0 with ok
	ok     bool
	after  time.Duration
	want   []string
	level  string
}{
	{name: "201", answer: fakes.WebPushAnswer{Status: 201, Header: map[string]string{"Location": "https://push.example/m/1"}}, ok: true, level: "DEBUG"},
	{name: "404", answer: fakes.WebPushAnswer{Status: 404}, class: sdk.ClassGone, want: []string{"404"}, level: "INFO"},
	{name: "410", answer: fakes.WebPushAnswer{Status: 410, Body: "push subscription has unsubscribed or expired."}, class: sdk.ClassGone, want: []string{"410", "unsubscribed"}, level: "INFO"},
	{name: "400", answer: fakes.WebPushAnswer{Status: 400, Body: "bad\nrequest\x00 body"}, class: sdk.ClassPermanent, want: []string{"400", "bad request body"}, level: "WARN"},
	{name: "401", answer: fakes.WebPushAnswer{Status: 401, Body: "invalid JWT"}, class: sdk.ClassPermanent, want: []string{"401", "invalid JWT", "vapid_private_key"}, level: "ERROR"},
	{name: "403", answer: fakes.WebPushAnswer{Status: 403, Body: "key mismatch"}, class: sdk.ClassPermanent, want: []string{"403", "key mismatch", "vapid_public_key"}, level: "ERROR"},
	{name: "413", answer: fakes.WebPushAnswer{Status: 413, Body: strings.Repeat("x", 500)}, class: sdk.ClassPermanent, want: []string{"413", strings.Repeat("x", 200) + "…)"}, level: "WARN"},
	{name: "429 with Retry-After seconds", answer: fakes.WebPushAnswer{Status: 429, Header: map[string]string{"Retry-After": "7"}}, class: sdk.ClassRetry, after: 7 * time.Second, want: []string{"429"}, level: "WARN"},
	{name: "503 with Retry-After date", answer: fakes.WebPushAnswer{Status: 503, Header: map[string]string{"Retry-After": "DATE+20s"}}, class: sdk.ClassRetry, after: 20 * time.Second, want: []string{"503"}, level: "WARN"},
	{name: "other 4xx", answer: fakes.WebPushAnswer{Status: 422, Body: "nope"}, class: sdk.ClassPermanent, want: []string{"422", "nope"}, level: "WARN"},
	{name: "redirect", answer: fakes.WebPushAnswer{Status: 307, Header: map[string]string{"Location": "https://elsewhere.example/"}}, class: sdk.ClassPermanent, want: []string{"307"}, level: "WARN"},
	{name: "other 2xx", answer: fakes.WebPushAnswer{Status: 204}, class: sdk.ClassRetry, want: []string{"204"}, level: "WARN"},
}

func TestOutcomes(t *testing.T) {
	covered := map[int]bool{}
	for _, tc := range outcomeCases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t)
			now := time.Now().Truncate(time.Second)
			s.p.now = func() time.Time { return now }
			a := tc.answer
			if a.Header["Retry-After"] == "DATE+20s" {
				a.Header = map[string]string{"Retry-After": now.Add(20 * time.Second).UTC().Format(http.TimeFormat)}
			}
			s.fake.SetAnswer(func(*fakes.WebPushRequest) fakes.WebPushAnswer { return a })
			d := delivery()
			d.Deadline = time.Now().Add(30 * time.Second)
			dev := s.device(t)
			id, err := s.p.Deliver(context.Background(), d, dev)
			covered[match(tc.answer.Status)] = true
			if err != nil && !strings.Contains(err.Error(), sdk.ShortToken(dev.Token)) {
				t.Errorf("reason %q does not name the device as ringside does (%s)", err, sdk.ShortToken(dev.Token))
			}
			if tc.ok {
				if err != nil || id != "https://push.example/m/1" {
					t.Fatalf("got (%q, %v); want delivered with the Location", id, err)
				}
			} else {
				de, failed := sdk.Classify(err)
				if !failed || de.Class != tc.class || de.After != tc.after {
					t.Fatalf("got %v (class %v, after %v); want %v after %v", err, de.Class, de.After, tc.class, tc.after)
				}
				if id != "" {
					t.Errorf("provider id %q on failure", id)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("reason %q lacks %q", err, w)
					}
				}
				if tc.class == sdk.ClassGone && !de.At.Equal(now) {
					t.Errorf("gone at %v; want the answer's time %v", de.At, now)
				}
				s.noSecrets(t, err.Error())
			}
			if logs := s.logs.String(); !strings.Contains(logs, `"level":"`+tc.level+`"`) {
				t.Errorf("logs %s; want a line at %s", logs, tc.level)
			}
		})
	}
	t.Run("transport error", func(t *testing.T) {
		s := newSetup(t)
		s.fake.Close()
		_, err := s.p.Deliver(context.Background(), delivery(), s.device(t))
		covered[match(0)] = true
		if de, _ := sdk.Classify(err); de.Class != sdk.ClassRetry || !strings.Contains(err.Error(), "no answer from the push service") {
			t.Fatalf("got %v (class %v); want a retry", err, de.Class)
		}
		s.noSecrets(t, err.Error())
	})
	for i, r := range outcomes {
		if !covered[i] {
			t.Errorf("row %d of the outcome table (%d-%d → %v) has no test", i, r.status, r.statusMax, r.act)
		}
	}
}

func TestProviderIDWithoutLocation(t *testing.T) {
	s := newSetup(t)
	s.fake.SetAnswer(func(*fakes.WebPushRequest) fakes.WebPushAnswer {
		return fakes.WebPushAnswer{Status: 201, Header: map[string]string{}}
	})
	// The fake adds a Location to its default answer only.
	id, err := s.p.Deliver(context.Background(), delivery(), s.device(t))
	if err != nil || id != "idem-1" {
		t.Errorf("got (%q, %v); want the device's idempotency id", id, err)
	}
}

func TestDeliverRefusedBeforeSending(t *testing.T) {
	s := newSetup(t)
	dev := s.device(t)
	sub, _ := sdk.ParseWebPushSubscription([]byte(dev.Token))
	offCurve := sub
	offCurve.P256DH = append([]byte{0x04}, bytes.Repeat([]byte{1}, 64)...)
	tests := []struct {
		name  string
		token string
		edit  func(*sdk.Delivery)
		class sdk.Class
		want  string
	}{
		{name: "not a subscription", token: "a1b2c3d4e5f6", class: sdk.ClassPermanent, want: "not a webpush subscription"},
		{name: "http endpoint", token: strings.Replace(dev.Token, "https:", "http:", 1), class: sdk.ClassPermanent, want: "endpoint must be an absolute https URL"},
		{name: "key off the curve", token: offCurve.Token(), class: sdk.ClassPermanent, want: "not a point on P-256"},
		{name: "payload not an object", edit: func(d *sdk.Delivery) { d.PayloadJSON = []byte(`[]`) }, class: sdk.ClassPermanent, want: "not a JSON object"},
		{name: "payload too large", edit: func(d *sdk.Delivery) {
			d.PayloadJSON = []byte(`{"cc_param":"` + strings.Repeat("A", MaxPayload-14) + `"}`)
		}, class: sdk.ClassPermanent, want: "over the 3993 bytes"},
		{name: "deadline passed", edit: func(d *sdk.Delivery) { d.Deadline = time.Now().Add(-time.Second) }, class: sdk.ClassRetry, want: "deadline passed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := delivery()
			if tc.edit != nil {
				tc.edit(d)
			}
			dv := dev
			if tc.token != "" {
				dv.Token = tc.token
			}
			_, err := s.p.Deliver(context.Background(), d, dv)
			if de, _ := sdk.Classify(err); de.Class != tc.class || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v (class %v); want %v with %q", err, de.Class, tc.class, tc.want)
			}
			if err != nil {
				s.noSecrets(t, err.Error())
			}
		})
	}
	if n := len(s.fake.Pushes()); n != 0 {
		t.Errorf("%d pushes sent; want none", n)
	}
	// The largest payload that fits is sent.
	d := delivery()
	d.PayloadJSON = []byte(`{"cc_param":"` + strings.Repeat("A", MaxPayload-15) + `"}`)
	if _, err := s.p.Deliver(context.Background(), d, dev); err != nil {
		t.Errorf("a %d-byte payload: %v; want delivered", len(d.PayloadJSON), err)
	}
	if p := s.fake.Pushes(); len(p) != 1 || !bytes.Equal(p[0].Plaintext, d.PayloadJSON) {
		t.Errorf("the largest payload did not arrive whole")
	}
}

func TestDeliverUnconfigured(t *testing.T) {
	_, err := New().Deliver(context.Background(), delivery(), sdk.Device{})
	if de, _ := sdk.Classify(err); de.Class != sdk.ClassPermanent {
		t.Errorf("got %v; want permanent", err)
	}
}

func TestConfigure(t *testing.T) {
	priv, pub := vapidKeys(t)
	_, otherPub := vapidKeys(t)
	tests := []struct {
		name string
		edit func(*Config)
		attr string // "" when valid
		want string
	}{
		{name: "valid", edit: func(*Config) {}},
		{name: "padded keys", edit: func(c *Config) { c.VAPIDPrivateKey += "="; c.VAPIDPublicKey += "=" }},
		{name: "https subject", edit: func(c *Config) { c.Subject = "https://example.com/contact" }},
		{name: "no private key", edit: func(c *Config) { c.VAPIDPrivateKey = "" }, attr: "vapid_private_key", want: "must be set"},
		{name: "private key not base64url", edit: func(c *Config) { c.VAPIDPrivateKey = "not+base64/" }, attr: "vapid_private_key", want: "32-byte P-256 private key"},
		{name: "private key too short", edit: func(c *Config) { c.VAPIDPrivateKey = priv[:20] }, attr: "vapid_private_key", want: "32-byte"},
		{name: "private key zero", edit: func(c *Config) { c.VAPIDPrivateKey = base64.RawURLEncoding.EncodeToString(make([]byte, 32)) }, attr: "vapid_private_key", want: "not a valid P-256 private key"},
		{name: "no public key", edit: func(c *Config) { c.VAPIDPublicKey = "" }, attr: "vapid_public_key", want: "applicationServerKey"},
		{name: "public key short", edit: func(c *Config) { c.VAPIDPublicKey = pub[:40] }, attr: "vapid_public_key", want: "65-byte"},
		{name: "public key of another pair", edit: func(c *Config) { c.VAPIDPublicKey = otherPub }, attr: "vapid_public_key", want: "not the public half"},
		{name: "no subject", edit: func(c *Config) { c.Subject = "" }, attr: "subject", want: "mailto:"},
		{name: "bare address", edit: func(c *Config) { c.Subject = "ops@example.com" }, attr: "subject", want: "mailto:"},
		{name: "mailto without @", edit: func(c *Config) { c.Subject = "mailto:ops" }, attr: "subject", want: "mailto: address"},
		{name: "http subject", edit: func(c *Config) { c.Subject = "http://example.com" }, attr: "subject", want: "https:"},
		{name: "https subject without host", edit: func(c *Config) { c.Subject = "https:///x" }, attr: "subject", want: "must name a host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{VAPIDPrivateKey: priv, VAPIDPublicKey: pub, Subject: "mailto:ops@example.com"}
			tc.edit(&cfg)
			diags := New().Configure(context.Background(), cfg)
			if tc.attr == "" {
				if len(diags) > 0 {
					t.Fatalf("got %v; want none", diags)
				}
				return
			}
			if len(diags) != 1 || diags[0].Attribute != tc.attr || !strings.Contains(diags[0].String(), tc.want) {
				t.Fatalf("got %v; want one error on %s with %q", diags, tc.attr, tc.want)
			}
			if strings.Contains(diags.String(), priv) {
				t.Errorf("%v quotes the private key", diags)
			}
		})
	}
}

func TestReason(t *testing.T) {
	ep := "https://push.example/wpush/v2/abcdef"
	got := reason([]byte("no sub "+ep+" nor /wpush/v2/abcdef\r\n\tend\xff"), ep)
	if want := "no sub (endpoint) nor /… end?"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if n := len(reason(bytes.Repeat([]byte("é"), 300), ep)); n > maxReason+len("…") {
		t.Errorf("reason of %d bytes; want at most %d", n, maxReason)
	}
}

func sdkTransport() *http.Transport { return sdk.PooledTransport() }
