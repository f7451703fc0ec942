package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/directory"
)

func callLogFixture(t *testing.T) (*calllog.Log, http.Handler) {
	t.Helper()
	l := calllog.New(calllog.Options{})
	explain := func(_ context.Context, q string) (any, error) {
		c, _, err := callback.Parse(q, 256, time.Now())
		if err != nil {
			return nil, err
		}
		return map[string]string{"sid": c.SID}, nil
	}
	h := New(Options{Store: directory.NewMemory(), Token: "s3cret", CallLog: l, Explain: explain})
	return l, h
}

func begin(l *calllog.Log, sid, callee, status string) *calllog.Entry {
	return l.Begin(calllog.Start{SID: sid, Received: time.Now(), Status: status, Type: "A",
		Caller: calllog.Party{ServiceID: "svc", UserID: "9286"}, Callee: calllog.Party{ServiceID: "svc", UserID: callee},
		Routes: []string{"all"}})
}

func TestCallsAPI(t *testing.T) {
	l, h := callLogFixture(t)
	begin(l, "sid-a", "alice", "accepted").Add(calllog.Event{Type: calllog.EventAttempt, Notifier: "hook", Outcome: "delivered"}, "")
	begin(l, "sid-b", "bob", "unrouted")
	const auth = "Bearer s3cret"
	for _, s := range []step{
		{method: "GET", path: "/v1/calls", status: 401, errCode: "unauthorized"},
		{method: "GET", path: "/v1/calls/sid-a", status: 401, errCode: "unauthorized"},
		{method: "GET", path: "/v1/calls/stream", status: 401, errCode: "unauthorized"},
		{method: "GET", path: "/v1/explain?sid=x", status: 401, errCode: "unauthorized"},
		{method: "GET", path: "/v1/calls?limit=0", auth: auth, status: 400, errCode: "invalid_request", field: "limit"},
		{method: "GET", path: "/v1/calls?since=yesterday", auth: auth, status: 400, errCode: "invalid_request", field: "since"},
		{method: "GET", path: "/v1/calls?colour=red", auth: auth, status: 400, errCode: "invalid_request", field: "colour"},
		{method: "GET", path: "/v1/calls/nope", auth: auth, status: 404, errCode: "not_found"},
		{method: "POST", path: "/v1/calls", auth: auth, status: 405, errCode: "method_not_allowed", allow: "GET, HEAD"},
		{method: "GET", path: "/v1/explain?type=X", auth: auth, status: 400, errCode: "invalid_callback", field: "sid"},
	} {
		s.run(t, h)
	}

	var list struct{ Calls []calllog.Summary }
	w := step{method: "GET", path: "/v1/calls?callee=bob&since=1h", auth: auth, status: 200}.run(t, h)
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list.Calls) != 1 || list.Calls[0].SID != "sid-b" {
		t.Fatalf("callee=bob: %s (%v)", w.Body, err)
	}
	w = step{method: "GET", path: "/v1/calls", auth: auth, status: 200}.run(t, h)
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list.Calls) != 2 || list.Calls[0].SID != "sid-b" {
		t.Fatalf("newest first: %s (%v)", w.Body, err)
	}
	var rec calllog.Record
	w = step{method: "GET", path: "/v1/calls/sid-a", auth: auth, status: 200}.run(t, h)
	if err := json.Unmarshal(w.Body.Bytes(), &rec); err != nil || rec.SID != "sid-a" || len(rec.Events) != 2 || rec.Events[1].Outcome != "delivered" {
		t.Fatalf("timeline: %s (%v)", w.Body, err)
	}
	w = step{method: "GET", path: "/v1/explain?" + "sid=151ad995-749c-4a28-893f-636700469db1&from_service_id=a&from_user_id=b&to_service_id=c&to_user_id=d&type=A&param=eA==", auth: auth, status: 200}.run(t, h)
	if !strings.Contains(w.Body.String(), "151ad995") {
		t.Fatalf("explain: %s", w.Body)
	}
}

func TestCallsStream(t *testing.T) {
	l, h := callLogFixture(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/calls/stream", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	// The stream opens with a comment: the subscription exists from then.
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("first line %q, %v", line, err)
	}
	begin(l, "sid-live", "carol", "accepted").End(calllog.OutcomeDelivered)
	var events []string
	for len(events) < 2 {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var e calllog.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Fatalf("data %q: %v", data, err)
			}
			if e.Call == nil || e.Call.Callee.UserID != "carol" {
				t.Fatalf("event lacks the call's summary: %s", data)
			}
			events = append(events, e.Type)
		}
	}
	if got := strings.Join(events, ","); got != "callback,finished" {
		t.Fatalf("events = %s", got)
	}
}

func TestPageNeedsNoTokenAndHoldsNoData(t *testing.T) {
	_, h := callLogFixture(t)
	w := step{method: "GET", path: "/", status: 200}.run(t, h)
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type = %q", ct)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("Content-Security-Policy = %q", csp)
	}
}
