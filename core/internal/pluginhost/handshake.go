package pluginhost

import (
	"github.com/hashicorp/go-plugin"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// handshake is go-plugin's handshake of the plugin protocol, as every
// plugin built on the SDK makes it.
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  pluginpb.ProtocolVersion,
	MagicCookieKey:   pluginpb.MagicCookieKey,
	MagicCookieValue: pluginpb.MagicCookieValue,
}

// ProtocolVersion is the version of the plugin protocol this host speaks.
const ProtocolVersion = pluginpb.ProtocolVersion
