package fakes

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The team and key the fake APNs issues provider tokens to, unless
// APNsOptions says otherwise.
const (
	APNsTeamID = "TEAM123456"
	APNsKeyID  = "KEY1234567"
)

// APNs limits, in bytes: the payload of VoIP pushes and of the rest, and
// apns-collapse-id.
const (
	APNsMaxVoIPPayload = 5120
	APNsMaxPayload     = 4096
	APNsMaxCollapseID  = 64
)

// APNs is a fake of Apple's push service: HTTP/2 over TLS, POST
// /3/device/{token}, headers (a background push only at priority 5, a
// collapse id of at most 64 bytes) and payload size checked as APNs does, and a
// provider token (an ES256 JWT of the team's key) verified on each push,
// or a TLS client certificate asked for with certificate auth. It answers
// malformed pushes as APNs does and every other push as Answer says.
// Once started, its URL is https://127.0.0.1:port.
type APNs struct {
	server

	o   APNsOptions
	key *ecdsa.PrivateKey

	n      atomic.Int64
	mu     sync.Mutex
	pushes []*Push
	answer script[Push, Answer]
	tokens sync.Map // provider token → tokenCheck: each is verified once

	ok, badToken, malformed, aborted atomic.Int64
	inflight, maxInflight            atomic.Int64
}

// APNsOptions configures a fake APNs; the zero value is token auth for
// APNsTeamID and APNsKeyID, every push recorded and answered 200.
type APNsOptions struct {
	// TeamID and KeyID name the team and its key (default APNsTeamID and
	// APNsKeyID).
	TeamID, KeyID string
	// CertAuth is certificate auth: the TLS layer asks for a client
	// certificate, and no provider token is checked.
	CertAuth bool
	// SkipTokenCheck accepts any provider token.
	SkipTokenCheck bool
	// Topic, when set, is the only topic the team may push to; a push to
	// another is answered 400 TopicDisallowed.
	Topic string
	// Discard keeps no record of pushes (Pushes returns none; the counts
	// still count): for load. A Push handed to Answer then lives only
	// during the call.
	Discard bool
	// Answer decides the answer to each well-formed push (nil: 200). It
	// is called concurrently, as pushes arrive.
	Answer func(*Push) Answer
}

// Push is a request the fake APNs received on a well-formed path.
type Push struct {
	// N is the push's rank among the fake's pushes, from 1.
	N int
	// At is when it arrived.
	At time.Time
	// Token is the device token, from the path.
	Token  string
	Header http.Header
	Body   []byte
	// Proto is the HTTP major version.
	Proto int
	// Remote is the client's address (one per connection).
	Remote string
	// Bearer is the provider token; JWTErr why it was refused (nil: valid,
	// or not checked).
	Bearer string
	JWTErr error
	// ClientCert is the common name of the TLS client certificate, if any.
	ClientCert string
	// Status is what the fake answered; 0 while unanswered, or when the
	// client went away first.
	Status int
}

// Answer is the fake APNs's answer to a push.
type Answer struct {
	// Status is the HTTP status (0: 200).
	Status int
	// Reason is the error's reason, e.g. "BadDeviceToken".
	Reason string
	// Timestamp is a 410's timestamp, in milliseconds since the epoch (0:
	// none).
	Timestamp int64
	// Raw replaces the JSON error body with a body that is not JSON (a
	// proxy's error page), as text/plain.
	Raw string
	// Delay holds the answer this long, and Hold until it is closed; when
	// the client goes away first, nothing is answered.
	Delay time.Duration
	Hold  <-chan struct{}
}

// APNsCounts are a fake APNs's counts of requests.
type APNsCounts struct {
	// Pushes were well formed and answered as Answer said.
	Pushes int
	// BadTokens were refused for their provider token.
	BadTokens int
	// Malformed were refused for their method, path, protocol, headers or
	// payload size.
	Malformed int
	// Aborted lost their client before their body arrived whole.
	Aborted int
	// MaxInFlight is the most requests the fake held at once.
	MaxInFlight int
}

// tokenCheck is a provider token's verification: its iat, or why it was
// refused.
type tokenCheck struct {
	iat int64
	err error
}

// NewAPNs returns a fake APNs, for serving it as a handler (StartAPNs runs
// it on loopback). Unless o.CertAuth, it holds a fresh P-256 key of the
// team: P8 gives it to the client.
func NewAPNs(o APNsOptions) *APNs {
	if o.TeamID == "" {
		o.TeamID = APNsTeamID
	}
	if o.KeyID == "" {
		o.KeyID = APNsKeyID
	}
	f := &APNs{o: o}
	if !o.CertAuth {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(fmt.Sprintf("fakes: generate a P-256 key: %v", err))
		}
		f.key = key
	}
	f.SetAnswer(o.Answer)
	return f
}

// StartAPNs starts a fake APNs on 127.0.0.1, over TLS with HTTP/2 (a
// certificate of its own: CertPool or WriteCA trusts it). Close stops it.
func StartAPNs(o APNsOptions) *APNs { return startFake(NewAPNs(o), true, o.CertAuth) }

// TeamID and KeyID are the team and key the fake issues tokens to.
func (f *APNs) TeamID() string { return f.o.TeamID }

// KeyID is the id of the team's key.
func (f *APNs) KeyID() string { return f.o.KeyID }

// P8 is the team's private key as APNs hands it out: PKCS #8 in PEM.
func (f *APNs) P8() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(f.key)
	if err != nil {
		panic(fmt.Sprintf("fakes: marshal the P-256 key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteP8 writes the team's key to dir/AuthKey_{KeyID}.p8 and returns the
// path.
func (f *APNs) WriteP8(dir string) (string, error) {
	path := filepath.Join(dir, "AuthKey_"+f.o.KeyID+".p8")
	return path, os.WriteFile(path, f.P8(), 0o600)
}

// CertPool trusts the fake's TLS certificate.
func (f *APNs) CertPool() *x509.CertPool { return f.certPool() }

// WriteCA writes the fake's TLS certificate as PEM to dir/ca.pem, for
// SSL_CERT_FILE (Go reads it once, at the first handshake; child
// processes inherit it), and returns the path.
func (f *APNs) WriteCA(dir string) (string, error) { return f.writeCA(dir) }

// SetAnswer replaces Answer (nil: 200).
func (f *APNs) SetAnswer(a func(*Push) Answer) { f.answer.set(a) }

// Pushes returns a copy of the pushes received so far, in order.
func (f *APNs) Pushes() []Push {
	f.mu.Lock()
	defer f.mu.Unlock()
	return copies(f.pushes)
}

// Counts returns the fake's counts so far.
func (f *APNs) Counts() APNsCounts {
	return APNsCounts{
		Pushes:      int(f.ok.Load()),
		BadTokens:   int(f.badToken.Load()),
		Malformed:   int(f.malformed.Load()),
		Aborted:     int(f.aborted.Load()),
		MaxInFlight: int(f.maxInflight.Load()),
	}
}

// InFlight is the number of requests the fake holds now.
func (f *APNs) InFlight() int { return int(f.inflight.Load()) }

// ServeHTTP answers one request as APNs does.
func (f *APNs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cur := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for m := f.maxInflight.Load(); cur > m && !f.maxInflight.CompareAndSwap(m, cur); m = f.maxInflight.Load() {
	}
	body, err := io.ReadAll(r.Body)
	if err != nil { // the client went away (its process was killed) mid-request
		f.aborted.Add(1)
		return
	}
	tok, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	switch {
	case r.Method != http.MethodPost:
		f.malformed.Add(1)
		writeAPNs(w, 0, Answer{Status: http.StatusMethodNotAllowed, Reason: "MethodNotAllowed"})
		return
	case !ok || tok == "" || strings.Contains(tok, "/") || r.ProtoMajor != 2:
		f.malformed.Add(1)
		writeAPNs(w, 0, Answer{Status: http.StatusNotFound, Reason: "BadPath"})
		return
	}

	p := &Push{At: time.Now(), Token: tok, Header: r.Header, Body: body, Proto: r.ProtoMajor, Remote: r.RemoteAddr}
	if !f.o.Discard {
		p.Header = r.Header.Clone()
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		p.ClientCert = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	a, refused := f.check(r, p)
	if f.o.Discard {
		p.N = int(f.n.Add(1))
	} else {
		f.mu.Lock()
		p.N = int(f.n.Add(1))
		f.pushes = append(f.pushes, p)
		f.mu.Unlock()
	}
	if !refused {
		f.ok.Add(1)
		a = f.answer.answer(p)
	}
	if !wait(r, a.Delay, a.Hold) {
		return
	}
	status := writeAPNs(w, p.N, a)
	if !f.o.Discard {
		f.mu.Lock()
		p.Status = status
		f.mu.Unlock()
	}
}

// check returns the answer to a push APNs refuses, and true; or false.
func (f *APNs) check(r *http.Request, p *Push) (Answer, bool) {
	if !f.o.CertAuth && !f.o.SkipTokenCheck {
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "bearer ")
		p.Bearer = bearer
		reason := "InvalidProviderToken"
		switch {
		case !ok || bearer == "":
			p.JWTErr, reason = errors.New("no bearer provider token"), "MissingProviderToken"
		default:
			p.JWTErr = f.verify(bearer)
			if errors.Is(p.JWTErr, errExpiredToken) {
				reason = "ExpiredProviderToken"
			}
		}
		if p.JWTErr != nil {
			f.badToken.Add(1)
			return Answer{Status: http.StatusForbidden, Reason: reason}, true
		}
	}
	h := r.Header
	pushType := h.Get("apns-push-type")
	limit := APNsMaxPayload
	if pushType == "voip" {
		limit = APNsMaxVoIPPayload
	}
	var status int
	var reason string
	switch {
	case pushType != "" && !validPushType[pushType]:
		status, reason = http.StatusBadRequest, "InvalidPushType"
	case h.Get("apns-topic") == "" && !f.o.CertAuth:
		status, reason = http.StatusBadRequest, "MissingTopic"
	case f.o.Topic != "" && h.Get("apns-topic") != "" && h.Get("apns-topic") != f.o.Topic:
		status, reason = http.StatusBadRequest, "TopicDisallowed"
	case h.Get("apns-priority") != "" && h.Get("apns-priority") != "10" && h.Get("apns-priority") != "5" && h.Get("apns-priority") != "1":
		status, reason = http.StatusBadRequest, "BadPriority"
	case pushType == "background" && h.Get("apns-priority") == "10":
		status, reason = http.StatusBadRequest, "BadPriority"
	case h.Get("apns-expiration") != "" && !isDigits(h.Get("apns-expiration")):
		status, reason = http.StatusBadRequest, "BadExpirationDate"
	case len(h.Get("apns-collapse-id")) > APNsMaxCollapseID:
		status, reason = http.StatusBadRequest, "BadCollapseId"
	case len(p.Body) == 0:
		status, reason = http.StatusBadRequest, "PayloadEmpty"
	case len(p.Body) > limit:
		status, reason = http.StatusRequestEntityTooLarge, "PayloadTooLarge"
	default:
		return Answer{}, false
	}
	f.malformed.Add(1)
	return Answer{Status: status, Reason: reason}, true
}

var validPushType = map[string]bool{
	"alert": true, "background": true, "location": true, "voip": true, "complication": true,
	"fileprovider": true, "mdm": true, "liveactivity": true, "pushtotalk": true, "widgets": true, "controls": true,
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

var errExpiredToken = errors.New("provider token older than an hour")

// verify checks a provider token as APNs does: header alg ES256 and kid,
// claim iss the team, iat neither older than an hour nor in the future,
// and the ES256 signature against the team's key. Each token is verified
// once; its age is checked on every push.
func (f *APNs) verify(bearer string) error {
	c, ok := f.tokens.Load(bearer)
	if !ok {
		iat, err := verifyES256(bearer, &f.key.PublicKey, f.o.TeamID, f.o.KeyID)
		c, _ = f.tokens.LoadOrStore(bearer, tokenCheck{iat: iat, err: err})
	}
	tc := c.(tokenCheck)
	if tc.err != nil {
		return tc.err
	}
	switch age := time.Since(time.Unix(tc.iat, 0)); {
	case age > time.Hour:
		return fmt.Errorf("%w: iat is %v old", errExpiredToken, age.Round(time.Second))
	case age < -time.Minute:
		return fmt.Errorf("iat is %v in the future", -age.Round(time.Second))
	}
	return nil
}

// verifyES256 checks a JWT's header, iss and signature, and returns its
// iat.
func verifyES256(bearer string, pub *ecdsa.PublicKey, teamID, keyID string) (int64, error) {
	parts := strings.Split(bearer, ".")
	if len(parts) != 3 {
		return 0, errors.New("not a JWS compact serialisation")
	}
	var hdr struct{ Alg, Kid string }
	var claims struct {
		Iss string
		Iat int64
	}
	for i, v := range []any{&hdr, &claims} {
		if err := decodeSegment(parts[i], v); err != nil {
			return 0, fmt.Errorf("JWT part %d is not base64url JSON: %v", i, err)
		}
	}
	if hdr.Alg != "ES256" || hdr.Kid != keyID {
		return 0, fmt.Errorf("header alg %q kid %q; want ES256 and %q", hdr.Alg, hdr.Kid, keyID)
	}
	if claims.Iss != teamID {
		return 0, fmt.Errorf("iss %q; want %q", claims.Iss, teamID)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return 0, errors.New("signature is not 64 bytes of r||s")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return 0, errors.New("signature does not verify with the team's key")
	}
	return claims.Iat, nil
}

// decodeSegment decodes one base64url JSON part of a JWT into v.
func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// writeAPNs writes a as APNs does, with an apns-id for push n, and returns
// the status.
func writeAPNs(w http.ResponseWriter, n int, a Answer) int {
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("apns-id", "5e0f0a6b-0000-4000-8000-"+pad12(n))
	switch {
	case status == http.StatusOK:
		w.WriteHeader(status)
	case a.Raw != "":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, a.Raw)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(struct {
			Reason    string `json:"reason"`
			Timestamp int64  `json:"timestamp,omitempty"`
		}{a.Reason, a.Timestamp})
	}
	return status
}

// pad12 is n in decimal, zero-padded to 12 digits.
func pad12(n int) string {
	s := strconv.Itoa(n)
	if len(s) >= 12 {
		return s
	}
	return strings.Repeat("0", 12-len(s)) + s
}
