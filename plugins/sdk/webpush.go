package sdk

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
)

// MaxWebPushEndpoint is the longest push service endpoint, in bytes, that
// ParseWebPushSubscription accepts.
const MaxWebPushEndpoint = 2048

// WebPushSubscription is a browser's push subscription: where its push
// service takes messages (Endpoint) and the keys that encrypt them for the
// browser: P256DH, its uncompressed P-256 public key (65 bytes, starting
// with 0x04), and Auth, its 16-byte authentication secret.
type WebPushSubscription struct {
	Endpoint string
	P256DH   []byte
	Auth     []byte
}

// WebPushSubscriptionError is the error ParseWebPushSubscription returns.
// Field names what is wrong: "endpoint", "keys.p256dh", "keys.auth", or
// "body" when the input is not a subscription object at all. Its text never
// quotes the input: an endpoint is a capability and auth a secret.
type WebPushSubscriptionError struct {
	Field  string
	Reason string // reads after Field: "must be an absolute https URL"
}

func (e *WebPushSubscriptionError) Error() string { return e.Field + " " + e.Reason }

// ParseWebPushSubscription reads a browser's subscription JSON, as
// PushSubscription.toJSON returns it:
//
//	{"endpoint":"https://…","keys":{"p256dh":"…","auth":"…"}}
//
// Other members (expirationTime) are ignored. The endpoint must be an
// absolute https URL with a host, without userinfo or fragment, of at most
// MaxWebPushEndpoint bytes; p256dh and auth are base64url, padded or not,
// and must decode to an uncompressed P-256 point and to 16 bytes. Errors
// are *WebPushSubscriptionError.
func ParseWebPushSubscription(b []byte) (WebPushSubscription, error) {
	var in struct {
		Endpoint *string `json:"endpoint"`
		Keys     *struct {
			P256DH *string `json:"p256dh"`
			Auth   *string `json:"auth"`
		} `json:"keys"`
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return WebPushSubscription{}, subErr("body", "must be a JSON object")
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return WebPushSubscription{}, subErr("body", "must be a subscription JSON object")
	}
	var s WebPushSubscription
	if in.Endpoint == nil {
		return s, subErr("endpoint", "is required")
	}
	if err := checkPushEndpoint(*in.Endpoint); err != nil {
		return s, err
	}
	s.Endpoint = *in.Endpoint
	if in.Keys == nil || in.Keys.P256DH == nil {
		return s, subErr("keys.p256dh", "is required")
	}
	p, ok := DecodeBase64URL(*in.Keys.P256DH)
	switch {
	case !ok:
		return s, subErr("keys.p256dh", "must be base64url")
	case len(p) != 65 || p[0] != 0x04:
		return s, subErr("keys.p256dh", "must be an uncompressed P-256 public key (65 bytes starting with 0x04)")
	}
	if in.Keys.Auth == nil {
		return s, subErr("keys.auth", "is required")
	}
	a, ok := DecodeBase64URL(*in.Keys.Auth)
	switch {
	case !ok:
		return s, subErr("keys.auth", "must be base64url")
	case len(a) != 16:
		return s, subErr("keys.auth", "must decode to 16 bytes")
	}
	s.P256DH, s.Auth = p, a
	return s, nil
}

// Token is s in its canonical form, the device token of a webpush device:
// compact JSON {"endpoint":E,"keys":{"p256dh":P,"auth":A}} with the members
// in that order and P and A unpadded base64url. Two subscriptions with the
// same endpoint and keys have the same Token however the browser spelled
// them, and ParseWebPushSubscription(Token()) gives s back.
func (s WebPushSubscription) Token() string {
	type keys struct {
		P256DH string `json:"p256dh"`
		Auth   string `json:"auth"`
	}
	out, err := json.Marshal(struct {
		Endpoint string `json:"endpoint"`
		Keys     keys   `json:"keys"`
	}{s.Endpoint, keys{
		base64.RawURLEncoding.EncodeToString(s.P256DH),
		base64.RawURLEncoding.EncodeToString(s.Auth),
	}})
	if err != nil { // strings only: cannot fail
		panic(err)
	}
	return string(out)
}

func checkPushEndpoint(raw string) error {
	if len(raw) > MaxWebPushEndpoint {
		return subErr("endpoint", "must be at most 2048 bytes")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return subErr("endpoint", "is not a valid URL")
	case u.Scheme != "https" || u.Opaque != "":
		return subErr("endpoint", "must be an absolute https URL")
	case u.Hostname() == "":
		return subErr("endpoint", "must name a host")
	case u.User != nil:
		return subErr("endpoint", "must not carry credentials")
	case strings.Contains(raw, "#"):
		return subErr("endpoint", "must not have a fragment")
	}
	return nil
}

// DecodeBase64URL decodes s, base64url with or without its padding, as
// browsers and push libraries write Web Push keys.
func DecodeBase64URL(s string) ([]byte, bool) {
	enc := base64.RawURLEncoding
	if strings.HasSuffix(s, "=") {
		enc = base64.URLEncoding
	}
	b, err := enc.Strict().DecodeString(s)
	return b, err == nil
}

func subErr(field, reason string) error {
	return &WebPushSubscriptionError{Field: field, Reason: reason}
}
