package apns

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testTeamID = "TEAM123456"
	testKeyID  = "KEY1234567"
	testTopic  = "com.example.planet.voip"
	// testToken is a device token as iOS hands it out: 32 bytes in hex.
	testToken = "8b5f3f7a0c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbc"
	lineParam = "eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ=="
)

// pushRequest is one push the fake APNs received.
type pushRequest struct {
	Token  string
	Header http.Header
	Body   []byte
	Proto  int
	Remote string
	// Bearer is the provider token; JWTErr why it failed verification.
	Bearer string
	JWTErr error
	// ClientCert is the TLS client certificate's common name, if any.
	ClientCert string
}

// answer is how the fake APNs answers a push.
type answer struct {
	status int
	reason string
	// timestamp is a 410's, in milliseconds; 0: none.
	timestamp int64
	// raw replaces the JSON error body (a non-JSON body).
	raw string
	// wait blocks the answer until it is closed or the client goes away.
	wait <-chan struct{}
}

// fakeAPNs is an HTTP/2 TLS server that checks pushes like APNs: the path,
// the method, and the ES256 provider token against the public half of the
// key the test generated.
type fakeAPNs struct {
	srv    *httptest.Server
	pub    *ecdsa.PublicKey
	keyID  string
	teamID string

	mu      sync.Mutex
	reqs    []pushRequest
	count   int
	respond func(r *pushRequest, n int) answer // n counts from 1

	inflight, maxInflight atomic.Int64
	// dials counts the connections clients opened.
	dials atomic.Int64
	// discard keeps no record of pushes (benchmarks).
	discard bool
}

// newFakeAPNs starts a fake APNs that verifies provider tokens with pub
// (nil: certificate auth, which the TLS layer asks for).
func newFakeAPNs(t testing.TB, pub *ecdsa.PublicKey) *fakeAPNs {
	t.Helper()
	f := &fakeAPNs{pub: pub, keyID: testKeyID, teamID: testTeamID}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.EnableHTTP2 = true
	f.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			f.dials.Add(1)
		}
	}
	if pub == nil {
		f.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// pool trusts the fake's certificate.
func (f *fakeAPNs) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(f.srv.Certificate())
	return p
}

func (f *fakeAPNs) requests() []pushRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pushRequest(nil), f.reqs...)
}

func (f *fakeAPNs) serve(w http.ResponseWriter, r *http.Request) {
	cur := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.maxInflight.Load()
		if cur <= m || f.maxInflight.CompareAndSwap(m, cur) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	pr := pushRequest{Header: r.Header.Clone(), Body: body, Proto: r.ProtoMajor, Remote: r.RemoteAddr}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		pr.ClientCert = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	tok, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if r.Method != http.MethodPost || !ok || tok == "" || strings.Contains(tok, "/") {
		w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000000")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"reason":"BadPath"}`)
		return
	}
	pr.Token = tok
	if f.pub != nil {
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "bearer ")
		pr.Bearer = bearer
		if !ok {
			pr.JWTErr = errors.New("no bearer provider token")
		} else {
			pr.JWTErr = f.verifyJWT(bearer)
		}
	}
	f.mu.Lock()
	f.count++
	n := f.count
	if !f.discard {
		f.reqs = append(f.reqs, pr)
	}
	respond := f.respond
	f.mu.Unlock()

	a := answer{status: http.StatusOK}
	switch {
	case pr.JWTErr != nil:
		a = answer{status: http.StatusForbidden, reason: "InvalidProviderToken"}
	case respond != nil:
		a = respond(&pr, n)
	}
	if a.wait != nil {
		select {
		case <-a.wait:
		case <-r.Context().Done():
			return
		}
	}
	id := fmt.Sprintf("5e0f0a6b-0000-4000-8000-%012d", n)
	w.Header().Set("apns-id", id)
	if a.status == http.StatusOK {
		w.WriteHeader(http.StatusOK)
		return
	}
	if a.raw != "" {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.raw)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	resp := map[string]any{"reason": a.reason}
	if a.timestamp != 0 {
		resp["timestamp"] = a.timestamp
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// verifyJWT checks an ES256 provider token the way APNs does: header alg
// and kid, claims iss and iat (not older than an hour, not in the future),
// and the signature against the public key.
func (f *fakeAPNs) verifyJWT(bearer string) error {
	parts := strings.Split(bearer, ".")
	if len(parts) != 3 {
		return errors.New("not a JWS compact serialisation")
	}
	var hdr struct{ Alg, Kid, Typ string }
	var claims struct {
		Iss string
		Iat int64
	}
	for i, v := range []any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return fmt.Errorf("part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("part %d: %v", i, err)
		}
	}
	if hdr.Alg != "ES256" || hdr.Kid != f.keyID {
		return fmt.Errorf("header alg %q kid %q; want ES256 and %q", hdr.Alg, hdr.Kid, f.keyID)
	}
	if claims.Iss != f.teamID {
		return fmt.Errorf("iss %q; want %q", claims.Iss, f.teamID)
	}
	if age := time.Since(time.Unix(claims.Iat, 0)); age > time.Hour || age < -time.Minute {
		return fmt.Errorf("iat is %v old", age)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return errors.New("signature is not 64 bytes of r||s")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(f.pub, h[:], r, s) {
		return errors.New("signature does not verify with the team's public key")
	}
	return nil
}

// writeP8 generates an APNs-style P-256 key, writes it as a .p8 (PKCS#8
// PEM) into dir, and returns the path and the public key.
func writeP8(t testing.TB, dir string) (string, *ecdsa.PublicKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "AuthKey_"+testKeyID+".p8")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, &key.PublicKey
}

// logBuffer collects the plugin's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log lines.
func (b *logBuffer) lines() []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// tokenSetup is a fake APNs for token auth and a config that reaches it.
type tokenSetup struct {
	fake *fakeAPNs
	cfg  Config
	logs *logBuffer
}

func newTokenSetup(t testing.TB) *tokenSetup {
	t.Helper()
	keyFile, pub := writeP8(t, t.TempDir())
	f := newFakeAPNs(t, pub)
	return &tokenSetup{
		fake: f,
		cfg:  Config{TeamID: testTeamID, KeyID: testKeyID, KeyFile: keyFile, Topic: testTopic, Endpoint: f.srv.URL},
		logs: &logBuffer{},
	}
}

// plugin configures a plugin with s.cfg (after mutate) that trusts the fake.
func (s *tokenSetup) plugin(t testing.TB, mutate ...func(*Config)) *Plugin {
	t.Helper()
	cfg := s.cfg
	for _, m := range mutate {
		m(&cfg)
	}
	p := New()
	p.rootCAs = s.fake.pool()
	p.log = slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := p.Configure(t.Context(), cfg); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return p
}
