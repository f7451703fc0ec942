package directory

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is an in-memory Store for tests of other packages. It has the
// semantics of SQLite, including the precision of UpdatedAt.
type Memory struct {
	mu    sync.RWMutex
	users map[userKey][]Device // each sorted by kind, then token
}

type userKey struct{ serviceID, userID string }

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory() *Memory {
	return &Memory{users: make(map[userKey][]Device)}
}

// Lookup implements Store.
func (m *Memory) Lookup(ctx context.Context, serviceID, userID string) ([]Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.users[userKey{serviceID, userID}]), nil
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, serviceID, userID, kind, token string, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	at := time.Unix(0, UnixNano(now)).UTC() // what SQLite keeps
	k := userKey{serviceID, userID}
	m.mu.Lock()
	defer m.mu.Unlock()
	devs := m.users[k]
	i, found := find(devs, kind, token)
	if found {
		devs[i].UpdatedAt = at
		return nil
	}
	m.users[k] = slices.Insert(devs, i, Device{Kind: kind, Token: token, UpdatedAt: at})
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, serviceID, userID, kind, token string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.remove(userKey{serviceID, userID}, kind, token, func(Device) bool { return true }) {
		return ErrNotFound
	}
	return nil
}

// DeleteUser implements Store.
func (m *Memory) DeleteUser(ctx context.Context, serviceID, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.users, userKey{serviceID, userID})
	return nil
}

// Prune implements Store.
func (m *Memory) Prune(ctx context.Context, serviceID, userID, kind, token string, goneAt time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	bound := UnixNano(goneAt)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.remove(userKey{serviceID, userID}, kind, token, func(d Device) bool {
		return goneAt.IsZero() || d.UpdatedAt.UnixNano() < bound
	}), nil
}

// Close implements Store; a closed Memory keeps working.
func (m *Memory) Close() error { return nil }

// remove deletes the device when ok accepts it; m.mu must be held.
func (m *Memory) remove(k userKey, kind, token string, ok func(Device) bool) bool {
	devs := m.users[k]
	i, found := find(devs, kind, token)
	if !found || !ok(devs[i]) {
		return false
	}
	if len(devs) == 1 {
		delete(m.users, k)
		return true
	}
	m.users[k] = slices.Delete(devs, i, i+1)
	return true
}

// find returns where (kind, token) is, or would be inserted, in devs.
func find(devs []Device, kind, token string) (int, bool) {
	return slices.BinarySearchFunc(devs, Device{Kind: kind, Token: token}, func(a, b Device) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Token, b.Token))
	})
}
