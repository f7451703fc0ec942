package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/ringside/ringside/core/internal/directory"
)

// DefaultLastKnownUsers bounds the users LastKnown remembers.
const DefaultLastKnownUsers = 1_000_000

// LastKnown is the shared directory with a memory of what each user's
// lookup last answered, so that calls keep ringing while Redis is away: a
// lookup that fails (or is not tried, while Up says Redis does not answer)
// is answered from that memory, and fails only for a user this replica
// never looked up. A write through this replica forgets the user, so the
// memory is never older than the last successful lookup.
type LastKnown struct {
	directory.Forgetting
	// up reports whether Redis answers (a background check); nil: always
	// try.
	up  func() bool
	max int

	mu    sync.Mutex
	users map[[16]byte][]directory.Device
}

// NewLastKnown remembers up to max users' devices (DefaultLastKnownUsers
// when max <= 0) in front of s; up, when not nil, skips the round trip
// while Redis is known not to answer.
func NewLastKnown(s directory.Store, max int, up func() bool) *LastKnown {
	if max <= 0 {
		max = DefaultLastKnownUsers
	}
	l := &LastKnown{up: up, max: max, users: map[[16]byte][]directory.Device{}}
	l.Forgetting = directory.Forgetting{Store: s, Forget: l.forget}
	return l
}

// userHash identifies (serviceID, userID) without keeping the strings,
// which point into the request that carried them.
func userHash(serviceID, userID string) [16]byte {
	var buf [8 + 2*256]byte
	b := buf[:0]
	if n := 8 + len(serviceID) + len(userID); n > len(buf) {
		b = make([]byte, 0, n)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(serviceID)))
	b = append(b, serviceID...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(userID)))
	b = append(b, userID...)
	sum := sha256.Sum256(b)
	var k [16]byte
	copy(k[:], sum[:])
	return k
}

// Lookup implements directory.Store.
func (l *LastKnown) Lookup(ctx context.Context, serviceID, userID string) ([]directory.Device, error) {
	k := userHash(serviceID, userID)
	if l.up != nil && !l.up() {
		if devs, ok := l.last(k); ok {
			return devs, nil
		}
	}
	devs, err := l.Store.Lookup(ctx, serviceID, userID)
	if err != nil {
		if last, ok := l.last(k); ok {
			return last, nil
		}
		return nil, err
	}
	l.remember(k, devs)
	return devs, nil
}

func (l *LastKnown) last(k [16]byte) ([]directory.Device, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	devs, ok := l.users[k]
	return devs, ok
}

// remember keeps devs as k's last answer, unless it is that already; past
// max users, an arbitrary one is forgotten.
func (l *LastKnown) remember(k [16]byte, devs []directory.Device) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.users[k]; ok && slices.Equal(prev, devs) {
		return
	}
	if _, ok := l.users[k]; !ok && len(l.users) >= l.max {
		for other := range l.users {
			delete(l.users, other)
			break
		}
	}
	l.users[k] = slices.Clone(devs)
}

func (l *LastKnown) forget(serviceID, userID string) {
	k := userHash(serviceID, userID)
	l.mu.Lock()
	delete(l.users, k)
	l.mu.Unlock()
}
