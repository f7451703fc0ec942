package main

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
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// The FCM end-to-end tests run the real ringside binary, which serves the
// built-in fcm plugin as a child process, against a fake OAuth token
// endpoint (the service account's token_uri) and a fake FCM v1 endpoint.

const (
	fcmTestProject     = "ringside-e2e"
	fcmTestClientEmail = "ringside@ringside-e2e.iam.gserviceaccount.com"
	fcmTestAccessToken = "ya29.e2e-access-token"
	fcmTestDeviceToken = "eFcmE2eToken-0123456789:APA91bExampleRegistrationToken_abcdefghijklmnop"
)

var (
	fcmKeyOnce sync.Once
	fcmKey     *rsa.PrivateKey
)

// fcmCredentials writes a service-account JSON key (a fresh RSA key, its
// token_uri the fake OAuth endpoint) and returns its path.
func fcmCredentials(t *testing.T, tokenURI string) string {
	t.Helper()
	fcmKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		fcmKey = k
	})
	der, err := x509.MarshalPKCS8PrivateKey(fcmKey)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     fcmTestProject,
		"private_key_id": "e2e-key-id",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   fcmTestClientEmail,
		"token_uri":      tokenURI,
	})
	path := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fcmFakeOAuth serves the jwt-bearer grant at /token, checking the RS256
// assertion against the test key; it returns the token_uri.
func fcmFakeOAuth(t *testing.T) string {
	t.Helper()
	var tokenURI string
	tokenURI = newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fcmCheckAssertion(r, tokenURI); err != nil {
			t.Errorf("token request: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"`+fcmTestAccessToken+`","token_type":"Bearer","expires_in":3600}`)
	})) + "/token"
	return tokenURI
}

func fcmCheckAssertion(r *http.Request, tokenURI string) error {
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
	var hdr struct{ Alg, Kid string }
	var claims struct {
		Iss, Aud, Scope string
		Exp             int64
	}
	for i, v := range []any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return err
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&fcmKey.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("signature: %v", err)
	}
	if hdr.Alg != "RS256" || hdr.Kid != "e2e-key-id" || claims.Iss != fcmTestClientEmail || claims.Aud != tokenURI ||
		!strings.Contains(claims.Scope, "firebase.messaging") || claims.Exp < time.Now().Unix() {
		return fmt.Errorf("header %+v claims %+v", hdr, claims)
	}
	return nil
}

// fcmFake is a fake FCM v1 endpoint: each messages:send is recorded and
// answered by answer (nil: success).
type fcmFake struct {
	URL  string // the endpoint, .../v1
	reqs chan fcmFakeRequest
}

type fcmFakeRequest struct {
	Path   string
	Header http.Header
	Body   []byte
}

func newFCMFake(t *testing.T, answer func(w http.ResponseWriter)) *fcmFake {
	t.Helper()
	f := &fcmFake{reqs: make(chan fcmFakeRequest, 100)}
	f.URL = newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.reqs <- fcmFakeRequest{Path: r.URL.Path, Header: r.Header.Clone(), Body: b}
		if r.Header.Get("Authorization") != "Bearer "+fcmTestAccessToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if answer != nil {
			answer(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"name":"projects/`+fcmTestProject+`/messages/0:e2e"}`)
	})) + "/v1"
	return f
}

func (f *fcmFake) next(t *testing.T) fcmFakeRequest {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no FCM request arrived within 10s")
		return fcmFakeRequest{}
	}
}

// fcmConfig is a config with one fcm notifier routed for every call.
func fcmConfig(creds, endpoint string) string {
	return testServer + fmt.Sprintf(`
notifier "android" {
  plugin           = "fcm"
  credentials_file = %q
  endpoint         = %q
  payload = {
    caller = call.from_user_id
    video  = call.type == "V"
  }
}

route "all" {
  notify = ["android"]
}
`, creds, endpoint)
}

func fcmPutDevice(t *testing.T, in *instance) {
	t.Helper()
	code, _, body := do(t, "PUT", in.adminURL+"/v1/devices/linecorp.com/2809/fcm/"+fcmTestDeviceToken, nil)
	if code != 204 {
		t.Fatalf("PUT device: got %d %s", code, body)
	}
}

func TestE2EFCMDelivery(t *testing.T) {
	fake := newFCMFake(t, nil)
	creds := fcmCredentials(t, fcmFakeOAuth(t))
	in := startRingside(t, fcmConfig(creds, fake.URL))

	if code, out, errOut := run(t, in.dir, "validate", "-config", in.config); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}
	fcmPutDevice(t, in)
	code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil)
	if code != 200 || !strings.Contains(body, `"status":"accepted"`) {
		t.Fatalf("notify_cb: got %d %s", code, body)
	}

	r := fake.next(t)
	if r.Path != "/v1/projects/"+fcmTestProject+"/messages:send" {
		t.Errorf("path %q", r.Path)
	}
	var msg struct {
		Message struct {
			Token   string            `json:"token"`
			Data    map[string]string `json:"data"` // every value must be a string
			Android map[string]string `json:"android"`
		} `json:"message"`
	}
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		t.Fatalf("message: %v\n%s", err, r.Body)
	}
	m := msg.Message
	if m.Token != fcmTestDeviceToken {
		t.Errorf("token %q", m.Token)
	}
	wantData := map[string]string{
		"cc_param":       lineParam,
		"sid":            "151ad995-749c-4a28-893f-636700469db1",
		"app_caller_sid": "linecorp.com",
		"app_caller_uid": "9286",
		"app_callee_sid": "linecorp.com",
		"app_callee_uid": "2809",
		"app_call_type":  "A",
		"app_svr_data":   "stid",
		"caller":         "9286",
		"video":          "false",
	}
	if !reflect.DeepEqual(m.Data, wantData) {
		t.Errorf("data %v\nwant %v", m.Data, wantData)
	}
	if m.Android["priority"] != "high" || (m.Android["ttl"] != "60s" && m.Android["ttl"] != "59s") || len(m.Android) != 2 {
		t.Errorf("android %v, want priority high and ttl ≈ 60s", m.Android)
	}

	if _, err := in.waitLog(10*time.Second, func(l map[string]any) bool {
		return l["msg"] == "callback" && l["delivered"] == float64(1)
	}); err != nil {
		t.Fatalf("callback line: %v\n%s", err, in.logs.String())
	}
	_, _, metrics := do(t, "GET", in.adminURL+"/metrics", nil)
	if !strings.Contains(metrics, `ringside_deliveries_total{notifier="android",outcome="delivered"} 1`) {
		t.Errorf("metrics lack the delivery:\n%s", grep(metrics, "ringside_"))
	}
	if logs := in.logs.String(); strings.Contains(logs, fcmTestDeviceToken) || strings.Contains(logs, lineParam) || strings.Contains(logs, fcmTestAccessToken) {
		t.Error("logs contain a whole device token, cc_param or the access token")
	}
}

func TestE2EFCMUnregisteredPrunes(t *testing.T) {
	fake := newFCMFake(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND",`+
			`"details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`)
	})
	creds := fcmCredentials(t, fcmFakeOAuth(t))
	in := startRingside(t, fcmConfig(creds, fake.URL))

	fcmPutDevice(t, in)
	code, _, body := do(t, "GET", in.notifyURL+"?"+lineExample, nil)
	if code != 200 || !strings.Contains(body, `"status":"accepted"`) {
		t.Fatalf("notify_cb: got %d %s", code, body)
	}
	fake.next(t)
	if _, err := in.waitLog(10*time.Second, func(l map[string]any) bool {
		return l["msg"] == "callback" && l["gone"] == float64(1)
	}); err != nil {
		t.Fatalf("callback line: %v\n%s", err, in.logs.String())
	}
	code, _, body = do(t, "GET", in.adminURL+"/v1/devices/linecorp.com/2809", nil)
	if code != 200 || strings.Contains(body, fcmTestDeviceToken) {
		t.Errorf("GET devices after UNREGISTERED: got %d %s", code, body)
	}
	_, _, metrics := do(t, "GET", in.adminURL+"/metrics", nil)
	if !strings.Contains(metrics, `ringside_tokens_pruned_total{kind="fcm"} 1`) {
		t.Errorf("metrics lack the pruned token:\n%s", grep(metrics, "ringside_"))
	}
	select {
	case <-fake.reqs:
		t.Error("a gone token was sent to again")
	default:
	}
}
