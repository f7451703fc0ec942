package dispatch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/route"
	"github.com/ringside/ringside/core/internal/telemetry"
)

func answerAll(kind delivery.Result) func(int, *delivery.Attempt) ([]delivery.Outcome, error) {
	return func(_ int, req *delivery.Attempt) ([]delivery.Outcome, error) {
		var out []delivery.Outcome
		for range max(1, len(req.Targets)) {
			out = append(out, delivery.Outcome{Result: kind, Reason: "scripted"})
		}
		return out, nil
	}
}

func TestFallbackAfterDelivery(t *testing.T) {
	tests := []struct {
		name          string
		ios           func(int, *delivery.Attempt) ([]delivery.Outcome, error)
		fallbackAfter time.Duration
		wantSMS       int
		reason        string
	}{
		{"notify delivered: no fallback", nil, time.Hour, 0, ""},
		{"every notify delivery failed permanently", answerAll(delivery.Permanent), time.Hour, 1, "failed"},
		{"the token is gone", answerAll(delivery.Gone), time.Hour, 1, "failed"},
		{"nothing delivered by fallback_after", answerAll(delivery.Retry), 30 * time.Millisecond, 1, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.put(t, "apns", t0, "a1")
			f.put(t, "phone", t0, "+819012345678")
			f.plugins["ios"].answer = tc.ios
			f.notifiers["ios"].TTL = 200 * time.Millisecond
			m := telemetry.NewMetrics()
			p := f.planner(&route.Route{Name: "r", Notify: []string{"ios"}, Fallback: []string{"sms"}})
			p.FallbackAfter = tc.fallbackAfter
			d := New(Options{Planner: p, Metrics: m, Jitter: func() float64 { return 0.5 }, Backoff: Backoff{Base: 5 * time.Millisecond, Max: 10 * time.Millisecond}})
			c := liveCall()
			if ans, _ := d.Accept(context.Background(), c, true); ans.Status != callback.StatusAccepted {
				t.Fatalf("got %+v", ans)
			}
			_ = d.Wait(context.Background())
			if got := f.plugins["sms"].calls; got != tc.wantSMS {
				t.Errorf("sms deliveries: got %d; want %d", got, tc.wantSMS)
			}
			if tc.reason != "" {
				if got := testutil.ToFloat64(m.Fallbacks.WithLabelValues("r", tc.reason)); got != 1 {
					t.Errorf("fallbacks{reason=%s}: got %v; want 1", tc.reason, got)
				}
			}
			if d.InFlight() != 0 {
				t.Errorf("in flight after all ended: %d", d.InFlight())
			}
		})
	}
}

func TestOverload(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	f.plugins["hook"].answer = func(int, *delivery.Attempt) ([]delivery.Outcome, error) {
		<-release
		return []delivery.Outcome{{Result: delivery.Delivered}}, nil
	}
	d := New(Options{Planner: f.planner(&route.Route{Name: "r", Notify: []string{"hook"}}), MaxInFlight: 2})
	for i, want := range []error{nil, nil, ErrOverloaded} {
		c := liveCall()
		c.SID = c.SID[:35] + string(rune('0'+i))
		_, err := d.Accept(context.Background(), c, true)
		if !errors.Is(err, want) {
			t.Fatalf("callback %d: got %v; want %v", i, err, want)
		}
	}
	if _, err := d.Accept(context.Background(), testCall(), false); err != nil {
		t.Errorf("HEAD while overloaded: %v (HEAD delivers nothing; it is not bounded)", err)
	}
	close(release)
	_ = d.Wait(context.Background())
	c := liveCall()
	c.SID = c.SID[:35] + "9"
	if _, err := d.Accept(context.Background(), c, true); err != nil {
		t.Errorf("after draining: %v", err)
	}
	_ = d.Wait(context.Background())
}

// fakeJournal records what the dispatcher tells the journal.
type fakeJournal struct {
	mu        sync.Mutex
	appended  map[string][]byte
	delivered [][3]string
	finished  []string
}

func (j *fakeJournal) Append(key string, _ time.Time, data []byte) *journal.Commit {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.appended == nil {
		j.appended = map[string][]byte{}
	}
	j.appended[key] = data
	return nil
}

func (j *fakeJournal) Delivered(key, notifier, token string) {
	j.mu.Lock()
	j.delivered = append(j.delivered, [3]string{key, notifier, token})
	j.mu.Unlock()
}

func (j *fakeJournal) Finish(key string) {
	j.mu.Lock()
	j.finished = append(j.finished, key)
	j.mu.Unlock()
}

func TestJournalRecordAndResume(t *testing.T) {
	f := newFixture(t)
	f.put(t, "apns", t0, "a1", "a2")
	jr := &fakeJournal{}
	f.plugins["ios"].answer = eachTarget(func(_ int, dv delivery.Target) delivery.Outcome {
		if dv.Token == "a2" {
			return delivery.Outcome{Result: delivery.Permanent}
		}
		return delivery.Outcome{Result: delivery.Delivered}
	})
	routes := []*route.Route{{Name: "r", Notify: []string{"ios", "hook"}}}
	d := New(Options{Planner: f.planner(routes...), Journal: jr})
	c := liveCall()
	if ans, err := d.Accept(context.Background(), c, true); err != nil || ans.Status != callback.StatusAccepted {
		t.Fatalf("got %+v, %v", ans, err)
	}
	_ = d.Wait(context.Background())
	if len(jr.appended) != 1 || len(jr.finished) != 1 {
		t.Fatalf("journal: %d appended, %d finished; want 1 and 1", len(jr.appended), len(jr.finished))
	}
	var key string
	for k := range jr.appended {
		key = k
	}
	if jr.finished[0] != key {
		t.Errorf("finished %q; want %q", jr.finished[0], key)
	}
	got := map[[2]string]bool{}
	for _, dv := range jr.delivered {
		got[[2]string{dv[1], dv[2]}] = true
	}
	if !got[[2]string{"ios", "a1"}] || !got[[2]string{"hook", ""}] || got[[2]string{"ios", "a2"}] || len(got) != 2 {
		t.Errorf("delivered marks: got %v; want ios/a1 and hook", got)
	}

	// A new process resumes the entry as if it crashed before anything
	// was delivered but ios/a1: only a2 (ios) and the webhook go out again.
	g := newFixture(t)
	d2 := New(Options{Planner: g.planner(routes...), Journal: &fakeJournal{}})
	n := d2.Resume(context.Background(), []journal.Entry{{Key: key, Data: jr.appended[key], Delivered: map[[2]string]bool{{"ios", "a1"}: true}}})
	_ = d2.Wait(context.Background())
	if n != 1 {
		t.Fatalf("resumed %d; want 1", n)
	}
	if len(g.plugins["ios"].devices) != 1 || len(g.plugins["ios"].devices[0]) != 1 || g.plugins["ios"].devices[0][0] != "a2" {
		t.Errorf("resumed ios deliveries: got %v; want only a2", g.plugins["ios"].devices)
	}
	if g.plugins["hook"].calls != 1 {
		t.Errorf("resumed webhook deliveries: got %d; want 1", g.plugins["hook"].calls)
	}
	// The resumed callback is a duplicate if LINE sends it again.
	if ans, _ := d2.Accept(context.Background(), c, true); ans.Status != callback.StatusDuplicate {
		t.Errorf("callback after resume: got %s; want duplicate", ans.Status)
	}
	_ = d2.Wait(context.Background())
}
