package fcm

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fakes: an OAuth token endpoint that checks the service account's RS256
// JWT assertion, and an FCM v1 endpoint that records each message.

const (
	testProject     = "ringside-test"
	testClientEmail = "ringside@ringside-test.iam.gserviceaccount.com"
	testAccessToken = "ya29.fake-access-token"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

// keyPEM is the PKCS #8 PEM of the test key.
func keyPEM(t testing.TB) string {
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// serviceAccountJSON is a service-account key whose token_uri is tokenURI.
func serviceAccountJSON(t testing.TB, tokenURI, project string) []byte {
	t.Helper()
	m := map[string]string{
		"type":           "service_account",
		"private_key_id": "0123456789abcdef",
		"private_key":    keyPEM(t),
		"client_email":   testClientEmail,
		"client_id":      "1234567890",
		"auth_uri":       "https://accounts.google.com/o/oauth2/auth",
		"token_uri":      tokenURI,
	}
	if project != "" {
		m["project_id"] = project
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeCredentials(t testing.TB, tokenURI, project string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(path, serviceAccountJSON(t, tokenURI, project), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeOAuth is a token endpoint for the jwt-bearer grant.
type fakeOAuth struct {
	URL string // the token_uri
	mu  sync.Mutex
	n   int
	// answer overrides the success answer when set.
	answer func(w http.ResponseWriter)
	errs   []string
}

func newFakeOAuth(t testing.TB) *fakeOAuth {
	t.Helper()
	f := &fakeOAuth{}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL + "/token"
	return f
}

func (f *fakeOAuth) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.n++
	answer := f.answer
	f.mu.Unlock()
	if err := f.check(r); err != nil {
		f.mu.Lock()
		f.errs = append(f.errs, err.Error())
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"bad assertion"}`)
		return
	}
	if answer != nil {
		answer(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"access_token":"`+testAccessToken+`","token_type":"Bearer","expires_in":3600}`)
}

// check verifies the request is a jwt-bearer grant whose assertion is an
// RS256 JWT signed by the test key, for this token_uri and FCM's scope.
func (f *fakeOAuth) check(r *http.Request) error {
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		return fmt.Errorf("%s %s", r.Method, r.URL.Path)
	}
	if err := r.ParseForm(); err != nil {
		return err
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		return fmt.Errorf("grant_type %q", g)
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		return fmt.Errorf("assertion has %d parts", len(parts))
	}
	var hdr struct{ Alg, Typ, Kid string }
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return err
	}
	if hdr.Alg != "RS256" || hdr.Kid != "0123456789abcdef" {
		return fmt.Errorf("header %+v", hdr)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&testKey.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("signature: %v", err)
	}
	var claims struct {
		Iss   string `json:"iss"`
		Aud   string `json:"aud"`
		Scope string `json:"scope"`
		Iat   int64  `json:"iat"`
		Exp   int64  `json:"exp"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return err
	}
	now := time.Now().Unix()
	switch {
	case claims.Iss != testClientEmail:
		return fmt.Errorf("iss %q", claims.Iss)
	case claims.Aud != f.URL:
		return fmt.Errorf("aud %q, want %q", claims.Aud, f.URL)
	case !strings.Contains(claims.Scope, "https://www.googleapis.com/auth/firebase.messaging"):
		return fmt.Errorf("scope %q", claims.Scope)
	case claims.Iat > now+60 || claims.Exp < now || claims.Exp-claims.Iat > 3600:
		return fmt.Errorf("iat %d exp %d", claims.Iat, claims.Exp)
	}
	return nil
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (f *fakeOAuth) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *fakeOAuth) failures() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errs...)
}

// fcmRequest is what the fake FCM saw.
type fcmRequest struct {
	Path   string
	Header http.Header
	Body   []byte
}

// fakeFCM answers messages:send with answer (a success when nil).
type fakeFCM struct {
	URL    string // the endpoint: server + /v1
	mu     sync.Mutex
	reqs   []fcmRequest
	answer func(w http.ResponseWriter, r *http.Request)
}

func newFakeFCM(t testing.TB) *fakeFCM {
	t.Helper()
	f := &fakeFCM{}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL + "/v1"
	return f
}

func (f *fakeFCM) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, fcmRequest{Path: r.URL.Path, Header: r.Header.Clone(), Body: b})
	answer := f.answer
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+testAccessToken {
		fcmError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "", "Request had invalid authentication credentials.")
		return
	}
	if answer != nil {
		answer(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"name":"projects/`+testProject+`/messages/0:1700000000000000%abcdef"}`)
}

func (f *fakeFCM) requests() []fcmRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fcmRequest(nil), f.reqs...)
}

func (f *fakeFCM) setAnswer(a func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

// fcmError writes an FCM v1 error answer; fcmCode adds an FcmError detail.
func fcmError(w http.ResponseWriter, status int, rpcStatus, fcmCode, message string) {
	details := "[]"
	if fcmCode != "" {
		details = `[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"` + fcmCode + `"}]`
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"status":%q,"details":%s}}`, status, message, rpcStatus, details)
}
