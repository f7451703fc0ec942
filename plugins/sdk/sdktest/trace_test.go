package sdktest

import (
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// RecordSpans records the spans started while the test runs, and the
// previous global tracer provider comes back at cleanup.
func TestRecordSpans(t *testing.T) {
	prev := otel.GetTracerProvider()
	var rec *tracetest.SpanRecorder
	t.Run("recording", func(t *testing.T) {
		rec = RecordSpans(t)
		_, span := otel.Tracer("test").Start(t.Context(), "op")
		span.End()
	})
	if got := otel.GetTracerProvider(); got != prev {
		t.Errorf("after the test the global tracer provider is %T; want the previous one, %T", got, prev)
	}
	if got := rec.Ended(); len(got) != 1 || got[0].Name() != "op" {
		t.Errorf("recorded %d spans; want the one named op", len(got))
	}
}
