package apns

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sideshow/apns2"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

// attrError is one of Configure's diagnostics.
type attrError struct {
	Attribute string
	Warning   bool
	summary   string
}

func (e attrError) Error() string { return e.Attribute + ": " + e.summary }

// attrErrors lists Configure's diagnostics.
func attrErrors(diags sdk.Diagnostics) []attrError {
	var out []attrError
	for _, d := range diags {
		out = append(out, attrError{Attribute: d.Attribute, Warning: d.Severity == sdk.SeverityWarning, summary: d.Summary})
	}
	return out
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigure(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeP8(t, nil)
	keyPEM, _ := os.ReadFile(keyFile)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	rsaFile := writeFile(t, "rsa.p8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}))
	p384File := writeFile(t, "p384.p8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER}))
	garbage := writeFile(t, "garbage.p8", []byte("MIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg-secret-material"))
	notPKCS8 := writeFile(t, "bad.p8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("secret-material")}))
	certFile, _ := writeCertPEM(t, time.Now().Add(365*24*time.Hour), "")

	tok := func(m func(*Config)) Config {
		c := Config{TeamID: testTeamID, KeyID: testKeyID, KeyFile: keyFile, Topic: testTopic}
		if m != nil {
			m(&c)
		}
		return c
	}
	tests := []struct {
		name  string
		cfg   Config
		attrs []string // attributes with errors; nil: valid
		warns []string // attributes with warnings
	}{
		{name: "token auth", cfg: tok(nil)},
		{name: "certificate auth", cfg: Config{CertificateFile: certFile, Topic: testTopic}},
		{name: "all options", cfg: tok(func(c *Config) {
			c.PushType, c.Priority, c.Production, c.Endpoint = "voip", 10, true, "https://apns.example.com:2197/"
		})},
		{name: "no credentials", cfg: Config{Topic: testTopic}, attrs: []string{""}},
		{name: "both methods", cfg: tok(func(c *Config) { c.CertificateFile = certFile }), attrs: []string{"certificate_file"}},
		{name: "both methods, password only", cfg: tok(func(c *Config) { c.CertificatePassword = "x" }), attrs: []string{"certificate_password"}},
		{name: "password without certificate", cfg: Config{CertificatePassword: "x", Topic: testTopic}, attrs: []string{"certificate_password"}},
		{name: "team_id missing", cfg: tok(func(c *Config) { c.TeamID = "" }), attrs: []string{"team_id"}},
		{name: "key_id and key_file missing", cfg: tok(func(c *Config) { c.KeyID, c.KeyFile = "", "" }), attrs: []string{"key_id", "key_file"}},
		{name: "team_id malformed", cfg: tok(func(c *Config) { c.TeamID = "team123456\n" }), attrs: []string{"team_id"}},
		{name: "key_id malformed", cfg: tok(func(c *Config) { c.KeyID = "ABC" }), attrs: []string{"key_id"}},
		{name: "key_file absent", cfg: tok(func(c *Config) { c.KeyFile = filepath.Join(dir, "nope.p8") }), attrs: []string{"key_file"}},
		{name: "key_file not PEM", cfg: tok(func(c *Config) { c.KeyFile = garbage }), attrs: []string{"key_file"}},
		{name: "key_file not PKCS8", cfg: tok(func(c *Config) { c.KeyFile = notPKCS8 }), attrs: []string{"key_file"}},
		{name: "key_file RSA", cfg: tok(func(c *Config) { c.KeyFile = rsaFile }), attrs: []string{"key_file"}},
		{name: "key_file P-384", cfg: tok(func(c *Config) { c.KeyFile = p384File }), attrs: []string{"key_file"}},
		{name: "key_file is a directory", cfg: tok(func(c *Config) { c.KeyFile = dir }), attrs: []string{"key_file"}},
		{name: "topic missing", cfg: tok(func(c *Config) { c.Topic = "" }), attrs: []string{"topic"}},
		{name: "topic with space", cfg: tok(func(c *Config) { c.Topic = "com.example app" }), attrs: []string{"topic"}},
		{name: "voip topic without .voip", cfg: tok(func(c *Config) { c.Topic = "com.example.planet" }), warns: []string{"topic"}},
		{name: "alert topic without .voip", cfg: tok(func(c *Config) { c.Topic, c.PushType = "com.example.planet", "alert" })},
		{name: "alert topic with .voip", cfg: tok(func(c *Config) { c.PushType = "alert" }), attrs: []string{"topic"}},
		{name: "background topic with .voip", cfg: tok(func(c *Config) { c.PushType = "background" }), attrs: []string{"topic"}},
		{name: "background priority 5", cfg: tok(func(c *Config) { c.Topic, c.PushType, c.Priority = "com.example.planet", "background", 5 })},
		{name: "background priority 10", cfg: tok(func(c *Config) { c.Topic, c.PushType, c.Priority = "com.example.planet", "background", 10 }), attrs: []string{"priority"}},
		{name: "alert priority 10", cfg: tok(func(c *Config) { c.Topic, c.PushType, c.Priority = "com.example.planet", "alert", 10 })},
		{name: "alert priority 5", cfg: tok(func(c *Config) { c.Topic, c.PushType, c.Priority = "com.example.planet", "alert", 5 })},
		{name: "push_type unknown", cfg: tok(func(c *Config) { c.PushType = "VoIP" }), attrs: []string{"push_type"}},
		{name: "priority 7", cfg: tok(func(c *Config) { c.Priority = 7 }), attrs: []string{"priority"}},
		{name: "priority 5 voip", cfg: tok(func(c *Config) { c.Priority = 5 }), warns: []string{"priority"}},
		{name: "endpoint http", cfg: tok(func(c *Config) { c.Endpoint = "http://127.0.0.1:8080" }), attrs: []string{"endpoint"}},
		{name: "endpoint relative", cfg: tok(func(c *Config) { c.Endpoint = "api.push.apple.com" }), attrs: []string{"endpoint"}},
		{name: "endpoint query", cfg: tok(func(c *Config) { c.Endpoint = "https://x.example/?a=b" }), attrs: []string{"endpoint"}},
		{name: "endpoint userinfo", cfg: tok(func(c *Config) { c.Endpoint = "https://u:p@x.example" }), attrs: []string{"endpoint"}},
		{name: "many at once", cfg: tok(func(c *Config) { c.Priority, c.PushType, c.Endpoint = 1, "x", "ftp://x" }), attrs: []string{"push_type", "priority", "endpoint"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New()
			err := p.Configure(context.Background(), tc.cfg)
			var gotErrs, gotWarns []string
			for _, ae := range attrErrors(err) {
				if ae.Warning {
					gotWarns = append(gotWarns, ae.Attribute)
				} else {
					gotErrs = append(gotErrs, ae.Attribute)
				}
				msg := ae.Error()
				for _, secret := range []string{"secret-material", string(keyPEM[30:60]), "MIGTAgEA"} {
					if strings.Contains(msg, secret) {
						t.Errorf("error %q echoes key material", msg)
					}
				}
			}
			if strings.Join(gotErrs, ",") != strings.Join(tc.attrs, ",") || strings.Join(gotWarns, ",") != strings.Join(tc.warns, ",") {
				t.Fatalf("got errors at %q and warnings at %q (%v); want errors at %q, warnings at %q", gotErrs, gotWarns, err, tc.attrs, tc.warns)
			}
			if configured := p.client != nil; configured != (len(tc.attrs) == 0) {
				t.Errorf("configured = %v with %v", configured, err)
			}
		})
	}
}

func TestConfigureDefaultsAndHosts(t *testing.T) {
	keyFile := writeP8(t, nil)
	tests := []struct {
		cfg  Config
		host string
		env  string
	}{
		{Config{}, apns2.HostDevelopment, "sandbox"},
		{Config{Production: true}, apns2.HostProduction, "production"},
		{Config{Production: true, Endpoint: "https://apns.example.com:2197/prefix/"}, "https://apns.example.com:2197/prefix", "endpoint apns.example.com:2197"},
	}
	for _, tc := range tests {
		cfg := tc.cfg
		cfg.TeamID, cfg.KeyID, cfg.KeyFile, cfg.Topic = testTeamID, testKeyID, keyFile, testTopic
		p := New()
		sdktest.Configured(t, p, cfg)
		if p.client.Host != tc.host || p.env != tc.env {
			t.Errorf("%+v: host %q env %q; want %q %q", tc.cfg, p.client.Host, p.env, tc.host, tc.env)
		}
		if p.pushType != apns2.PushTypeVOIP || p.priority != 10 || p.maxPayload != MaxVoIPPayload {
			t.Errorf("defaults: push type %q priority %d limit %d", p.pushType, p.priority, p.maxPayload)
		}
	}
}

// Each push type's default priority and payload limit.
func TestConfigurePushTypeDefaults(t *testing.T) {
	keyFile := writeP8(t, nil)
	tests := []struct {
		pushType, topic string
		priority, limit int
	}{
		{"voip", testTopic, 10, MaxVoIPPayload},
		{"alert", "com.example.planet", 10, MaxPayload},
		{"background", "com.example.planet", 5, MaxPayload},
	}
	for _, tc := range tests {
		p := New()
		sdktest.Configured(t, p, Config{TeamID: testTeamID, KeyID: testKeyID, KeyFile: keyFile, Topic: tc.topic, PushType: tc.pushType})
		if string(p.pushType) != tc.pushType || p.priority != tc.priority || p.maxPayload != tc.limit {
			t.Errorf("%s: push type %q priority %d limit %d; want priority %d limit %d", tc.pushType, p.pushType, p.priority, p.maxPayload, tc.priority, tc.limit)
		}
	}
}

// The Configure errors of alert and background pushes say why.
func TestConfigurePushTypeMessages(t *testing.T) {
	keyFile := writeP8(t, nil)
	tests := []struct {
		name string
		cfg  Config
		attr string
		want []string
	}{
		{"alert to the VoIP topic", Config{PushType: "alert", Topic: "com.example.app.voip"}, "topic",
			[]string{"alert pushes go to the app's bundle id, e.g. com.example.app, not its VoIP topic", `"com.example.app.voip"`}},
		{"background to the VoIP topic", Config{PushType: "background", Topic: "com.example.app.voip"}, "topic",
			[]string{"background pushes go to the app's bundle id", "not its VoIP topic"}},
		{"background at priority 10", Config{PushType: "background", Topic: "com.example.app", Priority: 10}, "priority",
			[]string{"background pushes must use priority 5", "refuses"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.TeamID, cfg.KeyID, cfg.KeyFile = testTeamID, testKeyID, keyFile
			diags := New().Configure(context.Background(), cfg)
			ae := attrErrors(diags)
			if len(ae) != 1 || ae[0].Attribute != tc.attr || ae[0].Warning {
				t.Fatalf("got %v; want one error at %s", diags, tc.attr)
			}
			for _, w := range tc.want {
				if !strings.Contains(ae[0].summary, w) {
					t.Errorf("error %q lacks %q", ae[0].summary, w)
				}
			}
		})
	}
}

// writeCertPEM writes a self-signed client certificate and its key as one
// .pem; a password encrypts the key (legacy PEM encryption, as Keychain
// exports converted by openssl produce).
func writeCertPEM(t *testing.T, notAfter time.Time, password string) (string, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "VoIP Services: com.example.planet"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	keyBlock := &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}
	if password != "" {
		//lint:ignore SA1019 APNs .pem exports still use legacy PEM encryption.
		keyBlock, err = x509.EncryptPEMBlock(rand.Reader, keyBlock.Type, keyDER, []byte(password), x509.PEMCipherAES256) //nolint:staticcheck
		if err != nil {
			t.Fatal(err)
		}
	}
	b := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(keyBlock)...)
	return writeFile(t, "apns-cert.pem", b), cert
}

// pushWithCert configures certificate auth against a fake that requires a
// client certificate, pushes once, and returns the certificate's name as the
// fake saw it.
func pushWithCert(t *testing.T, cfg Config) string {
	t.Helper()
	f := fakes.StartAPNs(fakes.APNsOptions{CertAuth: true})
	t.Cleanup(f.Close)
	p := New()
	p.rootCAs = f.CertPool()
	cfg.Topic, cfg.Endpoint = testTopic, f.URL
	sdktest.Configured(t, p, cfg)
	if _, err := p.Deliver(context.Background(), delivery(), device()); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	r := f.Pushes()
	if len(r) != 1 || r[0].Header.Get("Authorization") != "" || r[0].Proto != 2 {
		t.Fatalf("want one HTTP/2 push without a provider token: %+v", r)
	}
	return r[0].ClientCert
}

func TestCertificateAuth(t *testing.T) {
	const cn = "VoIP Services: com.example.planet"
	t.Run("pem", func(t *testing.T) {
		file, _ := writeCertPEM(t, time.Now().Add(365*24*time.Hour), "")
		if got := pushWithCert(t, Config{CertificateFile: file}); got != cn {
			t.Errorf("client certificate %q; want %q", got, cn)
		}
	})
	t.Run("encrypted pem", func(t *testing.T) {
		file, _ := writeCertPEM(t, time.Now().Add(365*24*time.Hour), "s3cret")
		if got := pushWithCert(t, Config{CertificateFile: file, CertificatePassword: "s3cret"}); got != cn {
			t.Errorf("client certificate %q; want %q", got, cn)
		}
		err := New().Configure(context.Background(), Config{CertificateFile: file, CertificatePassword: "wrong", Topic: testTopic})
		if ae := attrErrors(err); len(ae) != 1 || ae[0].Attribute != "certificate_password" || strings.Contains(err.String(), "wrong") {
			t.Errorf("wrong password: %v", err)
		}
	})
	t.Run("p12", func(t *testing.T) {
		if _, err := exec.LookPath("openssl"); err != nil {
			t.Skip("no openssl to write a .p12")
		}
		pemFile, _ := writeCertPEM(t, time.Now().Add(365*24*time.Hour), "")
		dir := t.TempDir()
		legacy := filepath.Join(dir, "cert.p12")
		modern := filepath.Join(dir, "cert-aes.p12")
		for _, args := range [][]string{
			{"pkcs12", "-export", "-in", pemFile, "-out", legacy, "-passout", "pass:s3cret", "-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"},
			{"pkcs12", "-export", "-in", pemFile, "-out", modern, "-passout", "pass:s3cret"},
		} {
			if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
				t.Skipf("openssl %v: %v\n%s", args, err, out)
			}
		}
		if got := pushWithCert(t, Config{CertificateFile: legacy, CertificatePassword: "s3cret"}); got != cn {
			t.Errorf("client certificate %q; want %q", got, cn)
		}
		err := New().Configure(context.Background(), Config{CertificateFile: legacy, CertificatePassword: "nope", Topic: testTopic})
		if ae := attrErrors(err); len(ae) != 1 || ae[0].Attribute != "certificate_password" {
			t.Errorf("wrong password: %v", err)
		}
		// OpenSSL 3's default (AES, PBKDF2) is beyond x/crypto/pkcs12: the
		// error says how to convert it.
		err = New().Configure(context.Background(), Config{CertificateFile: modern, CertificatePassword: "s3cret", Topic: testTopic})
		if ae := attrErrors(err); len(ae) != 1 || ae[0].Attribute != "certificate_file" || !strings.Contains(err.String(), "openssl pkcs12") {
			t.Errorf("AES .p12: %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		file, _ := writeCertPEM(t, time.Now().Add(-24*time.Hour), "")
		err := New().Configure(context.Background(), Config{CertificateFile: file, Topic: testTopic})
		if ae := attrErrors(err); len(ae) != 1 || ae[0].Attribute != "certificate_file" || ae[0].Warning || !strings.Contains(err.String(), "expired") {
			t.Errorf("expired: %v", err)
		}
	})
	t.Run("expires soon", func(t *testing.T) {
		file, _ := writeCertPEM(t, time.Now().Add(10*24*time.Hour), "")
		p := New()
		err := p.Configure(context.Background(), Config{CertificateFile: file, Topic: testTopic})
		if ae := attrErrors(err); len(ae) != 1 || ae[0].Attribute != "certificate_file" || !ae[0].Warning || p.client == nil {
			t.Errorf("expires soon: %v; want a warning and a configured plugin", err)
		}
	})
	t.Run("key of another certificate", func(t *testing.T) {
		a, _ := writeCertPEM(t, time.Now().Add(365*24*time.Hour), "")
		b, _ := writeCertPEM(t, time.Now().Add(365*24*time.Hour), "")
		ab, _ := os.ReadFile(a)
		bb, _ := os.ReadFile(b)
		mixed := writeFile(t, "mixed.pem", append(ab[:strings.Index(string(ab), "-----BEGIN PRIVATE")], bb[strings.Index(string(bb), "-----BEGIN PRIVATE"):]...))
		err := New().Configure(context.Background(), Config{CertificateFile: mixed, Topic: testTopic})
		if ae := attrErrors(err); len(ae) != 1 || ae[0].Attribute != "certificate_file" || !strings.Contains(err.String(), "does not belong") {
			t.Errorf("mismatched key: %v", err)
		}
	})
}

// When the host says which templates and payload keys the block sets,
// Configure refuses an alert notifier without body (unless its payload
// brings its own aps, which then takes no alert template) and warns at
// each alert template another push type ignores; told nothing (an older
// host), it leaves them to the deliveries.
func TestConfigureTemplates(t *testing.T) {
	keyFile := writeP8(t, nil)
	const bundle = "com.example.planet"
	known := func(templates []string, payloadKeys ...string) context.Context {
		return sdk.ContextWithBlock(context.Background(), sdk.Block{Templates: templates, PayloadKeys: payloadKeys})
	}
	tests := []struct {
		name     string
		ctx      context.Context
		pushType string
		// want is each diagnostic as "error|warning attribute: a part of
		// its summary".
		want []string
	}{
		{"alert without body", known(nil), "alert",
			[]string{`error push_type: alert pushes need body, the text of the alert: add body = "…"`}},
		{"alert with title only", known([]string{"collapse_id", "title"}), "alert",
			[]string{"error push_type: alert pushes need body"}},
		{"alert with body", known([]string{"body"}), "alert", nil},
		{"alert with every alert template", known(alertTemplates), "alert", nil},
		{"alert with the payload's own aps", known([]string{"collapse_id"}, "event", "aps"), "alert", nil},
		{"alert templates and the payload's own aps", known([]string{"body", "title"}, "aps"), "alert",
			[]string{`error title: the payload has its own "aps" key and the notifier sets title, body`}},
		{"alert, an older host", context.Background(), "alert", nil},
		{"voip with alert templates", known([]string{"body", "collapse_id", "title"}), "voip",
			[]string{"warning title: ignored for push_type voip", "warning body: ignored for push_type voip"}},
		{"voip with collapse_id only", known([]string{"collapse_id"}), "voip", nil},
		{"background with sound", known([]string{"sound"}, "aps"), "background",
			[]string{"warning sound: ignored for push_type background"}},
		{"voip, an older host", context.Background(), "voip", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{TeamID: testTeamID, KeyID: testKeyID, KeyFile: keyFile, Topic: bundle, PushType: tc.pushType}
			if tc.pushType == "voip" {
				cfg.Topic = testTopic
			}
			sdktest.CheckDiagnostics(t, New().Configure(tc.ctx, cfg), tc.want)
		})
	}
}
