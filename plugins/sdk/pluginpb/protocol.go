package pluginpb

import (
	"strings"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
)

// The constants both sides of the protocol share: the host (ringside) and
// every plugin must agree on them, or the plugin does not start.
const (
	// ProtocolVersion is the major version of the protocol (protobuf
	// package ringside.plugin.v1) and go-plugin's handshake protocol
	// version: a host refuses a plugin built for another major version.
	ProtocolVersion = 1
	// MagicCookieKey and MagicCookieValue are go-plugin's handshake cookie:
	// the host sets it in the plugin's environment, and a binary started
	// without it is not being run as a plugin.
	MagicCookieKey   = "RINGSIDE_PLUGIN"
	MagicCookieValue = "7c1f4b9e-ring-side-plugin-v1"
	// PluginName is the name under which go-plugin dispenses the plugin.
	PluginName = "notifier"
	// LogLevelEnv is the environment variable through which the host sets
	// the plugin's log level: trace, debug, info (the default), warn or
	// error.
	LogLevelEnv = "RINGSIDE_PLUGIN_LOG_LEVEL"
	// DeliverSpanName is the name of the spans of a Deliver call on both
	// sides, whether it went as a unary call or on DeliverStream: the
	// unary call's full method name without its leading slash. Both sides
	// give the spans of a call on DeliverStream the RPC attributes otelgrpc
	// gives a unary call's: rpc.system "grpc", rpc.service the service's
	// name, rpc.method "Deliver", and rpc.grpc.status_code.
	DeliverSpanName = "ringside.plugin.v1.Plugin/Deliver"
)

// TraceFilter reports whether a gRPC call belongs to the protocol (the
// service ringside.plugin.v1.Plugin) and so gets a span on both sides;
// go-plugin's own services (stdio, broker, controller, health) do not, nor
// does the protocol's Health (health checks are not traced: they would
// bury the calls' traces), nor DeliverStream itself: each call on it gets
// its own Deliver span.
func TraceFilter(info *stats.RPCTagInfo) bool {
	return strings.HasPrefix(info.FullMethodName, "/"+Plugin_ServiceDesc.ServiceName+"/") &&
		info.FullMethodName != Plugin_DeliverStream_FullMethodName &&
		info.FullMethodName != Plugin_Health_FullMethodName
}

// DeliverSpanAttributes are the RPC attributes both sides give the span of
// a Deliver call on DeliverStream (named DeliverSpanName), as otelgrpc sets
// them on a unary call's.
var DeliverSpanAttributes = []attribute.KeyValue{
	attribute.String("rpc.system", "grpc"),
	attribute.String("rpc.service", Plugin_ServiceDesc.ServiceName),
	attribute.String("rpc.method", "Deliver"),
}

// EndDeliverSpan records a Deliver call's gRPC status on span and ends it,
// as both sides do for a call on DeliverStream.
func EndDeliverSpan(span trace.Span, code codes.Code, msg string) {
	span.SetAttributes(attribute.Int64("rpc.grpc.status_code", int64(code)))
	if code != codes.OK {
		span.SetStatus(otelcodes.Error, msg)
	}
	span.End()
}
