// Package protocol holds what the SDK's side of the plugin protocol needs
// beyond the generated code, and plugin authors never use: go-plugin's
// handshake, the plugin's message size limit, and the spans of the calls
// on DeliverStream. sdktest, a host, shares the handshake.
package protocol

import (
	"github.com/hashicorp/go-plugin"

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
