package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// LogHandler wraps h so that a record logged with a context carrying a
// span gets trace_id and span_id attributes: log lines then join their
// trace.
func LogHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ slog.Handler }

func (t traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return t.Handler.Handle(ctx, r)
}

func (t traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{t.Handler.WithAttrs(as)}
}

func (t traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{t.Handler.WithGroup(name)}
}

// EverySecond limits a log line repeated for every event of one kind (a
// full disk, a Redis away) to one a second: Allow lets one event a second
// through and says how many it held back since the last. The zero value is
// ready; it is safe for concurrent use.
type EverySecond struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// Allow reports whether an event at now is let through, and how many were
// not since the last one that was.
func (e *EverySecond) Allow(now time.Time) (skipped int, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.last.IsZero() && now.Sub(e.last) < time.Second {
		e.skipped++
		return 0, false
	}
	e.last, skipped, e.skipped = now, e.skipped, 0
	return skipped, true
}
