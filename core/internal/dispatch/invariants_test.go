package dispatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/route"
)

// Accept never waits on a plugin: with every plugin holding its attempt,
// Accept still answers (the deliveries run on goroutines of their own);
// a second callback is answered too while the first one's attempts are
// held, so no lock Accept takes is held across a plugin's I/O; and the
// device a plugin reports delivered is marked in the journal while the
// attempt is still held, on the delivery's goroutine.
func TestAcceptNeverWaitsOnAPlugin(t *testing.T) {
	f := newFixture(t)
	f.put(t, "apns", t0, "a1", "a2")
	release := make(chan struct{})
	reported := make(chan struct{})
	var once sync.Once
	f.plugins["ios"].answer = func(_ int, a *delivery.Attempt) ([]delivery.Outcome, error) {
		if a.Call.SID == liveCall().SID {
			a.Delivered(0)
			once.Do(func() { close(reported) })
		}
		<-release
		return []delivery.Outcome{{Result: delivery.Delivered}, {Result: delivery.Delivered}}, nil
	}
	f.plugins["hook"].answer = func(int, *delivery.Attempt) ([]delivery.Outcome, error) {
		<-release
		return []delivery.Outcome{{Result: delivery.Delivered}}, nil
	}
	jr := &fakeJournal{}
	d := New(Options{Planner: f.planner(&route.Route{Name: "r", Notify: []string{"ios", "hook"}}), Journal: jr})
	acceptWithin(t, d, liveCall(), "Accept waited on a plugin holding its attempt")
	select {
	case <-reported:
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt never reached the plugin")
	}
	second := liveCall()
	second.SID = "251ad995-749c-4a28-893f-636700469db1"
	acceptWithin(t, d, second, "a second Accept waited while the first callback's attempts were held")
	jr.mu.Lock()
	marks := len(jr.delivered)
	tok := ""
	if marks > 0 {
		tok = jr.delivered[0][2]
	}
	jr.mu.Unlock()
	if marks != 1 || tok != "a1" {
		t.Errorf("journal marks while the attempt is held: %d (%q); want 1 (a1)", marks, tok)
	}
	close(release)
	if err := d.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.InFlight() != 0 {
		t.Errorf("in flight after every delivery ended: %d", d.InFlight())
	}
}

// acceptWithin accepts c and fails the test with why when Accept does not
// answer within 10 s.
func acceptWithin(t *testing.T, d *Dispatcher, c *callback.Call, why string) {
	t.Helper()
	answered := make(chan error, 1)
	go func() {
		_, err := d.Accept(context.Background(), c, true)
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal(why)
	}
}
