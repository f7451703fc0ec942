// Package directory keeps the devices to ring for each callee, behind the
// Store interface, with an embedded SQLite implementation as the default.
package directory

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// Device is one device of a user.
type Device struct {
	Kind      string
	Token     string
	UpdatedAt time.Time
}

// ErrNotFound is returned when a device to delete does not exist.
var ErrNotFound = errors.New("device not found")

// Store is where devices live. Implementations are safe for concurrent use.
type Store interface {
	// Lookup returns the devices of (serviceID, userID), ordered by kind then
	// token; none for an unknown user.
	Lookup(ctx context.Context, serviceID, userID string) ([]Device, error)
	// Put inserts the device or refreshes its UpdatedAt to now.
	Put(ctx context.Context, serviceID, userID, kind, token string, now time.Time) error
	// Delete removes one device; ErrNotFound if absent.
	Delete(ctx context.Context, serviceID, userID, kind, token string) error
	// DeleteUser removes every device of the user.
	DeleteUser(ctx context.Context, serviceID, userID string) error
	// Prune removes the device when its UpdatedAt is before goneAt (or
	// goneAt is zero) and reports whether it did: a token the provider saw
	// become invalid is kept if it was registered again since.
	Prune(ctx context.Context, serviceID, userID, kind, token string, goneAt time.Time) (bool, error)
	// Close releases the store.
	Close() error
}

// ShortToken shortens a device token for logs, errors and explain, as the
// plugin SDK does, so ringside and its plugins shorten tokens alike (a
// test in core/e2e holds the two together): a phone number (E.164, "+"
// and at least 8 digits) keeps its first 3 and last 2 characters
// ("+81…78"); a Web Push subscription in its canonical JSON shows as
// "webpush:", its endpoint's host and the last 4 characters of its auth
// secret ("webpush:fcm.googleapis.com…Xw2Q"), never the endpoint's path,
// which is what lets anyone push to the browser; any other token keeps a
// prefix and a suffix, together at most a third of it: at most 6 bytes
// first and 4 last ("a1b2c3…7f8e" of a 64-hex APNs token), fewer for a
// short token, cut at character boundaries, so two tokens stay apart and
// a short one never shows whole.
func ShortToken(t string) string {
	if len(t) >= 9 && t[0] == '+' && strings.Trim(t[1:], "0123456789") == "" {
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

// shortWebPush shortens t as a Web Push subscription in its canonical
// JSON, {"endpoint":"https://HOST…","keys":{…,"auth":"AUTH"}} with AUTH 22
// base64url characters, to "webpush:HOST…" and AUTH's last 4 characters.
// ok is false for any other token. The plugin SDK's ShortToken keeps the
// same rule.
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
	for i := 0; i < len(auth); i++ {
		if c := auth[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "", false
		}
	}
	n := 0
	for n < len(rest) && n <= maxHost {
		c := rest[n]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			break
		}
		n++
	}
	if n == 0 || n > maxHost || (rest[n] != '/' && rest[n] != '?' && rest[n] != '"') {
		return "", false
	}
	return "webpush:" + rest[:n] + "…" + auth[authLen-4:], true
}
