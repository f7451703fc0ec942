package calllog

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)} }

func start(sid, callee, status string, at time.Time) Start {
	return Start{
		SID: sid, Received: at, Status: status, Type: "A",
		Caller: Party{"linecorp.com", "9286"}, Callee: Party{"linecorp.com", callee},
		Routes: []string{"all"},
		Notifiers: []Notifier{
			{Name: "ios", Plugin: "apns", Route: "all", Role: "notify", Kind: "apns", Active: true, Devices: 1},
			{Name: "sms", Plugin: "sms", Route: "all", Role: "fallback", Kind: "phone", Reason: "disabled: TWILIO_ACCOUNT_SID is not set"},
		},
		Devices: []Device{{Kind: "apns", Token: "a1b2c3…7f8e"}},
	}
}

func TestRecordTellsTheWholeStory(t *testing.T) {
	clk := newClock()
	l := New(Options{Now: clk.now})
	c := l.Begin(start("sid-1", "2809", "accepted", clk.now()))
	dev := &Device{Kind: "apns", Token: "a1b2c3…7f8e"}
	c.Add(Event{Type: EventAttempt, Notifier: "ios", Device: dev, Attempt: 1, Outcome: "retry", Reason: "ServiceUnavailable", RetryAfterMS: 1000}, "full-token")
	clk.add(time.Second)
	c.Add(Event{Type: EventAttempt, Notifier: "ios", Device: dev, Attempt: 2, Outcome: "delivered", ProviderID: "apns-id"}, "full-token")
	c.End(OutcomeDelivered)

	r, ok := l.Get("sid-1")
	if !ok {
		t.Fatal("record not found")
	}
	if r.Outcome != OutcomeDelivered || r.Finished == nil || r.Status != "accepted" {
		t.Fatalf("summary = %+v", r.Summary)
	}
	var types []string
	for _, e := range r.Events {
		types = append(types, e.Type+":"+e.Outcome)
	}
	if got, want := strings.Join(types, ","), "callback:,attempt:retry,attempt:delivered,finished:delivered"; got != want {
		t.Fatalf("events = %s, want %s", got, want)
	}
	if len(r.Results) != 1 || r.Results[0].Outcome != "delivered" {
		t.Fatalf("results = %+v", r.Results)
	}
	b, _ := json.Marshal(r)
	if strings.Contains(string(b), "full-token") {
		t.Fatalf("the whole token reached the record: %s", b)
	}
	for _, key := range []string{`"sid":"sid-1"`, `"retry_after_ms":1000`, `"reason":"disabled: TWILIO_ACCOUNT_SID is not set"`, `"provider_id":"apns-id"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("record JSON lacks %s: %s", key, b)
		}
	}
}

func TestRepeatJoinsTheRecord(t *testing.T) {
	clk := newClock()
	l := New(Options{Now: clk.now})
	l.Begin(start("sid-1", "2809", "accepted", clk.now()))
	l.Begin(start("sid-1", "2809", "duplicate", clk.now()))
	r, _ := l.Get("sid-1")
	if r.Callbacks != 2 || r.Status != "accepted" {
		t.Fatalf("record = %+v", r.Summary)
	}
	if got := l.List(Filter{Status: "duplicate"}); len(got) != 1 || got[0].SID != "sid-1" {
		t.Fatalf("status=duplicate lists %+v", got)
	}
	// The same sid to another callee is a record of its own.
	l.Begin(start("sid-1", "other", "accepted", clk.now()))
	if n := l.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
}

func TestRetentionByCountAndAge(t *testing.T) {
	clk := newClock()
	l := New(Options{Now: clk.now, MaxCalls: 3, MaxAge: time.Minute})
	for i := range 5 {
		l.Begin(start(fmt.Sprint("sid-", i), "u", "accepted", clk.now()))
	}
	if n := l.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	if _, ok := l.Get("sid-1"); ok {
		t.Fatal("sid-1 kept past the count bound")
	}
	if _, ok := l.Get("sid-4"); !ok {
		t.Fatal("sid-4 evicted")
	}
	clk.add(2 * time.Minute)
	if _, ok := l.Get("sid-4"); ok {
		t.Fatal("sid-4 served past the age bound")
	}
	if got := l.List(Filter{}); len(got) != 0 {
		t.Fatalf("List past the age bound = %d records", len(got))
	}
	l.Begin(start("sid-new", "u", "accepted", clk.now()))
	if n := l.Len(); n != 1 {
		t.Fatalf("Len after a new record = %d, want 1 (old ones aged out)", n)
	}
}

func TestListFilters(t *testing.T) {
	clk := newClock()
	l := New(Options{Now: clk.now})
	t0 := clk.now()
	l.Begin(start("a", "alice", "accepted", clk.now()))
	clk.add(time.Second)
	s := start("b", "bob", "unrouted", clk.now())
	s.Routes, s.Notifiers = nil, nil
	l.Begin(s)
	clk.add(time.Second)
	l.Begin(start("c", "alice", "no_devices", clk.now()))
	for _, tc := range []struct {
		f    Filter
		want string
	}{
		{Filter{}, "c,b,a"},
		{Filter{Callee: "alice"}, "c,a"},
		{Filter{Status: "unrouted"}, "b"},
		{Filter{Route: "all"}, "c,a"},
		{Filter{Notifier: "sms"}, "c,a"},
		{Filter{Caller: "9286", CallerService: "linecorp.com"}, "c,b,a"},
		{Filter{Since: t0.Add(time.Second)}, "c,b"},
		{Filter{Until: t0.Add(time.Second)}, "a"},
		{Filter{Outcome: OutcomeRinging}, "a"},
		{Filter{Limit: 1}, "c"},
	} {
		var sids []string
		for _, s := range l.List(tc.f) {
			sids = append(sids, s.SID)
		}
		if got := strings.Join(sids, ","); got != tc.want {
			t.Errorf("List(%+v) = %s, want %s", tc.f, got, tc.want)
		}
	}
}

func TestSubscriptionNeverBlocks(t *testing.T) {
	clk := newClock()
	l := New(Options{Now: clk.now})
	dropped := 0
	sub := l.Subscribe(2, func() { dropped++ })
	defer sub.Close()
	c := l.Begin(start("s", "u", "accepted", clk.now()))
	c.Add(Event{Type: EventAttempt, Notifier: "ios", Outcome: "gone", Device: &Device{Kind: "apns", Token: "a…b"}}, "whole")
	c.End(OutcomeNotDelivered) // the channel is full: dropped, not waited for
	if got := sub.Dropped(); got != 1 || dropped != 1 {
		t.Fatalf("dropped = %d (callback %d), want 1", got, dropped)
	}
	first, second := <-sub.C, <-sub.C
	if first.Type != EventCallback || first.Call == nil || first.Call.SID != "s" {
		t.Fatalf("first event = %+v", first)
	}
	if second.DeviceToken() != "whole" || second.Seq <= first.Seq {
		t.Fatalf("second event = %+v (token %q)", second, second.DeviceToken())
	}
	sub.Close()
	c.Add(Event{Type: EventFallback}, "")
	if len(sub.C) != 0 {
		t.Fatal("a closed subscription received an event")
	}
}

func TestConcurrentUse(t *testing.T) {
	l := New(Options{MaxCalls: 50})
	sub := l.Subscribe(16, nil)
	defer sub.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				c := l.Begin(start(fmt.Sprint(w, "-", i), "u", "accepted", time.Now()))
				c.Add(Event{Type: EventAttempt, Outcome: "delivered"}, "")
				c.End(OutcomeDelivered)
				_ = l.List(Filter{Status: "accepted", Limit: 5})
				_, _ = l.Get(fmt.Sprint(w, "-", i/2))
			}
		}()
	}
	wg.Wait()
	if n := l.Len(); n > 50 {
		t.Fatalf("Len = %d past the bound 50", n)
	}
}

// BenchmarkCall is the call log's cost for one callback delivered to one
// device: a record, its callback, attempt and finished events.
func BenchmarkCall(b *testing.B) {
	l := New(Options{})
	s := start("", "2809", "accepted", time.Now())
	dev := &Device{Kind: "apns", Token: "a1b2c3…7f8e"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.SID = fmt.Sprint(i)
		c := l.Begin(s)
		c.Add(Event{Type: EventAttempt, Notifier: "ios", Device: dev, Attempt: 1, Outcome: "delivered"}, "")
		c.End(OutcomeDelivered)
	}
}

func TestEventsPerRecordAreBounded(t *testing.T) {
	l := New(Options{})
	c := l.Begin(start("s", "u", "accepted", time.Now()))
	for range MaxEvents + 50 {
		c.Add(Event{Type: EventAttempt, Outcome: "retry"}, "")
	}
	c.End(OutcomeNotDelivered)
	r, _ := l.Get("s")
	if len(r.Events) != MaxEvents+1 || r.EventsOmitted != 51 || r.Events[len(r.Events)-1].Type != EventFinished {
		t.Fatalf("events %d, omitted %d, last %q", len(r.Events), r.EventsOmitted, r.Events[len(r.Events)-1].Type)
	}
}

// BenchmarkRecordBytes reports the heap a kept record takes: a callback to
// one APNs device, with a disabled fallback named, delivered at the first
// attempt (callback, attempt and finished events). The figure is the one
// the docs give for sizing max_calls.
func BenchmarkRecordBytes(b *testing.B) {
	const n = 10000
	for b.Loop() {
		l := New(Options{MaxCalls: n})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range n {
			s := start(fmt.Sprintf("151ad995-749c-4a28-893f-%012d", i), fmt.Sprint(i), "accepted", time.Now())
			c := l.Begin(s)
			c.Add(Event{Type: EventAttempt, Notifier: "ios", Route: "all", Device: &s.Devices[0], Attempt: 1, Outcome: "delivered",
				ProviderID: "5E4D0C1B-AAAA-BBBB-CCCC-0123456789AB", LatencyMS: 12.5}, "")
			c.End(OutcomeDelivered)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/record")
		runtime.KeepAlive(l)
	}
}

// A record keeps copies of the call's strings: the parsed callback's are
// slices of the whole request line, which a record must not keep alive.
func TestRecordDoesNotPinTheRequest(t *testing.T) {
	request := strings.Repeat("x", 4096) + "sid-in-a-request" + "2809"
	s := start(request[4096:4112], request[4112:], "accepted", time.Now())
	l := New(Options{})
	l.Begin(s)
	r, ok := l.Get("sid-in-a-request")
	if !ok {
		t.Fatal("no record")
	}
	inRequest := func(v string) bool {
		p, base := uintptr(unsafe.Pointer(unsafe.StringData(v))), uintptr(unsafe.Pointer(unsafe.StringData(request)))
		return p >= base && p < base+uintptr(len(request))
	}
	if inRequest(r.SID) || inRequest(r.Callee.UserID) {
		t.Fatal("the record's sid or callee points into the request")
	}
}

// TestRecordKeepsEveryField: an event with every field set comes back
// from its record as it was added. Records keep events in a smaller form
// of their own; a field added to Event must be set here, and kept.
func TestRecordKeepsEveryField(t *testing.T) {
	l := New(Options{})
	l.Begin(start("s1", "u", "accepted", time.Now()))
	e := Event{Time: time.Date(2026, 12, 4, 8, 0, 1, 5, time.UTC), Type: EventAttempt, Status: "accepted",
		Route: "all", Notifier: "ios", Device: &Device{Kind: "apns", Token: "a1b2c3…7f8e"}, Attempt: 2,
		Outcome: "retry", Reason: "503 ServiceUnavailable", ProviderID: "5E4D0C1B", RetryAfterMS: 1500, LatencyMS: 12.5}
	v := reflect.ValueOf(e)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.IsExported() && f.Name != "Seq" && f.Name != "SID" && f.Name != "Call" && v.Field(i).IsZero() {
			t.Fatalf("the test sets no %s: set it, and check that a record keeps it", f.Name)
		}
	}
	l.Lookup("s1").Add(e, "a1b2c3d4e5f60718293a4b5c6d7e8f")
	r, _ := l.Get("s1")
	if len(r.Events) != 2 {
		t.Fatalf("%d events, want the callback and the attempt", len(r.Events))
	}
	got := r.Events[1]
	e.Seq, e.SID = got.Seq, "s1"
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("the record gives back\n%+v\nfor\n%+v", got, e)
	}
	if got.DeviceToken() != "" {
		t.Fatalf("the record kept the whole token")
	}
}
