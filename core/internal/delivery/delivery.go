// Package delivery names what core hands a plugin and what comes back: an
// Attempt at delivering a call's payload through one notifier to some of
// the callee's devices, and each device's Outcome. A delivery (one
// notifier's share of a call) is made of attempts until every device has a
// final outcome or the delivery's deadline passes.
//
// These are core's own types. The plugin host translates them to and from
// the wire protocol; nothing else in core sees it.
package delivery

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/directory"
)

// Deliverer makes one attempt and waits for its outcomes: exactly one per
// target, in the order of Attempt.Targets (one when there are no targets).
// An error means the attempt failed as a whole (the plugin process died,
// the attempt's ctx ended) and every target is to be retried.
type Deliverer interface {
	Deliver(ctx context.Context, a *Attempt) ([]Outcome, error)
}

// Attempt is one try of a delivery.
type Attempt struct {
	// ID identifies the delivery: the same on every attempt, after a
	// plugin restart and after a ringside restart that resumes it.
	ID string
	// Number counts the attempts of the delivery from 1.
	Number int
	// Route is the name of the route the delivery serves.
	Route string
	Call  *callback.Call
	// Payload is the rendered payload, a JSON object.
	Payload []byte
	// Templates are the notifier's rendered template attributes.
	Templates map[string]string
	Deadline  time.Time
	// Targets are the devices still to deliver to. None: a notifier
	// without a device kind (a webhook), whose one target is the call.
	Targets []Target
	// Delivered, when set, is told the index in Targets of each device the
	// provider accepted as soon as the plugin reports it, before Deliver
	// returns (the outcomes still hold it). Deliver calls it on its own
	// goroutine, so it runs in order and may take the caller's locks; it
	// lets a crash ring again only the devices whose answer had not
	// arrived.
	Delivered func(i int)
}

// Target is a device an attempt is for.
type Target struct {
	directory.Device
	// IdempotencyID is the same on every attempt to this device: a
	// provider that supports it drops a push it has seen.
	IdempotencyID string
}

// Result is what became of one target.
type Result uint8

// Results. Retry is the zero value: an outcome not known is retried.
const (
	Retry     Result = iota // transient: try again, after RetryAfter if set
	Delivered               // the provider accepted it
	Permanent               // it will never work: not retried
	Gone                    // the device token is no longer valid: pruned
)

var resultNames = [...]string{"retry", "delivered", "permanent", "gone"}

// String is the result's name, the outcome label of the metrics and logs.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "unknown"
}

// Outcome is one target's result of an attempt.
type Outcome struct {
	Result Result
	// Reason is the provider's reason, for logs; never a token or secret.
	Reason string
	// ProviderID is the provider's id of the message, when it gives one.
	ProviderID string
	// RetryAfter is the provider's Retry-After, for Retry.
	RetryAfter time.Duration
	// GoneAt is when the provider says the token stopped being valid, for
	// Gone; zero when it did not say.
	GoneAt time.Time
}

// ErrOverloaded is in the chain of an attempt's error when the plugin
// refused it because too many calls wait for it already: the attempt is
// shed, to be retried.
var ErrOverloaded = errors.New("plugin overloaded")

// Backoff is a retry schedule: the pause before attempt n+1 is random in
// [0, Base·2ⁿ⁻¹] (full jitter), capped at Max, and never shorter than the
// provider's Retry-After.
type Backoff struct {
	Base, Max time.Duration
}

// wait is the pause after attempt n (from 1), for jitter in [0, 1) and the
// provider's Retry-After.
func (b Backoff) wait(n int, retryAfter time.Duration, jitter float64) time.Duration {
	ceil := math.Min(float64(b.Base)*math.Pow(2, float64(n-1)), float64(b.Max))
	return max(time.Duration(jitter*ceil), retryAfter)
}

// Retry is core's one retry loop. It calls attempt with 1, 2, … until
// attempt reports done, pausing after each failed attempt for b.wait
// (full jitter, never shorter than the Retry-After attempt returns). It
// gives up, reporting false, when that pause would end after giveUp or
// ctx ends during it. now is the clock and jitter the random source
// (uniform in [0, 1)).
func (b Backoff) Retry(ctx context.Context, giveUp time.Time, now func() time.Time, jitter func() float64, attempt func(n int) (done bool, retryAfter time.Duration)) bool {
	for n := 1; ; n++ {
		done, after := attempt(n)
		if done {
			return true
		}
		wait := b.wait(n, after, jitter())
		if now().Add(wait).After(giveUp) || !sleep(ctx, wait) {
			return false
		}
	}
}

// sleep pauses for d and reports true, or false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
