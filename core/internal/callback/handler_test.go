package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ringside/ringside/core/internal/telemetry"
)

// fakeAcceptor records what it is asked and answers a fixed Answer.
type fakeAcceptor struct {
	answer Answer
	err    error

	mu      sync.Mutex
	calls   []*Call
	deliver []bool
	ctxs    []context.Context
}

func (f *fakeAcceptor) Accept(ctx context.Context, c *Call, deliver bool) (Answer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	f.deliver = append(f.deliver, deliver)
	f.ctxs = append(f.ctxs, ctx)
	return f.answer, f.err
}

var (
	accepted    = Answer{Status: StatusAccepted, Route: "video", Routes: []string{"video", "audit"}, Reachable: true}
	unrouted    = Answer{Status: StatusUnrouted}
	noDevices   = Answer{Status: StatusNoDevices, Route: "video", Routes: []string{"video"}}
	duplicate   = Answer{Status: StatusDuplicate, Route: "video", Routes: []string{"video"}, Reachable: true}
	acceptedSID = `{"sid":"` + exampleSID + `","status":"accepted","route":"video","routes":["video","audit"]}`
)

func TestHandler(t *testing.T) {
	const secret = "s3cr3t-t0ken"
	tests := []struct {
		name        string
		method      string
		query       string
		token       string // Handler.NotifyToken
		reject      bool   // Handler.RejectUnreachable
		answer      Answer
		acceptErr   error
		wantCode    int
		wantBody    string // for GET and others; HEAD never has a body
		wantStatus  string // metric label
		wantAccept  bool
		wantDeliver bool
	}{
		{name: "accepted", query: q(), answer: accepted, wantCode: 200, wantBody: acceptedSID,
			wantStatus: "accepted", wantAccept: true, wantDeliver: true},
		{name: "duplicate", query: q(), answer: duplicate, wantCode: 200,
			wantBody:   `{"sid":"` + exampleSID + `","status":"duplicate","route":"video","routes":["video"]}`,
			wantStatus: "duplicate", wantAccept: true, wantDeliver: true},
		{name: "unrouted", query: q(), answer: unrouted, wantCode: 200,
			wantBody:   `{"sid":"` + exampleSID + `","status":"unrouted","route":null,"routes":[]}`,
			wantStatus: "unrouted", wantAccept: true, wantDeliver: true},
		{name: "unrouted rejected", query: q(), reject: true, answer: unrouted, wantCode: 404,
			wantBody:   `{"sid":"` + exampleSID + `","status":"unrouted","route":null,"routes":[]}`,
			wantStatus: "unrouted", wantAccept: true, wantDeliver: true},
		{name: "no devices rejected", query: q(), reject: true, answer: noDevices, wantCode: 404,
			wantBody:   `{"sid":"` + exampleSID + `","status":"no_devices","route":"video","routes":["video"]}`,
			wantStatus: "no_devices", wantAccept: true, wantDeliver: true},
		{name: "no devices not rejected", query: q(), answer: noDevices, wantCode: 200,
			wantBody:   `{"sid":"` + exampleSID + `","status":"no_devices","route":"video","routes":["video"]}`,
			wantStatus: "no_devices", wantAccept: true, wantDeliver: true},
		{name: "reachable with reject", query: q(), reject: true, answer: accepted, wantCode: 200, wantBody: acceptedSID,
			wantStatus: "accepted", wantAccept: true, wantDeliver: true},
		{name: "uppercase sid echoed", query: q("sid", strings.ToUpper(exampleSID)), answer: unrouted, wantCode: 200,
			wantBody:   `{"sid":"` + strings.ToUpper(exampleSID) + `","status":"unrouted","route":null,"routes":[]}`,
			wantStatus: "unrouted", wantAccept: true, wantDeliver: true},
		{name: "invalid", query: q("type", "X"), answer: accepted, wantCode: 400,
			wantBody:   `{"error":"invalid_callback","field":"type","message":"must be A or V"}`,
			wantStatus: "invalid"},
		{name: "missing", query: q("sid", drop), answer: accepted, wantCode: 400,
			wantBody:   `{"error":"invalid_callback","field":"sid","message":"missing"}`,
			wantStatus: "invalid"},
		{name: "malformed key escaped in body", query: q(`a"%zz`, "1"), answer: accepted, wantCode: 400,
			wantBody:   `{"error":"invalid_callback","field":"a\"%zz","message":"malformed percent-encoding"}`,
			wantStatus: "invalid"},
		{name: "POST", method: http.MethodPost, query: q(), answer: accepted, wantCode: 405,
			wantBody: `{"error":"method_not_allowed"}`, wantStatus: "method_not_allowed"},
		{name: "PUT", method: http.MethodPut, query: q(), answer: accepted, wantCode: 405,
			wantBody: `{"error":"method_not_allowed"}`, wantStatus: "method_not_allowed"},
		{name: "OPTIONS", method: http.MethodOptions, query: q(), answer: accepted, wantCode: 405,
			wantBody: `{"error":"method_not_allowed"}`, wantStatus: "method_not_allowed"},
		{name: "accept error", query: q(), acceptErr: errors.New("journal: disk full"), wantCode: 503,
			wantBody: `{"error":"unavailable"}`, wantStatus: "unavailable", wantAccept: true, wantDeliver: true},
		{name: "token right", query: q("token", secret), token: secret, answer: accepted, wantCode: 200,
			wantBody: acceptedSID, wantStatus: "accepted", wantAccept: true, wantDeliver: true},
		{name: "token right, percent-encoded", query: q("token", "s3cr3t%2Dt0ken"), token: secret, answer: accepted,
			wantCode: 200, wantBody: acceptedSID, wantStatus: "accepted", wantAccept: true, wantDeliver: true},
		{name: "token missing", query: q(), token: secret, answer: accepted, wantCode: 401,
			wantBody: `{"error":"unauthorized"}`, wantStatus: "unauthorized"},
		{name: "token empty", query: q("token", ""), token: secret, answer: accepted, wantCode: 401,
			wantBody: `{"error":"unauthorized"}`, wantStatus: "unauthorized"},
		{name: "token wrong", query: q("token", "s3cr3t-t0kem"), token: secret, answer: accepted, wantCode: 401,
			wantBody: `{"error":"unauthorized"}`, wantStatus: "unauthorized"},
		{name: "token prefix", query: q("token", "s3cr3t"), token: secret, answer: accepted, wantCode: 401,
			wantBody: `{"error":"unauthorized"}`, wantStatus: "unauthorized"},
		{name: "token repeated", query: q("token", secret, "token", secret), token: secret, answer: accepted,
			wantCode: 401, wantBody: `{"error":"unauthorized"}`, wantStatus: "unauthorized"},
		{name: "token malformed", query: q("token", secret+"%"), token: secret, answer: accepted, wantCode: 401,
			wantBody: `{"error":"unauthorized"}`, wantStatus: "unauthorized"},
		{name: "token wrong before bad fields", query: q("type", "X", "param", "%zz", "token", "nope"), token: secret,
			answer: accepted, wantCode: 401, wantBody: `{"error":"unauthorized"}`, wantStatus: "unauthorized"},
		{name: "token missing before missing fields", query: "", token: secret, answer: accepted, wantCode: 401,
			wantBody: `{"error":"unauthorized"}`, wantStatus: "unauthorized"},
		{name: "token right then bad fields", query: "%zz=1&token=" + secret + "&type=X", token: secret, answer: accepted,
			wantCode: 400, wantBody: `{"error":"invalid_callback","field":"%zz","message":"malformed percent-encoding"}`,
			wantStatus: "invalid"},
		{name: "token ignored when not configured", query: q("token", "anything"), answer: accepted, wantCode: 200,
			wantBody: acceptedSID, wantStatus: "accepted", wantAccept: true, wantDeliver: true},
		{name: "repeated token when not configured", query: q("token", "a", "token", "b"), answer: accepted, wantCode: 400,
			wantBody:   `{"error":"invalid_callback","field":"token","message":"repeated"}`,
			wantStatus: "invalid"},
	}
	for _, tc := range tests {
		for _, method := range methods(tc.method) {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				h, acc, m, logs := newTestHandler(tc.answer, tc.acceptErr)
				h.RejectUnreachable = tc.reject
				h.NotifyToken = tc.token
				type key struct{}
				r := httptest.NewRequest(method, "/notify_cb?"+tc.query, nil)
				r = r.WithContext(context.WithValue(r.Context(), key{}, "request"))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				checkAnswer(t, w, method, m, tc.wantCode, tc.wantBody, tc.wantStatus)

				if got := len(acc.calls); got != boolInt(tc.wantAccept) {
					t.Fatalf("Accept called %d times; want %d", got, boolInt(tc.wantAccept))
				}
				if tc.wantAccept {
					wantDeliver := tc.wantDeliver && method != http.MethodHead
					if acc.deliver[0] != wantDeliver {
						t.Errorf("deliver = %v; want %v", acc.deliver[0], wantDeliver)
					}
					if got := acc.ctxs[0].Value(key{}); got != "request" {
						t.Errorf("Accept ctx value = %v; want the request context", got)
					}
					if c := acc.calls[0]; !c.Received.Equal(testNow) {
						t.Errorf("Received = %v; want %v", c.Received, testNow)
					}
					if _, ok := acc.calls[0].Extra["token"]; ok {
						t.Errorf("Extra carries the token")
					}
				}
				if tc.token != "" && strings.Contains(logs.String(), tc.token) {
					t.Errorf("logs contain the token: %s", logs.String())
				}
				if strings.Contains(logs.String(), "YWJj") {
					t.Errorf("logs contain param or the raw query: %s", logs.String())
				}
			})
		}
	}
}

// newTestHandler returns a Handler that hands calls to acc, which answers
// answer and err, counts in m, logs at debug level to logs and takes
// testNow for the time.
func newTestHandler(answer Answer, err error) (h *Handler, acc *fakeAcceptor, m *telemetry.Metrics, logs *bytes.Buffer) {
	acc = &fakeAcceptor{answer: answer, err: err}
	m = telemetry.NewMetrics()
	logs = new(bytes.Buffer)
	h = &Handler{
		Acceptor: acc,
		Metrics:  m,
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      func() time.Time { return testNow },
	}
	return h, acc, m, logs
}

// checkAnswer checks the answer w recorded to a request of method: the
// code, the JSON body (none for HEAD), the Content-Type and Allow headers,
// and one callback counted in m, under code and status.
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder, method string, m *telemetry.Metrics, code int, body, status string) {
	t.Helper()
	if w.Code != code {
		t.Errorf("code = %d; want %d", w.Code, code)
	}
	if method == http.MethodHead {
		body = ""
	}
	if got := w.Body.String(); got != body {
		t.Errorf("body = %s; want %s", got, body)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q; want application/json", got)
	}
	if got, want := w.Header().Get("Allow"), allowFor(code); got != want {
		t.Errorf("Allow = %q; want %q", got, want)
	}
	if body != "" && !json.Valid([]byte(body)) {
		t.Errorf("want body %s is not JSON", body)
	}
	if got := testutil.ToFloat64(m.Callbacks.WithLabelValues(itoa(code), status)); got != 1 {
		t.Errorf("ringside_callbacks_total{code=%d,status=%s} = %v; want 1", code, status, got)
	}
	if got := testutil.CollectAndCount(m.Callbacks); got != 1 {
		t.Errorf("%d callback series; want 1", got)
	}
}

// methods returns the methods a case runs with: GET and HEAD by default.
func methods(m string) []string {
	if m == "" {
		return []string{http.MethodGet, http.MethodHead}
	}
	return []string{m}
}

func allowFor(code int) string {
	if code == http.StatusMethodNotAllowed {
		return "GET, HEAD"
	}
	return ""
}

func itoa(code int) string { return codeLabel(code) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestHandlerLogs(t *testing.T) {
	const secret = "tok-do-not-log"
	tests := []struct {
		name  string
		query string
		token string
		err   error
		want  []string // substrings of the log
		never []string
	}{
		{name: "invalid param", query: q("param", "c2VjcmV0$$", "token", secret), token: secret,
			want: []string{"level=INFO", "field=param", "code=400"}, never: []string{"c2VjcmV0", secret}},
		{name: "unauthorized", query: q("token", "wrong-"+secret), token: secret,
			want: []string{"level=INFO", "code=401", "token_present=true"}, never: []string{secret, "YWJj"}},
		{name: "accept error", query: q(), err: errors.New("journal: disk full"),
			want: []string{"level=WARN", "journal: disk full", "sid=" + exampleSID}, never: []string{"YWJj"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := &Handler{
				Acceptor:    &fakeAcceptor{answer: accepted, err: tc.err},
				NotifyToken: tc.token,
				Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
			}
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/notify_cb?"+tc.query, nil))
			for _, s := range tc.want {
				if !strings.Contains(logs.String(), s) {
					t.Errorf("log %q; want it to contain %q", logs.String(), s)
				}
			}
			for _, s := range tc.never {
				if strings.Contains(logs.String(), s) {
					t.Errorf("log %q contains %q", logs.String(), s)
				}
			}
		})
	}
}

// blockingAcceptor holds every Accept until release is closed.
type blockingAcceptor struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingAcceptor) Accept(ctx context.Context, c *Call, deliver bool) (Answer, error) {
	b.entered <- struct{}{}
	<-b.release
	return accepted, nil
}

func TestHandlerInFlight(t *testing.T) {
	acc := &blockingAcceptor{entered: make(chan struct{}), release: make(chan struct{})}
	m := telemetry.NewMetrics()
	h := &Handler{Acceptor: acc, MaxInFlight: 2, Metrics: m}
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/notify_cb?"+q(), nil))
		return w
	}

	var wg sync.WaitGroup
	held := make([]*httptest.ResponseRecorder, 2)
	for i := range held {
		wg.Go(func() { held[i] = get() })
		<-acc.entered
	}
	w := get()
	if w.Code != http.StatusServiceUnavailable || w.Body.String() != `{"error":"unavailable"}` {
		t.Errorf("past the bound: %d %s; want 503 {\"error\":\"unavailable\"}", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/notify_cb", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST past the bound: %d; want 405", w.Code)
	}
	close(acc.release)
	wg.Wait()
	for i, w := range held {
		if w.Code != http.StatusOK {
			t.Errorf("held request %d: %d; want 200", i, w.Code)
		}
	}
	go func() { <-acc.entered }()
	if w := get(); w.Code != http.StatusOK {
		t.Errorf("after release: %d; want 200", w.Code)
	}
	if got := testutil.ToFloat64(m.Callbacks.WithLabelValues("503", "unavailable")); got != 1 {
		t.Errorf("503 unavailable counted %v; want 1", got)
	}
	if got := testutil.ToFloat64(m.Callbacks.WithLabelValues("200", "accepted")); got != 3 {
		t.Errorf("200 accepted counted %v; want 3", got)
	}
}

func TestHandlerDefaults(t *testing.T) {
	acc := &fakeAcceptor{answer: accepted}
	h := &Handler{Acceptor: acc} // no metrics, logger, clock, limits
	before := time.Now()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/notify_cb?"+q("to_user_id", strings.Repeat("u", 256)), nil))
	if w.Code != http.StatusOK {
		t.Fatalf("code = %d; want 200", w.Code)
	}
	if r := acc.calls[0].Received; r.Before(before) || r.After(time.Now()) {
		t.Errorf("Received = %v; want the time of the request", r)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/notify_cb?"+q("to_user_id", strings.Repeat("u", 257)), nil))
	if w.Code != http.StatusBadRequest {
		t.Errorf("257-byte id: code = %d; want 400", w.Code)
	}
	h.MaxIDBytes = 300
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/notify_cb?"+q("to_user_id", strings.Repeat("u", 257)), nil))
	if w.Code != http.StatusOK {
		t.Errorf("257-byte id with MaxIDBytes 300: code = %d; want 200", w.Code)
	}
}

// TestHandlerOverHTTP sends the LINE example and a literal '+' through a
// real net/http server, so the raw query reaches Parse untouched.
func TestHandlerOverHTTP(t *testing.T) {
	acc := &fakeAcceptor{answer: accepted}
	srv := httptest.NewServer(&Handler{Acceptor: acc})
	defer srv.Close()

	tests := []struct {
		name   string
		method string
		query  string
		check  func(t *testing.T, c *Call)
	}{
		{name: "LINE example", method: http.MethodGet, query: lineExample(t), check: func(t *testing.T, c *Call) {
			if c.Param != exampleParam || c.Stid != "stid" || c.FromUserID != "9286" {
				t.Errorf("Call = %+v; want the LINE example", c)
			}
		}},
		{name: "literal plus", method: http.MethodGet, query: q("to_user_id", "+81+90", "param", "a+b/"), check: func(t *testing.T, c *Call) {
			if c.ToUserID != "+81+90" || c.Param != "a+b/" {
				t.Errorf("to_user_id, param = %q, %q; want +81+90, a+b/", c.ToUserID, c.Param)
			}
		}},
		{name: "HEAD", method: http.MethodHead, query: q()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := len(acc.calls)
			req, err := http.NewRequest(tc.method, srv.URL+"/notify_cb?"+tc.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("code = %d (%s); want 200", resp.StatusCode, body)
			}
			if tc.method == http.MethodHead {
				if len(body) != 0 {
					t.Errorf("HEAD body = %q; want none", body)
				}
				if acc.deliver[n] {
					t.Errorf("HEAD: deliver = true; want false")
				}
				return
			}
			if string(body) != acceptedSID {
				t.Errorf("body = %s; want %s", body, acceptedSID)
			}
			tc.check(t, acc.calls[n])
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "video", `"video"`},
		{"empty", "", `""`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"control", "a\x00\x1f\n\r\t", `"a\u0000\u001f\n\r\t"`},
		{"html kept", "<&>", `"<&>"`},
		{"utf-8 kept", "あé", `"あé"`},
		{"invalid utf-8", "a\xffb\xc0", `"a\ufffdb\ufffd"`},
		{"line separators", "\u2028\u2029", `"\u2028\u2029"`},
		{"DEL kept", "\x7f", "\"\x7f\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(AppendJSONString(nil, tc.in)); got != tc.want {
				t.Errorf("AppendJSONString(%q) = %s; want %s", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzAppendJSONString checks that AppendJSONString reads back, through
// encoding/json, as what encoding/json itself makes of s.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "video", "a\"b\\", "\x00\n\u2028", "\xff\xfe", "あ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := AppendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("AppendJSONString(%q) = %s: %v", s, enc, err)
		}
		std, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("AppendJSONString(%q) reads back %q; encoding/json %q", s, got, want)
		}
	})
}

// discardWriter is a ResponseWriter that keeps nothing but its header map.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func BenchmarkHandler(b *testing.B) {
	h := &Handler{
		Acceptor: AcceptorFunc(func(ctx context.Context, c *Call, deliver bool) (Answer, error) {
			return accepted, nil
		}),
		Metrics: telemetry.NewMetrics(),
	}
	r := httptest.NewRequest(http.MethodGet, "/notify_cb?"+lineExample(b), nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}
