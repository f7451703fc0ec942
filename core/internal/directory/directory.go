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
// ("+81…78"); any other token keeps a prefix and a suffix, together at
// most a third of it: at most 6 bytes first and 4 last ("a1b2c3…7f8e" of
// a 64-hex APNs token), fewer for a short token, cut at character
// boundaries, so two tokens stay apart and a short one never shows whole.
func ShortToken(t string) string {
	if len(t) >= 9 && t[0] == '+' && strings.Trim(t[1:], "0123456789") == "" {
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
