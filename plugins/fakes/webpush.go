package fakes

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WebPush is a browser's push service (RFC 8030) with VAPID (RFC 8292) and
// aes128gcm message encryption (RFC 8291): it hands out subscriptions, checks
// each push as a push service does (POST to a known subscription, a TTL,
// Content-Encoding aes128gcm, a VAPID Authorization whose ES256 JWT verifies
// against its k= key, names the endpoint's origin as aud and expires within
// 24 hours) and answers a malformed one 400, 401, 403 or 404. It records
// every push, decrypting its body with the subscription's keys, and answers
// the rest as Answer says (201 with a Location by default).
type WebPush struct {
	server

	o WebPushOptions

	mu     sync.Mutex
	subs   map[string]*ecdh.PrivateKey // by path
	auths  map[string][]byte           // by path
	pushes []*WebPushRequest
	seq    atomic.Int64
	answer script[WebPushRequest, WebPushAnswer]
}

// WebPushOptions configures a fake push service; the zero value accepts any
// VAPID key and answers 201.
type WebPushOptions struct {
	// VAPIDPublicKey, base64url, is the application server key the
	// subscriptions were made with: a push signed with another key is
	// answered 403 ("" accepts any key that verifies its own JWT).
	VAPIDPublicKey string
	// Answer decides the answer to each well-formed push (nil: 201). It
	// is called concurrently.
	Answer func(*WebPushRequest) WebPushAnswer
}

// WebPushRequest is a push the fake received.
type WebPushRequest struct {
	At   time.Time
	Path string
	// Header is the request's header (TTL, Urgency, Topic, Authorization…).
	Header http.Header
	// Body is the encrypted body as received.
	Body []byte
	// Plaintext is Body decrypted with the subscription's keys (nil when it
	// did not decrypt: DecryptErr says why).
	Plaintext  []byte
	DecryptErr error
	// JWT is the VAPID token (t=) and Claims its claims.
	JWT    string
	Claims WebPushClaims
	// Status is what was answered (0: the client went away first, or not
	// answered yet).
	Status int
}

// WebPushClaims are a VAPID JWT's claims.
type WebPushClaims struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Sub string `json:"sub"`
}

// WebPushAnswer is the fake push service's answer to a push.
type WebPushAnswer struct {
	// Status is the HTTP status (0: 201).
	Status int
	// Header is added to the answer (Retry-After, Location…); with Status
	// 0 a Location is added when Header has none.
	Header map[string]string
	Body   string
	// Hold holds the answer until it is closed; when the client goes away
	// first, nothing is answered.
	Hold <-chan struct{}
}

// NewWebPush returns a fake push service, for serving it as a handler
// (StartWebPush runs it on loopback). Subscribe needs URL: set it to the
// base URL it is served at.
func NewWebPush(o WebPushOptions) *WebPush {
	f := &WebPush{o: o, subs: map[string]*ecdh.PrivateKey{}, auths: map[string][]byte{}}
	f.SetAnswer(o.Answer)
	return f
}

// StartWebPush starts a fake push service on 127.0.0.1 over TLS with
// HTTP/2 (push services are https only). Close stops it.
func StartWebPush(o WebPushOptions) *WebPush { return startFake(NewWebPush(o), true, false) }

// CertPool trusts the started server's TLS certificate.
func (f *WebPush) CertPool() *x509.CertPool { return f.certPool() }

// WriteCA writes the started server's TLS certificate as PEM to dir/ca.pem
// and returns the path (for SSL_CERT_FILE).
func (f *WebPush) WriteCA(dir string) (string, error) { return f.writeCA(dir) }

// SetAnswer replaces Answer (nil: 201).
func (f *WebPush) SetAnswer(a func(*WebPushRequest) WebPushAnswer) { f.answer.set(a) }

// WebPushSubscriber is a browser's side of a subscription: the JSON it
// hands the app (PushSubscription.toJSON) and its private keys.
type WebPushSubscriber struct {
	// JSON is the subscription as a browser hands it out.
	JSON     string
	Endpoint string
	// Private is the P-256 key whose public half is keys.p256dh, and Auth
	// the authentication secret.
	Private *ecdh.PrivateKey
	Auth    []byte
}

// Subscribe makes a subscription on the fake, as a browser does with
// pushManager.subscribe.
func (f *WebPush) Subscribe() WebPushSubscriber {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic("fakes: webpush key: " + err.Error())
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	path := fmt.Sprintf("/wpush/v2/sub%06d-%x", f.seq.Add(1), auth[:4])
	f.mu.Lock()
	f.subs[path] = priv
	f.auths[path] = auth
	f.mu.Unlock()
	s := WebPushSubscriber{Endpoint: f.URL + path, Private: priv, Auth: auth}
	b, _ := json.Marshal(map[string]any{
		"endpoint":       s.Endpoint,
		"expirationTime": nil,
		"keys": map[string]string{
			"p256dh": base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
			"auth":   base64.RawURLEncoding.EncodeToString(auth),
		},
	})
	s.JSON = string(b)
	return s
}

// Pushes returns a copy of the pushes received, in order.
func (f *WebPush) Pushes() []WebPushRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return copies(f.pushes)
}

// ServeHTTP checks a push, records it and answers it.
func (f *WebPush) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	p := &WebPushRequest{At: time.Now(), Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	f.mu.Lock()
	priv, known := f.subs[p.Path]
	auth := f.auths[p.Path]
	f.mu.Unlock()

	// The record is complete but for its Status before it is shared.
	a, ok := f.check(r, p, known)
	if ok {
		p.Plaintext, p.DecryptErr = DecryptWebPush(body, priv, auth)
		if p.DecryptErr != nil {
			a, ok = WebPushAnswer{Status: http.StatusBadRequest, Body: "message does not decrypt"}, false
		}
	}
	f.mu.Lock()
	f.pushes = append(f.pushes, p)
	f.mu.Unlock()
	if ok {
		a = f.answer.answer(p)
	}
	if !wait(r, 0, a.Hold) {
		return
	}
	if a.Status == 0 {
		a.Status = http.StatusCreated
		if a.Header["Location"] == "" {
			w.Header().Set("Location", fmt.Sprintf("%s/m/msg%06d", f.URL, f.seq.Add(1)))
		}
	}
	respond(w, a.Status, a.Header, a.Body, &f.mu, &p.Status)
}

// check answers a malformed push as a push service does (ok false).
func (f *WebPush) check(r *http.Request, p *WebPushRequest, known bool) (WebPushAnswer, bool) {
	bad := func(status int, msg string) (WebPushAnswer, bool) {
		return WebPushAnswer{Status: status, Body: msg}, false
	}
	switch {
	case r.Method != http.MethodPost:
		return bad(http.StatusMethodNotAllowed, "method not allowed")
	case !known:
		return bad(http.StatusNotFound, "subscription not found")
	case r.Header.Get("Content-Encoding") != "aes128gcm":
		return bad(http.StatusBadRequest, "Content-Encoding must be aes128gcm")
	}
	if ttl, err := strconv.Atoi(r.Header.Get("TTL")); err != nil || ttl < 0 {
		return bad(http.StatusBadRequest, "missing or invalid TTL header")
	}
	if u := r.Header.Get("Urgency"); u != "" && u != "very-low" && u != "low" && u != "normal" && u != "high" {
		return bad(http.StatusBadRequest, "invalid Urgency header")
	}
	if t := r.Header.Get("Topic"); len(t) > 32 || strings.Trim(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return bad(http.StatusBadRequest, "invalid Topic header")
	}
	jwt, k, err := parseVAPID(r.Header.Get("Authorization"))
	if err != nil {
		return bad(http.StatusUnauthorized, "VAPID: "+err.Error())
	}
	p.JWT = jwt
	if f.o.VAPIDPublicKey != "" && strings.TrimRight(k, "=") != strings.TrimRight(f.o.VAPIDPublicKey, "=") {
		return bad(http.StatusForbidden, "VAPID key does not match the subscription's applicationServerKey")
	}
	claims, err := VerifyVAPID(jwt, k)
	if err != nil {
		return bad(http.StatusUnauthorized, "VAPID: "+err.Error())
	}
	p.Claims = claims
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	if want := scheme + "://" + r.Host; claims.Aud != want {
		return bad(http.StatusForbidden, fmt.Sprintf("VAPID aud %q; want %q", claims.Aud, want))
	}
	if now := time.Now().Unix(); claims.Exp <= now || claims.Exp > now+24*3600 {
		return bad(http.StatusForbidden, "VAPID exp must be within 24 hours")
	}
	if !strings.HasPrefix(claims.Sub, "mailto:") && !strings.HasPrefix(claims.Sub, "https:") {
		return bad(http.StatusForbidden, "VAPID sub must be a mailto: or https: URL")
	}
	return WebPushAnswer{}, true
}

// parseVAPID splits an Authorization "vapid t=JWT, k=KEY" header.
func parseVAPID(h string) (jwt, k string, err error) {
	rest, ok := strings.CutPrefix(h, "vapid ")
	if !ok {
		return "", "", errors.New(`the Authorization must use the "vapid" scheme`)
	}
	for part := range strings.SplitSeq(rest, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch name {
		case "t":
			jwt = value
		case "k":
			k = strings.TrimSpace(part)[2:]
		}
	}
	if jwt == "" || k == "" {
		return "", "", errors.New("the Authorization needs t= and k=")
	}
	return jwt, k, nil
}

// VerifyVAPID checks an ES256 JWT against the VAPID public key k (base64url
// of an uncompressed P-256 point) and returns its claims.
func VerifyVAPID(jwt, k string) (WebPushClaims, error) {
	var c WebPushClaims
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k, "="))
	if err != nil {
		return c, errors.New("k is not base64url")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return c, errors.New("k is not a P-256 public key")
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return c, errors.New("t is not a JWS compact serialisation")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	for i, v := range []any{&hdr, &c} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, v) != nil {
			return c, fmt.Errorf("JWT part %d is not base64url JSON", i)
		}
	}
	if hdr.Alg != "ES256" {
		return c, fmt.Errorf("JWT alg %q; want ES256", hdr.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return c, errors.New("JWT signature is not 64 bytes of r||s")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return c, errors.New("JWT signature does not verify with k")
	}
	return c, nil
}

// DecryptWebPush decrypts an aes128gcm push message (RFC 8291, one record)
// with the subscription's private key and auth secret and returns the
// plaintext without its padding.
func DecryptWebPush(body []byte, priv *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if priv == nil {
		return nil, errors.New("no subscription key")
	}
	if len(body) < 21 {
		return nil, errors.New("body shorter than the aes128gcm header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen+16 {
		return nil, errors.New("keyid is not a 65-byte P-256 public key")
	}
	if rs < 18 || uint32(len(body)-21-idlen) > rs {
		return nil, fmt.Errorf("record size %d does not fit a single record of %d bytes", rs, len(body)-21-idlen)
	}
	senderPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, errors.New("keyid is not on P-256")
	}
	shared, err := priv.ECDH(senderPub)
	if err != nil {
		return nil, err
	}
	info := append([]byte("WebPush: info\x00"), priv.PublicKey().Bytes()...)
	info = append(info, senderPub.Bytes()...)
	ikm, err := hkdf.Key(sha256.New, shared, auth, string(info), 32)
	if err != nil {
		return nil, err
	}
	cek, _ := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	nonce, _ := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, nonce, body[21+idlen:], nil)
	if err != nil {
		return nil, errors.New("record does not decrypt")
	}
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 || plain[i] != 0x02 {
		return nil, errors.New("last record lacks its 0x02 delimiter")
	}
	return plain[:i], nil
}
