// Package dispatch makes the deliveries of accepted callbacks: it admits a
// callback (bounded work in flight, dedup by sid and callee), has it
// planned (package plan), records it in the journal before answering, and
// runs each planned delivery on a goroutine of its own, detached from the
// HTTP request: attempts through the notifier's plugin, retries with
// backoff until the delivery's deadline, fallback notifiers when a route
// reached no one, pruning of gone device tokens, and the journal marks
// that let a restart resume only what was not delivered.
package dispatch

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/plan"
	"github.com/ringside/ringside/core/internal/telemetry"
	"github.com/ringside/ringside/plugins/sdk"
)

// Dispatcher accepts valid callbacks (it is the callback.Acceptor) and runs
// their deliveries in the background.
type Dispatcher struct {
	planner atomic.Pointer[plan.Planner]
	dedup   *Dedup
	shared  SharedDedup
	up      func() bool
	journal Journal
	calls   *calllog.Log
	metrics *telemetry.Metrics
	log     *slog.Logger
	tracer  trace.Tracer
	now     func() time.Time
	jitter  func() float64
	backoff Backoff
	maxJobs atomic.Int64
	sids    *sids
	// keepRung is set while a route says rung = true: only then are the
	// devices rung for each sid kept.
	keepRung atomic.Bool

	jobs atomic.Int64 // callbacks with deliveries not ended, or admitted
	wg   sync.WaitGroup
	// appendErrs limits the log of failed journal appends; sharedErrs
	// those of failed cross-replica claims.
	appendErrs, sharedErrs telemetry.EverySecond
}

// SharedDedup claims callbacks across replicas and keeps the pending work
// of the claims won (cluster mode); *cluster.Work is one.
type SharedDedup interface {
	// Claim claims key for window: the first claim inside the window wins,
	// on any replica. When it is won and rec is not nil, rec is recorded
	// as this replica's pending work in the same round trip.
	Claim(ctx context.Context, key [16]byte, window time.Duration, rec *journal.Entry) (bool, error)
	// Delivered and Finish mark recorded work, as the journal's do; they
	// do not wait.
	Delivered(key, notifier, token string)
	Finish(key string)
	// Held reports whether work for key is recorded (by any replica,
	// finished or not).
	Held(ctx context.Context, key [16]byte) (bool, error)
}

// SharedDedupTimeout bounds a cross-replica claim on the callback's way to
// its 200: a Redis slower than that is treated as away, and the local
// dedup alone decides.
const SharedDedupTimeout = 100 * time.Millisecond

// Journal records accepted work so that it survives a crash;
// *journal.Journal is one.
type Journal interface {
	Append(key string, deadline time.Time, data []byte) *journal.Commit
	Delivered(key, notifier, token string)
	Finish(key string)
}

// Options configures a Dispatcher.
type Options struct {
	Planner plan.Planner
	// Dedup is shared across reloads; nil → a new one with the default window.
	Dedup *Dedup
	// SharedDedup, when set, makes a callback this replica has not seen a
	// duplicate all the same when another replica claimed it first.
	SharedDedup SharedDedup
	// SharedUp, when set, says whether the shared store answers (a
	// background check): while it says no, no claim is tried, and the
	// callback waits on nothing.
	SharedUp func() bool
	// Journal, when set, records accepted callbacks before Accept returns.
	Journal Journal
	// MaxInFlight bounds the callbacks whose deliveries have not ended;
	// past it Accept returns ErrOverloaded. 0 → callback.DefaultMaxInFlight.
	MaxInFlight int
	// CallLog, when set, records every callback Accept is asked to
	// deliver and its deliveries' story.
	CallLog *calllog.Log
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
	Tracer  trace.Tracer
	// Now and Jitter (uniform in [0,1)) are injected for tests.
	Now     func() time.Time
	Jitter  func() float64
	Backoff Backoff
}

// ErrOverloaded is returned by Accept when MaxInFlight callbacks are being
// delivered already.
var ErrOverloaded = fmt.Errorf("too many callbacks in delivery: %w", callback.ErrOverloaded)

// Backoff is the retry schedule: full jitter over Base·2^(attempt-1),
// capped at Max, and never sooner than a provider's Retry-After.
type Backoff = delivery.Backoff

// DefaultBackoff is Options.Backoff's default (each field that is zero):
// a retry within a fraction of a second, and at most every 5 s within a
// ring window.
var DefaultBackoff = Backoff{Base: 200 * time.Millisecond, Max: 5 * time.Second}

// New returns a Dispatcher.
func New(opt Options) *Dispatcher {
	d := &Dispatcher{
		dedup:   opt.Dedup,
		shared:  opt.SharedDedup,
		up:      opt.SharedUp,
		journal: opt.Journal,
		calls:   opt.CallLog,
		metrics: opt.Metrics,
		log:     opt.Logger,
		tracer:  opt.Tracer,
		now:     opt.Now,
		jitter:  opt.Jitter,
		backoff: opt.Backoff,
		sids:    newSids(),
	}
	if d.dedup == nil {
		d.dedup = NewDedup(callback.DefaultDedupWindow)
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
	if d.now == nil {
		d.now = time.Now
	}
	if d.jitter == nil {
		d.jitter = mrand.Float64
	}
	if d.backoff.Base <= 0 {
		d.backoff.Base = DefaultBackoff.Base
	}
	if d.backoff.Max <= 0 {
		d.backoff.Max = DefaultBackoff.Max
	}
	d.SetMaxInFlight(opt.MaxInFlight)
	d.SetPlanner(opt.Planner)
	return d
}

// SetPlanner swaps the routes and notifiers (a reload). Deliveries already
// running keep theirs, but each retry uses the live notifier of the same
// name.
func (d *Dispatcher) SetPlanner(p plan.Planner) {
	if p.Tracer == nil {
		p.Tracer = d.tracer
	}
	p.Rung = d.sids.Rung
	keep := false
	if p.Routes != nil {
		for _, r := range p.Routes.Routes() {
			keep = keep || r.Rung
		}
	}
	d.keepRung.Store(keep)
	d.planner.Store(&p)
}

// SetMaxInFlight changes the bound on callbacks in delivery (a reload);
// 0 → callback.DefaultMaxInFlight.
func (d *Dispatcher) SetMaxInFlight(n int) {
	if n <= 0 {
		n = callback.DefaultMaxInFlight
	}
	d.maxJobs.Store(int64(n))
}

// InFlight is the number of callbacks whose deliveries have not ended.
func (d *Dispatcher) InFlight() int64 { return d.jobs.Load() }

// Accept plans c and, when deliver is true and the plan reaches someone,
// records it in the journal, starts its deliveries detached from ctx's
// cancellation (its values, such as the trace span, are kept) and returns
// once the journal has it; the deliveries do not wait for the disk.
func (d *Dispatcher) Accept(ctx context.Context, c *callback.Call, deliver bool) (callback.Answer, error) {
	if deliver {
		// Admit first, atomically, so a burst cannot overshoot the bound;
		// a callback that starts no job gives its slot back.
		if d.jobs.Add(1) > d.maxJobs.Load() {
			d.jobs.Add(-1)
			d.logCall(ctx, c, nil, calllog.StatusOverloaded, false)
			return callback.Answer{}, ErrOverloaded
		}
		started := false
		defer func() {
			if !started {
				d.jobs.Add(-1)
			}
		}()
		return d.accept(ctx, c, &started)
	}
	return d.accept(ctx, c, nil)
}

// accept is Accept after admission; *started is set when a job took the
// admitted slot (nil: HEAD, nothing is delivered).
func (d *Dispatcher) accept(ctx context.Context, c *callback.Call, started *bool) (callback.Answer, error) {
	deliver := started != nil
	pl, err := d.planner.Load().Plan(ctx, c, nil)
	if err != nil {
		return callback.Answer{}, err
	}
	for _, we := range pl.WhenErrors {
		d.metrics.WhenErrors.WithLabelValues(we.Route).Inc()
		d.log.WarnContext(ctx, "route when failed; counted as no match", "sid", c.SID, "route", we.Route, "error", we.Err)
	}
	for _, re := range pl.RenderErrors {
		d.metrics.RenderErrors.WithLabelValues(re.Notifier.Name).Inc()
		d.log.WarnContext(ctx, "payload did not render; notifier skipped for this call", "sid", c.SID, "notifier", re.Notifier.Name, "error", re.Err)
	}
	ans := callback.Answer{Status: pl.Status, Routes: pl.Routes, Reachable: pl.Reachable}
	if len(pl.Routes) > 0 {
		ans.Route = pl.Routes[0]
	}
	ka, kb, kc := dedupArgs(c)
	event := c.Kind != callback.KindNotify
	if !deliver {
		if (pl.Status == callback.StatusAccepted || event) && d.dedup.Seen(ka, kb, kc, d.now()) {
			ans.Status = callback.StatusDuplicate
		}
		return ans, nil
	}
	for _, r := range pl.Routes {
		d.metrics.RouteMatches.WithLabelValues(r).Inc()
	}
	var cl claimed
	if event {
		// An event acts once, whether or not a route delivers anything
		// for it: a repeat is a duplicate.
		if cl, err = d.claim(ctx, c, pl, ka, kb, kc); err != nil {
			return callback.Answer{}, err
		}
		if !cl.won {
			ans.Status = callback.StatusDuplicate
			d.metrics.DedupHits.Inc()
			d.log.InfoContext(ctx, "event", "kind", c.Kind.String(), "sid", c.SID, "status", callback.StatusDuplicate)
			return ans, nil
		}
		if c.Kind == callback.KindCallEvent {
			d.callEnded(ctx, c)
		}
		if pl.Status != callback.StatusAccepted {
			d.log.InfoContext(ctx, "event", "kind", c.Kind.String(), "sid", c.SID, "status", pl.Status, "routes", pl.Routes)
			return ans, nil
		}
	}
	if pl.Status != callback.StatusAccepted {
		d.logCall(ctx, c, pl, pl.Status, false)
		d.log.InfoContext(ctx, "callback", "sid", c.SID, "status", pl.Status, "routes", pl.Routes)
		return ans, nil
	}
	if !event {
		if cl, err = d.claim(ctx, c, pl, ka, kb, kc); err != nil {
			return callback.Answer{}, err
		}
		if !cl.won {
			ans.Status = callback.StatusDuplicate
			d.metrics.DedupHits.Inc()
			d.logCall(ctx, c, pl, callback.StatusDuplicate, false)
			d.log.InfoContext(ctx, "callback", "sid", c.SID, "status", callback.StatusDuplicate, "routes", pl.Routes)
			return ans, nil
		}
	}
	j := d.newJob(cl.key, pl)
	j.shared = cl.recorded
	if event {
		j.log = d.calls.Lookup(c.SID) // the event's deliveries join the call's record
	} else {
		j.log = d.logCall(ctx, c, pl, callback.StatusAccepted, false)
	}
	var commit *journal.Commit
	if d.journal != nil && !cl.recorded {
		commit = d.journal.Append(j.key, pl.Deadline(), cl.data)
	}
	*started = true
	j.start(context.WithoutCancel(ctx))
	if commit != nil {
		_, span := d.tracer.Start(ctx, "journal.append")
		err := commit.Wait(ctx)
		span.End()
		if err != nil {
			// The phone is ringing already: answer 200, but say the work
			// is not durable.
			// On a full disk every callback fails the same way: one line a
			// second, saying how many were not logged.
			if n, ok := d.appendErrs.Allow(d.now()); ok {
				d.log.ErrorContext(ctx, "journal append failed; delivery continues without crash safety", "sid", c.SID, "error", err, "failed_not_logged", n)
			}
		}
	}
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

// job is one accepted callback while its deliveries run.
type job struct {
	d    *Dispatcher
	key  string // journal key
	plan *plan.Plan
	ctx  context.Context // the callback's, detached: its log lines join the trace
	log  *calllog.Entry  // its call log record; nil without a call log

	mu        sync.Mutex
	pending   int
	routes    map[string]*routeState
	notifiers []string
	counts    map[string]int
	reasons   map[string]string // the last failure reason per notifier
	timer     *time.Timer
	done      bool
	// stopped is set when a Call Event ended the call: no fallback
	// starts, and the deliveries retrying (cancels) stop. A job is in the
	// sid index (indexed) only while it has something a Call Event could
	// stop: a fallback pending, or a delivery retrying.
	stopped atomic.Bool
	cancels []context.CancelFunc
	indexed bool
	// shared is set when the job's record is in Redis (cluster mode) rather
	// than in the local journal: its marks go there.
	shared bool
}

// routeState tracks one matched route, for fallback after delivery.
type routeState struct {
	notifyLeft int // active notify deliveries not ended
	delivered  bool
	fallback   []*plan.Delivery // fallback deliveries not started
	fellBack   bool
}

func (d *Dispatcher) newJob(key string, p *plan.Plan) *job {
	j := &job{d: d, key: key, plan: p, routes: map[string]*routeState{}, counts: map[string]int{}}
	for _, dl := range p.Deliveries {
		rs := j.routes[dl.Route]
		if rs == nil {
			rs = &routeState{}
			j.routes[dl.Route] = rs
		}
		switch {
		case dl.Active && dl.Role == plan.RoleNotify:
			rs.notifyLeft++
		case dl.Active && dl.Role == plan.RoleFallback:
			rs.fellBack = true
		case !dl.Active && dl.Role == plan.RoleFallback && (dl.Notifier.Kind == "" || len(dl.Devices) > 0):
			rs.fallback = append(rs.fallback, dl)
		}
	}
	return j
}

// start launches the active deliveries and the fallback timer. The job's
// slot in d.jobs is taken already (Accept admits, Resume adds).
func (j *job) start(ctx context.Context) {
	j.ctx = ctx
	d := j.d
	j.mu.Lock()
	defer j.mu.Unlock()
	for route, rs := range j.routes {
		if rs.fellBack {
			d.metrics.Fallbacks.WithLabelValues(route, "lookup").Inc()
			j.log.Add(calllog.Event{Type: calllog.EventFallback, Route: route, Reason: fallbackReasons["lookup"]}, "")
		}
	}
	for _, dl := range j.plan.Deliveries {
		if dl.Active {
			j.launch(ctx, dl)
		}
	}
	// A route whose notify deliveries all ended before the job started (a
	// resumed callback whose pushes ended before the crash) falls back now,
	// as ended would have.
	for route, rs := range j.routes {
		if rs.notifyLeft == 0 && !rs.delivered {
			j.fallBack(ctx, route, rs, "failed")
		}
	}
	if j.hasFallback() {
		j.indexLocked()
	}
	if after := j.fallbackAfter(); after > 0 && j.hasFallback() {
		wait := j.plan.Call.Received.Add(after).Sub(d.now())
		j.timer = time.AfterFunc(max(wait, 0), func() { j.fallbackDue(ctx) })
	}
	if j.pending == 0 {
		j.finishLocked()
	}
}

func (j *job) fallbackAfter() time.Duration { return j.d.planner.Load().FallbackAfter }

func (j *job) hasFallback() bool {
	for _, rs := range j.routes {
		if len(rs.fallback) > 0 {
			return true
		}
	}
	return false
}

// launch starts one delivery on a goroutine of its own, which ends when
// the delivery has; j.mu is held.
func (j *job) launch(ctx context.Context, dl *plan.Delivery) {
	dl.Active = true
	j.pending++
	j.notifiers = append(j.notifiers, dl.Notifier.Name)
	j.d.wg.Add(1)
	go func() {
		defer j.d.wg.Done()
		j.ended(ctx, dl, j.d.deliver(ctx, j, dl))
	}()
}

// delivered is called by run for each device a provider accepted.
func (j *job) delivered(dl *plan.Delivery, token string) {
	switch {
	case j.shared:
		j.d.shared.Delivered(j.key, dl.Notifier.Name, token)
	case j.d.journal != nil:
		j.d.journal.Delivered(j.key, dl.Notifier.Name, token)
	}
	if j.plan.Call.Kind == callback.KindNotify && token != "" && j.d.keepRung.Load() {
		for _, dev := range dl.Devices {
			if dev.Token == token {
				j.d.sids.rang(j, dl, dev, j.d.now())
				break
			}
		}
	}
	j.mu.Lock()
	j.routes[dl.Route].delivered = true
	j.mu.Unlock()
}

func (j *job) ended(ctx context.Context, dl *plan.Delivery, r result) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.pending--
	for k, n := range r.final {
		j.counts[k] += n
	}
	if r.reason != "" {
		if j.reasons == nil {
			j.reasons = map[string]string{}
		}
		j.reasons[dl.Notifier.Name] = r.reason
	}
	if rs := j.routes[dl.Route]; dl.Role == plan.RoleNotify {
		rs.notifyLeft--
		if rs.notifyLeft == 0 && !rs.delivered {
			j.fallBack(ctx, dl.Route, rs, "failed")
		}
	}
	if j.pending == 0 {
		j.finishLocked()
	}
}

// fallbackDue runs, at fallback_after, the fallback of every route that
// has delivered nothing yet.
func (j *job) fallbackDue(ctx context.Context) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.done {
		return
	}
	for route, rs := range j.routes {
		if !rs.delivered {
			j.fallBack(ctx, route, rs, "timeout")
		}
	}
}

// fallBack starts the route's fallback deliveries once; j.mu is held.
func (j *job) fallBack(ctx context.Context, route string, rs *routeState, reason string) {
	if rs.fellBack || len(rs.fallback) == 0 || j.stopped.Load() {
		return
	}
	rs.fellBack = true
	j.d.metrics.Fallbacks.WithLabelValues(route, reason).Inc()
	j.log.Add(calllog.Event{Type: calllog.EventFallback, Route: route, Reason: fallbackReasons[reason]}, "")
	j.d.log.InfoContext(ctx, "running fallback", "sid", j.plan.Call.SID, "route", route, "reason", reason)
	for _, dl := range rs.fallback {
		if dl.Deadline.After(j.d.now()) {
			j.launch(ctx, dl)
		}
	}
}

// fallbackReasons say in words why a route fell back, by metric label.
var fallbackReasons = map[string]string{
	"lookup":  "no notify notifier reaches a device",
	"failed":  "every notify delivery ended without reaching a device",
	"timeout": "nothing delivered by fallback_after",
}

// finishLocked ends the job; j.mu is held.
func (j *job) finishLocked() {
	if j.done {
		return
	}
	j.done = true
	if j.timer != nil {
		j.timer.Stop()
	}
	d := j.d
	d.jobs.Add(-1)
	d.finishEntry(j.key, j.shared)
	outcome := calllog.OutcomeNotDelivered
	for _, rs := range j.routes {
		if rs.delivered {
			outcome = calllog.OutcomeDelivered
		}
	}
	if j.indexed {
		d.sids.remove(j)
	}
	if j.plan.Call.Kind == callback.KindNotify {
		j.log.End(outcome)
	}
	if !d.log.Enabled(j.ctx, slog.LevelInfo) {
		return
	}
	p := j.plan
	attrs := []any{
		"sid", p.Call.SID,
		"status", p.Status,
		"route", p.Routes[0],
		"notifiers", strings.Join(j.notifiers, ","),
		"latency_ms", float64(d.now().Sub(p.Call.Received).Microseconds()) / 1000,
	}
	for _, k := range []string{"delivered", "permanent", "gone", "expired"} {
		if n := j.counts[k]; n > 0 {
			attrs = append(attrs, k, n)
		}
	}
	if len(j.reasons) > 0 {
		// The last reason per notifier that did not reach everyone.
		names := make([]string, 0, len(j.reasons))
		for name := range j.reasons {
			names = append(names, name)
		}
		slices.Sort(names)
		var b strings.Builder
		for i, name := range names {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(name + ": " + j.reasons[name])
		}
		attrs = append(attrs, "reasons", b.String())
	}
	d.log.InfoContext(j.ctx, "callback", attrs...)
}

// deliverer is the live plugin of the notifier's name (after a reload),
// or the notifier's own when the name is gone.
func (d *Dispatcher) deliverer(n *plan.Notifier) delivery.Deliverer {
	if live := d.planner.Load().Notifiers[n.Name]; live != nil {
		return live.Deliverer
	}
	return n.Deliverer
}

// Deliverer is the live plugin process of the enabled notifier name (the
// one a reload last started), nil when no such notifier runs.
func (d *Dispatcher) Deliverer(name string) delivery.Deliverer {
	if live := d.planner.Load().Notifiers[name]; live != nil {
		return live.Deliverer
	}
	return nil
}

// prune removes a device the provider says is gone, unless it was
// registered again since.
func (d *Dispatcher) prune(ctx context.Context, log *calllog.Entry, p *plan.Plan, n *plan.Notifier, dev directory.Device, at time.Time) {
	c := p.Call
	service, user := p.Owner(dev)
	removed, err := d.planner.Load().Store.Prune(context.WithoutCancel(ctx), service, user, dev.Kind, dev.Token, at)
	ev := calllog.Event{Type: calllog.EventPruned, Notifier: n.Name, Device: &calllog.Device{Kind: dev.Kind, Token: sdk.ShortToken(dev.Token)}}
	switch {
	case err != nil:
		ev.Outcome, ev.Reason = "failed", err.Error()
	case removed:
		ev.Outcome = "removed"
	default:
		ev.Outcome, ev.Reason = "kept", "registered again since the provider saw it gone"
	}
	log.Add(ev, dev.Token)
	switch {
	case err != nil:
		d.log.WarnContext(ctx, "prune device failed", "sid", c.SID, "notifier", n.Name, "device", sdk.ShortToken(dev.Token), "error", err)
	case removed:
		d.metrics.TokensPruned.WithLabelValues(dev.Kind).Inc()
		d.log.InfoContext(ctx, "device token gone; removed", "notifier", n.Name, "kind", dev.Kind, "device", sdk.ShortToken(dev.Token))
	default:
		d.log.InfoContext(ctx, "device token gone but registered again since; kept", "notifier", n.Name, "kind", dev.Kind, "device", sdk.ShortToken(dev.Token))
	}
}

// idempotencyID identifies the delivery of the journaled call key through
// notifier to the device (kind, token), or to the call itself when kind
// is empty: "msg_" and 32 hex digits of a SHA-256 over the three, in the
// Standard Webhooks style. The key is what the journal keeps, so the id
// is the same on every attempt, after a plugin restart and after a
// ringside restart that resumes the call.
func idempotencyID(key, notifier, kind, token string) string {
	var buf [256]byte // on the stack unless the strings are longer
	b := buf[:0]
	for _, s := range [...]string{key, notifier, kind, token} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	sum := sha256.Sum256(b)
	var id [4 + 32]byte
	copy(id[:], "msg_")
	hex.Encode(id[4:], sum[:16])
	return string(id[:])
}

// newID returns a delivery id in the Standard Webhooks style, "msg_" + 32 hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "msg_" + hex.EncodeToString(b[:])
}
