package pluginpb

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// GRPCPlugin is go-plugin's glue for the protocol, served and dispensed
// under PluginName: a plugin process sets Impl, which it registers on
// go-plugin's gRPC server; a host leaves it nil and is handed a
// PluginClient on the connection.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl serves the protocol in a plugin process; nil in a host.
	Impl PluginServer
}

// GRPCServer registers g.Impl; it fails when there is none.
func (g *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if g.Impl == nil {
		return errors.New("pluginpb: no plugin server to register: a host serves no plugin")
	}
	RegisterPluginServer(s, g.Impl)
	return nil
}

// GRPCClient returns the protocol client on cc.
func (g *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return NewPluginClient(cc), nil
}
