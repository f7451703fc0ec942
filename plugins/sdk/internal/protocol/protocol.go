// Package protocol holds what the SDK's side of the plugin protocol needs
// beyond the generated code, and plugin authors never use: go-plugin's
// handshake, the plugin's message size limit, and the spans of the calls
// on DeliverStream. sdktest, a host, shares the handshake.
package protocol

import (
	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// Handshake is the go-plugin handshake of the protocol.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  pluginpb.ProtocolVersion,
	MagicCookieKey:   pluginpb.MagicCookieKey,
	MagicCookieValue: pluginpb.MagicCookieValue,
}

// MaxMessageBytes is the largest message a plugin's gRPC server receives;
// Info announces it, and the host keeps its messages far below it.
const MaxMessageBytes = 16 << 20

// DeliverSpanAttributes are the RPC attributes of a Deliver span made for
// a call on DeliverStream, as otelgrpc sets them on a unary call's.
var DeliverSpanAttributes = []attribute.KeyValue{
	attribute.String("rpc.system", "grpc"),
	attribute.String("rpc.service", pluginpb.Plugin_ServiceDesc.ServiceName),
	attribute.String("rpc.method", "Deliver"),
}

// EndDeliverSpan records a Deliver call's gRPC status on span and ends it.
func EndDeliverSpan(span trace.Span, code codes.Code, msg string) {
	span.SetAttributes(attribute.Int64("rpc.grpc.status_code", int64(code)))
	if code != codes.OK {
		span.SetStatus(otelcodes.Error, msg)
	}
	span.End()
}
