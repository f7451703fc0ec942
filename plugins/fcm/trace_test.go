package fcm

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringside/ringside/plugins/sdk"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

// The send to FCM is a client span of the delivery's trace, carried to FCM
// in traceparent, and its attributes hold neither the path nor any token.
func TestTraceSpan(t *testing.T) {
	rec := sdktest.RecordSpans(t)

	e := newEnv(t)
	ctx, parent := otel.Tracer("test").Start(context.Background(), "deliver android")
	if _, err := e.p.Deliver(ctx, delivery(defaultPayload), sdk.Device{Kind: "fcm", Token: testToken}); err != nil {
		t.Fatal(err)
	}
	parent.End()

	traceID := parent.SpanContext().TraceID().String()
	if tp := e.fcm.Sends()[0].Header.Get("Traceparent"); !strings.Contains(tp, traceID) {
		t.Errorf("traceparent %q, want trace %s", tp, traceID)
	}
	var post sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "HTTP POST" && s.SpanKind() == trace.SpanKindClient && s.Parent().SpanID() == parent.SpanContext().SpanID() {
			post = s
		}
	}
	if post == nil {
		t.Fatalf("no HTTP POST client span under the delivery's span")
	}
	for _, a := range post.Attributes() {
		v := a.Value.String()
		if strings.Contains(v, testToken) || strings.Contains(v, e.fcm.AccessToken) || strings.Contains(v, "messages:send") {
			t.Errorf("span attribute %s = %q", a.Key, v)
		}
	}
}
