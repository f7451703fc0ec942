package sdktest

import (
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// RecordSpans makes a tracer provider that records every span the global
// one until the test ends (the previous one comes back at cleanup), and
// returns its recorder: a plugin's spans, such as sdk.HTTPClient's, land in
// it, and otel.Tracer starts the test's own. A test that calls it must not
// run in parallel with one that traces.
func RecordSpans(t testing.TB) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	return rec
}
