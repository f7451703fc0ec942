package sdk

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseRetryAfter reads an HTTP Retry-After value, delta-seconds or an
// HTTP-date, relative to now; a date in the past means "retry now" (0,
// true). ok is false for an absent or unreadable value. Use it with
// RetryAfter.
func ParseRetryAfter(v string, now time.Time) (after time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// StatusLine is an HTTP status as a reason quotes it: the code and its
// text ("503 Service Unavailable"), or "(unknown status)" for a code
// net/http has no text for.
func StatusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code) + " (unknown status)"
}

// Visible reports whether s is visible ASCII only (no space, control or
// non-ASCII byte): a header value safe to keep as a provider id or quote in
// a reason.
func Visible(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// ShortToken shortens a device token for logs and error reasons. Ringside
// shortens tokens with it too, so an operator can follow one device across
// ringside's logs and its plugins'. A phone number (E.164, "+" and at
// least 8 digits) keeps its first 3 and last 2 characters ("+81…78"); a Web Push
// subscription's Token shows as "webpush:", its endpoint's host and the
// last 4 characters of its auth secret ("webpush:fcm.googleapis.com…Xw2Q"),
// never the endpoint's path, which is what lets anyone push to the
// browser; any other token keeps a prefix and a suffix, together at most a
// third of it: at most 6 bytes first and 4 last ("a1b2c3…7f8e" of a 64-hex
// APNs token), fewer for a short token, cut at character boundaries, so
// two tokens stay apart and a short one never shows whole.
func ShortToken(t string) string {
	if isPhone(t) && len(t) >= 9 {
		return t[:3] + "…" + t[len(t)-2:]
	}
	if s, ok := shortWebPush(t); ok {
		return s
	}
	shown := len(t) / 3
	s := min(4, shown/3)
	p := min(6, shown-s)
	for p > 0 && !utf8.RuneStart(t[p]) {
		p--
	}
	i := len(t) - s
	for i < len(t) && !utf8.RuneStart(t[i]) {
		i++
	}
	return t[:p] + "…" + t[i:]
}

// shortWebPush shortens t as a Web Push subscription's Token,
// {"endpoint":"https://HOST…","keys":{…,"auth":"AUTH"}} with AUTH 22
// base64url characters, to "webpush:HOST…" and AUTH's last 4 characters.
// ok is false for any other token.
func shortWebPush(t string) (short string, ok bool) {
	const (
		prefix  = `{"endpoint":"https://`
		authKey = `","auth":"`
		suffix  = `"}}`
		authLen = 22  // 16 bytes, unpadded base64url
		maxHost = 255 // a DNS name, a port, an IPv6 literal
	)
	rest, ok := strings.CutPrefix(t, prefix)
	if !ok || !strings.HasSuffix(rest, suffix) {
		return "", false
	}
	head := rest[:len(rest)-len(suffix)]
	if len(head) < len(authKey)+authLen || head[len(head)-authLen-len(authKey):len(head)-authLen] != authKey {
		return "", false
	}
	auth := head[len(head)-authLen:]
	if strings.Trim(auth, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return "", false
	}
	n := 0
	for n < len(rest) && n <= maxHost && isHostByte(rest[n]) {
		n++
	}
	if n == 0 || n > maxHost || (rest[n] != '/' && rest[n] != '?' && rest[n] != '"') {
		return "", false
	}
	return "webpush:" + rest[:n] + "…" + auth[authLen-4:], true
}

// isHostByte reports whether c may appear in a URL's host and port: a DNS
// name, an IPv4 address or a bracketed IPv6 one.
func isHostByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '-' || c == ':' || c == '[' || c == ']'
}

func isPhone(t string) bool {
	if len(t) < 2 || t[0] != '+' {
		return false
	}
	for i := 1; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return false
		}
	}
	return true
}

// PooledTransport returns the HTTP transport a plugin's deliveries share:
// the proxy from the environment, 5 s dial and TLS handshake timeouts, 30 s
// TCP keep-alives, HTTP/2 when the server offers it, and up to 1024 idle
// connections, 256 per host (deliveries run in parallel). Each attempt is
// bounded by its ctx, so there is no overall timeout. Wrap it with
// Transport for client spans.
func PooledTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 5 * time.Second
	t.ForceAttemptHTTP2 = true
	return t
}
