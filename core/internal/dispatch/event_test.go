package dispatch

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/route"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// callEnded is the Call Event of c: the call ended with terminate.
func callEnded(c *callback.Call, terminate int, duration int64) *callback.Call {
	e := *c
	e.Kind = callback.KindCallEvent
	e.Param = ""
	e.Received = time.Now()
	e.End = &callback.CallEnd{Terminate: terminate, Duration: duration}
	return &e
}

// A Call Event stops the sid's retries and its pending fallback, which
// are recorded as ended, and counts the outcome by the notifier that rang.
func TestCallEventStopsRetriesAndFallback(t *testing.T) {
	f := newFixture(t)
	f.put(t, "apns", t0, "a1")
	f.put(t, "phone", t0, "+819012345678")
	f.plugins["ios"].answer = answerAll(delivery.Retry)
	m := telemetry.NewMetrics()
	p := f.planner(
		&route.Route{Name: "r", Notify: []string{"ios"}, Fallback: []string{"sms"}},
		&route.Route{Name: "ended", On: callback.KindCallEvent, When: expr(t, `call.outcome == "nobody"`), Notify: []string{"hook"}},
	)
	p.FallbackAfter = time.Hour
	calls := calllog.New(calllog.Options{})
	d := New(Options{Planner: p, Metrics: m, CallLog: calls, Jitter: func() float64 { return 0.5 }, Backoff: Backoff{Base: 5 * time.Millisecond, Max: 10 * time.Millisecond}})
	ctx := context.Background()
	c := liveCall()
	if ans, _ := d.Accept(ctx, c, true); ans.Status != callback.StatusAccepted {
		t.Fatalf("notify: got %+v", ans)
	}
	eventually(t, func() bool {
		f.plugins["ios"].mu.Lock()
		defer f.plugins["ios"].mu.Unlock()
		return f.plugins["ios"].calls >= 2
	})
	ans, err := d.Accept(ctx, callEnded(c, 77, 0), true)
	if err != nil || ans.Status != callback.StatusUnrouted {
		t.Fatalf("call event: got %+v, %v; want unrouted (no route for canceled)", ans, err)
	}
	done := make(chan struct{})
	go func() { _ = d.Wait(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the end did not stop the retries")
	}
	if got := f.plugins["sms"].calls; got != 0 {
		t.Errorf("fallback ran after the end: %d sms", got)
	}
	if got := testutil.ToFloat64(m.Deliveries.WithLabelValues("ios", "ended")); got != 1 {
		t.Errorf(`deliveries{ios,ended}: got %v; want 1`, got)
	}
	if got := testutil.ToFloat64(m.CallOutcomes.WithLabelValues("", "", "canceled")); got != 1 {
		t.Errorf("outcomes{canceled} with nothing rung: got %v; want 1", got)
	}
	rec, ok := calls.Get(c.SID)
	if !ok || rec.End == nil || rec.End.Outcome != "canceled" || rec.End.Stopped != 1 {
		t.Fatalf("call log end: %+v", rec.End)
	}
	var types []string
	for _, e := range rec.Events {
		types = append(types, e.Type+":"+e.Outcome)
	}
	for _, want := range []string{"call_end:canceled", "ended:ended"} {
		if !slices.Contains(types, want) {
			t.Errorf("call log events %q lack %q", types, want)
		}
	}
	// The same event again is a duplicate and does nothing.
	if ans, _ := d.Accept(ctx, callEnded(c, 77, 0), true); ans.Status != callback.StatusDuplicate {
		t.Errorf("repeat: got %+v; want duplicate", ans)
	}
	if got := testutil.ToFloat64(m.CallOutcomes.WithLabelValues("", "", "canceled")); got != 1 {
		t.Errorf("a repeat counted the outcome again: %v", got)
	}
}

// A cancel route (rung = true) reaches exactly the devices that rang for
// the sid, and the outcome is counted by the route and notifier that rang.
func TestCancelGoesToTheDevicesRung(t *testing.T) {
	f := newFixture(t)
	f.put(t, "apns", t0, "a1", "a2")
	// a2 never rings: the provider refuses it for good.
	f.plugins["ios"].answer = eachTarget(func(_ int, tg delivery.Target) delivery.Outcome {
		if tg.Token == "a2" {
			return delivery.Outcome{Result: delivery.Permanent, Reason: "BadDeviceToken"}
		}
		return delivery.Outcome{Result: delivery.Delivered}
	})
	m := telemetry.NewMetrics()
	d := newDispatcher(f, m, 0.5,
		&route.Route{Name: "ring", Notify: []string{"ios"}},
		&route.Route{Name: "cancel", On: callback.KindCallEvent, When: expr(t, `call.outcome != "answered"`), Rung: true, Notify: []string{"ios2"}},
	)
	ctx := context.Background()
	c := liveCall()
	if ans, _ := d.Accept(ctx, c, true); ans.Status != callback.StatusAccepted {
		t.Fatalf("notify: got %+v", ans)
	}
	_ = d.Wait(ctx)
	f.put(t, "apns", t0, "a3") // registered after the ring: not rung
	if ans, _ := d.Accept(ctx, callEnded(c, 18, 0), true); ans.Status != callback.StatusAccepted || ans.Route != "cancel" {
		t.Fatalf("call event: got %+v; want accepted by cancel", ans)
	}
	_ = d.Wait(ctx)
	p := f.plugins["ios2"]
	if len(p.devices) != 1 || !slices.Equal(p.devices[0], []string{"a1"}) {
		t.Errorf("cancel went to %q; want only a1", p.devices)
	}
	if req := p.reqs[0]; req.Call.Kind != callback.KindCallEvent ||
		!bytes.Contains(req.Payload, []byte(`"event":"call_end"`)) || !bytes.Contains(req.Payload, []byte(`"outcome":"missed"`)) || bytes.Contains(req.Payload, []byte("cc_param")) {
		t.Errorf("cancel payload: %s", req.Payload)
	}
	if got := testutil.ToFloat64(m.CallOutcomes.WithLabelValues("ring", "ios", "missed")); got != 1 {
		t.Errorf("outcomes{ring,ios,missed}: got %v; want 1", got)
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// An event's deliveries are journaled with its query, and a restart
// resumes them as the same event: parsed again, its payload kept, and a
// repeat of the event a duplicate.
func TestJournalResumesAnEvent(t *testing.T) {
	f := newFixture(t)
	f.put(t, "apns", t0, "a1")
	f.plugins["hook"].answer = answerAll(delivery.Retry)
	f.notifiers["hook"].TTL = 50 * time.Millisecond
	routes := []*route.Route{{Name: "missed", On: callback.KindCallEvent, When: expr(t, `call.outcome == "missed"`), Notify: []string{"hook"}}}
	jr := &fakeJournal{}
	d := New(Options{Planner: f.planner(routes...), Journal: jr, Backoff: Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}})
	now := time.Now().UTC().Truncate(time.Second)
	query := "sid=151ad995-749c-4a28-893f-636700469db1&from_service_id=linecorp.com&from_user_id=9286&to_service_id=planetkit&to_user_id=2809&type=V&terminate=18&duration=0&setup_time=" + strconv.FormatInt(now.Unix(), 10)
	ev, _, err := callback.ParseEvent(callback.KindCallEvent, query, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ans, err := d.Accept(context.Background(), ev, true); err != nil || ans.Status != callback.StatusAccepted {
		t.Fatalf("got %+v, %v", ans, err)
	}
	_ = d.Wait(context.Background())
	if len(jr.appended) != 1 {
		t.Fatalf("journal: %d appended; want 1", len(jr.appended))
	}
	var key string
	for k := range jr.appended {
		key = k
	}
	g := newFixture(t)
	d2 := New(Options{Planner: g.planner(routes...), Journal: &fakeJournal{}})
	// The entry's deadline is moved on, as if the restart came at once.
	data := bytes.ReplaceAll(jr.appended[key], []byte(ev.Received.Add(50*time.Millisecond).Format(time.RFC3339Nano)), []byte(time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)))
	if n := d2.Resume(context.Background(), []journal.Entry{{Key: key, Data: data}}); n != 1 {
		t.Fatalf("resumed %d; want 1", n)
	}
	_ = d2.Wait(context.Background())
	p := g.plugins["hook"]
	if p.calls != 1 {
		t.Fatalf("resumed webhook deliveries: %d; want 1", p.calls)
	}
	req := p.reqs[0]
	if req.Call.Kind != callback.KindCallEvent || req.Call.End == nil || req.Call.End.Terminate != 18 || !req.Call.End.SetupTime.Equal(now) ||
		!bytes.Contains(req.Payload, []byte(`"event":"call_end"`)) {
		t.Errorf("resumed as %+v, end %+v, payload %s", req.Call, req.Call.End, req.Payload)
	}
	if ans, _ := d2.Accept(context.Background(), ev, true); ans.Status != callback.StatusDuplicate {
		t.Errorf("the event again after resume: got %s; want duplicate", ans.Status)
	}
}

// Without a rung route nothing is kept per rung device; the outcome is
// still counted by the notifier that rang, from the call log.
func TestOutcomesWithoutRungRoute(t *testing.T) {
	f := newFixture(t)
	f.put(t, "apns", t0, "a1")
	m := telemetry.NewMetrics()
	calls := calllog.New(calllog.Options{})
	d := New(Options{Planner: f.planner(&route.Route{Name: "ring", Notify: []string{"ios"}}), Metrics: m, CallLog: calls})
	ctx := context.Background()
	c := liveCall()
	if ans, _ := d.Accept(ctx, c, true); ans.Status != callback.StatusAccepted {
		t.Fatalf("notify: got %+v", ans)
	}
	_ = d.Wait(ctx)
	if got := d.sids.Rung(c.SID); len(got) != 0 {
		t.Errorf("devices kept without a rung route: %v", got)
	}
	end := callEnded(c, 16, 30)
	end.End.StartTime = c.Received.Add(3 * time.Second)
	if ans, _ := d.Accept(ctx, end, true); ans.Status != callback.StatusUnrouted {
		t.Fatalf("call event: got %+v", ans)
	}
	if got := testutil.ToFloat64(m.CallOutcomes.WithLabelValues("ring", "ios", "answered")); got != 1 {
		t.Errorf("outcomes{ring,ios,answered}: got %v; want 1", got)
	}
	if rec, _ := calls.Get(c.SID); rec.End == nil || rec.End.RingToAnswer != 3 {
		t.Errorf("ring to answer: %+v; want 3 s", rec.End)
	}
}
