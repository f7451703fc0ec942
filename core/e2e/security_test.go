package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/fakes"
)

// Security properties, end to end against the real binary.

// An external plugin sees a clean environment: nothing of ringside's own
// environment but the documented pass-through variables, plus its block's
// env; and go-plugin's AutoMTLS client certificate, so the channel is mTLS.
func TestE2EExternalPluginEnvironment(t *testing.T) {
	bin := binary(t, "core/internal/pluginhost/testdata/envplugin")
	const hostSecret = "host-PLANTED-secret-91c3e0a7"
	config := testServer + pluginBlock("envp", bin, fmt.Sprintf("sha256  = %q", fileSHA256(t, bin)), `env     = { ENVPLUGIN_BLOCK = "from-block" }`) +
		notifierBlock("e", "envp", `show   = "ENVPLUGIN_BLOCK"`) + notifierBlock("e2", "envp", `show   = "RS_HOST_SECRET"`) +
		routeTo("all", "", "e", "e2")
	in := start(t, config,
		"RS_HOST_SECRET="+hostSecret, "AWS_SECRET_ACCESS_KEY="+hostSecret, "RINGSIDE_NOTIFY_TOKEN="+hostSecret)

	lines := map[string]map[string]any{}
	for _, n := range []string{"e", "e2"} {
		l, err := in.waitLog(10*time.Second, func(l map[string]any) bool {
			return l["msg"] == "envplugin environment" && l["notifier"] == n
		})
		if err != nil {
			t.Fatalf("no environment line from notifier %s: %v\n%s", n, err, in.logs.String())
		}
		lines[n] = l
	}
	if l := lines["e"]; l["show_set"] != true || l["show_value"] != "from-block" {
		t.Errorf("the block's env: got set=%v value=%v; want from-block", l["show_set"], l["show_value"])
	}
	if l := lines["e2"]; l["show_set"] != false || l["show_value"] != "" {
		t.Errorf("ringside's RS_HOST_SECRET reached the plugin: set=%v value=%v", l["show_set"], l["show_value"])
	}
	allowed := map[string]bool{
		"ENVPLUGIN_BLOCK": true, "RINGSIDE_PLUGIN_LOG_LEVEL": true, "RINGSIDE_PLUGIN": true, "GOMAXPROCS": true,
		"PLUGIN_MIN_PORT": true, "PLUGIN_MAX_PORT": true, "PLUGIN_PROTOCOL_VERSIONS": true, "PLUGIN_CLIENT_CERT": true,
	}
	for _, k := range []string{"PATH", "HOME", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		allowed[k], allowed[strings.ToLower(k)] = true, true
	}
	names := strings.Split(fmt.Sprint(lines["e"]["names"]), ",")
	for _, k := range names {
		if !allowed[k] && !strings.HasPrefix(k, "OTEL_") {
			t.Errorf("the plugin's environment has %s", k)
		}
	}
	if !contains(names, "PLUGIN_CLIENT_CERT") {
		t.Errorf("no PLUGIN_CLIENT_CERT in the plugin's environment (AutoMTLS off?): %v", names)
	}
	if strings.Contains(in.logs.String(), hostSecret) {
		t.Error("the planted host secret is in the logs")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ringside-e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// TLS on the public listener: relative cert paths resolve from the config's
// folder, the serving line says https, a client trusting the certificate
// gets its 200, and plain HTTP on the same port is not served.
func TestE2EPublicTLS(t *testing.T) {
	dir := t.TempDir()
	pool := selfSigned(t, dir)
	hook := startWebhook(t, fakes.WebhookOptions{})
	config := strings.Replace(webhookConfig(hook.URL+"/hook"), "server {", `server {
  tls {
    cert_file = "cert.pem"
    key_file  = "key.pem"
  }`, 1)
	path := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startIn(t, path, t.TempDir())
	if !strings.HasPrefix(in.notifyURL, "https://127.0.0.1:") {
		t.Fatalf("serving line: notify_cb %q; want https://127.0.0.1:…", in.notifyURL)
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(in.notifyURL + "?" + lineExample)
	if err != nil {
		t.Fatalf("HTTPS callback: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"accepted"`) || resp.TLS == nil {
		t.Errorf("HTTPS callback: %d %s (TLS %v); want 200 accepted over TLS", resp.StatusCode, body, resp.TLS != nil)
	}
	waitRequests(t, hook, 1)

	// A client that does not trust the certificate fails the handshake.
	if _, err := http.Get(in.notifyURL + "?" + lineExample); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted client: err %v; want a certificate error", err)
	}

	// Plain HTTP on the TLS port is not served (Go answers a bare 400).
	plain := strings.Replace(in.notifyURL, "https://", "http://", 1)
	other := strings.Replace(lineExample, "151ad995-749c-4a28-893f-636700469db1", "00000000-0000-4000-8000-00000000a11a", 1)
	plainClient := &http.Client{Timeout: 10 * time.Second}
	if resp, err := plainClient.Get(plain + "?" + other); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), "accepted") {
			t.Errorf("plain HTTP on the TLS port: %d %s; want a failure", resp.StatusCode, b)
		}
	}
	quiet(t, hook, 1, 300*time.Millisecond) // the plain HTTP callback is not delivered
	// The admin listener stays plain HTTP on loopback.
	if code, _, _ := do(t, "GET", in.adminURL+"/healthz", nil); code != 200 || !strings.HasPrefix(in.adminURL, "http://") {
		t.Errorf("admin over HTTP: %d %s", code, in.adminURL)
	}
}

// With admin_token, /v1/* needs the right Bearer token; the operations
// endpoints need none; and a non-loopback admin_listen without a token is
// refused at its line.
func TestE2EAdminAuth(t *testing.T) {
	const token = "adm-e2e-9f8e7d6c5b4a"
	config := strings.Replace(webhookConfig("http://127.0.0.1:1/hook"), "server {", "server {\n  admin_token = env(\"RS_ADMIN_TOKEN\")", 1)
	in := start(t, config, "RS_ADMIN_TOKEN="+token)

	req := func(method, path, authz string) (int, string) {
		t.Helper()
		r, _ := http.NewRequest(method, in.adminURL+path, nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	dev := "/v1/devices/linecorp.com/2809/console/admin-auth-token-1"
	for _, c := range []struct {
		name, method, path, authz string
		want                      int
	}{
		{"PUT without a token", "PUT", dev, "", 401},
		{"PUT with a wrong token", "PUT", dev, "Bearer " + token + "x", 401},
		{"PUT with a prefix of the token", "PUT", dev, "Bearer " + token[:len(token)-1], 401},
		{"PUT with the token, not Bearer", "PUT", dev, "Basic " + token, 401},
		{"PUT with the token", "PUT", dev, "Bearer " + token, 204},
		{"GET without a token", "GET", "/v1/devices/linecorp.com/2809", "", 401},
		{"GET with a wrong token", "GET", "/v1/devices/linecorp.com/2809", "Bearer nope", 401},
		{"GET with the token", "GET", "/v1/devices/linecorp.com/2809", "Bearer " + token, 200},
		{"bad path without a token: auth first", "PUT", "/v1/devices/linecorp.com/2809/BAD KIND/x", "", 401},
		{"DELETE without a token", "DELETE", dev, "", 401},
		{"DELETE with the token", "DELETE", dev, "Bearer " + token, 204},
		{"healthz", "GET", "/healthz", "", 200},
		{"readyz", "GET", "/readyz", "", 200},
		{"metrics", "GET", "/metrics", "", 200},
	} {
		code, body := req(c.method, c.path, c.authz)
		if code != c.want {
			t.Errorf("%s: %d %s; want %d", c.name, code, body, c.want)
		}
		if code == 401 && strings.Contains(body, token) {
			t.Errorf("%s: the answer quotes the token", c.name)
		}
	}
	if strings.Contains(in.logs.String(), token) {
		t.Error("logs contain the admin token")
	}

	// admin_listen off loopback without admin_token: refused at its line.
	bad := strings.Replace(testServer, `admin_listen = "127.0.0.1:0"`, `admin_listen = "0.0.0.0:0"`, 1) + `
notifier "app" {
  plugin = "webhook"
  url    = "http://127.0.0.1:1/hook"
}
route "all" { notify = ["app"] }
`
	path := writeConfig(t, bad)
	line := 1 + strings.Count(bad[:strings.Index(bad, "admin_listen")], "\n")
	col := 1 + strings.Index(strings.Split(bad, "\n")[line-1], "admin_listen")
	for _, cmd := range []string{"validate", "serve"} {
		code, out, errOut := run(t, t.TempDir(), cmd, "-config", path)
		want := fmt.Sprintf("%s:%d:", path, line)
		if code != 1 || !strings.Contains(out+errOut, want) || !strings.Contains(out+errOut, "admin_token") {
			t.Errorf("%s with admin_listen 0.0.0.0 and no token: exit %d; want 1 and %s<col> naming admin_token\n%s%s", cmd, code, want, out, errOut)
		}
		if !strings.Contains(out+errOut, fmt.Sprintf("%s:%d:", path, line)) {
			continue
		}
		if got := out + errOut; !strings.Contains(got, fmt.Sprintf("%s:%d:%d", path, line, col)) && !strings.Contains(got, fmt.Sprintf("%s:%d:%d", path, line, col+len(`admin_listen = `))) {
			t.Errorf("%s: diagnostic column: want %d (attribute) or %d (value)\n%s", cmd, col, col+len(`admin_listen = `), got)
		}
	}
	// With a token it is accepted.
	ok := strings.Replace(bad, `admin_listen = "0.0.0.0:0"`, "admin_listen = \"0.0.0.0:0\"\n  admin_token = \"x\"", 1)
	if code, out, errOut := run(t, t.TempDir(), "validate", "-config", writeConfig(t, ok)); code != 0 {
		t.Errorf("validate with admin_token: exit %d\n%s%s", code, out, errOut)
	}
}

// notify_token: checked before the fields, 401 with a fixed body, and never
// logged (the harness logs at debug) nor forwarded.
func TestE2ENotifyToken(t *testing.T) {
	const token = "ntok-e2e-Q7w8E9r0T1y2U3i4"
	hook := startWebhook(t, fakes.WebhookOptions{})
	config := strings.Replace(webhookConfig(hook.URL+"/hook"), "server {", "server {\n  notify_token = env(\"RS_NOTIFY_TOKEN\")", 1)
	in := start(t, config, "RS_NOTIFY_TOKEN="+token)

	badType := strings.Replace(lineExample, "type=A", "type=Q", 1)
	for _, c := range []struct {
		name, query string
		code        int
		body        string
	}{
		{"missing", lineExample, 401, `{"error":"unauthorized"}`},
		{"empty", lineExample + "&token=", 401, `{"error":"unauthorized"}`},
		{"wrong", lineExample + "&token=" + token + "x", 401, `{"error":"unauthorized"}`},
		{"prefix", lineExample + "&token=" + token[:len(token)-1], 401, `{"error":"unauthorized"}`},
		{"wrong token, bad field", badType + "&token=nope", 401, `{"error":"unauthorized"}`},
		{"missing token, bad field", badType, 401, `{"error":"unauthorized"}`},
		{"right token, bad field", badType + "&token=" + token, 400, ""},
		{"right token", lineExample + "&token=" + token, 200, ""},
		{"right token, percent-encoded", strings.Replace(lineExample, "151ad995-749c-4a28-893f-636700469db1", "251ad995-749c-4a28-893f-636700469db1", 1) + "&token=" + strings.ReplaceAll(url.QueryEscape(token), "-", "%2D"), 200, ""},
	} {
		code, _, body := do(t, "GET", in.notifyURL+"?"+c.query, nil)
		if code != c.code || (c.body != "" && strings.TrimSpace(body) != c.body) {
			t.Errorf("%s: %d %s; want %d %s", c.name, code, body, c.code, c.body)
		}
		if strings.Contains(body, token) {
			t.Errorf("%s: the answer quotes the token", c.name)
		}
	}
	// Only the authorised callbacks were delivered, without the token.
	for _, r := range waitRequests(t, hook, 2) {
		if strings.Contains(string(r.Body), token) || strings.Contains(fmt.Sprint(r.Header), token) {
			t.Errorf("the webhook carries the notify token: %s", r.Body)
		}
	}
	quiet(t, hook, 2, 300*time.Millisecond) // no unauthorised callback is delivered
	if _, err := in.waitLog(5*time.Second, func(l map[string]any) bool { return l["msg"] == "callback" && l["delivered"] != nil }); err != nil {
		t.Error(err)
	}
	in.stop()
	logs := in.logs.String()
	s := &leakScanner{}
	s.plant("notify_token", token)
	for _, l := range s.scan("ringside logs", logs) {
		t.Errorf("LEAK: %s", l)
	}
	if !strings.Contains(logs, `"code":401`) {
		t.Errorf("the 401s were not logged at all (the scan above proves nothing):\n%s", logs)
	}
}

// A client that sends its request line and headers slowly is cut off by
// ReadHeaderTimeout (5 s), on the public and on the admin listener; headers
// over 64 KiB get 431.
func TestE2ESlowClients(t *testing.T) {
	hook := startWebhook(t, fakes.WebhookOptions{})
	in := start(t, webhookConfig(hook.URL+"/hook"))

	type result struct {
		name    string
		elapsed time.Duration
		err     error
	}
	results := make(chan result, 2)
	slowloris := func(name, rawURL string) {
		u, _ := url.Parse(rawURL)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			results <- result{name, 0, err}
			return
		}
		defer conn.Close()
		start := time.Now()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			partial := "GET " + u.Path + "?" + lineExample + " HTTP/1.1\r\nHost: " + u.Host + "\r\nX-Slow: "
			for i := 0; ; i++ {
				b := []byte{'a'}
				if i < len(partial) {
					b = []byte{partial[i]}
				}
				if _, err := conn.Write(b); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
		_ = conn.SetReadDeadline(time.Now().Add(12 * time.Second))
		_, err = io.Copy(io.Discard, conn) // returns when the server closes
		results <- result{name, time.Since(start), err}
	}
	go slowloris("notify_cb", in.notifyURL)
	go slowloris("admin", in.adminURL+"/healthz")
	for i := 0; i < 2; i++ {
		r := <-results
		if ne, ok := r.err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: the slow client was still connected after %v", r.name, r.elapsed)
			continue
		}
		if r.elapsed > 7*time.Second {
			t.Errorf("%s: the slow client was disconnected after %v; want within ReadHeaderTimeout (5s)", r.name, r.elapsed)
		}
		if r.elapsed < 4*time.Second {
			t.Errorf("%s: disconnected after %v (err %v); want about 5s", r.name, r.elapsed, r.err)
		}
	}
	if reqs := hook.Requests(""); len(reqs) > 0 {
		t.Errorf("the slow request was delivered: %s", reqs[0].Body)
	}

	// Headers: 32 KiB is served, 80 KiB (over 64 KiB + Go's 4 KiB slack) is 431.
	header := func(size int, sid string) (int, string) {
		q := strings.Replace(lineExample, "151ad995-749c-4a28-893f-636700469db1", sid, 1)
		r, _ := http.NewRequest("GET", in.notifyURL+"?"+q, nil)
		r.Header.Set("X-Big", strings.Repeat("b", size))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := header(32<<10, "00000000-0000-4000-8000-0000000032c0"); code != 200 {
		t.Errorf("32 KiB of headers: %d %s; want 200", code, body)
	}
	if code, body := header(80<<10, "00000000-0000-4000-8000-0000000080c0"); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("80 KiB of headers: %d %s; want 431", code, body)
	}
	// A raw request whose header block never ends also stops at the limit.
	u, _ := url.Parse(in.notifyURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, _ = io.WriteString(conn, "GET /notify_cb HTTP/1.1\r\nHost: x\r\n")
		line := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
		for i := 0; i < 200; i++ { // 200 KB, never a blank line
			if _, err := io.WriteString(conn, line); err != nil {
				return
			}
		}
	}()
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "431") {
		t.Errorf("endless headers: status line %q, err %v; want 431", status, err)
	}
}

// A refused reload logs its diagnostics. When the mistake sits on the line
// of a credential (here a rotated webhook secret missing its closing
// quote), the diagnostic's source snippet must not print that line whole.
func TestE2EReloadDiagnosticsHideSecrets(t *testing.T) {
	hook := startWebhook(t, fakes.WebhookOptions{})
	config := webhookConfig(hook.URL + "/hook")
	in := start(t, config)
	const rotated = "whsec_UGxhbnRlZFJvdGF0ZWRTZWNyZXQwMTIzNDU2Nzg5"
	broken := strings.Replace(config, fmt.Sprintf("secret  = %q", hookSecret), `secret  = "`+rotated, 1)
	if broken == config {
		t.Fatal("the secret line was not found")
	}
	if err := os.WriteFile(in.config, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	in.signal(t, syscall.SIGHUP)
	if _, err := in.waitLog(10*time.Second, func(l map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(l["msg"]), "config reload refused")
	}); err != nil {
		t.Fatalf("no refused reload: %v\n%s", err, in.logs.String())
	}
	s := &leakScanner{}
	s.plant("rotated webhook secret", rotated)
	s.plant("webhook secret", hookSecret)
	leaks := s.scan("ringside logs", in.logs.String())
	for _, l := range leaks {
		t.Errorf("LEAK: %s", l)
	}
}

// A reload of a file whose diagnostics cannot be rendered must still be
// refused with the old config serving: here a CRLF file that lost its final
// "\n" with an unfinished attribute at its end.
func TestE2EReloadTrailingCRKeepsServing(t *testing.T) {
	hook := startWebhook(t, fakes.WebhookOptions{})
	config := webhookConfig(hook.URL + "/hook")
	in := start(t, config)
	broken := strings.ReplaceAll(config, "\n", "\r\n") + "x = # todo\r"
	if err := os.WriteFile(in.config, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	in.signal(t, syscall.SIGHUP)
	_, err := in.waitLog(10*time.Second, func(l map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(l["msg"]), "config reload refused")
	})
	if err != nil {
		t.Fatalf("no refused reload: %v\n%s", err, in.logs.String())
	}
	if code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil); code != 200 {
		t.Errorf("after the refused reload: %d %s", code, body)
	}
}

// TLS on the admin listener: the serving line says https, a client that
// trusts the certificate reaches the devices API and the call log, and
// `ringside calls` finds the address, the token and the certificate in the
// config file alone.
func TestE2EAdminTLS(t *testing.T) {
	const token = "adm-tls-1a2b3c4d5e6f"
	dir := t.TempDir()
	pool := selfSigned(t, dir)
	hook := startWebhook(t, fakes.WebhookOptions{})
	config := strings.Replace(webhookConfig(hook.URL+"/hook"), "server {", `server {
  admin_token = env("RS_ADMIN_TOKEN")
  admin_tls {
    cert_file = "cert.pem"
    key_file  = "key.pem"
  }`, 1)
	path := writeConfigIn(t, dir, config)
	in := startConfig(t, path, "RS_ADMIN_TOKEN="+token)
	if !strings.HasPrefix(in.adminURL, "https://127.0.0.1:") {
		t.Fatalf("serving line: admin %q; want https://127.0.0.1:…", in.adminURL)
	}
	in.accept(t, lineSID, "2809")
	waitRequests(t, hook, 1)

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", in.adminURL+"/v1/calls/"+lineSID, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("HTTPS admin: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || !strings.Contains(string(body), lineSID) {
		t.Fatalf("GET /v1/calls/%s over TLS: %d %s", lineSID, resp.StatusCode, body)
	}
	if _, err := http.Get(in.adminURL + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted client: err %v; want a certificate error", err)
	}

	// admin_listen in the file is port 0: give the address, keep the rest
	// (token and certificate) from the config.
	env := []string{"RS_ADMIN_TOKEN=" + token}
	addr := strings.TrimPrefix(in.adminURL, "https://")
	rc, out, errOut := runWith(t, dir, env, 30*time.Second, "calls", "-config", path, "-admin", addr, lineSID)
	if rc != 0 || !strings.Contains(out, "call "+lineSID) {
		t.Fatalf("ringside calls over TLS: %d\n%s%s", rc, out, errOut)
	}
	rc, _, errOut = runWith(t, dir, nil, 30*time.Second, "calls", "-config", path, "-admin", addr, "-token", "wrong")
	if rc != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("a wrong token: exit %d, %s; want 1 and a 401 named", rc, errOut)
	}
}
