package dispatch

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/plan"
)

// deliver makes dl: attempts until every target has a final outcome or
// dl's deadline passes, pausing between attempts with full-jitter backoff,
// never sooner than a provider's Retry-After. It returns the count of
// final outcomes by name ("delivered", "permanent", "gone", "expired"). It
// runs on a goroutine of its own and is the only place that retries.
func (d *Dispatcher) deliver(ctx context.Context, j *job, dl *plan.Delivery) map[string]int {
	n := dl.Notifier
	ctx, cancel := context.WithDeadline(ctx, dl.Deadline)
	defer cancel()
	ctx, span := d.span(ctx, dl)
	defer span.End()
	a := d.attempt(j, dl)
	final := map[string]int{}
	for a.Number = 1; ; a.Number++ {
		if a.Number > 1 {
			d.metrics.Retries.WithLabelValues(n.Name).Inc()
		}
		outs, err := d.deliverer(n).Deliver(ctx, a)
		retry, left, after := d.outcomes(ctx, j, dl, a, outs, err, final)
		if left == 0 {
			return final
		}
		wait := d.wait(a.Number, after)
		if d.now().Add(wait).After(dl.Deadline) || !sleep(ctx, wait) {
			d.count(final, n, "expired", left)
			span.SetStatus(codes.Error, "deadline passed before delivery")
			return final
		}
		a.Targets = retry
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
// delivered, prunes the gone) and returns the targets to retry, how many
// are left (1 for a notifier without targets whose attempt is retried),
// and the longest Retry-After among them.
func (d *Dispatcher) outcomes(ctx context.Context, j *job, dl *plan.Delivery, a *delivery.Attempt, outs []delivery.Outcome, err error, final map[string]int) (retry []delivery.Target, left int, after time.Duration) {
	c, n := j.plan.Call, dl.Notifier
	if err != nil {
		if errors.Is(err, delivery.ErrOverloaded) {
			d.metrics.DeliveriesShed.WithLabelValues(n.Name).Inc()
		}
		d.log.WarnContext(ctx, "deliver failed", "sid", c.SID, "notifier", n.Name, "attempt", a.Number, "error", err)
		return a.Targets, max(1, len(a.Targets)), 0
	}
	for i, o := range outs {
		var dev directory.Device // the call itself, for a notifier without targets
		if len(a.Targets) > 0 {
			dev = a.Targets[i].Device // the plugin host checked there is one outcome per target
		}
		switch o.Result {
		case delivery.Delivered:
			d.count(final, n, o.Result.String(), 1)
			d.metrics.DeliveryLatency.WithLabelValues(n.Name).Observe(d.now().Sub(c.Received).Seconds())
			j.delivered(dl, dev.Token)
		case delivery.Gone:
			d.count(final, n, o.Result.String(), 1)
			d.prune(ctx, c, n, dev, o.GoneAt)
		case delivery.Permanent:
			d.count(final, n, o.Result.String(), 1)
			d.log.WarnContext(ctx, "delivery failed permanently", "sid", c.SID, "notifier", n.Name,
				"device", directory.ShortToken(dev.Token), "reason", o.Reason)
		default:
			left++
			if len(a.Targets) > 0 {
				retry = append(retry, a.Targets[i])
			}
			after = max(after, o.RetryAfter)
			d.log.DebugContext(ctx, "delivery to retry", "sid", c.SID, "notifier", n.Name, "attempt", a.Number, "reason", o.Reason)
		}
	}
	return retry, left, after
}

// count adds k final outcomes of the named kind.
func (d *Dispatcher) count(final map[string]int, n *plan.Notifier, outcome string, k int) {
	final[outcome] += k
	d.metrics.Deliveries.WithLabelValues(n.Name, outcome).Add(float64(k))
}
