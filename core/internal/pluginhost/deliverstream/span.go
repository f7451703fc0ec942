package deliverstream

import (
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// deliverSpanAttributes are the RPC attributes of the client span of a
// call on the stream (named pluginpb.DeliverSpanName), as otelgrpc sets
// them on a unary Deliver call's; the plugin's server span has the same.
var deliverSpanAttributes = []attribute.KeyValue{
	attribute.String("rpc.system", "grpc"),
	attribute.String("rpc.service", pluginpb.Plugin_ServiceDesc.ServiceName),
	attribute.String("rpc.method", "Deliver"),
}

// endDeliverSpan records a call's gRPC status on span and ends it.
func endDeliverSpan(span trace.Span, code codes.Code, msg string) {
	span.SetAttributes(attribute.Int64("rpc.grpc.status_code", int64(code)))
	if code != codes.OK {
		span.SetStatus(otelcodes.Error, msg)
	}
	span.End()
}
