// Package directory keeps the devices to ring for each callee, behind the
// Store interface, with an embedded SQLite implementation as the default.
package directory

import (
	"context"
	"errors"
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

// ShortToken shortens a device token for logs, errors and explain: a
// phone number (E.164, "+" and digits) keeps its first 3 and last 2
// characters ("+81…78", as the SMS plugin shows it); any other token keeps
// at most its first 6 bytes and at most a third of it, so a short token
// never shows whole.
func ShortToken(t string) string {
	if isPhone(t) && len(t) >= 9 {
		return t[:3] + "…" + t[len(t)-2:]
	}
	n := min(6, len(t)/3)
	for n > 0 && !utf8.RuneStart(t[n]) {
		n--
	}
	return t[:n] + "…"
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
