package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ringside/ringside/core/callback"
	"github.com/ringside/ringside/core/config"
	"github.com/ringside/ringside/core/directory"
	"github.com/ringside/ringside/core/telemetry"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// Dispatcher accepts valid callbacks (it is the callback.Acceptor) and runs
// their deliveries in the background.
type Dispatcher struct {
	planner Planner
	dedup   *Dedup
	store   directory.Store
	metrics *telemetry.Metrics
	log     *slog.Logger
	tracer  trace.Tracer
	now     func() time.Time
	jitter  func() float64
	backoff Backoff

	wg sync.WaitGroup
}

// Options configures a Dispatcher.
type Options struct {
	Planner Planner
	// Dedup is shared across reloads; nil → a new one with a 120 s window.
	Dedup   *Dedup
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
	Tracer  trace.Tracer
	// Now and Jitter (uniform in [0,1)) are injected for tests.
	Now     func() time.Time
	Jitter  func() float64
	Backoff Backoff
}

// Backoff is the retry schedule: full jitter over Base·2^(attempt-1),
// capped at Max, and never sooner than a provider's Retry-After.
type Backoff struct {
	Base, Max time.Duration
}

// New returns a Dispatcher.
func New(opt Options) *Dispatcher {
	d := &Dispatcher{
		planner: opt.Planner,
		dedup:   opt.Dedup,
		store:   opt.Planner.Store,
		metrics: opt.Metrics,
		log:     opt.Logger,
		tracer:  opt.Tracer,
		now:     opt.Now,
		jitter:  opt.Jitter,
		backoff: opt.Backoff,
	}
	if d.dedup == nil {
		d.dedup = NewDedup(120 * time.Second)
	}
	if d.metrics == nil {
		d.metrics = telemetry.NewMetrics()
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.tracer == nil {
		d.tracer = noop.NewTracerProvider().Tracer("ringside")
	}
	if d.planner.Tracer == nil {
		d.planner.Tracer = d.tracer
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.jitter == nil {
		d.jitter = mrand.Float64
	}
	if d.backoff.Base <= 0 {
		d.backoff.Base = 200 * time.Millisecond
	}
	if d.backoff.Max <= 0 {
		d.backoff.Max = 5 * time.Second
	}
	return d
}

// Accept plans c and, when deliver is true and the plan reaches someone,
// starts its deliveries detached from ctx's cancellation (its values, such
// as the trace span, are kept) and returns at once.
func (d *Dispatcher) Accept(ctx context.Context, c *callback.Call, deliver bool) (callback.Answer, error) {
	plan, err := d.planner.Plan(ctx, c, config.CallContext(c))
	if err != nil {
		return callback.Answer{}, err
	}
	for _, we := range plan.WhenErrors {
		d.metrics.WhenErrors.WithLabelValues(we.Route).Inc()
		d.log.Warn("route when failed; counted as no match", "sid", c.SID, "route", we.Route, "error", we.Err)
	}
	ans := callback.Answer{Status: plan.Status, Routes: plan.Routes, Reachable: plan.Reachable}
	if len(plan.Routes) > 0 {
		ans.Route = plan.Routes[0]
	}
	if !deliver {
		if plan.Status == callback.StatusAccepted && d.dedup.Seen(c.SID, c.ToServiceID, c.ToUserID, d.now()) {
			ans.Status = callback.StatusDuplicate
		}
		return ans, nil
	}
	for _, r := range plan.Routes {
		d.metrics.RouteMatches.WithLabelValues(r).Inc()
	}
	if plan.Status != callback.StatusAccepted {
		d.log.Info("callback", "sid", c.SID, "status", plan.Status, "routes", plan.Routes)
		return ans, nil
	}
	if !d.dedup.Claim(c.SID, c.ToServiceID, c.ToUserID, d.now()) {
		ans.Status = callback.StatusDuplicate
		d.log.Info("callback", "sid", c.SID, "status", callback.StatusDuplicate, "routes", plan.Routes)
		return ans, nil
	}
	d.start(context.WithoutCancel(ctx), plan)
	return ans, nil
}

// Wait blocks until every delivery started so far has ended, or ctx is done.
func (d *Dispatcher) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tally gathers the outcomes of one callback's deliveries, for its log line.
type tally struct {
	mu        sync.Mutex
	pending   int
	notifiers []string
	counts    map[string]int
}

func (d *Dispatcher) start(ctx context.Context, plan *Plan) {
	t := &tally{counts: map[string]int{}}
	var active []*Delivery
	for _, dl := range plan.Deliveries {
		if dl.Active {
			active = append(active, dl)
			t.notifiers = append(t.notifiers, dl.Notifier.Name)
		}
	}
	t.pending = len(active)
	d.wg.Add(len(active))
	for _, dl := range active {
		go func() {
			defer d.wg.Done()
			outcomes := d.run(ctx, plan.Call, dl)
			d.finish(plan, t, outcomes)
		}()
	}
}

func (d *Dispatcher) finish(plan *Plan, t *tally, outcomes map[string]int) {
	t.mu.Lock()
	for k, n := range outcomes {
		t.counts[k] += n
	}
	t.pending--
	last := t.pending == 0
	t.mu.Unlock()
	if !last {
		return
	}
	attrs := []any{
		"sid", plan.Call.SID,
		"status", plan.Status,
		"route", plan.Routes[0],
		"notifiers", strings.Join(t.notifiers, ","),
		"latency_ms", float64(d.now().Sub(plan.Call.Received).Microseconds()) / 1000,
	}
	for _, k := range []string{"delivered", "permanent", "gone", "expired"} {
		if n := t.counts[k]; n > 0 {
			attrs = append(attrs, k, n)
		}
	}
	d.log.Info("callback", attrs...)
}

// run delivers dl until every device has a final outcome or the deadline
// passes, and returns the count of final outcomes by name.
func (d *Dispatcher) run(ctx context.Context, c *callback.Call, dl *Delivery) map[string]int {
	n := dl.Notifier
	ctx, cancel := context.WithDeadline(ctx, dl.Deadline)
	defer cancel()
	ctx, span := d.tracer.Start(ctx, "deliver "+n.Name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("ringside.notifier", n.Name),
			attribute.String("ringside.plugin", n.Plugin),
			attribute.String("ringside.route", dl.Route),
			attribute.String("ringside.role", dl.Role),
			attribute.Int("ringside.devices", len(dl.Devices)),
		))
	defer span.End()

	req := &pluginpb.DeliverRequest{
		DeliveryId:       newID(),
		Route:            dl.Route,
		Call:             wireCall(c),
		PayloadJson:      dl.Payload,
		Templates:        dl.Templates,
		DeadlineUnixNano: dl.Deadline.UnixNano(),
	}
	// A notifier without a device kind has one target: the call itself.
	pending := dl.Devices
	if n.Kind == "" {
		pending = []directory.Device{{}}
	}
	final := map[string]int{}
	count := func(outcome string, k int) {
		final[outcome] += k
		d.metrics.Deliveries.WithLabelValues(n.Name, outcome).Add(float64(k))
	}
	for attempt := 1; ; attempt++ {
		req.Attempt = int32(attempt)
		req.Devices = wireDevices(pending)
		resp, err := n.Deliverer.Deliver(ctx, req)
		var retry []directory.Device
		var after time.Duration
		if err != nil {
			d.log.Warn("deliver failed", "sid", c.SID, "notifier", n.Name, "attempt", attempt, "error", err)
			retry = pending
		} else {
			for i, o := range resp.Outcomes {
				dev := pending[i] // the plugin host checked there is one outcome per target
				switch o.Kind {
				case pluginpb.Outcome_KIND_DELIVERED:
					count("delivered", 1)
				case pluginpb.Outcome_KIND_GONE:
					count("gone", 1)
					d.prune(ctx, c, n, dev, o)
				case pluginpb.Outcome_KIND_PERMANENT:
					count("permanent", 1)
					d.log.Warn("delivery failed permanently", "sid", c.SID, "notifier", n.Name,
						"device", directory.ShortToken(dev.Token), "reason", o.Reason)
				default:
					retry = append(retry, dev)
					if a := time.Duration(o.RetryAfterMs) * time.Millisecond; a > after {
						after = a
					}
					d.log.Debug("delivery to retry", "sid", c.SID, "notifier", n.Name, "attempt", attempt, "reason", o.Reason)
				}
			}
		}
		if len(retry) == 0 {
			break
		}
		wait := d.wait(attempt, after)
		if d.now().Add(wait).After(dl.Deadline) || !sleep(ctx, wait) {
			count("expired", len(retry))
			span.SetStatus(codes.Error, "deadline passed before delivery")
			break
		}
		pending = retry
	}
	return final
}

// wait is the pause before attempt+1.
func (d *Dispatcher) wait(attempt int, after time.Duration) time.Duration {
	ceil := float64(d.backoff.Base) * math.Pow(2, float64(attempt-1))
	if ceil > float64(d.backoff.Max) {
		ceil = float64(d.backoff.Max)
	}
	w := time.Duration(d.jitter() * ceil)
	if w < after {
		w = after
	}
	return w
}

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

func (d *Dispatcher) prune(ctx context.Context, c *callback.Call, n *Notifier, dev directory.Device, o *pluginpb.Outcome) {
	var at time.Time
	if o.GoneAtUnixNano > 0 {
		at = time.Unix(0, o.GoneAtUnixNano)
	}
	removed, err := d.store.Prune(context.WithoutCancel(ctx), c.ToServiceID, c.ToUserID, dev.Kind, dev.Token, at)
	switch {
	case err != nil:
		d.log.Warn("prune device failed", "sid", c.SID, "notifier", n.Name, "device", directory.ShortToken(dev.Token), "error", err)
	case removed:
		d.metrics.TokensPruned.WithLabelValues(dev.Kind).Inc()
		d.log.Info("device token gone; removed", "notifier", n.Name, "kind", dev.Kind, "device", directory.ShortToken(dev.Token))
	default:
		d.log.Info("device token gone but registered again since; kept", "notifier", n.Name, "kind", dev.Kind, "device", directory.ShortToken(dev.Token))
	}
}

func wireCall(c *callback.Call) *pluginpb.Call {
	return &pluginpb.Call{
		Sid:           c.SID,
		FromServiceId: c.FromServiceID,
		FromUserId:    c.FromUserID,
		ToServiceId:   c.ToServiceID,
		ToUserId:      c.ToUserID,
		Type:          c.Type,
		Param:         c.Param,
		AppSvrData:    c.AppSvrData,
		Extra:         c.Extra,
	}
}

func wireDevices(devs []directory.Device) []*pluginpb.Device {
	if len(devs) == 0 || devs[0].Kind == "" {
		return nil
	}
	out := make([]*pluginpb.Device, len(devs))
	for i, dv := range devs {
		out[i] = &pluginpb.Device{Kind: dv.Kind, Token: dv.Token, UpdatedAtUnixNano: dv.UpdatedAt.UnixNano()}
	}
	return out
}

// newID returns a delivery id in the Standard Webhooks style, "msg_" + 32 hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "msg_" + hex.EncodeToString(b[:])
}
