package feedback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/logtest"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// fakeApp is the feedback notifier's plugin: it records each attempt and
// answers as answer says (nil: delivered).
type fakeApp struct {
	answer func(a *delivery.Attempt) (delivery.Outcome, error)

	mu       sync.Mutex
	attempts []attempt
	inFlight atomic.Int32
	overlap  atomic.Bool // two attempts were in flight at once
}

// attempt is what one Deliver was given.
type attempt struct {
	ID      string
	Number  int
	Payload Payload
	Call    callback.Call
}

func (f *fakeApp) Deliver(ctx context.Context, a *delivery.Attempt) ([]delivery.Outcome, error) {
	if f.inFlight.Add(1) > 1 {
		f.overlap.Store(true)
	}
	defer f.inFlight.Add(-1)
	var p Payload
	if err := json.Unmarshal(a.Payload, &p); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	f.mu.Lock()
	f.attempts = append(f.attempts, attempt{ID: a.ID, Number: a.Number, Payload: p, Call: *a.Call})
	f.mu.Unlock()
	if f.answer == nil {
		return []delivery.Outcome{{Result: delivery.Delivered}}, nil
	}
	o, err := f.answer(a)
	if err != nil {
		return nil, err
	}
	return []delivery.Outcome{o}, nil
}

func (f *fakeApp) got() []attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.attempts)
}

// events are the events of every attempt, in order.
func (f *fakeApp) events() []Event {
	var out []Event
	for _, a := range f.got() {
		out = append(out, a.Payload.Events...)
	}
	return out
}

// fixture is a call log, a fake app and a started Sender.
type fixture struct {
	log     *calllog.Log
	app     *fakeApp
	sender  *Sender
	metrics *telemetry.Metrics
	logs    *logtest.Buffer
}

// feedbackConfig is a feedback block with every kind, batches of batch
// events, a short retry_for and a flush_after so long that a batch not
// full goes only when Stop flushes it.
func feedbackConfig(batch int) *config.Feedback {
	return &config.Feedback{Notifier: "app_events",
		Events: []string{config.FeedbackPruned, config.FeedbackFailed, config.FeedbackExpired, config.FeedbackDelivered},
		Batch:  batch, Queue: 100, RetryFor: time.Minute, FlushAfter: time.Hour}
}

func start(t *testing.T, cfg *config.Feedback, app *fakeApp) *fixture {
	t.Helper()
	fx := &fixture{log: calllog.New(calllog.Options{}), app: app, metrics: telemetry.NewMetrics(), logs: &logtest.Buffer{}}
	s, err := Start(Options{Config: cfg, Log: fx.log, Metrics: fx.metrics, Logger: fx.logs.Logger(),
		Deliverer: func() delivery.Deliverer { return app },
		Jitter:    func() float64 { return 0 }, Backoff: Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond},
		Nonce: "test"})
	if err != nil {
		t.Fatal(err)
	}
	fx.sender = s
	t.Cleanup(s.Close)
	return fx
}

// stop stops the sender, with time enough to send what is queued.
func (fx *fixture) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fx.sender.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func (fx *fixture) batches(result string) float64 {
	return testutil.ToFloat64(fx.metrics.FeedbackBatches.WithLabelValues(result))
}

var (
	alice = calllog.Party{ServiceID: "linecorp.com", UserID: "alice"}
	bob   = calllog.Party{ServiceID: "linecorp.com", UserID: "bob"}
)

const (
	tokGone = "aaaaaa1111111111111111111111111111111111111111111111111111bbbb"
	tokBad  = "cccccc2222222222222222222222222222222222222222222222222222dddd"
	tokOK   = "eeeeee3333333333333333333333333333333333333333333333333333ffff"
)

func device(token string) *calllog.Device {
	return &calllog.Device{Kind: "apns", Token: token[:6] + "…" + token[len(token)-4:]}
}

// story records one call of every kind of outcome: a token pruned, one
// kept, a permanent failure, a delivery, a delivery from before a
// restart, and a call that ended undelivered (after a retry, so its
// record has a reason).
func story(l *calllog.Log, sid string) {
	c := l.Begin(calllog.Start{SID: sid, Received: time.Now(), Caller: bob, Callee: alice, Type: "A", Status: "accepted"})
	c.Add(calllog.Event{Type: calllog.EventAttempt, Notifier: "ios", Attempt: 1, Device: device(tokGone), Outcome: "gone", Reason: "Unregistered"}, tokGone)
	c.Add(calllog.Event{Type: calllog.EventPruned, Notifier: "ios", Device: device(tokGone), Outcome: "removed"}, tokGone)
	c.Add(calllog.Event{Type: calllog.EventPruned, Notifier: "ios", Device: device(tokOK), Outcome: "kept"}, tokOK)
	c.Add(calllog.Event{Type: calllog.EventAttempt, Notifier: "ios", Attempt: 1, Device: device(tokBad), Outcome: "permanent", Reason: "BadDeviceToken"}, tokBad)
	c.Add(calllog.Event{Type: calllog.EventAttempt, Notifier: "ios", Attempt: 1, Device: device(tokOK), Outcome: "delivered", ProviderID: "apns-1"}, tokOK)
	c.Add(calllog.Event{Type: calllog.EventAttempt, Notifier: "ios", Device: device(tokOK), Outcome: "delivered", Reason: "delivered before the restart"}, "")
	c.Add(calllog.Event{Type: calllog.EventAttempt, Notifier: "app", Attempt: 1, Outcome: "retry", Reason: "webhook answered 503"}, "")
	c.End(calllog.OutcomeNotDelivered)
}

// prune begins call s1 for alice and records one pruned apns token event
// for each of tokens, in order.
func prune(l *calllog.Log, tokens []string) {
	c := l.Begin(calllog.Start{SID: "s1", Callee: alice, Status: "accepted"})
	for _, tok := range tokens {
		c.Add(calllog.Event{Type: calllog.EventPruned, Device: &calllog.Device{Kind: "apns"}, Outcome: "removed"}, tok)
	}
}

// heldApp answers each batch delivered, once hold is closed.
func heldApp(hold <-chan struct{}) *fakeApp {
	return &fakeApp{answer: func(*delivery.Attempt) (delivery.Outcome, error) {
		<-hold
		return delivery.Outcome{Result: delivery.Delivered}, nil
	}}
}

// TestOutcomeEvents: each kind of call log event becomes its outcome
// event, with the whole token, the callee and the reasons, and only the
// configured kinds are sent.
func TestOutcomeEvents(t *testing.T) {
	pruned := Event{Type: TypePruned, SID: "s1", ServiceID: "linecorp.com", UserID: "alice", Kind: "apns", Token: tokGone, Notifier: "ios"}
	failed := Event{Type: TypeFailed, SID: "s1", ServiceID: "linecorp.com", UserID: "alice", Kind: "apns", Token: tokBad, Notifier: "ios", Reason: "BadDeviceToken"}
	delivered := Event{Type: TypeDelivered, SID: "s1", ServiceID: "linecorp.com", UserID: "alice", Kind: "apns", Token: tokOK, Notifier: "ios", ProviderID: "apns-1"}
	notDelivered := Event{Type: TypeNotDelivered, SID: "s1", Caller: &bob, Callee: &alice,
		Reasons: map[string]string{"ios": "BadDeviceToken", "app": "webhook answered 503"}}
	for _, tc := range []struct {
		name  string
		kinds []string
		want  []Event
	}{
		{"all", []string{"pruned", "failed", "expired", "delivered"}, []Event{pruned, failed, delivered, notDelivered}},
		{"default", []string{"pruned", "failed", "expired"}, []Event{pruned, failed, notDelivered}},
		{"pruned", []string{"pruned"}, []Event{pruned}},
		{"failed", []string{"failed"}, []Event{failed}},
		{"expired", []string{"expired"}, []Event{notDelivered}},
		{"delivered", []string{"delivered"}, []Event{delivered}},
		{"none", []string{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := feedbackConfig(100)
			cfg.Events = tc.kinds
			fx := start(t, cfg, &fakeApp{})
			story(fx.log, "s1")
			fx.stop(t)
			got := fx.app.events()
			for i := range got {
				if got[i].Time.IsZero() {
					t.Errorf("event %d has no time", i)
				}
				got[i].Time = time.Time{}
			}
			if g, w := dump(got), dump(tc.want); g != w {
				t.Errorf("events:\ngot  %s\nwant %s", g, w)
			}
		})
	}
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestPayload: one request carries the batch as {"type":
// "ringside.feedback","events":[…]}, for no call and no device.
func TestPayload(t *testing.T) {
	body, err := encode([]Event{{Type: TypePruned, Time: time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC), SID: "s1",
		ServiceID: "linecorp.com", UserID: "alice", Kind: "apns", Token: "a+b/c=", Notifier: "ios"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"ringside.feedback","events":[{"type":"device.pruned","time":"2026-12-04T08:00:00Z","sid":"s1",` +
		`"service_id":"linecorp.com","user_id":"alice","kind":"apns","token":"a+b/c=","notifier":"ios"}]}`
	if string(body) != want {
		t.Errorf("payload:\ngot  %s\nwant %s", body, want)
	}
	fx := start(t, feedbackConfig(10), &fakeApp{})
	story(fx.log, "s1")
	fx.stop(t)
	got := fx.app.got()
	if len(got) != 1 {
		t.Fatalf("attempts: got %d; want 1", len(got))
	}
	if a := got[0]; a.Payload.Type != PayloadType || dump(a.Call) != dump(callback.Call{}) || !strings.HasPrefix(a.ID, "msg_") || len(a.ID) != 36 {
		t.Errorf("attempt: type %q, call %+v, id %q; want %q, no call, msg_ and 32 hex digits", a.Payload.Type, a.Call, a.ID, PayloadType)
	}
}

// TestBatching: a batch holds at most Batch events and goes as soon as it
// is full; a batch not full goes after flush_after; events keep their
// order and one batch is in flight at a time.
func TestBatching(t *testing.T) {
	cfg := feedbackConfig(3)
	cfg.Events = []string{"pruned"}
	cfg.FlushAfter = 200 * time.Millisecond
	hold := make(chan struct{})
	app := heldApp(hold)
	fx := start(t, cfg, app)
	tokens := make([]string, 7)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("token-%02d", i)
	}
	prune(fx.log, tokens)
	close(hold)
	time.Sleep(100 * time.Millisecond) // less than flush_after: two full batches have gone
	if n := len(app.got()); n != 2 {
		t.Errorf("attempts before flush_after: got %d; want 2", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(app.got()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var sizes []int
	for _, a := range app.got() {
		sizes = append(sizes, len(a.Payload.Events))
	}
	if !slices.Equal(sizes, []int{3, 3, 1}) {
		t.Errorf("batch sizes: got %v; want [3 3 1]", sizes)
	}
	var got []string
	for _, e := range app.events() {
		got = append(got, e.Token)
	}
	if !slices.Equal(got, tokens) {
		t.Errorf("tokens: got %v; want %v", got, tokens)
	}
	if app.overlap.Load() {
		t.Error("two batches were in flight at once")
	}
	if ids := map[string]bool{}; true {
		for _, a := range app.got() {
			ids[a.ID] = true
		}
		if len(ids) != 3 {
			t.Errorf("batch ids: got %d distinct; want 3", len(ids))
		}
	}
	fx.stop(t)
	if d := fx.batches("delivered"); d != 3 {
		t.Errorf("batches delivered: got %v; want 3", d)
	}
}

// TestLargeBatch: a batch whose payload would pass MaxBatchBytes goes as
// smaller batches, in order, each within it.
func TestLargeBatch(t *testing.T) {
	cfg := feedbackConfig(100)
	cfg.Events = []string{"failed"}
	fx := start(t, cfg, &fakeApp{})
	c := fx.log.Begin(calllog.Start{SID: "s1", Received: time.Now(), Callee: alice, Status: "accepted"})
	reason := strings.Repeat("r", 10<<10)
	for i := range 60 {
		c.Add(calllog.Event{Type: calllog.EventAttempt, Attempt: 1, Device: &calllog.Device{Kind: "apns"}, Outcome: "permanent", Reason: reason}, fmt.Sprint(i))
	}
	fx.stop(t)
	var tokens []string
	for i, a := range fx.app.got() {
		b, _ := json.Marshal(a.Payload)
		if len(b) > MaxBatchBytes {
			t.Errorf("batch %d: %d bytes; want at most %d", i, len(b), MaxBatchBytes)
		}
		for _, e := range a.Payload.Events {
			tokens = append(tokens, e.Token)
		}
	}
	if n := len(fx.app.got()); n < 3 {
		t.Errorf("batches: got %d; want 3 or more (60 events of 10 KiB)", n)
	}
	for i, tok := range tokens {
		if tok != fmt.Sprint(i) {
			t.Fatalf("tokens out of order or missing: %v", tokens)
		}
	}
	if len(tokens) != 60 {
		t.Errorf("events: got %d; want 60", len(tokens))
	}
}

// TestRetry: a batch answered retry, or failing as a whole, is tried
// again with the same id, never sooner than the Retry-After, until it is
// delivered.
func TestRetry(t *testing.T) {
	const after = 150 * time.Millisecond
	var n atomic.Int32
	app := &fakeApp{answer: func(*delivery.Attempt) (delivery.Outcome, error) {
		switch n.Add(1) {
		case 1:
			return delivery.Outcome{Result: delivery.Retry, Reason: "webhook answered 503", RetryAfter: after}, nil
		case 2:
			return delivery.Outcome{}, errors.New("plugin exited")
		}
		return delivery.Outcome{Result: delivery.Delivered}, nil
	}}
	fx := start(t, feedbackConfig(10), app)
	story(fx.log, "s1")
	fx.stop(t)
	got := fx.app.got()
	if len(got) != 3 {
		t.Fatalf("attempts: got %d; want 3", len(got))
	}
	for i, a := range got {
		if a.ID != got[0].ID || a.Number != i+1 || dump(a.Payload) != dump(got[0].Payload) {
			t.Errorf("attempt %d: id %s number %d; want %s, %d, the same payload", i, a.ID, a.Number, got[0].ID, i+1)
		}
	}
	if d, dr := fx.batches("delivered"), fx.batches("dropped"); d != 1 || dr != 0 {
		t.Errorf("batches: delivered %v dropped %v; want 1, 0", d, dr)
	}
}

// TestRetryAfterHonoured: the pause after an answer with Retry-After is at
// least that long, however small the backoff.
func TestRetryAfterHonoured(t *testing.T) {
	const after = 150 * time.Millisecond
	var mu sync.Mutex
	var at []time.Time
	app := &fakeApp{answer: func(*delivery.Attempt) (delivery.Outcome, error) {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		if len(at) == 1 {
			return delivery.Outcome{Result: delivery.Retry, RetryAfter: after}, nil
		}
		return delivery.Outcome{Result: delivery.Delivered}, nil
	}}
	fx := start(t, feedbackConfig(10), app)
	story(fx.log, "s1")
	fx.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 2 || at[1].Sub(at[0]) < after {
		t.Errorf("attempts at %v; want 2, %s apart at least", at, after)
	}
}

// TestDropped: a batch that fails permanently, or is still failing when
// retry_for has passed, is dropped, counted and logged; the next batch is
// sent.
func TestDropped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer delivery.Outcome
		reason string
	}{
		{"permanent", delivery.Outcome{Result: delivery.Permanent, Reason: "webhook answered 400"}, "webhook answered 400"},
		{"retry_for", delivery.Outcome{Result: delivery.Retry, Reason: "webhook answered 503"}, "retry_for over; last reason: webhook answered 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := feedbackConfig(1)
			cfg.Events = []string{"failed"}
			cfg.RetryFor = 50 * time.Millisecond
			var first atomic.Value
			app := &fakeApp{answer: func(a *delivery.Attempt) (delivery.Outcome, error) {
				first.CompareAndSwap(nil, a.ID)
				if first.Load() == a.ID {
					return tc.answer, nil
				}
				return delivery.Outcome{Result: delivery.Delivered}, nil
			}}
			fx := start(t, cfg, app)
			story(fx.log, "s1")
			story(fx.log, "s2")
			fx.stop(t)
			if d, dr := fx.batches("delivered"), fx.batches("dropped"); d != 1 || dr != 1 {
				t.Errorf("batches: delivered %v dropped %v; want 1, 1", d, dr)
			}
			warn := fx.logs.Find("feedback batch dropped")
			if len(warn) != 1 || warn[0]["reason"] != tc.reason || warn[0]["events"] != 1.0 || warn[0]["level"] != "WARN" {
				t.Errorf("log: got %v; want one WARN with reason %q and events 1", warn, tc.reason)
			}
		})
	}
}

// TestQueueFull: events that find the queue full are dropped and
// counted, and the call log never waits for the sender.
func TestQueueFull(t *testing.T) {
	cfg := feedbackConfig(1)
	cfg.Events = []string{"pruned"}
	cfg.Queue = 2
	hold := make(chan struct{})
	app := heldApp(hold)
	fx := start(t, cfg, app)
	const n = 2000
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprint(i)
	}
	began := time.Now()
	prune(fx.log, tokens)
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("%d events took %s to record", n, d)
	}
	close(hold)
	fx.stop(t)
	sent := len(fx.app.events())
	dropped := fx.sender.Dropped()
	if dropped == 0 || sent+int(dropped) != n {
		t.Errorf("sent %d + dropped %d; want %d, some dropped", sent, dropped, n)
	}
	if m := testutil.ToFloat64(fx.metrics.FeedbackEventsDropped); m != float64(dropped) {
		t.Errorf("ringside_feedback_events_dropped_total: got %v; want %d", m, dropped)
	}
}

// TestStop: Stop sends what is queued without waiting for flush_after;
// once its ctx ends, the batch in flight and the rest are dropped, saying
// so, and Stop returns; nothing runs after.
func TestStop(t *testing.T) {
	t.Run("flushes", func(t *testing.T) {
		fx := start(t, feedbackConfig(100), &fakeApp{})
		story(fx.log, "s1")
		began := time.Now()
		fx.stop(t)
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("Stop took %s", d)
		}
		if n := len(fx.app.events()); n != 4 {
			t.Errorf("events sent: got %d; want 4", n)
		}
		noSenderLeft(t)
	})
	t.Run("grace over", func(t *testing.T) {
		cfg := feedbackConfig(1)
		app := &fakeApp{answer: func(*delivery.Attempt) (delivery.Outcome, error) {
			return delivery.Outcome{Result: delivery.Retry, Reason: "webhook answered 503"}, nil
		}}
		fx := start(t, cfg, app)
		story(fx.log, "s1") // four batches of one
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := fx.sender.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Stop: got %v; want %v", err, context.DeadlineExceeded)
		}
		if dr := fx.batches("dropped"); dr != 4 {
			t.Errorf("batches dropped: got %v; want 4", dr)
		}
		inFlight := 0
		for _, l := range fx.logs.Find("feedback batch dropped") {
			r := fmt.Sprint(l["reason"])
			if !strings.HasPrefix(r, "shutdown grace over") {
				t.Errorf("dropped at Stop with reason %q; want the shutdown grace named", r)
			}
			if r == "shutdown grace over; last reason: webhook answered 503" {
				inFlight++
			}
		}
		if inFlight != 1 {
			t.Errorf("%d batches dropped in flight with their last reason; want 1", inFlight)
		}
		n := len(app.got())
		time.Sleep(50 * time.Millisecond)
		if len(app.got()) != n {
			t.Error("an attempt after Stop returned")
		}
		noSenderLeft(t)
	})
}

// noSenderLeft fails the test unless every goroutine of a Sender has
// ended (within a second: one may be returning).
func noSenderLeft(t *testing.T) {
	t.Helper()
	var stacks string
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "feedback.(*Sender)") {
			return
		}
	}
	t.Errorf("a Sender's goroutine runs after Stop:\n%s", stacks)
}

// TestNoProcess: while the notifier has no plugin process, a batch is
// retried, and goes once it has one.
func TestNoProcess(t *testing.T) {
	var live atomic.Bool
	app := &fakeApp{}
	log := calllog.New(calllog.Options{})
	s, err := Start(Options{Config: feedbackConfig(10), Log: log, Nonce: "test",
		Backoff: Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond},
		Deliverer: func() delivery.Deliverer {
			if !live.Load() {
				return nil
			}
			return app
		}})
	if err != nil {
		t.Fatal(err)
	}
	story(log, "s1")
	time.Sleep(50 * time.Millisecond)
	live.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(app.events()); n != 4 {
		t.Errorf("events: got %d; want 4", n)
	}
}

// TestStartRefuses: a notifier with a device kind cannot carry feedback.
func TestStartRefuses(t *testing.T) {
	_, err := Start(Options{Config: feedbackConfig(1), Kind: "apns", Log: calllog.New(calllog.Options{}),
		Deliverer: func() delivery.Deliverer { return nil }})
	if err == nil || !strings.Contains(err.Error(), `feedback.notifier "app_events" delivers to apns devices`) {
		t.Errorf("got %v; want a refusal naming the notifier and its kind", err)
	}
}

// TestBatchID: a batch's id is the same for the same events and nonce,
// and differs with either.
func TestBatchID(t *testing.T) {
	s := &Sender{opt: Options{Nonce: "a"}}
	b := []Event{{seq: 1}, {seq: 5}}
	id := s.batchID(b)
	if s.batchID([]Event{{seq: 1}, {seq: 3}, {seq: 5}}) != id {
		t.Error("same first and last seq: ids differ")
	}
	if s.batchID([]Event{{seq: 1}, {seq: 6}}) == id {
		t.Error("another last seq: same id")
	}
	if (&Sender{opt: Options{Nonce: "b"}}).batchID(b) == id {
		t.Error("another nonce: same id")
	}
}

// TestSettings: source ranges do not count as a change of the block.
func TestSettings(t *testing.T) {
	a, b := feedbackConfig(1), feedbackConfig(1)
	a.DeclRange.Start.Line, b.DeclRange.Start.Line = 3, 30
	if dump(Settings(a)) != dump(Settings(b)) || a.DeclRange.Start.Line != 3 {
		t.Error("ranges differ: settings differ, or a was changed")
	}
	b.Batch = 2
	if dump(Settings(a)) == dump(Settings(b)) {
		t.Error("batch differs: settings equal")
	}
	if Settings(nil) != nil {
		t.Error("Settings(nil) is not nil")
	}
}
