// Package webpush is ringside's built-in Web Push plugin: it pushes each
// call to the callee's browsers (device kind "webpush") through their push
// services (RFC 8030), signed with VAPID (RFC 8292) and encrypted aes128gcm
// (RFC 8291) by github.com/SherClockHolmes/webpush-go. The message is the
// host's rendered payload (cc_param, sid, app_* at top level), which the
// page's service worker decrypts and hands to WebPlanetKit.
//
// A device's token is its subscription in the SDK's canonical JSON
// (sdk.WebPushSubscription.Token). Each Deliver is one attempt (the host
// owns retries), bounded by ctx and the delivery's deadline, whose time
// left is the push's TTL, with Urgency high and a Topic derived from the
// call's sid so that a re-sent push replaces one not yet delivered. Its
// outcome comes from one table, outcomes.
//
// A subscription's endpoint is a capability and its auth a secret: logs and
// errors name a device as ringside does (sdk.ShortToken: the endpoint's
// host and the last 4 characters of auth), and never carry the VAPID
// private key.
package webpush

import (
	"context"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	webpushgo "github.com/SherClockHolmes/webpush-go"

	"github.com/ringside/ringside/plugins/sdk"
)

// Version is the webpush plugin's version.
const Version = "1.0.0"

// MaxPayload is the largest message, in bytes, one aes128gcm record of
// 4096 bytes carries: the record less the 86-byte header (salt, record
// size, the sender's key), the 16-byte tag and the padding delimiter.
const MaxPayload = int(webpushgo.MaxRecordSize) - 86 - 16 - 1

// Info describes the webpush plugin: it delivers to devices of kind
// "webpush".
var Info = sdk.Info{Name: "webpush", Version: Version, DeviceKind: "webpush", MaxPayloadBytes: MaxPayload}

const (
	// attemptTimeout bounds an attempt whose ctx has no deadline (the SDK
	// always sets one from the delivery's deadline).
	attemptTimeout = 60 * time.Second
	// maxReason bounds the push service's answer quoted in a reason.
	maxReason = 200
	// maxLocation bounds the Location taken as the provider id.
	maxLocation = 512
	// maxDrain is how much of an answer is read, so the connection can be
	// reused.
	maxDrain = 64 << 10
	// topicLen is the Topic header's length: the header allows at most 32
	// characters of the URL-safe base64 alphabet.
	topicLen = 32
)

// Config is the webpush notifier's own attributes.
type Config struct {
	VAPIDPrivateKey string `ringside:"vapid_private_key,required,sensitive" help:"VAPID private key: base64url of the 32-byte P-256 scalar (ringside webpush-keys makes a pair); keep it in env() or file()"`
	VAPIDPublicKey  string `ringside:"vapid_public_key,required" help:"VAPID public key, base64url of the 65-byte uncompressed point: the applicationServerKey the page subscribes with"`
	Subject         string `ringside:"subject,required" help:"VAPID subject, how a push service reaches the sender: a mailto: address or an https: URL"`
}

// Plugin is the webpush plugin. Configure it once, then Deliver may be
// called concurrently.
type Plugin struct {
	now func() time.Time
	log *slog.Logger

	client     *http.Client
	privateKey string // base64url, unpadded
	publicKey  string // base64url, unpadded
	subscriber string // as webpush-go takes it: an address without "mailto:", or an https: URL
}

// New returns an unconfigured webpush plugin using the system's roots (and
// SSL_CERT_FILE) to verify push services.
func New() *Plugin {
	return &Plugin{now: time.Now, log: sdk.Logger(), client: newClient(nil)}
}

// newClient returns the client every push shares: pooled connections,
// HTTP/2 when the push service offers it, redirects never followed.
// Attempts are bounded by their ctx, so the client has no timeout.
func newClient(tr *http.Transport) *http.Client {
	if tr == nil {
		tr = sdk.PooledTransport()
	}
	return sdk.NoRedirectClient(tr)
}

// Configure checks the VAPID key pair and subject and keeps them.
func (p *Plugin) Configure(_ context.Context, cfg Config) sdk.Diagnostics {
	var diags sdk.Diagnostics
	priv, err := parsePrivateKey(cfg.VAPIDPrivateKey)
	if err != nil {
		diags.AddAttributeError("vapid_private_key", "%v", err)
	}
	pub, ok := sdk.DecodeBase64URL(cfg.VAPIDPublicKey)
	switch {
	case cfg.VAPIDPublicKey == "":
		diags.AddAttributeError("vapid_public_key", "must be set to the base64url public key the page subscribes with (applicationServerKey)")
	case !ok || len(pub) != 65 || pub[0] != 0x04:
		diags.AddAttributeError("vapid_public_key", "must be base64url of a 65-byte uncompressed P-256 public key")
	case priv != nil && string(priv.PublicKey().Bytes()) != string(pub):
		diags.AddAttributeError("vapid_public_key", "is not the public half of vapid_private_key")
	}
	subscriber, err := parseSubject(cfg.Subject)
	if err != nil {
		diags.AddAttributeError("subject", "%v", err)
	}
	if diags.HasError() {
		return diags
	}
	p.privateKey = base64.RawURLEncoding.EncodeToString(priv.Bytes())
	p.publicKey = base64.RawURLEncoding.EncodeToString(pub)
	p.subscriber = subscriber
	return nil
}

// parsePrivateKey reads a VAPID private key. Its errors never quote it.
func parsePrivateKey(s string) (*ecdh.PrivateKey, error) {
	const want = "must be base64url of a 32-byte P-256 private key (ringside webpush-keys makes a pair)"
	if s == "" {
		return nil, errors.New("must be set: " + strings.TrimPrefix(want, "must be "))
	}
	b, ok := sdk.DecodeBase64URL(s)
	if !ok || len(b) != 32 {
		return nil, errors.New(want)
	}
	k, err := ecdh.P256().NewPrivateKey(b)
	if err != nil {
		return nil, errors.New("is not a valid P-256 private key")
	}
	return k, nil
}

// parseSubject accepts a mailto: address or an https: URL, and returns the
// form webpush-go takes (which adds "mailto:" to anything not https:).
func parseSubject(s string) (string, error) {
	if addr, ok := strings.CutPrefix(s, "mailto:"); ok {
		if at := strings.IndexByte(addr, '@'); at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, " \t\r\n<>\"") {
			return "", errors.New("must be a mailto: address, e.g. mailto:ops@example.com")
		}
		return addr, nil
	}
	if strings.HasPrefix(s, "https:") {
		if _, err := sdk.ParseEndpoint(s, "https"); err != nil {
			return "", fmt.Errorf("as an https: URL %v", err)
		}
		return s, nil
	}
	return "", errors.New("must be a mailto: address or an https: URL where the push service can reach the sender")
}

// Topic is the Topic header of the pushes of the call sid: base64url of
// its SHA-256, cut to the header's 32 characters. A push service replaces
// an undelivered message with the same Topic, so a retried push of a call
// never rings twice.
func Topic(sid string) string {
	h := sha256.Sum256([]byte(sid))
	return base64.RawURLEncoding.EncodeToString(h[:])[:topicLen]
}

// Deliver makes one push of d to dev: one POST to its push service.
func (p *Plugin) Deliver(ctx context.Context, d *sdk.Delivery, dev sdk.Device) (string, error) {
	if p.privateKey == "" {
		return "", sdk.Permanent(errors.New("webpush is not configured"))
	}
	label := sdk.ShortToken(dev.Token)
	sub, err := sdk.ParseWebPushSubscription([]byte(dev.Token))
	if err != nil {
		p.log.Warn("webpush: device token refused, nothing sent", "device", label, "cause", err.Error())
		return "", sdk.Permanent(fmt.Errorf("device %s is not a webpush subscription: %w", label, err))
	}
	if _, err := ecdh.P256().NewPublicKey(sub.P256DH); err != nil {
		return "", sdk.Permanent(fmt.Errorf("device %s: keys.p256dh is not a point on P-256, nothing sent", label))
	}
	payload := d.PayloadJSON
	if len(payload) < 2 || payload[0] != '{' || payload[len(payload)-1] != '}' {
		return "", sdk.Permanent(errors.New("the rendered payload is not a JSON object"))
	}
	if len(payload) > MaxPayload {
		p.log.Warn("webpush: payload too large, nothing sent", "device", label, "bytes", len(payload), "limit", MaxPayload)
		return "", sdk.Permanent(fmt.Errorf("payload is %d bytes, over the %d bytes one encrypted Web Push record carries: shorten the notifier's payload (or app_svr_data)", len(payload), MaxPayload))
	}

	now := p.now()
	deadline := d.Deadline
	if dl, ok := ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	ttl := int(attemptTimeout / time.Second)
	if !deadline.IsZero() {
		left := deadline.Sub(now)
		if left <= 0 {
			return "", sdk.Retry(errors.New("delivery deadline passed, nothing sent"))
		}
		ttl = int(left / time.Second)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
	}

	// webpush-go appends its padding to the message it is given: hand it
	// a copy, never the host's payload.
	msg := append(make([]byte, 0, len(payload)+1), payload...)
	resp, err := webpushgo.SendNotificationWithContext(ctx, msg, &webpushgo.Subscription{
		Endpoint: sub.Endpoint,
		Keys: webpushgo.Keys{
			P256dh: base64.RawURLEncoding.EncodeToString(sub.P256DH),
			Auth:   base64.RawURLEncoding.EncodeToString(sub.Auth),
		},
	}, &webpushgo.Options{
		HTTPClient:      p.client,
		Subscriber:      p.subscriber,
		Topic:           Topic(d.Call.SID),
		TTL:             ttl,
		Urgency:         webpushgo.UrgencyHigh,
		VAPIDPublicKey:  p.publicKey,
		VAPIDPrivateKey: p.privateKey,
	})
	if err != nil {
		var ue *url.Error
		if !errors.As(err, &ue) {
			// Encryption or signing failed before anything was sent.
			return "", sdk.Permanent(fmt.Errorf("device %s: cannot encrypt or sign the push: %s", label, redact(err, sub.Endpoint)))
		}
		return "", p.report(outcomes[match(0)], nil, "", redact(err, sub.Endpoint), label)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, maxDrain))
	row := outcomes[match(resp.StatusCode)]
	if err := p.report(row, resp, reason(text, sub.Endpoint), "", label); err != nil {
		return "", err
	}
	return providerID(resp, dev, d), nil
}

// report logs an attempt's outcome and returns Deliver's error (nil for a
// delivered push). said is the service's answer, transportErr the failed
// round trip's cause when there was no answer.
func (p *Plugin) report(row rule, resp *http.Response, said, transportErr, label string) error {
	if row.act == deliver && !p.log.Enabled(context.Background(), row.level) {
		return nil
	}
	attrs := []any{"device", label}
	what := "no answer from the push service: " + transportErr
	if resp != nil {
		attrs = append(attrs, "status", resp.StatusCode)
		what = "push service answered " + sdk.StatusLine(resp.StatusCode)
	} else {
		attrs = append(attrs, "error", transportErr)
	}
	msg := fmt.Sprintf("%s for device %s", what, label)
	if row.cause != "" {
		msg += ": " + row.cause
		attrs = append(attrs, "cause", row.cause)
	}
	if said != "" && row.act != deliver {
		msg += " (the service said: " + said + ")"
		attrs = append(attrs, "said", said)
	}
	p.log.Log(context.Background(), row.level, "webpush: "+row.name, attrs...)

	switch row.act {
	case deliver:
		return nil
	case prune:
		return sdk.Gone(errors.New(msg), p.now())
	case fail:
		return sdk.Permanent(errors.New(msg))
	}
	if resp != nil {
		if after, ok := sdk.ParseRetryAfter(resp.Header.Get("Retry-After"), p.now()); ok {
			return sdk.RetryAfter(errors.New(msg), after)
		}
	}
	return sdk.Retry(errors.New(msg))
}

// providerID is the push service's Location (the message's URL) when it
// sends a usable one, else the device's idempotency id, else the
// delivery's id.
func providerID(resp *http.Response, dev sdk.Device, d *sdk.Delivery) string {
	if resp != nil {
		if loc := resp.Header.Get("Location"); loc != "" && len(loc) <= maxLocation && sdk.Visible(loc) {
			return loc
		}
	}
	if dev.IdempotencyID != "" {
		return dev.IdempotencyID
	}
	return d.ID
}

// reason is the push service's answer as a reason: printable, on one line,
// at most maxReason bytes, without the endpoint.
func reason(body []byte, endpoint string) string {
	s := strings.ToValidUTF8(string(body), "?")
	s = strings.ReplaceAll(s, endpoint, "(endpoint)")
	if u, err := url.Parse(endpoint); err == nil && len(u.Path) > 1 {
		s = strings.ReplaceAll(s, u.Path, "/…")
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' }), " ")
	if len(s) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// redact describes an error without the endpoint, which net/http's
// *url.Error quotes whole.
func redact(err error, endpoint string) string {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	msg := strings.ReplaceAll(err.Error(), endpoint, "(endpoint)")
	if u, perr := url.Parse(endpoint); perr == nil && len(u.Path) > 1 {
		msg = strings.ReplaceAll(msg, u.Path, "/…")
	}
	return msg
}
