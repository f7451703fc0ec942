package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("k", "v")
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))

	log.InfoContext(ctx, "with span")
	log.Info("without")
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if lines[0]["trace_id"] != tid.String() || lines[0]["span_id"] != sid.String() || lines[0]["k"] != "v" {
		t.Errorf("with a span: got %v", lines[0])
	}
	if _, ok := lines[1]["trace_id"]; ok {
		t.Errorf("without a span: got %v", lines[1])
	}
}

// One event a second is let through; the next one says how many were not.
func TestEverySecond(t *testing.T) {
	var e EverySecond
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if n, ok := e.Allow(now); !ok || n != 0 {
		t.Fatalf("first: %d %t", n, ok)
	}
	for range 5 {
		now = now.Add(100 * time.Millisecond)
		if _, ok := e.Allow(now); ok {
			t.Fatal("let through within the second")
		}
	}
	if n, ok := e.Allow(now.Add(time.Second)); !ok || n != 5 {
		t.Errorf("after a second: %d %t; want 5 true", n, ok)
	}
}
