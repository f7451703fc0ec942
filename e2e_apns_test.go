package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	apnsTeamID = "TEAM123456"
	apnsKeyID  = "KEY1234567"
	apnsTopic  = "com.example.planet.voip"
	apnsToken  = "8b5f3f7a0c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbc"
)

// apnsPush is one push the fake APNs received.
type apnsPush struct {
	Token  string
	Header http.Header
	Body   []byte
	Proto  int
	JWTErr error
}

// apnsFake is an HTTP/2 TLS fake of APNs that verifies the ES256 provider
// token with the public half of the key the test generated, records each
// push, and answers with answer().
type apnsFake struct {
	URL    string
	CAFile string // its certificate as PEM, for SSL_CERT_FILE
	pushes chan apnsPush
	answer atomic.Value // func() (status int, body string)
}

func newAPNSFake(t *testing.T, pub *ecdsa.PublicKey) *apnsFake {
	t.Helper()
	f := &apnsFake{pushes: make(chan apnsPush, 16)}
	f.answer.Store(func() (int, string) { return 200, "" })
	f.URL, f.CAFile = newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p := apnsPush{Header: r.Header.Clone(), Body: body, Proto: r.ProtoMajor}
		p.Token, _ = strings.CutPrefix(r.URL.Path, "/3/device/")
		bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "bearer ")
		p.JWTErr = apnsVerifyJWT(bearer, pub)
		f.pushes <- p
		status, resp := f.answer.Load().(func() (int, string))()
		if p.JWTErr != nil {
			status, resp = 403, `{"reason":"InvalidProviderToken"}`
		}
		w.Header().Set("apns-id", "11111111-2222-4333-8444-555555555555")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, resp)
	}))
	return f
}

func (f *apnsFake) next(t *testing.T) apnsPush {
	t.Helper()
	select {
	case p := <-f.pushes:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no push reached the fake APNs within 10s")
		return apnsPush{}
	}
}

// apnsVerifyJWT checks an ES256 provider token: alg, kid, iss, a recent iat
// and the signature.
func apnsVerifyJWT(bearer string, pub *ecdsa.PublicKey) error {
	parts := strings.Split(bearer, ".")
	if len(parts) != 3 {
		return fmt.Errorf("provider token is not a JWT")
	}
	var hdr struct{ Alg, Kid string }
	var claims struct {
		Iss string
		Iat int64
	}
	for i, v := range []any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, v) != nil {
			return fmt.Errorf("JWT part %d is not base64url JSON", i)
		}
	}
	if hdr.Alg != "ES256" || hdr.Kid != apnsKeyID || claims.Iss != apnsTeamID {
		return fmt.Errorf("JWT alg %q kid %q iss %q", hdr.Alg, hdr.Kid, claims.Iss)
	}
	if age := time.Since(time.Unix(claims.Iat, 0)); age > time.Hour || age < -time.Minute {
		return fmt.Errorf("JWT iat is %v old", age)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return fmt.Errorf("JWT signature is not r||s")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return fmt.Errorf("JWT signature does not verify")
	}
	return nil
}

// apnsKey writes a fresh P-256 .p8 key into dir.
func apnsKey(t *testing.T, dir string) (string, *ecdsa.PublicKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	path := filepath.Join(dir, "AuthKey_"+apnsKeyID+".p8")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, &key.PublicKey
}

func apnsConfig(keyFile, endpoint, topic string) string {
	return testServer + fmt.Sprintf(`
notifier "ios" {
  plugin   = "apns"
  team_id  = %q
  key_id   = %q
  key_file = %q
  topic    = %q
  endpoint = %q
}

route "all" {
  notify = ["ios"]
}
`, apnsTeamID, apnsKeyID, keyFile, topic, endpoint)
}

// apnsWaitMetric polls /metrics until it holds line.
func apnsWaitMetric(t *testing.T, in *instance, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var metrics string
	for time.Now().Before(deadline) {
		_, _, metrics = do(t, "GET", in.adminURL+"/metrics", nil)
		if strings.Contains(metrics, line) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("metrics lack %s:\n%s\nlogs:\n%s", line, grep(metrics, "ringside_"), in.logs.String())
}

// apnsCallback sends the LINE example with another sid (a repeated sid is a
// duplicate) and checks it was accepted.
func apnsCallback(t *testing.T, in *instance, sid string) {
	t.Helper()
	q := strings.Replace(lineExample, "sid=151ad995-749c-4a28-893f-636700469db1", "sid="+sid, 1)
	code, _, body := do(t, "GET", in.notifyURL+"?"+q, nil)
	if code != 200 || !strings.Contains(body, `"status":"accepted"`) {
		t.Fatalf("notify_cb: got %d %s", code, body)
	}
}

func apnsDevices(t *testing.T, in *instance) string {
	t.Helper()
	code, _, body := do(t, "GET", in.adminURL+"/v1/devices/linecorp.com/2809", nil)
	if code != 200 {
		t.Fatalf("GET devices: %d %s", code, body)
	}
	return body
}

func TestE2EAPNS(t *testing.T) {
	keyFile, pub := apnsKey(t, t.TempDir())
	fake := newAPNSFake(t, pub)
	in := startRingside(t, apnsConfig(keyFile, fake.URL, apnsTopic), "SSL_CERT_FILE="+fake.CAFile)

	if code, _, body := do(t, "PUT", in.adminURL+"/v1/devices/linecorp.com/2809/apns/"+apnsToken, nil); code != 204 {
		t.Fatalf("PUT device: got %d %s", code, body)
	}

	// 200: the VoIP push as APNs wants it.
	start := time.Now()
	apnsCallback(t, in, "151ad995-749c-4a28-893f-636700469db1")
	p := fake.next(t)
	if p.JWTErr != nil {
		t.Errorf("provider token: %v", p.JWTErr)
	}
	if p.Proto != 2 || p.Token != apnsToken {
		t.Errorf("HTTP/%d to token %q; want HTTP/2 to %q", p.Proto, p.Token, apnsToken)
	}
	for h, want := range map[string]string{"apns-push-type": "voip", "apns-topic": apnsTopic, "apns-priority": "10"} {
		if got := p.Header.Get(h); got != want {
			t.Errorf("%s: %q; want %q", h, got, want)
		}
	}
	exp, err := strconv.ParseInt(p.Header.Get("apns-expiration"), 10, 64)
	if want := start.Add(60 * time.Second).Unix(); err != nil || exp < want-2 || exp > want+2 {
		t.Errorf("apns-expiration %q; want about %d (now + 60s)", p.Header.Get("apns-expiration"), want)
	}
	var body map[string]any
	if err := json.Unmarshal(p.Body, &body); err != nil {
		t.Fatalf("body %s: %v", p.Body, err)
	}
	want := map[string]any{
		"cc_param": lineParam, "sid": "151ad995-749c-4a28-893f-636700469db1",
		"app_caller_sid": "linecorp.com", "app_caller_uid": "9286", "app_callee_sid": "linecorp.com",
		"app_callee_uid": "2809", "app_call_type": "A", "app_svr_data": "stid",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %v; want %v", k, body[k], v)
		}
	}
	apnsWaitMetric(t, in, `ringside_deliveries_total{notifier="ios",outcome="delivered"} 1`)

	// 400 BadDeviceToken: permanent, the device is kept.
	fake.answer.Store(func() (int, string) { return 400, `{"reason":"BadDeviceToken"}` })
	apnsCallback(t, in, "251ad995-749c-4a28-893f-636700469db1")
	fake.next(t)
	apnsWaitMetric(t, in, `ringside_deliveries_total{notifier="ios",outcome="permanent"} 1`)
	if !strings.Contains(apnsDevices(t, in), apnsToken) {
		t.Error("BadDeviceToken removed the device")
	}
	if _, err := in.waitLog(5*time.Second, func(l map[string]any) bool {
		return l["notifier"] == "ios" && strings.Contains(fmt.Sprint(l["cause"]), "not valid in this APNs environment")
	}); err != nil {
		t.Errorf("no log line with the likely cause: %v", err)
	}

	// 410 Unregistered with APNs' timestamp (later than the registration;
	// apns2 keeps whole seconds): gone, pruned.
	ts := time.Now().Add(2 * time.Second).UnixMilli()
	fake.answer.Store(func() (int, string) { return 410, fmt.Sprintf(`{"reason":"Unregistered","timestamp":%d}`, ts) })
	apnsCallback(t, in, "351ad995-749c-4a28-893f-636700469db1")
	fake.next(t)
	apnsWaitMetric(t, in, `ringside_tokens_pruned_total{kind="apns"} 1`)
	if devs := apnsDevices(t, in); strings.Contains(devs, apnsToken) {
		t.Errorf("the unregistered device is still listed: %s", devs)
	}

	if strings.Contains(in.logs.String(), apnsToken) {
		t.Error("logs contain a whole device token")
	}
}

// validate prints the plugin's warning about a VoIP topic without .voip
// and still exits 0.
func TestE2EAPNSValidateWarns(t *testing.T) {
	keyFile, _ := apnsKey(t, t.TempDir())
	cfg := writeConfig(t, apnsConfig(keyFile, "https://127.0.0.1:1", "com.example.planet"))
	code, out, errOut := run(t, t.TempDir(), "validate", "-config", cfg)
	if code != 0 || !strings.Contains(out+errOut, "warning") || !strings.Contains(out+errOut, ".voip") {
		t.Errorf("validate: exit %d; want 0 with a warning about .voip\n%s%s", code, out, errOut)
	}
}
