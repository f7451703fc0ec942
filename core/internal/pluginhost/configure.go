package pluginhost

import (
	"context"
	"slices"

	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// Diagnostic is one finding of a plugin's Configure about its notifier's
// attributes.
type Diagnostic struct {
	// Attribute is the notifier attribute at fault; "" is the notifier
	// block as a whole.
	Attribute string
	Message   string
	// Warning marks advice: a plugin whose diagnostics are all warnings is
	// configured.
	Warning bool
}

// Schema asks the plugin for the notifier attributes it accepts, and
// returns them with the device kind and payload limit its Info announced.
func (c *Client) Schema(ctx context.Context) (config.Schema, error) {
	resp, err := c.rpc.Schema(ctx, &pluginpb.SchemaRequest{})
	if err != nil {
		return config.Schema{}, c.rpcError("schema", err)
	}
	s := config.Schema{DeviceKind: c.info.GetDeviceKind(), MaxPayloadBytes: int(c.info.GetMaxPayloadBytes())}
	for _, a := range resp.GetAttributes() {
		s.Attributes = append(s.Attributes, config.Attribute{
			Name:      a.GetName(),
			Type:      attrType(a.GetType()),
			Required:  a.GetRequired(),
			Template:  a.GetTemplate(),
			Path:      a.GetPath(),
			Sensitive: a.GetSensitive(),
		})
	}
	return s, nil
}

// attrType is the attribute type of a protocol type; an unknown one is a
// string.
func attrType(t pluginpb.Type) config.AttrType {
	switch t {
	case pluginpb.Type_TYPE_NUMBER:
		return config.AttrNumber
	case pluginpb.Type_TYPE_BOOL:
		return config.AttrBool
	case pluginpb.Type_TYPE_DURATION:
		return config.AttrDuration
	case pluginpb.Type_TYPE_STRING_LIST:
		return config.AttrStringList
	case pluginpb.Type_TYPE_STRING_MAP:
		return config.AttrStringMap
	default:
		return config.AttrString
	}
}

// Configure sends the notifier block's decoded attributes (a JSON object)
// and returns the plugin's diagnostics about them; the error is for a
// failed call. It does not tell the plugin which template attributes and
// payload keys the block sets, as a host before the protocol's
// ConfigureRequest.templates did: the plugin then leaves its checks of
// them to its deliveries. ConfigureNotifier tells.
func (c *Client) Configure(ctx context.Context, notifier string, configJSON []byte) ([]Diagnostic, error) {
	return c.configure(ctx, &pluginpb.ConfigureRequest{Notifier: notifier, ConfigJson: configJSON})
}

// ConfigureNotifier is Configure for the notifier n, whose decoded
// attributes configJSON holds, telling the plugin the names of the
// template attributes n sets, sorted, and the keys its payload sets, in
// file order: so that the plugin can refuse a block without a template it
// needs, or warn about one it ignores, at load.
func (c *Client) ConfigureNotifier(ctx context.Context, n *config.Notifier, configJSON []byte) ([]Diagnostic, error) {
	templates := make([]string, 0, len(n.Templates))
	for name := range n.Templates {
		templates = append(templates, name)
	}
	slices.Sort(templates)
	return c.configure(ctx, &pluginpb.ConfigureRequest{
		Notifier:       n.Name,
		ConfigJson:     configJSON,
		Templates:      templates,
		TemplatesKnown: true,
		PayloadKeys:    n.PayloadKeys,
	})
}

func (c *Client) configure(ctx context.Context, req *pluginpb.ConfigureRequest) ([]Diagnostic, error) {
	resp, err := c.rpc.Configure(ctx, req)
	if err != nil {
		return nil, c.rpcError("configure", err)
	}
	var diags []Diagnostic
	for _, e := range resp.GetErrors() {
		diags = append(diags, Diagnostic{Attribute: e.GetAttribute(), Message: e.GetMessage(), Warning: e.GetWarning()})
	}
	return diags, nil
}
