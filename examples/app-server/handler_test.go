package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const (
	secret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	lineParam = "eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ=="
)

// body is what ringside's webhook plugin sends for LINE Planet's example.
var body = []byte(`{"sid":"151ad995-749c-4a28-893f-636700469db1","from_service_id":"linecorp.com","from_user_id":"9286",` +
	`"to_service_id":"linecorp.com","to_user_id":"2809","type":"A","cc_param":"` + lineParam + `",` +
	`"app_svr_data":"stid","route":"default",` +
	`"payload":{"cc_param":"` + lineParam + `","sid":"151ad995-749c-4a28-893f-636700469db1","app_caller_uid":"9286","video":false}}`)

// sign returns Standard Webhooks headers for b signed with key at ts.
func sign(t *testing.T, key string, b []byte, ts time.Time) http.Header {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(key)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign("msg_1", ts, b)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", fmt.Sprint(ts.Unix()))
	h.Set("webhook-signature", sig)
	return h
}

func TestIncoming(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		secret  string // the app server's RINGSIDE_WEBHOOK_SECRET
		header  http.Header
		body    []byte
		want    int
		printed bool
	}{
		{"signature ok", secret, sign(t, secret, body, now), body, http.StatusNoContent, true},
		{"signature by another secret", secret, sign(t, "whsec_b3RoZXIgc2VjcmV0IGtleQ==", body, now), body, http.StatusUnauthorized, false},
		{"body changed after signing", secret, sign(t, secret, body, now), append(bytes.Clone(body[:len(body)-1]), ' ', '}'), http.StatusUnauthorized, false},
		{"signature too old", secret, sign(t, secret, body, now.Add(-time.Hour)), body, http.StatusUnauthorized, false},
		{"signature absent", secret, http.Header{}, body, http.StatusUnauthorized, false},
		{"no secret, unsigned", "", http.Header{}, body, http.StatusNoContent, true},
		{"no secret, signed", "", sign(t, secret, body, now), body, http.StatusNoContent, true},
		{"not json", "", http.Header{}, []byte("hello"), http.StatusBadRequest, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			h, err := newHandler(&out, tc.secret)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()

			req, _ := http.NewRequest(http.MethodPost, srv.URL+incomingPath, bytes.NewReader(tc.body))
			req.Header = tc.header.Clone()
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("got %d; want %d", resp.StatusCode, tc.want)
			}
			printed := strings.Contains(out.String(), "incoming audio call")
			if printed != tc.printed {
				t.Errorf("printed %v; want %v:\n%s", printed, tc.printed, out.String())
			}
		})
	}
}

func TestIncomingPrinted(t *testing.T) {
	var out bytes.Buffer
	h, err := newHandler(&out, secret)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, incomingPath, bytes.NewReader(body))
	req.Header = sign(t, secret, body, time.Now())
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("got %d; want 204", rec.Code)
	}
	want := "incoming audio call: linecorp.com/9286 → linecorp.com/2809\n" +
		"  sid           151ad995-749c-4a28-893f-636700469db1\n" +
		"  route         default\n" +
		"  webhook-id    msg_1, signature verified\n" +
		"  app_svr_data  stid\n" +
		`  cc_param      184 bytes, decodes to {"callFlowType":"M","commParam":"{\"mpkey\":\"AhLRU30XuXFenT3Z8ZapU+2YPTPzrYA2ZObDqRzy+hr3\",\"ctm\":3000,\"ict\":6000}","callType":"A"}` + "\n" +
		`  payload       {"app_caller_uid":"9286","video":false}` + "\n\n"
	if got := out.String(); got != want {
		t.Errorf("printed:\ngot\n%s\nwant\n%s", got, want)
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		name string
		call incomingCall
		want []string
	}{
		{"video", incomingCall{Type: "V", CCParam: lineParam}, []string{"incoming video call"}},
		{"no app_svr_data", incomingCall{Type: "A", CCParam: lineParam}, []string{"app_svr_data  (none)"}},
		{"cc_param not base64", incomingCall{Type: "A", CCParam: "***"}, []string{"3 bytes, not standard base64"}},
		{"cc_param not json", incomingCall{Type: "A", CCParam: "aGVsbG8="}, []string{"8 bytes, decodes to 5 bytes (not JSON)"}},
		{"control characters quoted", incomingCall{Type: "A", FromUserID: "a\x1b[2Jb"}, []string{`"a\x1b[2Jb"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := describe(tc.call, "id", false)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("got\n%s\nwant it to contain %q", got, w)
				}
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	h, err := newHandler(&bytes.Buffer{}, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, incomingPath, http.StatusMethodNotAllowed},
		{http.MethodPost, "/elsewhere", http.StatusNotFound},
		{http.MethodGet, "/healthz", http.StatusNoContent},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.want {
				t.Errorf("got %d; want %d", rec.Code, tc.want)
			}
		})
	}
}

func TestIncomingTooLarge(t *testing.T) {
	h, _ := newHandler(&bytes.Buffer{}, "")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, incomingPath, bytes.NewReader(make([]byte, maxBody+1))))
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("got %d; want 413", rec.Code)
	}
}

func TestNewHandlerSecret(t *testing.T) {
	for _, s := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_***"} {
		if _, err := newHandler(&bytes.Buffer{}, s); err == nil {
			t.Errorf("newHandler(%q): got nil; want an error", s)
		} else if strings.Contains(err.Error(), s) {
			t.Errorf("error %q quotes the secret", err)
		}
	}
}

func TestRunUsage(t *testing.T) {
	var stderr bytes.Buffer
	getenv := func(string) string { return "" }
	if code := run([]string{"-nope"}, &bytes.Buffer{}, &stderr, getenv); code != 2 {
		t.Errorf("unknown flag: got exit %d; want 2", code)
	}
	if code := run([]string{"extra"}, &bytes.Buffer{}, &stderr, getenv); code != 2 {
		t.Errorf("extra argument: got exit %d; want 2", code)
	}
	bad := func(string) string { return "not-a-secret" }
	if code := run(nil, &bytes.Buffer{}, &stderr, bad); code != 1 {
		t.Errorf("bad secret: got exit %d; want 1", code)
	}
	if code := run([]string{"-listen", "256.0.0.1:1"}, &bytes.Buffer{}, &stderr, getenv); code != 1 {
		t.Errorf("bad listen address: got exit %d; want 1", code)
	}
}
