package dispatch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr/callexprtest"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/plan"
	"github.com/ringside/ringside/core/internal/route"
	"github.com/ringside/ringside/core/internal/telemetry"
)

func expr(t *testing.T, src string) hcl.Expression { return callexprtest.Parse(t, src) }

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func testCall() *callback.Call {
	return &callback.Call{
		SID: "151ad995-749c-4a28-893f-636700469db1", FromServiceID: "linecorp.com", FromUserID: "9286",
		ToServiceID: "planetkit", ToUserID: "2809", Type: "V", Param: "eyJ+/a==", AppSvrData: "data",
		Received: t0,
	}
}

// liveCall is testCall received now, so that the deadlines its delivery
// context carries are real.
func liveCall() *callback.Call {
	c := testCall()
	c.Received = time.Now()
	return c
}

// fakePlugin answers attempts with outcomes chosen per attempt and records
// them.
type fakePlugin struct {
	mu      sync.Mutex
	reqs    []*delivery.Attempt // copies, as they were sent
	answer  func(attempt int, a *delivery.Attempt) ([]delivery.Outcome, error)
	calls   int
	devices [][]string
}

func (f *fakePlugin) Deliver(ctx context.Context, a *delivery.Attempt) ([]delivery.Outcome, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	var toks []string
	for _, t := range a.Targets {
		toks = append(toks, t.Token)
	}
	f.devices = append(f.devices, toks)
	cp := *a
	cp.Targets = slices.Clone(a.Targets)
	f.reqs = append(f.reqs, &cp)
	f.mu.Unlock()
	if f.answer == nil {
		return delivered(a), nil
	}
	return f.answer(n, a)
}

// eachTarget answers an attempt target by target with what outcome says
// for the target at that attempt (the first is 1).
func eachTarget(outcome func(attempt int, tg delivery.Target) delivery.Outcome) func(int, *delivery.Attempt) ([]delivery.Outcome, error) {
	return func(attempt int, a *delivery.Attempt) ([]delivery.Outcome, error) {
		var out []delivery.Outcome
		for _, tg := range a.Targets {
			out = append(out, outcome(attempt, tg))
		}
		return out, nil
	}
}

func delivered(a *delivery.Attempt) []delivery.Outcome {
	out := make([]delivery.Outcome, max(1, len(a.Targets)))
	for i := range out {
		out[i] = delivery.Outcome{Result: delivery.Delivered, ProviderID: "id"}
	}
	return out
}

type fixture struct {
	store     *directory.Memory
	notifiers map[string]*plan.Notifier
	plugins   map[string]*fakePlugin
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{store: directory.NewMemory(), notifiers: map[string]*plan.Notifier{}, plugins: map[string]*fakePlugin{}}
	for _, n := range []struct{ name, kind string }{{"ios", "apns"}, {"android", "fcm"}, {"hook", ""}, {"sms", "phone"}, {"ios2", "apns"}} {
		p := &fakePlugin{}
		f.plugins[n.name] = p
		f.notifiers[n.name] = &plan.Notifier{Name: n.name, Plugin: n.name, Kind: n.kind, TTL: 60 * time.Second, Deliverer: p}
	}
	return f
}

// put stores devices of kind, one a token, updated at at, for the callee
// of testCall.
func (f *fixture) put(t *testing.T, kind string, at time.Time, tokens ...string) {
	t.Helper()
	for _, token := range tokens {
		if err := f.store.Put(context.Background(), "planetkit", "2809", kind, token, at); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) planner(routes ...*route.Route) plan.Planner {
	return plan.Planner{
		Routes:    route.New(routes, func(n string) bool { return f.notifiers[n] != nil }),
		Notifiers: f.notifiers,
		Store:     f.store,
	}
}

func newDispatcher(f *fixture, m *telemetry.Metrics, jitter float64, routes ...*route.Route) *Dispatcher {
	return New(Options{
		Planner: f.planner(routes...),
		Metrics: m,
		Now:     func() time.Time { return t0 },
		Jitter:  func() float64 { return jitter },
		Backoff: Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond},
	})
}

func TestAcceptDeliversAndDedups(t *testing.T) {
	f := newFixture(t)
	f.put(t, "apns", t0, "a1")
	m := telemetry.NewMetrics()
	d := newDispatcher(f, m, 0.5, &route.Route{Name: "r", Notify: []string{"ios", "hook"}})
	ctx := context.Background()

	// HEAD: decided, not delivered, not recorded.
	ans, err := d.Accept(ctx, testCall(), false)
	if err != nil || ans.Status != callback.StatusAccepted || ans.Route != "r" || !ans.Reachable {
		t.Fatalf("HEAD: got %+v, %v", ans, err)
	}
	_ = d.Wait(ctx)
	if f.plugins["ios"].calls != 0 {
		t.Fatalf("HEAD delivered")
	}
	ans, _ = d.Accept(ctx, testCall(), true)
	if ans.Status != callback.StatusAccepted {
		t.Fatalf("GET: got %+v", ans)
	}
	ans, _ = d.Accept(ctx, testCall(), true)
	if ans.Status != callback.StatusDuplicate {
		t.Fatalf("repeat: got %+v; want duplicate", ans)
	}
	other := testCall()
	other.ToUserID = "other"
	if ans, _ := d.Accept(ctx, other, true); ans.Status != callback.StatusAccepted {
		t.Fatalf("other callee: got %+v; want accepted (not a duplicate)", ans)
	}
	_ = d.Wait(ctx)
	if got := f.plugins["ios"].calls; got != 1 {
		t.Errorf("ios deliveries: got %d; want 1", got)
	}
	if got := f.plugins["hook"].calls; got != 2 {
		t.Errorf("hook deliveries: got %d; want 2", got)
	}
	req := f.plugins["hook"].reqs[0]
	if req.Call.Param != "eyJ+/a==" || req.Route != "r" || req.Number != 1 || len(req.Targets) != 0 ||
		!req.Deadline.Equal(t0.Add(60*time.Second)) || req.ID == "" {
		t.Errorf("webhook request: got %+v", req)
	}
	if got := testutil.ToFloat64(m.Deliveries.WithLabelValues("ios", "delivered")); got != 1 {
		t.Errorf("delivered metric: got %v", got)
	}
}

func TestDeliveryOutcomes(t *testing.T) {
	f := newFixture(t)
	f.put(t, "apns", t0, "ok", "gone-old")
	f.put(t, "apns", t0.Add(time.Minute), "gone-new")
	f.put(t, "apns", t0, "bad", "flaky")
	m := telemetry.NewMetrics()
	d := New(Options{
		Planner: f.planner(&route.Route{Name: "r", Notify: []string{"ios"}}),
		Metrics: m,
		Jitter:  func() float64 { return 0.5 },
		Backoff: Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond},
	})
	f.plugins["ios"].answer = eachTarget(func(attempt int, dev delivery.Target) delivery.Outcome {
		var o delivery.Outcome
		switch dev.Token {
		case "ok":
			o.Result = delivery.Delivered
		case "gone-old", "gone-new":
			o.Result, o.GoneAt = delivery.Gone, t0.Add(30*time.Second)
		case "bad":
			o.Result, o.Reason = delivery.Permanent, "BadDeviceToken"
		case "flaky":
			o.Result = delivery.Retry
			if attempt >= 3 {
				o.Result = delivery.Delivered
			}
		}
		return o
	})
	c := liveCall()
	if ans, _ := d.Accept(context.Background(), c, true); ans.Status != callback.StatusAccepted {
		t.Fatalf("got %+v", ans)
	}
	_ = d.Wait(context.Background())
	p := f.plugins["ios"]
	if len(p.devices) != 3 || len(p.devices[1]) != 1 || p.devices[1][0] != "flaky" || p.devices[2][0] != "flaky" {
		t.Errorf("attempts: got %v; want all five, then only flaky twice", p.devices)
	}
	for _, c := range []struct {
		outcome string
		want    float64
	}{{"delivered", 2}, {"gone", 2}, {"permanent", 1}, {"expired", 0}} {
		if got := testutil.ToFloat64(m.Deliveries.WithLabelValues("ios", c.outcome)); got != c.want {
			t.Errorf("%s: got %v; want %v", c.outcome, got, c.want)
		}
	}
	devs, _ := f.store.Lookup(context.Background(), "planetkit", "2809")
	var left []string
	for _, dv := range devs {
		left = append(left, dv.Token)
	}
	// gone-old was registered before APNs saw it gone: pruned. gone-new was
	// registered again since: kept. bad is permanent: never pruned.
	want := []string{"bad", "flaky", "gone-new", "ok"}
	if len(left) != len(want) {
		t.Fatalf("devices left: got %v; want %v", left, want)
	}
	for i := range want {
		if left[i] != want[i] {
			t.Errorf("devices left: got %v; want %v", left, want)
		}
	}
	if got := testutil.ToFloat64(m.TokensPruned.WithLabelValues("apns")); got != 1 {
		t.Errorf("pruned: got %v; want 1", got)
	}
}

func TestRetryStopsAtDeadline(t *testing.T) {
	f := newFixture(t)
	f.notifiers["hook"].TTL = 10 * time.Second
	m := telemetry.NewMetrics()
	start := time.Now() // the delivery context's deadline is on the real clock too
	clock := start
	var mu sync.Mutex
	d := New(Options{
		Planner: f.planner(&route.Route{Name: "r", Notify: []string{"hook"}}),
		Metrics: m,
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return clock
		},
		Jitter:  func() float64 { return 1 },
		Backoff: Backoff{Base: 10 * time.Millisecond, Max: 10 * time.Millisecond},
	})
	f.plugins["hook"].answer = func(attempt int, req *delivery.Attempt) ([]delivery.Outcome, error) {
		mu.Lock()
		clock = clock.Add(4 * time.Second) // each attempt takes 4 s of the injected clock
		mu.Unlock()
		if attempt == 1 {
			return nil, errors.New("transport: connection refused")
		}
		return []delivery.Outcome{{Result: delivery.Retry, RetryAfter: time.Millisecond}}, nil
	}
	c := testCall()
	c.Received = start
	// Deadline is start+10s: attempts end at 4, 8 and 12 s on the injected
	// clock; after the third the next would start after the deadline, so
	// the delivery expires. The real clock (the ctx's deadline, the 10 ms
	// backoff sleeps) is far from the deadline however loaded the box is.
	if ans, _ := d.Accept(context.Background(), c, true); ans.Status != callback.StatusAccepted {
		t.Fatalf("got %+v", ans)
	}
	_ = d.Wait(context.Background())
	if got := f.plugins["hook"].calls; got != 3 {
		t.Errorf("attempts: got %d; want 3", got)
	}
	if got := testutil.ToFloat64(m.Deliveries.WithLabelValues("hook", "expired")); got != 1 {
		t.Errorf("expired: got %v; want 1", got)
	}
}

func TestDedupWindow(t *testing.T) {
	d := NewDedup(10 * time.Second)
	if !d.Claim("s", "svc", "u", t0) {
		t.Fatal("first claim refused")
	}
	for _, tc := range []struct {
		name string
		at   time.Duration
		user string
		want bool
	}{
		{"inside the window", 9 * time.Second, "u", false},
		{"another callee", 9 * time.Second, "v", true},
		{"after the window", 10 * time.Second, "u", true},
		{"again inside the new window", 15 * time.Second, "u", false},
		{"two windows later", 40 * time.Second, "u", true},
	} {
		if got := d.Claim("s", "svc", tc.user, t0.Add(tc.at)); got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
	}
}
