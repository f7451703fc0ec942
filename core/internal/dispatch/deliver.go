package dispatch

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/plan"
	"github.com/ringside/ringside/plugins/sdk"
)

// result is how a delivery ended: the count of final outcomes by name
// ("delivered", "permanent", "gone", "expired"), and the last reason a
// target failed for, "" when every target was delivered.
type result struct {
	final  map[string]int
	reason string
}

// deliver makes dl: attempts until every target has a final outcome, the
// call ends or dl's deadline passes, through core's one retry loop
// (delivery.Backoff.Retry: full-jitter backoff, never sooner than a
// provider's Retry-After). It runs on a goroutine of its own; nothing else
// in dispatch retries.
func (d *Dispatcher) deliver(ctx context.Context, j *job, dl *plan.Delivery) result {
	n := dl.Notifier
	ctx, cancel := context.WithDeadline(ctx, dl.Deadline)
	defer cancel()
	ctx, span := d.span(ctx, dl)
	defer span.End()
	a := d.attempt(j, dl)
	r := result{final: map[string]int{}}
	var left retries
	ended := false
	done := d.backoff.Retry(ctx, dl.Deadline, d.now, d.jitter, func(number int) (bool, time.Duration) {
		a.Number = number
		if number > 1 {
			d.metrics.Retries.WithLabelValues(n.Name).Inc()
			a.Targets = left.targets
		}
		began := d.now()
		outs, err := d.deliverer(n).Deliver(ctx, a)
		left = d.outcomes(ctx, j, dl, a, outs, err, began, &r)
		if left.n == 0 {
			return true, 0
		}
		if number == 1 {
			// One line on the first failure, so a delivery failing for a
			// whole ring window is seen at once, with why.
			attrs := []any{"sid", j.plan.Call.SID, "notifier", n.Name}
			if len(left.targets) > 0 {
				attrs = append(attrs, "device", sdk.ShortToken(left.targets[0].Token), "failing", left.n)
			}
			d.log.WarnContext(ctx, "delivery failed; retrying until its deadline", append(attrs, "reason", left.reason)...)
		}
		if number == 1 && !j.watch(cancel) || j.stopped.Load() {
			// The call ended: what is left no longer matters.
			ended = true
			return true, 0
		}
		return false, left.after
	})
	switch {
	case ended || !done && j.stopped.Load():
		d.count(r.final, n, "ended", left.n)
		d.ended(j, dl, left)
	case !done:
		d.count(r.final, n, "expired", left.n)
		r.reason = left.reason
		d.expired(j, dl, left)
		span.SetStatus(codes.Error, "deadline passed before delivery")
	}
	return r
}

// retries are an attempt's targets to try again.
type retries struct {
	targets []delivery.Target
	// reasons are the provider's reason by target; nil when the attempt
	// failed as a whole, for the same reason.
	reasons []string
	n       int // how many are left (1 for a notifier without targets)
	after   time.Duration
	reason  string // the last reason
}

// expired records in the call log the targets left when the deadline came.
func (d *Dispatcher) expired(j *job, dl *plan.Delivery, left retries) {
	if j.log == nil {
		return
	}
	if len(left.targets) == 0 {
		j.log.Add(calllog.Event{Type: calllog.EventExpired, Notifier: dl.Notifier.Name, Route: dl.Route, Outcome: "expired", Reason: left.reason}, "")
		return
	}
	for i, t := range left.targets {
		dev := calllog.NewDevice(t.Device)
		reason := left.reason
		if left.reasons != nil {
			reason = left.reasons[i]
		}
		j.log.Add(calllog.Event{Type: calllog.EventExpired, Notifier: dl.Notifier.Name, Route: dl.Route, Device: &dev, Outcome: "expired", Reason: reason}, t.Token)
	}
}

// ended records the targets left when a Call Event ended the call: they
// are not failures, so they count as ended, not expired.
func (d *Dispatcher) ended(j *job, dl *plan.Delivery, left retries) {
	if j.log == nil {
		return
	}
	const why = "the call ended before it was delivered"
	if len(left.targets) == 0 {
		j.log.Add(calllog.Event{Type: calllog.EventEnded, Notifier: dl.Notifier.Name, Route: dl.Route, Outcome: "ended", Reason: why}, "")
		return
	}
	for _, t := range left.targets {
		dev := calllog.NewDevice(t.Device)
		j.log.Add(calllog.Event{Type: calllog.EventEnded, Notifier: dl.Notifier.Name, Route: dl.Route, Device: &dev, Outcome: "ended", Reason: why}, t.Token)
	}
}

// attempt is the first attempt of dl for job j.
func (d *Dispatcher) attempt(j *job, dl *plan.Delivery) *delivery.Attempt {
	n := dl.Notifier
	a := &delivery.Attempt{
		ID:        idempotencyID(j.key, n.Name, "", ""),
		Route:     dl.Route,
		Call:      j.plan.Call,
		Payload:   dl.Payload,
		Templates: dl.Templates,
		Deadline:  dl.Deadline,
	}
	// A notifier without a device kind has one target: the call itself.
	if n.Kind != "" {
		a.Targets = make([]delivery.Target, len(dl.Devices))
		for i, dev := range dl.Devices {
			a.Targets[i] = delivery.Target{Device: dev, IdempotencyID: idempotencyID(j.key, n.Name, dev.Kind, dev.Token)}
		}
	}
	if len(dl.Devices) > 1 && d.journal != nil {
		// A device the provider accepted is marked in the journal as soon
		// as the plugin reports it, not when the whole attempt (to a
		// callee's many devices) ends: a crash then rings again only the
		// devices whose answer had not arrived.
		a.Delivered = func(i int) { d.journal.Delivered(j.key, n.Name, a.Targets[i].Token) }
	}
	return a
}

// span starts the delivery's client span when the callback is traced; an
// untraced callback (tracing off, or not sampled) builds no span options:
// on the hot path they are allocations for nothing.
func (d *Dispatcher) span(ctx context.Context, dl *plan.Delivery) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return ctx, trace.SpanFromContext(context.Background()) // a no-op span
	}
	n := dl.Notifier
	return d.tracer.Start(ctx, "deliver "+n.Name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("ringside.notifier", n.Name),
			attribute.String("ringside.plugin", n.Plugin),
			attribute.String("ringside.route", dl.Route),
			attribute.String("ringside.role", dl.Role),
			attribute.Int("ringside.devices", len(dl.Devices)),
		))
}

// outcomes acts on an attempt's outcomes (counts the final ones, marks the
// delivered, prunes the gone, records each in the call log) and returns
// what is left to retry.
func (d *Dispatcher) outcomes(ctx context.Context, j *job, dl *plan.Delivery, a *delivery.Attempt, outs []delivery.Outcome, err error, began time.Time, r *result) (left retries) {
	c, n := j.plan.Call, dl.Notifier
	now := d.now()
	latency := float64(now.Sub(began).Microseconds()) / 1000
	if err != nil {
		if errors.Is(err, delivery.ErrOverloaded) {
			d.metrics.DeliveriesShed.WithLabelValues(n.Name).Inc()
		}
		d.log.DebugContext(ctx, "deliver failed", "sid", c.SID, "notifier", n.Name, "attempt", a.Number, "error", err)
		left = retries{targets: a.Targets, n: max(1, len(a.Targets)), reason: err.Error()}
		j.log.Add(calllog.Event{Time: now, Type: calllog.EventAttempt, Notifier: n.Name, Route: dl.Route, Attempt: a.Number,
			Outcome: "error", Reason: left.reason, LatencyMS: latency}, "")
		return left
	}
	for i, o := range outs {
		var dev directory.Device // the call itself, for a notifier without targets
		if len(a.Targets) > 0 {
			dev = a.Targets[i].Device // the plugin host checked there is one outcome per target
		}
		if j.log != nil {
			ev := calllog.Event{Time: now, Type: calllog.EventAttempt, Notifier: n.Name, Route: dl.Route, Attempt: a.Number,
				Outcome: o.Result.String(), Reason: o.Reason, ProviderID: o.ProviderID,
				RetryAfterMS: o.RetryAfter.Milliseconds(), LatencyMS: latency}
			if dev.Kind != "" {
				ld := calllog.NewDevice(dev)
				ev.Device = &ld
			}
			j.log.Add(ev, dev.Token)
		}
		switch o.Result {
		case delivery.Delivered:
			d.count(r.final, n, o.Result.String(), 1)
			d.metrics.DeliveryLatency.WithLabelValues(n.Name).Observe(now.Sub(c.Received).Seconds())
			j.delivered(dl, dev.Token)
		case delivery.Gone:
			d.count(r.final, n, o.Result.String(), 1)
			r.reason = reasonOr(o.Reason, "device token gone")
			d.prune(ctx, j.log, j.plan, n, dev, o.GoneAt)
		case delivery.Permanent:
			d.count(r.final, n, o.Result.String(), 1)
			r.reason = o.Reason
			d.log.WarnContext(ctx, "delivery failed permanently", "sid", c.SID, "notifier", n.Name,
				"device", sdk.ShortToken(dev.Token), "reason", o.Reason)
		default:
			left.n++
			if len(a.Targets) > 0 {
				left.targets = append(left.targets, a.Targets[i])
				left.reasons = append(left.reasons, o.Reason)
			}
			left.after = max(left.after, o.RetryAfter)
			left.reason = reasonOr(o.Reason, "retry")
			d.log.DebugContext(ctx, "delivery to retry", "sid", c.SID, "notifier", n.Name, "attempt", a.Number, "reason", o.Reason)
		}
	}
	return left
}

func reasonOr(reason, otherwise string) string {
	if reason == "" {
		return otherwise
	}
	return reason
}

// count adds k final outcomes of the named kind.
func (d *Dispatcher) count(final map[string]int, n *plan.Notifier, outcome string, k int) {
	final[outcome] += k
	d.metrics.Deliveries.WithLabelValues(n.Name, outcome).Add(float64(k))
}
