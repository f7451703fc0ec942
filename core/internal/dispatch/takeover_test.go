package dispatch

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/cluster"
	"github.com/ringside/ringside/core/internal/cluster/redistest"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/route"
)

// connectWork is a Work of its own client on srv.
func connectWork(t *testing.T, srv *redistest.Server, ttl time.Duration) *cluster.Work {
	t.Helper()
	c, err := cluster.Connect(context.Background(), cluster.Settings{Addresses: []string{srv.Addr()}, KeyPrefix: "t:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.Work(cluster.WorkOptions{HeartbeatTTL: ttl})
}

// A replica that dies has its work taken over by a live one, which
// delivers only to the devices not delivered yet, with the ids the dead
// replica used; the accepted work was in Redis, not in the journal.
func TestTakeoverDeliversOnlyWhatWasLeft(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	routes := []*route.Route{{Name: "r", Notify: []string{"ios", "hook"}}}

	// Replica A: a1 and the webhook are delivered, a2 is retried until A
	// "dies" (its heartbeat stops; its process is gone in production, so
	// here its plugin stops answering).
	fa := newFixture(t)
	fa.put(t, "apns", t0, "a1", "a2")
	var dead sync.WaitGroup
	dead.Add(1)
	gone := make(chan struct{})
	fa.plugins["ios"].answer = eachTarget(func(_ int, tg delivery.Target) delivery.Outcome {
		select {
		case <-gone:
			return delivery.Outcome{Result: delivery.Permanent}
		default:
		}
		if tg.Token == "a1" {
			return delivery.Outcome{Result: delivery.Delivered}
		}
		return delivery.Outcome{Result: delivery.Retry}
	})
	jrA := &fakeJournal{}
	workA := connectWork(t, srv, time.Second)
	dA := New(Options{Planner: fa.planner(routes...), Journal: jrA, SharedDedup: workA,
		Jitter: func() float64 { return 0.5 }, Backoff: Backoff{Base: 50 * time.Millisecond, Max: 50 * time.Millisecond}})
	runA, stopA := context.WithCancel(ctx)
	go func() { defer dead.Done(); workA.Run(runA, func([]journal.Entry) {}) }()

	c := liveCall()
	if ans, err := dA.Accept(ctx, c, true); err != nil || ans.Status != callback.StatusAccepted {
		t.Fatalf("accept: %v %v", ans.Status, err)
	}
	if n := len(jrA.appended); n != 0 {
		t.Errorf("the journal got %d appends; want none, the work is in Redis", n)
	}
	// Wait until a1 and the webhook are delivered and marked in Redis,
	// and a2 is being attempted.
	eventually(t, func() bool { // a1 and the webhook delivered, a2 retrying
		hook, ios := fa.plugins["hook"], fa.plugins["ios"]
		hook.mu.Lock()
		hooked := len(hook.reqs) == 1
		hook.mu.Unlock()
		ios.mu.Lock()
		defer ios.mu.Unlock()
		return hooked && ios.calls >= 2
	})
	time.Sleep(200 * time.Millisecond) // marks are written within 50 ms
	stopA()
	dead.Wait()

	// Replica B takes over.
	fb := newFixture(t)
	fb.put(t, "apns", t0, "a1", "a2")
	fb.plugins["ios"].answer = func(_ int, a *delivery.Attempt) ([]delivery.Outcome, error) { return delivered(a), nil }
	workB := connectWork(t, srv, time.Second)
	dB := New(Options{Planner: fb.planner(routes...), Journal: &fakeJournal{}, SharedDedup: workB})
	runB, stopB := context.WithCancel(ctx)
	defer stopB()
	taken := make(chan int, 10)
	start := time.Now()
	go workB.Run(runB, func(es []journal.Entry) { taken <- dB.ResumeTaken(ctx, es) })
	select {
	case n := <-taken:
		if n != 1 {
			t.Fatalf("took over %d calls; want 1", n)
		}
		t.Logf("taken over %v after A's heartbeat stopped", time.Since(start))
	case <-time.After(15 * time.Second):
		t.Fatal("no takeover within 15 s")
	}
	_ = dB.Wait(ctx)
	close(gone)

	if n := len(fb.plugins["hook"].reqs); n != 0 {
		t.Errorf("the webhook delivered before the takeover was sent again %d times", n)
	}
	reqs := fb.plugins["ios"].reqs
	if len(reqs) != 1 || len(reqs[0].Targets) != 1 || reqs[0].Targets[0].Token != "a2" {
		t.Fatalf("after takeover: %d attempts %v; want one, to a2 only", len(reqs), reqs)
	}
	var idA string
	fa.plugins["ios"].mu.Lock()
	defer fa.plugins["ios"].mu.Unlock()
	for _, req := range fa.plugins["ios"].reqs {
		for _, tg := range req.Targets {
			if tg.Token == "a2" {
				idA = tg.IdempotencyID
			}
		}
	}
	if got := reqs[0].Targets[0].IdempotencyID; got == "" || got != idA {
		t.Errorf("a2's idempotency id: %q after takeover, %q before; want the same", got, idA)
	}
	// The same sid given to B now is a duplicate: the claim is shared.
	cc := *c
	if ans, _ := dB.Accept(ctx, &cc, true); ans.Status != callback.StatusDuplicate {
		t.Errorf("the sid again, on B: %s; want duplicate", ans.Status)
	}
}

// With Redis away the claim is this replica's own and the work goes to the
// local journal; a journal entry whose work Redis holds is not resumed (the
// takeover delivers it), one Redis does not know is.
func TestSharedWorkFallsBackToTheJournal(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	routes := []*route.Route{{Name: "r", Notify: []string{"ios"}}}
	f := newFixture(t)
	f.put(t, "apns", t0, "a1")
	f.plugins["ios"].answer = func(_ int, a *delivery.Attempt) ([]delivery.Outcome, error) { return delivered(a), nil }
	work := connectWork(t, srv, time.Second)
	jr := &fakeJournal{}
	up := true
	d := New(Options{Planner: f.planner(routes...), Journal: jr, SharedDedup: work, SharedUp: func() bool { return up }})

	inRedis := liveCall()
	if _, err := d.Accept(ctx, inRedis, true); err != nil {
		t.Fatal(err)
	}
	up = false // the background check says Redis is away
	local := liveCall()
	local.SID = sidN(7)
	if ans, err := d.Accept(ctx, local, true); err != nil || ans.Status != callback.StatusAccepted {
		t.Fatalf("accept with Redis away: %v %v", ans.Status, err)
	}
	_ = d.Wait(ctx)
	if len(jr.appended) != 1 {
		t.Fatalf("journal appends: %d; want 1 (the call accepted while Redis was away)", len(jr.appended))
	}

	// A restart finds both in its journal (say the first was appended
	// there too, by a claim that timed out but was applied): only the one
	// Redis does not hold is resumed.
	var localKey string
	for k := range jr.appended {
		localKey = k
	}
	data, err := encodeRecordOf(inRedis, f, routes)
	if err != nil {
		t.Fatal(err)
	}
	g := newFixture(t)
	g.put(t, "apns", t0, "a1")
	g.plugins["ios"].answer = func(_ int, a *delivery.Attempt) ([]delivery.Outcome, error) { return delivered(a), nil }
	jr2 := &fakeJournal{}
	d2 := New(Options{Planner: g.planner(routes...), Journal: jr2, SharedDedup: work})
	n := d2.Resume(ctx, []journal.Entry{
		{Key: "msg_held", Deadline: time.Now().Add(time.Minute), Data: data},
		{Key: localKey, Deadline: time.Now().Add(time.Minute), Data: jr.appended[localKey]},
	})
	_ = d2.Wait(ctx)
	if n != 1 {
		t.Errorf("resumed %d; want 1, the call Redis does not hold", n)
	}
	if len(g.plugins["ios"].reqs) != 1 {
		t.Errorf("%d pushes after the restart; want 1", len(g.plugins["ios"].reqs))
	}
	if !slices.Contains(jr2.finished, "msg_held") {
		t.Errorf("the entry Redis holds was not finished in the journal: %v", jr2.finished)
	}
}

// encodeRecordOf is the journal record of c as routes plan it.
func encodeRecordOf(c *callback.Call, f *fixture, routes []*route.Route) ([]byte, error) {
	p := f.planner(routes...)
	pl, err := p.Plan(context.Background(), c, nil)
	if err != nil {
		return nil, err
	}
	return encodeRecord(pl)
}
