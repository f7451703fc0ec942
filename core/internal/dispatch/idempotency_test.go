package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/route"
)

// Every attempt of a delivery carries the same ids (the delivery's, and
// each device's), derived from the journaled call: a retry, and a new
// process resuming the journal entry, send the ids of the first attempt; a
// different notifier, device or call gets different ones.
func TestIdempotencyIDsAreStable(t *testing.T) {
	f := newFixture(t)
	f.put(t, "apns", t0, "a1", "a2")
	jr := &fakeJournal{}
	f.plugins["ios"].answer = eachTarget(func(attempt int, _ delivery.Target) delivery.Outcome {
		if attempt > 1 {
			return delivery.Outcome{Result: delivery.Delivered}
		}
		return delivery.Outcome{Result: delivery.Retry}
	})
	routes := []*route.Route{{Name: "r", Notify: []string{"ios", "hook"}}}
	d := New(Options{Planner: f.planner(routes...), Journal: jr, Jitter: func() float64 { return 0 }, Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}})
	c := liveCall()
	if _, err := d.Accept(context.Background(), c, true); err != nil {
		t.Fatal(err)
	}
	_ = d.Wait(context.Background())
	ios := f.plugins["ios"].reqs
	if len(ios) != 2 {
		t.Fatalf("ios attempts: %d; want 2", len(ios))
	}
	ids := func(req *delivery.Attempt) map[string]string {
		m := map[string]string{"": req.ID}
		for _, dv := range req.Targets {
			m[dv.Token] = dv.IdempotencyID
		}
		return m
	}
	first, second := ids(ios[0]), ids(ios[1])
	for tok, id := range first {
		if id == "" || second[tok] != id {
			t.Errorf("device %q: attempt 1 id %q, attempt 2 id %q; want the same, not empty", tok, id, second[tok])
		}
	}
	if first["a1"] == first["a2"] || first["a1"] == first[""] {
		t.Errorf("ids not distinct per device: %v", first)
	}
	hook := f.plugins["hook"].reqs[0].ID
	if hook == first[""] {
		t.Errorf("two notifiers share the delivery id %q", hook)
	}

	// A new process resumes the entry: the same ids.
	var key string
	for k := range jr.appended {
		key = k
	}
	g := newFixture(t)
	d2 := New(Options{Planner: g.planner(routes...), Journal: &fakeJournal{}})
	d2.Resume(context.Background(), []journal.Entry{{Key: key, Data: jr.appended[key]}})
	_ = d2.Wait(context.Background())
	if got := ids(g.plugins["ios"].reqs[0]); got["a1"] != first["a1"] || got["a2"] != first["a2"] || got[""] != first[""] {
		t.Errorf("after resume: ids %v; want %v", got, first)
	}
	if got := g.plugins["hook"].reqs[0].ID; got != hook {
		t.Errorf("after resume: webhook delivery id %q; want %q", got, hook)
	}

	// Another call: other ids.
	c2 := testCall()
	c2.SID = "00000000-0000-0000-0000-000000000002"
	c2.Received = time.Now()
	if _, err := d.Accept(context.Background(), c2, true); err != nil {
		t.Fatal(err)
	}
	_ = d.Wait(context.Background())
	if got := f.plugins["hook"].reqs[1].ID; got == hook {
		t.Errorf("another call got the same delivery id %q", got)
	}
}
