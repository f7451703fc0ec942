// Package webhook is ringside's built-in webhook plugin: one JSON POST per
// callback to the app server's URL, signed with Standard Webhooks when a
// secret is configured.
//
// The plugin has no device kind, so the host calls Deliver once per callback
// with a zero Device. Each Deliver is one attempt; the host owns retries.
// An attempt ends in one of these outcomes:
//
//   - 2xx: delivered. The provider id is the response's X-Request-Id when the
//     receiver sends a usable one (printable ASCII, at most 128 bytes), else
//     the webhook-id, which is the host's delivery id.
//   - 408, 429, 5xx, a timeout or a transport error: retry, no sooner than the
//     response's Retry-After (delta-seconds or HTTP-date) when it has one.
//   - a 3xx: permanent; redirects are not followed, since a signed request
//     must not be replayed to a host that was not configured.
//   - any other 4xx: permanent ("webhook answered 4xx").
//
// Every request carries webhook-id (the delivery id, the same across retries)
// and webhook-timestamp, so a receiver can drop a retried duplicate even
// without a secret; webhook-signature is added when secret is set. Errors
// name the URL as scheme://host/path only: its userinfo and query may hold
// credentials. The secret and header values never appear in errors.
package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/ringside/ringside/plugins/sdk"
)

// Version is the webhook plugin's version.
const Version = "1.0.0"

// Info describes the webhook plugin: no device kind, one POST per callback.
var Info = sdk.Info{Name: "webhook", Version: Version, DeviceKind: ""}

// DefaultTimeout is the per-attempt timeout when the notifier sets none.
const DefaultTimeout = 5 * time.Second

// The Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

const (
	secretPrefix = "whsec_"
	userAgent    = "ringside-webhook/" + Version
	// maxDrain is how much of a response body is read (and discarded) so the
	// connection can be reused.
	maxDrain = 64 << 10
	// maxRequestID bounds the X-Request-Id taken as the provider id.
	maxRequestID = 128
)

// Config is the webhook notifier's own attributes.
type Config struct {
	URL     string            `ringside:"url,required" help:"absolute http or https URL the call is POSTed to; userinfo and query are never logged"`
	Secret  string            `ringside:"secret,sensitive" help:"Standard Webhooks signing secret: standard base64, padding optional, with or without whsec_ before it; when set, requests carry webhook-signature"`
	Headers map[string]string `ringside:"headers" help:"extra request headers; may not set Content-Type, Content-Length, Host, Connection, Transfer-Encoding or webhook-*"`
	Timeout time.Duration     `ringside:"timeout" help:"per-attempt timeout (default 5s), capped by the time left to the delivery's deadline"`
}

// Plugin is the webhook plugin. Configure it once, then Deliver may be called
// concurrently.
type Plugin struct {
	client *http.Client
	now    func() time.Time

	url     string // as configured, credentials included
	safeURL string // scheme://host/path, for errors
	signer  *standardwebhooks.Webhook
	headers http.Header
	timeout time.Duration
}

// New returns an unconfigured webhook plugin with its shared HTTP client.
func New() *Plugin {
	return &Plugin{client: newClient(), now: time.Now}
}

// newClient returns the client every delivery shares: keep-alives on, many
// idle connections per host (deliveries to one app server run in parallel),
// the proxy taken from the environment, redirects never followed. Per-request
// contexts bound each attempt, so the client itself has no timeout.
func newClient() *http.Client {
	t := sdk.PooledTransport()
	t.ExpectContinueTimeout = 0
	return sdk.NoRedirectClient(t)
}

// Configure checks and keeps the notifier's attributes.
func (p *Plugin) Configure(_ context.Context, cfg Config) sdk.Diagnostics {
	var diags sdk.Diagnostics

	u, err := parseURL(cfg.URL)
	if err != nil {
		diags.AddAttributeError("url", "%v", err)
	}

	var signer *standardwebhooks.Webhook
	if cfg.Secret != "" {
		key, err := decodeSecret(cfg.Secret)
		if err != nil {
			diags.AddAttributeError("secret", "%v", err)
		} else {
			signer, _ = standardwebhooks.NewWebhookRaw(key)
		}
	}

	headers, err := checkHeaders(cfg.Headers)
	if err != nil {
		diags.AddAttributeError("headers", "%v", err)
	}

	timeout := cfg.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		diags.AddAttributeError("timeout", "must be greater than 0, got %s", timeout)
	}

	if diags.HasError() {
		return diags
	}
	p.url = cfg.URL
	p.safeURL = redact(u)
	p.signer = signer
	p.headers = headers
	p.timeout = timeout
	return nil
}

// parseURL accepts an absolute http or https URL with a host. Its errors
// never quote the URL, which may carry credentials.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("must be set to an absolute http or https URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("must be an absolute http or https URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("must name a host")
	}
	if u.Fragment != "" {
		return nil, errors.New("must not have a fragment")
	}
	return u, nil
}

// redact returns u as scheme://host/path: no userinfo, query or fragment.
func redact(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return r.String()
}

// decodeSecret returns the HMAC key of a Standard Webhooks secret, in every
// form the reference libraries accept: the whsec_ prefix is optional, and so
// is base64 padding (at most two "="). The alphabet is standard base64 only:
// the reference libraries refuse the URL-safe one, so a receiver could never
// verify a key written in it. Fewer than four base64 characters are refused,
// as the reference does. Its errors never quote the secret.
func decodeSecret(secret string) ([]byte, error) {
	b64 := strings.TrimPrefix(secret, secretPrefix)
	unpadded := strings.TrimRight(b64, "=")
	switch {
	case b64 == "":
		return nil, errors.New("has an empty key: give the base64 key, with or without \"whsec_\" before it")
	case strings.ContainsAny(b64, "-_"):
		return nil, errors.New("uses the URL-safe base64 alphabet (- or _); Standard Webhooks secrets are standard base64 (+ and /), which receivers' libraries require")
	case strings.ContainsFunc(b64, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return nil, errors.New("contains white space or a control character (check how it is read, e.g. a trailing newline from file())")
	case len(b64)-len(unpadded) > 2:
		return nil, errors.New("has more than two \"=\" of base64 padding")
	case len(b64) < 4:
		return nil, errors.New("is too short: Standard Webhooks libraries refuse a key of fewer than 4 base64 characters")
	}
	key, err := base64.RawStdEncoding.DecodeString(unpadded)
	if err != nil {
		return nil, errors.New("is not valid standard base64 (with or without \"whsec_\" before it)")
	}
	if len(key) == 0 {
		return nil, errors.New("has an empty key: give the base64 key, with or without \"whsec_\" before it")
	}
	return key, nil
}

// reservedHeader reports whether the plugin owns the header name
// (canonical form).
func reservedHeader(name string) bool {
	switch name {
	case "Content-Type", "Content-Length", "Host", "Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade":
		return true
	}
	return strings.HasPrefix(name, "Webhook-")
}

// checkHeaders validates the user's headers and returns them canonicalised.
// Its errors name the header but never quote a value, which may be a token.
func checkHeaders(in map[string]string) (http.Header, error) {
	h := make(http.Header, len(in))
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(in)) {
		value := in[name]
		switch {
		case !validToken(name):
			errs = append(errs, fmt.Errorf("%q is not a valid header name", name))
		case reservedHeader(http.CanonicalHeaderKey(name)):
			errs = append(errs, fmt.Errorf("%q is set by the plugin and may not be overridden", name))
		case !validValue(value):
			errs = append(errs, fmt.Errorf("the value of %q contains a control character", name))
		default:
			h.Set(name, value)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return h, nil
}

// validToken reports whether s is an RFC 9110 token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validValue reports whether s is a header value without control
// characters (tab allowed).
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// body is the JSON the webhook POSTs, keys in this order.
type body struct {
	SID           string          `json:"sid"`
	FromServiceID string          `json:"from_service_id"`
	FromUserID    string          `json:"from_user_id"`
	ToServiceID   string          `json:"to_service_id"`
	ToUserID      string          `json:"to_user_id"`
	Type          string          `json:"type"`
	CCParam       string          `json:"cc_param"`
	AppSvrData    string          `json:"app_svr_data"`
	Route         string          `json:"route"`
	Payload       json.RawMessage `json:"payload"`
}

// encode returns the request body for d. Strings are not HTML-escaped, so
// cc_param's `+`, `/` and `=` and every other byte arrive as sent; the
// payload is embedded as rendered, JSON types kept.
func encode(d *sdk.Delivery) ([]byte, error) {
	payload := json.RawMessage(d.PayloadJSON)
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = json.RawMessage("{}")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(body{
		SID:           d.Call.SID,
		FromServiceID: d.Call.FromServiceID,
		FromUserID:    d.Call.FromUserID,
		ToServiceID:   d.Call.ToServiceID,
		ToUserID:      d.Call.ToUserID,
		Type:          d.Call.Type,
		CCParam:       d.Call.Param,
		AppSvrData:    d.Call.AppSvrData,
		Route:         d.Route,
		Payload:       payload,
	})
	if err != nil {
		return nil, errors.New("encode body: the rendered payload is not valid JSON")
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Deliver makes one POST of d to the configured URL. dev is ignored: the
// webhook has no device kind.
func (p *Plugin) Deliver(ctx context.Context, d *sdk.Delivery, _ sdk.Device) (string, error) {
	if p.url == "" {
		return "", sdk.Permanent(errors.New("webhook is not configured"))
	}
	if d.ID == "" {
		return "", sdk.Permanent(errors.New("delivery has no id"))
	}
	payload, err := encode(d)
	if err != nil {
		return "", sdk.Permanent(err)
	}

	// The attempt's timeout is the configured one, capped by the time left
	// to the deadline (ctx's or the delivery's, whichever comes first).
	now := p.now()
	timeout := p.timeout
	deadline := d.Deadline
	if dl, ok := ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	if !deadline.IsZero() {
		left := deadline.Sub(now)
		if left <= 0 {
			return "", sdk.Retry(fmt.Errorf("webhook POST %s: delivery deadline passed, nothing sent", p.safeURL))
		}
		timeout = min(timeout, left)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(payload))
	if err != nil {
		return "", sdk.Permanent(fmt.Errorf("webhook POST %s: build request failed", p.safeURL))
	}
	for name, values := range p.headers {
		req.Header[name] = values
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	req.Header.Set("Content-Type", "application/json")
	ts := now
	req.Header.Set(HeaderID, d.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	if p.signer != nil {
		sig, err := p.signer.Sign(d.ID, ts, payload)
		if err != nil {
			return "", sdk.Permanent(fmt.Errorf("webhook POST %s: sign: %w", p.safeURL, err))
		}
		req.Header.Set(HeaderSignature, sig)
	}

	resp, err := p.client.Do(req)
	if err != nil {
		return "", p.transportError(ctx, timeout, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))

	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		if id := resp.Header.Get("X-Request-Id"); usableRequestID(id) {
			return id, nil
		}
		return d.ID, nil
	case code >= 300 && code < 400:
		return "", sdk.Permanent(fmt.Errorf("webhook POST %s: webhook answered %s, a redirect, which is not followed; configure the final URL",
			p.safeURL, sdk.StatusLine(code)))
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		err := fmt.Errorf("webhook POST %s: webhook answered %s", p.safeURL, sdk.StatusLine(code))
		if after, ok := sdk.ParseRetryAfter(resp.Header.Get("Retry-After"), p.now()); ok {
			return "", sdk.RetryAfter(err, after)
		}
		return "", sdk.Retry(err)
	case code >= 400:
		return "", sdk.Permanent(fmt.Errorf("webhook POST %s: webhook answered %s", p.safeURL, sdk.StatusLine(code)))
	default: // 1xx that net/http did not consume
		return "", sdk.Retry(fmt.Errorf("webhook POST %s: webhook answered %d", p.safeURL, code))
	}
}

// transportError classifies a failed round trip as a retry. The *url.Error
// net/http returns quotes the full URL, so only its cause is kept.
func (p *Plugin) transportError(ctx context.Context, timeout time.Duration, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return sdk.Retry(fmt.Errorf("webhook POST %s: timed out after %s: %w", p.safeURL, timeout.Round(time.Millisecond), context.DeadlineExceeded))
	}
	return sdk.Retry(fmt.Errorf("webhook POST %s: %w", p.safeURL, err))
}

// usableRequestID reports whether a response's X-Request-Id can serve as the
// provider id: printable ASCII, at most maxRequestID bytes.
func usableRequestID(id string) bool {
	return id != "" && len(id) <= maxRequestID && sdk.Visible(id)
}
