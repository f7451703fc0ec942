package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

func TestLogShape(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(newLogHandler(&buf, slog.LevelDebug))
	l.Debug("connecting", "host", "api.push.apple.com", "n", 3)
	l.Warn("slow", slog.Group("g", "a", 1))
	l.Log(context.Background(), levelTrace, "dropped")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines; want 2:\n%s", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["@level"] != "debug" || m["@message"] != "connecting" || m["host"] != "api.push.apple.com" || m["n"] != 3.0 {
		t.Errorf("got %v", m)
	}
	// go-plugin's host parses @timestamp with exactly this layout.
	ts, _ := m["@timestamp"].(string)
	if _, err := time.Parse(hclogTimeFormat, ts); err != nil {
		t.Errorf("@timestamp %q: %v", ts, err)
	}
	for _, k := range []string{"time", "level", "msg"} {
		if _, ok := m[k]; ok {
			t.Errorf("line has slog key %q", k)
		}
	}
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
		t.Fatal(err)
	}
	if m["@level"] != "warn" {
		t.Errorf("got level %v; want warn", m["@level"])
	}
}

func TestLogLevelEnv(t *testing.T) {
	for env, want := range map[string]slog.Level{
		"": slog.LevelInfo, "trace": levelTrace, "DEBUG": slog.LevelDebug, "warn": slog.LevelWarn, "error": slog.LevelError, "bogus": slog.LevelInfo,
	} {
		t.Setenv(pluginpb.LogLevelEnv, env)
		if got := logLevel(); got != want {
			t.Errorf("%s=%q: got %v; want %v", pluginpb.LogLevelEnv, env, got, want)
		}
	}
}

func TestTransport(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	var gotTraceparent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTraceparent = r.Header.Get("traceparent")
		if strings.Contains(r.URL.Path, "gone") {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	ctx, parent := tp.Tracer("test").Start(t.Context(), "deliver")
	client := HTTPClient()
	const token = "d3v1c3t0k3n"
	for _, path := range []string{"/3/device/" + token + "?secret=" + token, "/3/device/gone-" + token} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if req.Header.Get("traceparent") != "" {
			t.Error("the caller's request was modified")
		}
	}
	// A transport error: nothing listens there.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:1/3/device/"+token, nil)
	if _, err := client.Do(req); err == nil {
		t.Fatal("want a transport error")
	}
	parent.End()

	spans := rec.Ended()
	if len(spans) != 4 {
		t.Fatalf("got %d spans; want 4", len(spans))
	}
	if want := parent.SpanContext().TraceID().String(); !strings.Contains(gotTraceparent, want) {
		t.Errorf("traceparent %q lacks trace id %s", gotTraceparent, want)
	}
	for i, s := range spans[:3] {
		if s.Name() != map[int]string{0: "HTTP POST", 1: "HTTP POST", 2: "HTTP GET"}[i] || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %d: %s %v", i, s.Name(), s.SpanKind())
		}
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %d is not a child of the caller's span", i)
		}
		attrs := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes() {
			attrs[a.Key] = a.Value
			if strings.Contains(a.Value.String(), token) {
				t.Errorf("span %d attribute %s holds the token: %s", i, a.Key, a.Value.String())
			}
		}
		if strings.Contains(s.Status().Description, token) {
			t.Errorf("span %d status holds the token: %s", i, s.Status().Description)
		}
		for _, e := range s.Events() {
			for _, a := range e.Attributes {
				if strings.Contains(a.Value.String(), token) {
					t.Errorf("span %d event holds the token", i)
				}
			}
		}
		if attrs["server.address"].AsString() != "127.0.0.1" || attrs["server.port"].AsInt64() == 0 || attrs["http.request.method"].AsString() == "" {
			t.Errorf("span %d attributes %v", i, attrs)
		}
		switch i {
		case 0:
			if attrs["http.response.status_code"].AsInt64() != 200 || s.Status().Code == codes.Error {
				t.Errorf("span 0: %v %v", attrs, s.Status())
			}
		case 1:
			if attrs["http.response.status_code"].AsInt64() != 410 || s.Status().Code != codes.Error {
				t.Errorf("span 1: %v %v", attrs, s.Status())
			}
		case 2:
			if s.Status().Code != codes.Error || attrs["error.type"].AsString() == "" {
				t.Errorf("span 2: %v %v", attrs, s.Status())
			}
		}
	}
}

func TestRedact(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://h/3/device/TOKEN?k=SECRET", nil)
	err := errors.New(`Get "https://h/3/device/TOKEN?k=SECRET": dial tcp: refused`)
	if got := redact(err, req.URL); strings.Contains(got, "TOKEN") || strings.Contains(got, "SECRET") {
		t.Fatalf("got %q", got)
	}
}
