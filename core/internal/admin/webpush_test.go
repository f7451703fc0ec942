package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringside/ringside/core/internal/directory"
)

// A browser's subscription keys: p256dh an uncompressed P-256 point, auth
// 16 bytes; auth2 is another browser's secret.
var (
	p256dh = append([]byte{0x04}, bytes.Repeat([]byte{0xfb}, 64)...)
	auth1  = bytes.Repeat([]byte{0xa1}, 16)
	auth2  = bytes.Repeat([]byte{0xb2}, 16)
)

// subJSON is a subscription as a browser's PushSubscription.toJSON gives
// it: keys padded or not, members in any order, expirationTime.
func subJSON(endpoint string, auth []byte, enc *base64.Encoding) string {
	ep, _ := json.Marshal(endpoint)
	return `{"endpoint":` + string(ep) + `,"expirationTime":null,"keys":{"auth":"` + enc.EncodeToString(auth) +
		`","p256dh":"` + enc.EncodeToString(p256dh) + `"}}`
}

// canonical is the device token of the subscription: compact, members in
// order, keys unpadded.
func canonical(endpoint string, auth []byte) string {
	ep, _ := json.Marshal(endpoint)
	return `{"endpoint":` + string(ep) + `,"keys":{"p256dh":"` + base64.RawURLEncoding.EncodeToString(p256dh) +
		`","auth":"` + base64.RawURLEncoding.EncodeToString(auth) + `"}}`
}

// listed is the GET answer for devices, each a kind, a token and an
// updated_at.
func listed(devs ...[3]string) string {
	type dev struct {
		Kind      string `json:"kind"`
		Token     string `json:"token"`
		UpdatedAt string `json:"updated_at"`
	}
	body := struct {
		Devices []dev `json:"devices"`
	}{Devices: []dev{}}
	for _, d := range devs {
		body.Devices = append(body.Devices, dev{d[0], d[1], d[2]})
	}
	b, _ := json.Marshal(body)
	return string(b)
}

// bodyStep is a step whose request has a body.
type bodyStep struct {
	step
	ctype string // Content-Type; "" for none
	send  string // the request's body
}

// run serves the step's request with h and checks the answer, which it
// returns.
func (s bodyStep) run(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(s.method, s.path, strings.NewReader(s.send))
	if s.ctype != "" {
		r.Header.Set("Content-Type", s.ctype)
	}
	if s.auth != "" {
		r.Header.Set("Authorization", s.auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	check(t, s.step, w.Code, w.Header(), w.Body.Bytes())
	return w
}

const (
	jsonType = "application/json"
	ep1      = "https://push.example.net/wpush/v2/gAAAAABh?x=1&y=<2>"
	ep2      = "https://fcm.googleapis.com/fcm/send/dGVzdA:APA91b"
	wpPath   = "/v1/devices/s/u/webpush"
)

// put is a step that registers the subscription (ep, auth) for s/u.
func put(ep string, auth []byte, status int) bodyStep {
	return bodyStep{step{method: "PUT", path: wpPath, status: status}, jsonType, subJSON(ep, auth, base64.RawURLEncoding)}
}

// del is a step that deletes the subscriptions of s/u with endpoint ep.
func del(ep string, status int) bodyStep {
	b, _ := json.Marshal(map[string]string{"endpoint": ep})
	s := bodyStep{step{method: "DELETE", path: wpPath, status: status}, jsonType, string(b)}
	if status == 404 {
		s.errCode = "not_found"
	}
	return s
}

// get is a step that lists the devices of s/u, expecting body.
func get(body string) bodyStep {
	return bodyStep{step: step{method: "GET", path: "/v1/devices/s/u", status: 200, body: body}}
}

// bad is a step answered 400 invalid_request naming field.
func bad(method, path, ctype, body, field string) bodyStep {
	return bodyStep{step{method: method, path: path, status: 400, errCode: "invalid_request", field: field}, ctype, body}
}

func TestWebPush(t *testing.T) {
	ts3 := "2025-03-04T05:06:10Z"
	longEP := "https://push.example/" + strings.Repeat("p", 2048-len("https://push.example/"))
	cases := []struct {
		name  string
		steps []bodyStep
	}{
		{"registered, then listed with its canonical token", []bodyStep{
			{step{method: "PUT", path: wpPath, status: 204}, "application/json; charset=utf-8", subJSON(ep1, auth1, base64.URLEncoding)},
			{step: step{method: "PUT", path: "/v1/devices/s/u/apns/t", status: 204}},
			get(listed([3]string{"apns", "t", ts2}, [3]string{"webpush", canonical(ep1, auth1), ts1})),
		}},
		{"put is idempotent and refreshes updated_at", []bodyStep{
			put(ep1, auth1, 204),
			{step{method: "PUT", path: wpPath, status: 204}, jsonType, subJSON(ep1, auth1, base64.URLEncoding)},
			get(listed([3]string{"webpush", canonical(ep1, auth1), ts2})),
		}},
		{"same endpoint with new keys replaces the old", []bodyStep{
			put(ep1, auth1, 204),
			put(ep2, auth1, 204),
			put(ep1, auth2, 204),
			get(listed([3]string{"webpush", canonical(ep2, auth1), ts2}, [3]string{"webpush", canonical(ep1, auth2), ts3})),
		}},
		{"the longest endpoint", []bodyStep{
			put(longEP, auth1, 204),
			get(listed([3]string{"webpush", canonical(longEP, auth1), ts1})),
			put(longEP+"p", auth1, 400),
		}},
		{"invalid fields", []bodyStep{
			bad("PUT", wpPath, jsonType, subJSON("http://push.example/p", auth1, base64.RawURLEncoding), "endpoint"),
			bad("PUT", wpPath, jsonType, subJSON("https://user:pw@push.example/p", auth1, base64.RawURLEncoding), "endpoint"),
			bad("PUT", wpPath, jsonType, subJSON("/p", auth1, base64.RawURLEncoding), "endpoint"),
			bad("PUT", wpPath, jsonType, subJSON(longEP+"p", auth1, base64.RawURLEncoding), "endpoint"),
			bad("PUT", wpPath, jsonType, `{"keys":{"p256dh":"x","auth":"y"}}`, "endpoint"),
			bad("PUT", wpPath, jsonType, `{"endpoint":"https://push.example/p","keys":{"p256dh":"BAAA","auth":"`+base64.RawURLEncoding.EncodeToString(auth1)+`"}}`, "keys.p256dh"),
			bad("PUT", wpPath, jsonType, `{"endpoint":"https://push.example/p","keys":{"p256dh":"not base64!","auth":"`+base64.RawURLEncoding.EncodeToString(auth1)+`"}}`, "keys.p256dh"),
			bad("PUT", wpPath, jsonType, `{"endpoint":"https://push.example/p"}`, "keys.p256dh"),
			bad("PUT", wpPath, jsonType, subJSON("https://push.example/p", auth1[:15], base64.RawURLEncoding), "keys.auth"),
			bad("PUT", wpPath, jsonType, `{"endpoint":"https://push.example/p","keys":{"p256dh":"`+base64.RawURLEncoding.EncodeToString(p256dh)+`"}}`, "keys.auth"),
			bad("PUT", wpPath, jsonType, `not json`, "body"),
			bad("PUT", wpPath, jsonType, `[]`, "body"),
			bad("PUT", wpPath, jsonType, ``, "body"),
			get(`{"devices":[]}`),
		}},
		{"body too large", []bodyStep{
			{step{method: "PUT", path: wpPath, status: 413, errCode: "too_large", field: "body"}, jsonType,
				subJSON(ep1, auth1, base64.RawURLEncoding) + strings.Repeat(" ", 8<<10)},
			{step{method: "DELETE", path: wpPath, status: 413, errCode: "too_large", field: "body"}, jsonType,
				`{"endpoint":"` + strings.Repeat("p", 8<<10) + `"}`},
			get(`{"devices":[]}`),
		}},
		{"wrong content type", []bodyStep{
			{step{method: "PUT", path: wpPath, status: 415, errCode: "unsupported_media_type"}, "text/plain", subJSON(ep1, auth1, base64.RawURLEncoding)},
			{step{method: "PUT", path: wpPath, status: 415, errCode: "unsupported_media_type"}, "", subJSON(ep1, auth1, base64.RawURLEncoding)},
			{step{method: "PUT", path: wpPath, status: 415, errCode: "unsupported_media_type"}, "application/json; charset", subJSON(ep1, auth1, base64.RawURLEncoding)},
			{step{method: "DELETE", path: wpPath, status: 415, errCode: "unsupported_media_type"}, "application/x-www-form-urlencoded", `endpoint=x`},
			get(`{"devices":[]}`),
		}},
		{"a path token is refused", []bodyStep{
			bad("PUT", wpPath+"/"+strings.Repeat("t", 20), "", "", "token"),
			bad("PUT", "/v1/devices/s/u/%77ebpush/t", jsonType, subJSON(ep1, auth1, base64.RawURLEncoding), "token"),
			bad("DELETE", wpPath+"/t", "", "", "token"),
			bad("PUT", wpPath+"/"+strings.Repeat("t", 600), "", "", "token"),
			get(`{"devices":[]}`),
		}},
		{"delete by endpoint", []bodyStep{
			put(ep1, auth1, 204),
			put(ep2, auth2, 204),
			{step: step{method: "PUT", path: "/v1/devices/s/v/apns/t", status: 204}},
			{step{method: "PUT", path: "/v1/devices/s/v/webpush", status: 204}, jsonType, subJSON(ep1, auth1, base64.RawURLEncoding)},
			del(ep1, 204),
			del(ep1, 404),
			del("https://push.example/other", 404),
			get(listed([3]string{"webpush", canonical(ep2, auth2), ts2})),
			// The browser's whole subscription JSON names its endpoint too.
			{step{method: "DELETE", path: wpPath, status: 204}, jsonType, subJSON(ep2, auth2, base64.URLEncoding)},
			get(`{"devices":[]}`),
			{step: step{method: "GET", path: "/v1/devices/s/v", status: 200, body: listed(
				[3]string{"apns", "t", ts3}, [3]string{"webpush", canonical(ep1, auth1), "2025-03-04T05:06:11Z"})}},
		}},
		{"delete needs an endpoint", []bodyStep{
			bad("DELETE", wpPath, jsonType, `{}`, "endpoint"),
			bad("DELETE", wpPath, jsonType, `{"endpoint":""}`, "endpoint"),
			bad("DELETE", wpPath, jsonType, `{"endpoint":"https://`+strings.Repeat("p", 2048)+`"}`, "endpoint"),
			bad("DELETE", wpPath, jsonType, `{"endpoint":5}`, "body"),
			bad("DELETE", wpPath, jsonType, `"https://push.example/p"`, "body"),
			bad("DELETE", wpPath, jsonType, ``, "body"),
		}},
		{"wrong methods", []bodyStep{
			{step: step{method: "GET", path: wpPath, status: 405, errCode: "method_not_allowed", allow: "PUT, DELETE"}},
			{step{method: "POST", path: wpPath, status: 405, errCode: "method_not_allowed", allow: "PUT, DELETE"}, jsonType, subJSON(ep1, auth1, base64.RawURLEncoding)},
			{step: step{method: "GET", path: wpPath + "/t", status: 405, errCode: "method_not_allowed", allow: "PUT, DELETE"}},
		}},
		{"bad ids", []bodyStep{
			bad("PUT", "/v1/devices/s/%C3/webpush", jsonType, subJSON(ep1, auth1, base64.RawURLEncoding), "user_id"),
			bad("DELETE", "/v1/devices//u/webpush", jsonType, `{"endpoint":"https://push.example/p"}`, "service_id"),
			bad("PUT", "/v1/devices/s%00/u/webpush/t", "", "", "service_id"),
		}},
		{"other kinds keep the path form", []bodyStep{
			{step: step{method: "PUT", path: "/v1/devices/s/u/fcm", status: 404, errCode: "not_found"}},
			{step: step{method: "PUT", path: "/v1/devices/s/u/webpush/t/x", status: 404, errCode: "not_found"}},
			{step: step{method: "PUT", path: "/v1/devices/s/webpush", status: 405, errCode: "method_not_allowed"}},
			{step: step{method: "PUT", path: "/v1/devices/s/u/webpushx/t", status: 204}},
		}},
	}
	for _, impl := range stores() {
		t.Run(impl.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c := &clock{t: t0}
					h := New(Options{Store: impl.open(t), Now: c.now})
					for _, s := range tc.steps {
						s.run(t, h)
					}
				})
			}
		})
	}
}

func TestWebPushAuth(t *testing.T) {
	const token = "s3cret-admin-token"
	h := New(Options{Store: directory.NewMemory(), Token: token})
	for _, s := range []bodyStep{
		{step{method: "PUT", path: wpPath, status: 401, errCode: "unauthorized"}, jsonType, subJSON(ep1, auth1, base64.RawURLEncoding)},
		{step{method: "PUT", path: wpPath, auth: "Bearer nope", status: 401, errCode: "unauthorized"}, jsonType, subJSON(ep1, auth1, base64.RawURLEncoding)},
		{step{method: "PUT", path: wpPath, status: 401, errCode: "unauthorized"}, "text/plain", "junk"},
		{step{method: "DELETE", path: wpPath, status: 401, errCode: "unauthorized"}, jsonType, `{"endpoint":"` + ep1 + `"}`},
		{step{method: "PUT", path: wpPath, auth: "Bearer " + token, status: 204}, jsonType, subJSON(ep1, auth1, base64.RawURLEncoding)},
		{step{method: "DELETE", path: wpPath, status: 401, errCode: "unauthorized"}, jsonType, `{"endpoint":"` + ep1 + `"}`},
		{step{method: "DELETE", path: wpPath, auth: "Bearer " + token, status: 204}, jsonType, `{"endpoint":"` + ep1 + `"}`},
	} {
		s.run(t, h)
	}
}

// TestWebPushNeverLoggedWhole checks logs and error bodies for a
// subscription's endpoint path and auth secret: either lets anyone push to
// the browser.
func TestWebPushNeverLoggedWhole(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const ep = "https://push.example/wpush/v2/SECRETPATH"
	good := New(Options{Store: directory.NewMemory(), Logger: log})
	failing := New(Options{Store: failingStore{directory.NewMemory(), func(string) error { return errDisk }}, Logger: log})
	sub := subJSON(ep, auth1, base64.RawURLEncoding)
	for _, s := range []struct {
		h    http.Handler
		step bodyStep
	}{
		{good, bodyStep{step{method: "PUT", path: wpPath, status: 204}, jsonType, sub}},
		{good, bodyStep{step{method: "PUT", path: wpPath, status: 204}, jsonType, subJSON(ep, auth2, base64.RawURLEncoding)}},
		{good, bodyStep{step{method: "DELETE", path: wpPath, status: 204}, jsonType, sub}},
		{good, bodyStep{step{method: "PUT", path: wpPath, status: 400, errCode: "invalid_request", field: "endpoint"}, jsonType,
			subJSON("http://push.example/wpush/v2/SECRETPATH", auth1, base64.RawURLEncoding)}},
		{failing, bodyStep{step{method: "PUT", path: wpPath, status: 500, errCode: "internal"}, jsonType, sub}},
	} {
		w := s.step.run(t, s.h)
		if b := w.Body.String(); strings.Contains(b, "SECRETPATH") || strings.Contains(b, base64.RawURLEncoding.EncodeToString(auth1)) {
			t.Errorf("%s %s: body %q holds the subscription", s.step.method, s.step.path, b)
		}
	}
	for _, secret := range []string{"SECRETPATH", base64.RawURLEncoding.EncodeToString(auth1)[:8], base64.RawURLEncoding.EncodeToString(auth2)[:8]} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs hold %q:\n%s", secret, logs.String())
		}
	}
	for _, want := range []string{"device registered", "device replaced", "device deleted", "token=webpush:push.example…"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}

// TestWebPushOverHTTP registers and deletes a subscription through
// net/http's client and server, against SQLite.
func TestWebPushOverHTTP(t *testing.T) {
	store := openSQLite(t, filepath.Join(t.TempDir(), "ringside.db"))
	c := &clock{t: t0}
	srv := httptest.NewServer(New(Options{Store: store, Token: "tok", Now: c.now}))
	defer srv.Close()
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Content-Type", jsonType)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("PUT", wpPath, subJSON(ep1, auth1, base64.URLEncoding)); code != 204 {
		t.Fatalf("PUT: got %d %s; want 204", code, body)
	}
	if code, body := do("GET", "/v1/devices/s/u", ""); code != 200 || normJSON(t, []byte(body)) != normJSON(t, []byte(listed([3]string{"webpush", canonical(ep1, auth1), ts1}))) {
		t.Fatalf("GET: got %d %s", code, body)
	}
	if code, body := do("PUT", wpPath, strings.Repeat(" ", 1<<20)); code != 413 {
		t.Fatalf("PUT of 1 MiB: got %d %s; want 413", code, body)
	}
	if code, body := do("DELETE", wpPath, `{"endpoint":"`+ep1+`"}`); code != 204 {
		t.Fatalf("DELETE: got %d %s; want 204", code, body)
	}
	if code, body := do("DELETE", wpPath, `{"endpoint":"`+ep1+`"}`); code != 404 {
		t.Fatalf("DELETE again: got %d %s; want 404", code, body)
	}
}
