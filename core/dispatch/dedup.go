package dispatch

import (
	"sync"
	"time"
)

// Dedup remembers accepted callbacks for a window, so a repeated
// (sid, to_service_id, to_user_id) is answered as a duplicate. It keeps two
// generations of keys, so memory is bounded by two windows of traffic and no
// goroutine sweeps it. It is shared across config reloads.
type Dedup struct {
	mu        sync.Mutex
	window    time.Duration
	cur, prev map[dedupKey]time.Time
	rotated   time.Time
}

type dedupKey struct{ sid, service, user string }

// NewDedup returns a Dedup for the window.
func NewDedup(window time.Duration) *Dedup {
	return &Dedup{window: window, cur: map[dedupKey]time.Time{}}
}

// SetWindow changes the window (on reload).
func (d *Dedup) SetWindow(w time.Duration) {
	d.mu.Lock()
	d.window = w
	d.mu.Unlock()
}

// Seen reports whether the key was claimed inside the window before now.
func (d *Dedup) Seen(sid, service, user string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen(dedupKey{sid, service, user}, now)
}

// Claim records the key at now and reports true, or reports false when it
// was already claimed inside the window.
func (d *Dedup) Claim(sid, service, user string, now time.Time) bool {
	k := dedupKey{sid, service, user}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen(k, now) {
		return false
	}
	if now.Sub(d.rotated) >= d.window {
		d.prev, d.cur, d.rotated = d.cur, make(map[dedupKey]time.Time, len(d.cur)), now
	}
	d.cur[k] = now
	return true
}

// Forget removes a claim (a callback that could not be accepted after all).
func (d *Dedup) Forget(sid, service, user string) {
	k := dedupKey{sid, service, user}
	d.mu.Lock()
	delete(d.cur, k)
	delete(d.prev, k)
	d.mu.Unlock()
}

func (d *Dedup) seen(k dedupKey, now time.Time) bool {
	if t, ok := d.cur[k]; ok && now.Sub(t) < d.window {
		return true
	}
	if t, ok := d.prev[k]; ok && now.Sub(t) < d.window {
		return true
	}
	return false
}
