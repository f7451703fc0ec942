// Package directory keeps the devices to ring for each callee, behind the
// Store interface, with an embedded SQLite implementation as the default.
package directory

import (
	"context"
	"errors"
	"time"
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
