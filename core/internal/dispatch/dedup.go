package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/plan"
)

// Dedup remembers accepted callbacks for a window, so a repeated
// (sid, to_service_id, to_user_id) is answered as a duplicate; sids are
// compared regardless of case. It keeps two
// generations of keys, so memory is bounded by two windows of traffic and no
// goroutine sweeps it. It is shared across config reloads.
type Dedup struct {
	mu        sync.Mutex
	window    time.Duration
	cur, prev map[dedupKey]int64 // unix nanoseconds of the claim
	rotated   time.Time
}

// dedupKey is a hash of (sid, service, user): 16 bytes per entry that pin
// nothing (the strings point into the request's whole query).
type dedupKey [16]byte

// keyOf hashes the length-prefixed sid, service and user. The sid is
// folded to lower case: LINE sends its hex digits in either case,
// and a UUID in upper then in lower case is one call. The bytes are laid
// out on the stack for ids of the default bound, so no allocation.
func keyOf(sid, service, user string) dedupKey {
	var buf [3*4 + 36 + 2*256]byte
	b := buf[:0]
	if n := 3*4 + len(sid) + len(service) + len(user); n > len(buf) {
		b = make([]byte, 0, n)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(sid)))
	for i := 0; i < len(sid); i++ {
		c := sid[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(service)))
	b = append(b, service...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(user)))
	b = append(b, user...)
	sum := sha256.Sum256(b)
	var k dedupKey
	copy(k[:], sum[:])
	return k
}

// NewDedup returns a Dedup for the window.
func NewDedup(window time.Duration) *Dedup {
	return &Dedup{window: window, cur: map[dedupKey]int64{}}
}

// Window is the dedup window.
func (d *Dedup) Window() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.window
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
	return d.seen(keyOf(sid, service, user), now)
}

// Claim records the key at now and reports true, or reports false when it
// was already claimed inside the window.
func (d *Dedup) Claim(sid, service, user string, now time.Time) bool {
	k := keyOf(sid, service, user)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen(k, now) {
		return false
	}
	if now.Sub(d.rotated) >= d.window {
		d.prev, d.cur, d.rotated = d.cur, make(map[dedupKey]int64, len(d.cur)), now
	}
	d.cur[k] = now.UnixNano()
	return true
}

// Forget removes a claim (a callback that could not be accepted after all).
func (d *Dedup) Forget(sid, service, user string) {
	k := keyOf(sid, service, user)
	d.mu.Lock()
	delete(d.cur, k)
	delete(d.prev, k)
	d.mu.Unlock()
}

// claimed is what claim decided: won, and when the plan delivers, the
// journal key and record of its work; recorded when the record went to
// Redis with the cross-replica claim (else the journal keeps it).
type claimed struct {
	won, recorded bool
	key           string
	data          []byte
}

// claim claims the callback, locally first, then across replicas. The
// plan's record is encoded only for a callback that won the local claim
// and delivers, and it goes with the cross-replica claim when there is one.
func (d *Dispatcher) claim(ctx context.Context, c *callback.Call, pl *plan.Plan, sid, service, user string) (claimed, error) {
	if !d.dedup.Claim(sid, service, user, d.now()) {
		return claimed{}, nil
	}
	var cl claimed
	var rec *journal.Entry
	if pl.Status == callback.StatusAccepted {
		cl.key = newID()
		if d.journal != nil {
			var err error
			if cl.data, err = encodeRecord(pl); err != nil {
				d.dedup.Forget(sid, service, user)
				return claimed{}, err
			}
			if d.shared != nil {
				rec = &journal.Entry{Key: cl.key, Deadline: pl.Deadline(), Data: cl.data}
			}
		}
	}
	cl.won, cl.recorded = d.claimShared(ctx, c, sid, service, user, rec)
	return cl, nil
}

// claimShared claims the callback's key across replicas, when there are
// some: it reports false when another replica claimed it first. When rec
// is not nil and the claim is won, rec is recorded with it as this
// replica's pending work (recorded is then true), in the same round trip.
// A Redis known to be away (SharedUp), or that fails or does not answer
// within SharedDedupTimeout, leaves the decision to the local claim
// already made, and the work to the local journal (counted; a failure while
// Redis is thought up is logged once a second).
func (d *Dispatcher) claimShared(ctx context.Context, c *callback.Call, sid, service, user string, rec *journal.Entry) (won, recorded bool) {
	if d.shared == nil {
		return true, false
	}
	if d.up != nil && !d.up() {
		// Known to be away: said once by the check, not per call.
		d.metrics.SharedDedupErrors.Inc()
		return true, false
	}
	cctx, cancel := context.WithTimeout(ctx, SharedDedupTimeout)
	defer cancel()
	won, err := d.shared.Claim(cctx, keyOf(sid, service, user), d.dedup.Window(), rec)
	if err != nil {
		d.metrics.SharedDedupErrors.Inc()
		if n, ok := d.sharedErrs.Allow(d.now()); ok {
			d.log.WarnContext(ctx, "cross-replica dedup failed; this replica's own dedup decides, and its journal keeps the work", "sid", c.SID, "error", err, "failed_not_logged", n)
		}
		return true, false
	}
	return won, won && rec != nil
}

func (d *Dedup) seen(k dedupKey, now time.Time) bool {
	n := now.UnixNano()
	if t, ok := d.cur[k]; ok && time.Duration(n-t) < d.window {
		return true
	}
	if t, ok := d.prev[k]; ok && time.Duration(n-t) < d.window {
		return true
	}
	return false
}
