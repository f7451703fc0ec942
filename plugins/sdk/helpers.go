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

// ShortToken shortens a device token for logs and error reasons, as
// ringside itself does: a phone number (E.164, "+" and at least 8 digits)
// keeps its first 3 and last 2 characters ("+81…78"); any other token
// keeps a prefix and a suffix, together at most a third of it: at most 6
// bytes first and 4 last ("a1b2c3…7f8e" of a 64-hex APNs token), fewer for
// a short token, cut at character boundaries, so two tokens stay apart and
// a short one never shows whole.
func ShortToken(t string) string {
	if isPhone(t) && len(t) >= 9 {
		return t[:3] + "…" + t[len(t)-2:]
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
