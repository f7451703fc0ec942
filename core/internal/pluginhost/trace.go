package pluginhost

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

const tracerName = "github.com/ringside/ringside/core/internal/pluginhost"

// StartSpan starts the span of one start of spec's plugin process, named
// "plugin.start NOTIFIER": the Info, Schema and Configure calls made with
// the ctx it returns are its children, and the plugin's server spans join
// them, so a start is one trace with no span left without its parent.
// The caller ends the span once the process is configured or given up.
func StartSpan(ctx context.Context, spec Spec) (context.Context, trace.Span) {
	tp := spec.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName).Start(ctx, "plugin.start "+spec.Notifier, trace.WithAttributes(
		attribute.String("ringside.notifier", spec.Notifier),
		attribute.String("ringside.plugin", spec.Plugin),
	))
}
