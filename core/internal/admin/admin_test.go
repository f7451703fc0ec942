package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/directory"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// clock is a fake Now that moves one second per call.
type clock struct{ t time.Time }

func (c *clock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

type step struct {
	method, path string
	auth         string // Authorization header, "" for none
	status       int
	body         string // exact JSON when set
	errCode      string // "error" of the body when set
	field        string // "field" of the body when set
	allow        string // Allow header when set
}

// run serves the step's request with h and checks the answer, which it
// returns.
func (s step) run(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(s.method, s.path, nil)
	if s.auth != "" {
		r.Header.Set("Authorization", s.auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	check(t, s, w.Code, w.Header(), w.Body.Bytes())
	return w
}

// send sends the step's request to srv, through net/http's client and
// server, and checks the answer.
func (s step) send(t *testing.T, srv *httptest.Server) {
	t.Helper()
	req, err := http.NewRequest(s.method, srv.URL+s.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check(t, s, resp.StatusCode, resp.Header, body)
}

func check(t *testing.T, s step, code int, hdr http.Header, body []byte) {
	t.Helper()
	if code != s.status {
		t.Fatalf("%s %s: got status %d; want %d (body %s)", s.method, s.path, code, s.status, body)
	}
	if s.allow != "" {
		if got := hdr.Get("Allow"); got != s.allow {
			t.Errorf("%s %s: got Allow %q; want %q", s.method, s.path, got, s.allow)
		}
	}
	if code == http.StatusNoContent {
		if len(body) != 0 {
			t.Errorf("%s %s: got body %q; want none", s.method, s.path, body)
		}
		return
	}
	if ct := hdr.Get("Content-Type"); s.method != http.MethodHead && ct != "application/json" && s.path != "/metrics" && s.path != "/" {
		t.Errorf("%s %s: got Content-Type %q; want application/json", s.method, s.path, ct)
	}
	if s.body != "" {
		if got, want := normJSON(t, body), normJSON(t, []byte(s.body)); got != want {
			t.Errorf("%s %s: got body %s; want %s", s.method, s.path, got, want)
		}
	}
	if s.errCode != "" || s.field != "" {
		var e map[string]string
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s %s: body %q: %v", s.method, s.path, body, err)
		}
		if e["error"] != s.errCode {
			t.Errorf("%s %s: got error %q; want %q", s.method, s.path, e["error"], s.errCode)
		}
		if e["field"] != s.field {
			t.Errorf("%s %s: got field %q; want %q", s.method, s.path, e["field"], s.field)
		}
		if s.errCode != "" && e["message"] == "" {
			t.Errorf("%s %s: got no message in %s", s.method, s.path, body)
		}
	}
}

// notFound is a step for each "METHOD path", answered 404 not_found.
func notFound(requests ...string) []step {
	var steps []step
	for _, r := range requests {
		method, path, _ := strings.Cut(r, " ")
		steps = append(steps, step{method: method, path: path, status: 404, errCode: "not_found"})
	}
	return steps
}

func normJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// openSQLite opens the directory file at path, closed when the test ends.
func openSQLite(t *testing.T, path string) *directory.SQLite {
	t.Helper()
	s, err := directory.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func stores() []struct {
	name string
	open func(t *testing.T) directory.Store
} {
	return []struct {
		name string
		open func(t *testing.T) directory.Store
	}{
		{"memory", func(t *testing.T) directory.Store { return directory.NewMemory() }},
		{"sqlite", func(t *testing.T) directory.Store { return openSQLite(t, filepath.Join(t.TempDir(), "ringside.db")) }},
	}
}

const (
	ts1 = "2025-03-04T05:06:08Z" // the clock's first reading
	ts2 = "2025-03-04T05:06:09Z"
)

func TestDevices(t *testing.T) {
	long := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	cases := []struct {
		name  string
		maxID int
		steps []step
	}{
		{"put then get", 0, []step{
			{method: "PUT", path: "/v1/devices/planetkit/2809/apns/abc123", status: 204},
			{method: "PUT", path: "/v1/devices/planetkit/2809/fcm/xyz", status: 204},
			{method: "GET", path: "/v1/devices/planetkit/2809", status: 200,
				body: `{"devices":[{"kind":"apns","token":"abc123","updated_at":"` + ts1 + `"},{"kind":"fcm","token":"xyz","updated_at":"` + ts2 + `"}]}`},
			{method: "HEAD", path: "/v1/devices/planetkit/2809", status: 200},
		}},
		{"unknown user", 0, []step{
			{method: "GET", path: "/v1/devices/planetkit/nobody", status: 200, body: `{"devices":[]}`},
		}},
		{"put is idempotent and refreshes updated_at", 0, []step{
			{method: "PUT", path: "/v1/devices/s/u/apns/t", status: 204},
			{method: "PUT", path: "/v1/devices/s/u/apns/t", status: 204},
			{method: "GET", path: "/v1/devices/s/u", status: 200,
				body: `{"devices":[{"kind":"apns","token":"t","updated_at":"` + ts2 + `"}]}`},
		}},
		{"encoded slash stays in its segment", 0, []step{
			{method: "PUT", path: "/v1/devices/svc%2F1/u%2Fx/phone/%2B81%2F90%20123", status: 204},
			{method: "GET", path: "/v1/devices/svc%2F1/u%2Fx", status: 200,
				body: `{"devices":[{"kind":"phone","token":"+81/90 123","updated_at":"` + ts1 + `"}]}`},
			{method: "GET", path: "/v1/devices/svc/1", status: 200, body: `{"devices":[]}`},
			{method: "DELETE", path: "/v1/devices/svc%2F1/u%2Fx/phone/%2B81%2F90%20123", status: 204},
		}},
		{"utf-8 ids", 0, []step{
			{method: "PUT", path: "/v1/devices/s/%E3%83%A6%E3%83%BC%E3%82%B6/fcm/t", status: 204},
			{method: "GET", path: "/v1/devices/s/%E3%83%A6%E3%83%BC%E3%82%B6", status: 200,
				body: `{"devices":[{"kind":"fcm","token":"t","updated_at":"` + ts1 + `"}]}`},
		}},
		{"token of 512 and 513 bytes", 0, []step{
			{method: "PUT", path: "/v1/devices/s/u/apns/" + long('a', 512), status: 204},
			{method: "PUT", path: "/v1/devices/s/u/apns/" + long('b', 513), status: 400, errCode: "invalid_request", field: "token"},
			{method: "PUT", path: "/v1/devices/s/u/apns/" + strings.Repeat("%41", 512), status: 204},
			{method: "PUT", path: "/v1/devices/s/u/apns/" + strings.Repeat("%41", 513), status: 400, errCode: "invalid_request", field: "token"},
		}},
		{"bad tokens", 0, []step{
			{method: "PUT", path: "/v1/devices/s/u/apns/a%0Ab", status: 400, errCode: "invalid_request", field: "token"},
			{method: "PUT", path: "/v1/devices/s/u/apns/a%FFb", status: 400, errCode: "invalid_request", field: "token"},
			{method: "PUT", path: "/v1/devices/s/u/apns/", status: 400, errCode: "invalid_request", field: "token"},
			{method: "DELETE", path: "/v1/devices/s/u/apns/%7F", status: 400, errCode: "invalid_request", field: "token"},
		}},
		{"bad kinds", 0, []step{
			{method: "PUT", path: "/v1/devices/s/u/APNS/t", status: 400, errCode: "invalid_request", field: "kind"},
			{method: "PUT", path: "/v1/devices/s/u/a.b/t", status: 400, errCode: "invalid_request", field: "kind"},
			{method: "PUT", path: "/v1/devices/s/u/%61%2Fb/t", status: 400, errCode: "invalid_request", field: "kind"},
			{method: "PUT", path: "/v1/devices/s/u//t", status: 400, errCode: "invalid_request", field: "kind"},
			{method: "PUT", path: "/v1/devices/s/u/" + long('k', 33) + "/t", status: 400, errCode: "invalid_request", field: "kind"},
			{method: "PUT", path: "/v1/devices/s/u/" + long('k', 32) + "/t", status: 204},
			{method: "PUT", path: "/v1/devices/s/u/my_kind-2/t", status: 204},
		}},
		{"bad ids", 0, []step{
			{method: "PUT", path: "/v1/devices//u/apns/t", status: 400, errCode: "invalid_request", field: "service_id"},
			{method: "GET", path: "/v1/devices/s/", status: 400, errCode: "invalid_request", field: "user_id"},
			{method: "GET", path: "/v1/devices/s/" + long('u', 257), status: 400, errCode: "invalid_request", field: "user_id"},
			{method: "GET", path: "/v1/devices/s/" + long('u', 256), status: 200, body: `{"devices":[]}`},
			{method: "DELETE", path: "/v1/devices/s%00/u", status: 400, errCode: "invalid_request", field: "service_id"},
			{method: "PUT", path: "/v1/devices/s/%C3/apns/t", status: 400, errCode: "invalid_request", field: "user_id"},
		}},
		{"max id bytes option", 300, []step{
			{method: "GET", path: "/v1/devices/s/" + long('u', 300), status: 200, body: `{"devices":[]}`},
			{method: "GET", path: "/v1/devices/s/" + long('u', 301), status: 400, errCode: "invalid_request", field: "user_id"},
		}},
		{"delete device", 0, []step{
			{method: "PUT", path: "/v1/devices/s/u/apns/t1", status: 204},
			{method: "PUT", path: "/v1/devices/s/u/apns/t2", status: 204},
			{method: "DELETE", path: "/v1/devices/s/u/apns/t1", status: 204},
			{method: "DELETE", path: "/v1/devices/s/u/apns/t1", status: 404, errCode: "not_found"},
			{method: "DELETE", path: "/v1/devices/s/u/fcm/t2", status: 404, errCode: "not_found"},
			{method: "GET", path: "/v1/devices/s/u", status: 200,
				body: `{"devices":[{"kind":"apns","token":"t2","updated_at":"` + ts2 + `"}]}`},
		}},
		{"delete user", 0, []step{
			{method: "PUT", path: "/v1/devices/s/u/apns/t1", status: 204},
			{method: "PUT", path: "/v1/devices/s/u/fcm/t2", status: 204},
			{method: "PUT", path: "/v1/devices/s/v/fcm/t3", status: 204},
			{method: "DELETE", path: "/v1/devices/s/u", status: 204},
			{method: "DELETE", path: "/v1/devices/s/u", status: 204},
			{method: "GET", path: "/v1/devices/s/u", status: 200, body: `{"devices":[]}`},
			{method: "GET", path: "/v1/devices/s/v", status: 200,
				body: `{"devices":[{"kind":"fcm","token":"t3","updated_at":"2025-03-04T05:06:10Z"}]}`},
		}},
		{"wrong methods", 0, []step{
			{method: "POST", path: "/v1/devices/s/u/apns/t", status: 405, errCode: "method_not_allowed", allow: "PUT, DELETE"},
			{method: "GET", path: "/v1/devices/s/u/apns/t", status: 405, errCode: "method_not_allowed", allow: "PUT, DELETE"},
			{method: "PUT", path: "/v1/devices/s/u", status: 405, errCode: "method_not_allowed", allow: "GET, HEAD, DELETE"},
			{method: "POST", path: "/v1/devices/s/u", status: 405, errCode: "method_not_allowed", allow: "GET, HEAD, DELETE"},
			{method: "POST", path: "/v1/devices/s/u/BAD/t", status: 405, errCode: "method_not_allowed", allow: "PUT, DELETE"},
			{method: "POST", path: "/healthz", status: 405, errCode: "method_not_allowed", allow: "GET, HEAD"},
			{method: "DELETE", path: "/readyz", status: 405, errCode: "method_not_allowed", allow: "GET, HEAD"},
		}},
		{"unknown paths", 0, notFound(
			"GET /ui/nothing.js",
			"GET /ui/../admin.go",
			"GET /v1",
			"GET /v1/devices",
			"GET /v1/devices/",
			"GET /v1/devices/s",
			"GET /v1/devices/s/u/",
			"PUT /v1/devices/s/u/apns",
			"PUT /v1/devices/s/u/apns/t/",
			"PUT /v1/devices/s/u/apns/t/x",
			"GET /v2/devices/s/u",
			"GET /healthz/",
			"GET /metrics",
		)},
		{"health", 0, []step{
			{method: "GET", path: "/healthz", status: 200, body: `{"status":"ok"}`},
			{method: "GET", path: "/readyz", status: 200, body: `{"status":"ready"}`},
			{method: "HEAD", path: "/healthz", status: 200},
		}},
	}
	for _, impl := range stores() {
		t.Run(impl.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c := &clock{t: t0}
					h := New(Options{Store: impl.open(t), MaxIDBytes: tc.maxID, Now: c.now})
					for _, s := range tc.steps {
						s.run(t, h)
					}
				})
			}
		})
	}
}

func TestAuth(t *testing.T) {
	const token = "s3cret-admin-token"
	cases := []struct {
		name   string
		step   step
		wwwAut bool
	}{
		{"missing", step{method: "GET", path: "/v1/devices/s/u", status: 401, body: `{"error":"unauthorized","message":"missing or wrong bearer token"}`}, true},
		{"wrong", step{method: "GET", path: "/v1/devices/s/u", auth: "Bearer nope", status: 401, errCode: "unauthorized"}, true},
		{"prefix of the token", step{method: "GET", path: "/v1/devices/s/u", auth: "Bearer s3cret", status: 401, errCode: "unauthorized"}, true},
		{"token plus more", step{method: "GET", path: "/v1/devices/s/u", auth: "Bearer " + token + "x", status: 401, errCode: "unauthorized"}, true},
		{"wrong scheme", step{method: "GET", path: "/v1/devices/s/u", auth: "Basic " + token, status: 401, errCode: "unauthorized"}, true},
		{"no scheme", step{method: "GET", path: "/v1/devices/s/u", auth: token, status: 401, errCode: "unauthorized"}, true},
		{"right", step{method: "GET", path: "/v1/devices/s/u", auth: "Bearer " + token, status: 200, body: `{"devices":[]}`}, false},
		{"scheme in lower case", step{method: "PUT", path: "/v1/devices/s/u/apns/t", auth: "bearer " + token, status: 204}, false},
		{"before validation", step{method: "PUT", path: "/v1/devices/s/u/BAD/t", status: 401, errCode: "unauthorized"}, true},
		{"unknown v1 path", step{method: "GET", path: "/v1/other", status: 401, errCode: "unauthorized"}, true},
		{"unknown v1 path with token", step{method: "GET", path: "/v1/other", auth: "Bearer " + token, status: 404, errCode: "not_found"}, false},
		{"healthz needs none", step{method: "GET", path: "/healthz", status: 200, body: `{"status":"ok"}`}, false},
		{"readyz needs none", step{method: "GET", path: "/readyz", status: 200, body: `{"status":"ready"}`}, false},
		{"metrics needs none", step{method: "GET", path: "/metrics", status: 200}, false},
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ringside_up 1\n")
	})
	h := New(Options{Store: directory.NewMemory(), Token: token, Metrics: metrics})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.step.run(t, h)
			got := w.Header().Get("WWW-Authenticate")
			if tc.wwwAut != strings.HasPrefix(got, "Bearer") {
				t.Errorf("got WWW-Authenticate %q; want Bearer challenge %v", got, tc.wwwAut)
			}
			if strings.Contains(w.Body.String(), token) {
				t.Errorf("body %q holds the admin token", w.Body.String())
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	cases := []struct {
		name  string
		ready func(context.Context) error
		want  step
	}{
		{"nil", nil, step{method: "GET", path: "/readyz", status: 200, body: `{"status":"ready"}`}},
		{"ready", func(context.Context) error { return nil },
			step{method: "GET", path: "/readyz", status: 200, body: `{"status":"ready"}`}},
		{"not ready", func(context.Context) error { return errors.New(`notifier "ios": plugin not answering`) },
			step{method: "GET", path: "/readyz", status: 503, body: `{"status":"not_ready","error":"notifier \"ios\": plugin not answering"}`}},
		{"has a deadline", func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("no deadline")
			}
			return nil
		}, step{method: "GET", path: "/readyz", status: 200, body: `{"status":"ready"}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.run(t, New(Options{Store: directory.NewMemory(), Ready: tc.ready}))
		})
	}
}

func TestMetrics(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "ringside_up 1\n")
	})
	h := New(Options{Store: directory.NewMemory(), Metrics: metrics})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 || w.Body.String() != "ringside_up 1\n" {
		t.Errorf("got %d %q; want 200 %q", w.Code, w.Body.String(), "ringside_up 1\n")
	}
}

// TestTokenNeverLoggedWhole checks logs and error bodies for a token.
func TestTokenNeverLoggedWhole(t *testing.T) {
	var logs bytes.Buffer
	const tok = "0123456789abcdef0123456789abcdef"
	h := New(Options{
		Store:  failingStore{directory.NewMemory(), func(string) error { return errDisk }},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	good := New(Options{Store: directory.NewMemory(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, s := range []struct {
		h    http.Handler
		step step
	}{
		{good, step{method: "PUT", path: "/v1/devices/s/u/apns/" + tok, status: 204}},
		{good, step{method: "DELETE", path: "/v1/devices/s/u/apns/" + tok, status: 204}},
		{good, step{method: "PUT", path: "/v1/devices/s/u/apns/" + tok + "%0A", status: 400, errCode: "invalid_request", field: "token"}},
		{h, step{method: "PUT", path: "/v1/devices/s/u/apns/" + tok, status: 500, errCode: "internal"}},
		{h, step{method: "DELETE", path: "/v1/devices/s/u/apns/" + tok, status: 500, errCode: "internal"}},
	} {
		w := s.step.run(t, s.h)
		if strings.Contains(w.Body.String(), tok[:12]) {
			t.Errorf("%s: body %q holds the token", s.step.path, w.Body.String())
		}
	}
	if strings.Contains(logs.String(), tok[:12]) {
		t.Errorf("logs hold the token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "token=012345…") {
		t.Errorf("logs lack the shortened token:\n%s", logs.String())
	}
}

// failingStore fails every write with err(what the write was).
type failingStore struct {
	directory.Store
	err func(what string) error
}

func (s failingStore) Put(context.Context, string, string, string, string, time.Time) error {
	return s.err("put device")
}

func (s failingStore) Delete(context.Context, string, string, string, string) error {
	return s.err("delete device")
}

func (s failingStore) DeleteUser(context.Context, string, string) error {
	return s.err("delete user")
}

// errDisk is a write's failure whose message names no token (one that did
// would be a leak).
var errDisk = errors.New("disk I/O error")

// TestOverHTTP drives a real server and client against SQLite, so the
// escaped path goes through net/http's own parsing.
func TestOverHTTP(t *testing.T) {
	store := openSQLite(t, filepath.Join(t.TempDir(), "d", "ringside.db"))
	c := &clock{t: t0}
	srv := httptest.NewServer(New(Options{Store: store, Token: "tok", Now: c.now}))
	defer srv.Close()
	for _, s := range []step{
		{method: "PUT", path: "/v1/devices/s/u%2F1/apns/a%2Fb%3Fc%23d", auth: "Bearer tok", status: 204},
		{method: "PUT", path: "/v1/devices/s/u%2F1/apns/a%2Fb%3Fc%23d", auth: "Bearer tok", status: 204},
		{method: "GET", path: "/v1/devices/s/u%2F1", auth: "Bearer tok", status: 200,
			body: `{"devices":[{"kind":"apns","token":"a/b?c#d","updated_at":"` + ts2 + `"}]}`},
		{method: "GET", path: "/v1/devices/s/u%2F1", status: 401, errCode: "unauthorized"},
		{method: "DELETE", path: "/v1/devices/s/u%2F1/apns/a%2Fb%3Fc%23d", auth: "Bearer tok", status: 204},
		{method: "DELETE", path: "/v1/devices/s/u%2F1/apns/a%2Fb%3Fc%23d", auth: "Bearer tok", status: 404, errCode: "not_found"},
		{method: "GET", path: "/healthz", status: 200, body: `{"status":"ok"}`},
	} {
		s.send(t, srv)
	}
}

func TestCheckListen(t *testing.T) {
	cases := []struct {
		name, addr, token string
		wantErr           string // substring; "" for no error
	}{
		{"ipv4 loopback", "127.0.0.1:20201", "", ""},
		{"other ipv4 loopback", "127.0.0.2:20201", "", ""},
		{"ipv6 loopback", "[::1]:20201", "", ""},
		{"ipv4-mapped loopback", "[::ffff:127.0.0.1]:20201", "", ""},
		{"localhost", "localhost:20201", "", ""},
		{"all interfaces", "0.0.0.0:20201", "", "admin listener 0.0.0.0:20201 is not loopback: set server.admin_token or listen on 127.0.0.1"},
		{"all interfaces ipv6", "[::]:20201", "", "is not loopback"},
		{"empty host", ":20201", "", "is not loopback"},
		{"private address", "10.0.0.1:20201", "", "admin listener 10.0.0.1:20201 is not loopback"},
		{"host name", "admin.example.com:20201", "", "is not loopback"},
		{"all interfaces with token", "0.0.0.0:20201", "t", ""},
		{"private address with token", "10.0.0.1:20201", "t", ""},
		{"loopback with token", "127.0.0.1:20201", "t", ""},
		{"no port", "127.0.0.1", "", "admin listener 127.0.0.1"},
		{"no port with token", "0.0.0.0", "t", "missing port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckListen(tc.addr, tc.token)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("got %v; want nil", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("got nil; want an error with %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("got %q; want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
