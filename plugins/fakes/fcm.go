package fakes

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
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FCMProject is the Firebase project of a fake FCM's service account,
// unless FCMOptions says otherwise.
const FCMProject = "ringside-test"

// fcmScope is the OAuth scope a token for FCM must be asked for.
const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCM is a fake of Firebase Cloud Messaging's HTTP v1 API and of the OAuth
// token endpoint of its service account, on one server: /token grants
// access tokens for a jwt-bearer assertion signed by the service account's
// key (RS256, its key id, issuer, audience, scope and lifetime checked),
// and /v1/projects/{project}/messages:send takes messages carrying such an
// access token. It answers requests FCM refuses as FCM does and every
// other message as Answer says. Among the refused: a notification or
// android.notification with a field FCM does not know, or a string field
// that is not a string. Once started, TokenURL and Endpoint are under its
// URL.
type FCM struct {
	server
	// Project, ClientEmail and KeyID describe the service account;
	// AccessToken is the token the fake grants.
	Project, ClientEmail, KeyID, AccessToken string

	mu        sync.Mutex
	n         int
	sends     []*FCMSend
	grants    int
	tokenErrs []string
	answer    script[FCMSend, FCMAnswer]
	grant     atomic.Pointer[TokenAnswer]
}

// FCMOptions configures a fake FCM; the zero value serves FCMProject and
// answers every message with success.
type FCMOptions struct {
	// Project is the service account's project (default FCMProject).
	Project string
	// AccessToken is the token granted (default "ya29.fake-access-token").
	AccessToken string
	// Answer decides the answer to each well-formed message (nil:
	// success). It is called concurrently.
	Answer func(*FCMSend) FCMAnswer
}

// FCMSend is a messages:send request the fake FCM received.
type FCMSend struct {
	N      int
	At     time.Time
	Path   string
	Header http.Header
	Body   []byte
	// Project is the project of the path; Token the message's
	// registration token.
	Project, Token string
	// Status is what was answered (0: the client went away first).
	Status int
}

// FCMAnswer is the fake FCM's answer to a message.
type FCMAnswer struct {
	// Status is the HTTP status (0: 200 with the message's name).
	Status int
	// RPCStatus is the error's google.rpc status, e.g. "NOT_FOUND".
	RPCStatus string
	// ErrorCode is an FcmError detail's errorCode, e.g. "UNREGISTERED" (""
	// adds no detail).
	ErrorCode string
	// Message is the error's message.
	Message string
	// Header is added to the answer (e.g. Retry-After).
	Header map[string]string
	// Raw replaces the JSON error body with one that is not JSON.
	Raw string
	// Hold holds the answer until it is closed; when the client goes away
	// first, nothing is answered.
	Hold <-chan struct{}
}

// TokenAnswer replaces the token endpoint's grant to a valid assertion.
type TokenAnswer struct {
	Status int
	// Error and Description form an OAuth error body (none when Error is
	// empty).
	Error, Description string
	// Header is added to the answer (e.g. Retry-After).
	Header map[string]string
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// serviceAccountKey is the RSA key of every fake service account (2048
// bits take a while to generate: once per process).
func serviceAccountKey() *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("fakes: generate an RSA key: %v", err))
		}
		rsaKey = k
	})
	return rsaKey
}

// NewFCM returns a fake FCM, for serving it as a handler (StartFCM runs it
// on loopback).
func NewFCM(o FCMOptions) *FCM {
	if o.Project == "" {
		o.Project = FCMProject
	}
	if o.AccessToken == "" {
		o.AccessToken = "ya29.fake-access-token"
	}
	f := &FCM{
		Project:     o.Project,
		ClientEmail: "ringside@" + o.Project + ".iam.gserviceaccount.com",
		KeyID:       "0123456789abcdef",
		AccessToken: o.AccessToken,
	}
	serviceAccountKey()
	f.SetAnswer(o.Answer)
	return f
}

// StartFCM starts a fake FCM on 127.0.0.1 (plain HTTP). Close stops it.
func StartFCM(o FCMOptions) *FCM { return startFake(NewFCM(o), false, false) }

// TokenURL is the token endpoint, the service account's token_uri.
func (f *FCM) TokenURL() string { return f.URL + "/token" }

// Endpoint is the FCM v1 endpoint (…/v1), as a client's endpoint option.
func (f *FCM) Endpoint() string { return f.URL + "/v1" }

// KeyPEM is the service account's private key, PKCS #8 in PEM.
func (f *FCM) KeyPEM() string {
	der, err := x509.MarshalPKCS8PrivateKey(serviceAccountKey())
	if err != nil {
		panic(fmt.Sprintf("fakes: marshal the RSA key: %v", err))
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// ServiceAccount is the service account's JSON key file, as the Firebase
// console hands it out, with tokenURI as its token_uri ("": TokenURL).
func (f *FCM) ServiceAccount(tokenURI string) []byte {
	if tokenURI == "" {
		tokenURI = f.TokenURL()
	}
	b, err := json.MarshalIndent(map[string]string{
		"type":           "service_account",
		"project_id":     f.Project,
		"private_key_id": f.KeyID,
		"private_key":    f.KeyPEM(),
		"client_email":   f.ClientEmail,
		"client_id":      "1234567890",
		"auth_uri":       "https://accounts.google.com/o/oauth2/auth",
		"token_uri":      tokenURI,
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// WriteServiceAccount writes ServiceAccount("") to
// dir/service-account.json and returns the path.
func (f *FCM) WriteServiceAccount(dir string) (string, error) {
	path := filepath.Join(dir, "service-account.json")
	return path, os.WriteFile(path, f.ServiceAccount(""), 0o600)
}

// SetAnswer replaces Answer (nil: success).
func (f *FCM) SetAnswer(a func(*FCMSend) FCMAnswer) { f.answer.set(a) }

// SetTokenAnswer replaces the grant of an access token for a valid
// assertion (nil: the grant).
func (f *FCM) SetTokenAnswer(a *TokenAnswer) { f.grant.Store(a) }

// Sends returns a copy of the messages received so far, in order.
func (f *FCM) Sends() []FCMSend {
	f.mu.Lock()
	defer f.mu.Unlock()
	return copies(f.sends)
}

// TokenRequests is the number of requests to the token endpoint.
func (f *FCM) TokenRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.grants
}

// TokenErrors lists why the token endpoint refused assertions.
func (f *FCM) TokenErrors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tokenErrs...)
}

var sendPath = regexp.MustCompile(`^/v1/projects/([a-z0-9-]+)/messages:send$`)

// ServeHTTP answers a token request or a message as Google does.
func (f *FCM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		f.token(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	m := sendPath.FindStringSubmatch(r.URL.Path)
	if r.Method != http.MethodPost || m == nil {
		writeFCM(w, FCMAnswer{Status: http.StatusNotFound, RPCStatus: "NOT_FOUND", Message: "The requested URL was not found on this server."})
		return
	}
	s := &FCMSend{At: time.Now(), Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Project: m[1]}
	a, refused := f.check(r, s)
	f.mu.Lock()
	f.n++
	s.N = f.n
	f.sends = append(f.sends, s)
	f.mu.Unlock()
	if !refused {
		a = f.answer.answer(s)
	}
	if !wait(r, 0, a.Hold) {
		return
	}
	if a.Status == 0 {
		a.Status = http.StatusOK
		a.Raw = `{"name":"projects/` + s.Project + `/messages/0:1700000000000000%abcdef"}`
	}
	writeFCM(w, a)
	f.mu.Lock()
	s.Status = a.Status
	f.mu.Unlock()
}

// check returns the answer to a message FCM refuses, and true; or false.
func (f *FCM) check(r *http.Request, s *FCMSend) (FCMAnswer, bool) {
	if r.Header.Get("Authorization") != "Bearer "+f.AccessToken {
		return FCMAnswer{Status: http.StatusUnauthorized, RPCStatus: "UNAUTHENTICATED",
			Message: "Request had invalid authentication credentials."}, true
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return invalidArgument("Invalid JSON payload received: Content-Type " + ct), true
	}
	var req struct {
		Message *struct {
			Token        string          `json:"token"`
			Data         json.RawMessage `json:"data"`
			Notification json.RawMessage `json:"notification"`
			Android      *struct {
				Notification json.RawMessage `json:"notification"`
			} `json:"android"`
		} `json:"message"`
	}
	if err := json.Unmarshal(s.Body, &req); err != nil || req.Message == nil {
		return invalidArgument("Invalid JSON payload received."), true
	}
	s.Token = req.Message.Token
	var data map[string]string
	switch {
	case s.Token == "":
		return invalidArgument("Recipient of the message is not set."), true
	case req.Message.Data != nil && json.Unmarshal(req.Message.Data, &data) != nil:
		return invalidArgument(`Invalid value at 'message.data': every value must be a string`), true
	}
	if msg := checkFields("message.notification", req.Message.Notification, notificationFields); msg != "" {
		return invalidArgument(msg), true
	}
	if a := req.Message.Android; a != nil {
		if msg := checkFields("message.android.notification", a.Notification, androidNotificationFields); msg != "" {
			return invalidArgument(msg), true
		}
	}
	return FCMAnswer{}, false
}

// notificationFields are the fields of FCM v1's Notification, each true
// when its value is a string.
var notificationFields = map[string]bool{"title": true, "body": true, "image": true}

// androidNotificationFields are the fields of FCM v1's AndroidNotification,
// each true when its value is a string.
var androidNotificationFields = map[string]bool{
	"title": true, "body": true, "icon": true, "color": true, "sound": true, "tag": true,
	"click_action": true, "body_loc_key": true, "title_loc_key": true, "channel_id": true,
	"ticker": true, "image": true, "event_time": true, "notification_priority": true,
	"visibility": true, "proxy": true,
	"body_loc_args": false, "title_loc_args": false, "sticky": false, "local_only": false,
	"default_sound": false, "default_vibrate_timings": false, "default_light_settings": false,
	"vibrate_timings": false, "light_settings": false, "notification_count": false,
	"bypass_proxy_notification": false,
}

// checkFields returns FCM's complaint about the object raw at where (""
// when there is none): a name that is not among fields, or a string
// field whose value is not a string.
func checkFields(where string, raw json.RawMessage, fields map[string]bool) string {
	if raw == nil || string(raw) == "null" {
		return ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return fmt.Sprintf("Invalid value at '%s': not an object", where)
	}
	for k, v := range obj {
		isString, ok := fields[k]
		if !ok {
			return fmt.Sprintf("Invalid JSON payload received. Unknown name %q at '%s': Cannot find field.", k, where)
		}
		var str string
		if isString && json.Unmarshal(v, &str) != nil {
			return fmt.Sprintf("Invalid value at '%s.%s' (TYPE_STRING), %s", where, k, v)
		}
	}
	return ""
}

func invalidArgument(msg string) FCMAnswer {
	return FCMAnswer{Status: http.StatusBadRequest, RPCStatus: "INVALID_ARGUMENT", Message: msg}
}

// writeFCM writes a as Google's APIs do.
func writeFCM(w http.ResponseWriter, a FCMAnswer) {
	setHeader(w, a.Header)
	if a.Raw != "" {
		if a.Status == http.StatusOK {
			w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		}
		w.WriteHeader(a.Status)
		_, _ = io.WriteString(w, a.Raw)
		return
	}
	details := []any{}
	if a.ErrorCode != "" {
		details = append(details, map[string]string{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": a.ErrorCode})
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(a.Status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": a.Status, "message": a.Message, "status": a.RPCStatus, "details": details,
	}})
}

// token answers the jwt-bearer grant.
func (f *FCM) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.grants++
	f.mu.Unlock()
	if err := f.checkAssertion(r); err != nil {
		f.mu.Lock()
		f.tokenErrs = append(f.tokenErrs, err.Error())
		f.mu.Unlock()
		writeToken(w, TokenAnswer{Status: http.StatusBadRequest, Error: "invalid_grant", Description: "bad assertion"})
		return
	}
	if a := f.grant.Load(); a != nil {
		writeToken(w, *a)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": f.AccessToken, "token_type": "Bearer", "expires_in": 3600})
}

func writeToken(w http.ResponseWriter, a TokenAnswer) {
	setHeader(w, a.Header)
	if a.Error == "" {
		w.WriteHeader(a.Status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": a.Error, "error_description": a.Description})
}

// checkAssertion verifies a token request: a POSTed jwt-bearer grant whose
// assertion is an RS256 JWT of the service account's key id, signed by its
// key, issued by its client email for this token endpoint and FCM's
// scope, and valid now for at most an hour.
func (f *FCM) checkAssertion(r *http.Request) error {
	if r.Method != http.MethodPost {
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
	var hdr struct{ Alg, Kid string }
	var claims struct {
		Iss   string `json:"iss"`
		Aud   string `json:"aud"`
		Scope string `json:"scope"`
		Iat   int64  `json:"iat"`
		Exp   int64  `json:"exp"`
	}
	for i, v := range []any{&hdr, &claims} {
		if err := decodeSegment(parts[i], v); err != nil {
			return fmt.Errorf("assertion part %d: %v", i, err)
		}
	}
	if hdr.Alg != "RS256" || hdr.Kid != f.KeyID {
		return fmt.Errorf("header alg %q kid %q; want RS256 and %q", hdr.Alg, hdr.Kid, f.KeyID)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&serviceAccountKey().PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("signature: %v", err)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	aud := scheme + "://" + r.Host + "/token"
	now := time.Now().Unix()
	switch {
	case claims.Iss != f.ClientEmail:
		return fmt.Errorf("iss %q; want %q", claims.Iss, f.ClientEmail)
	case claims.Aud != aud:
		return fmt.Errorf("aud %q; want %q", claims.Aud, aud)
	case !strings.Contains(claims.Scope, fcmScope):
		return fmt.Errorf("scope %q", claims.Scope)
	case claims.Iat > now+60 || claims.Exp < now || claims.Exp-claims.Iat > 3600:
		return fmt.Errorf("iat %d exp %d at %d", claims.Iat, claims.Exp, now)
	}
	return nil
}
