package pluginhost

import (
	"context"

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

// SetBlock sets what Configure tells the plugin of the notifier block
// besides its attributes (the Spec's Block). It is called before Configure
// and Supervise, which hand it to the processes started after a crash.
func (c *Client) SetBlock(b *Block) { c.spec.Block = b }

// Configure sends the notifier block's decoded attributes (a JSON object)
// and returns the plugin's diagnostics about them; the error is for a
// failed call. With the Spec's Block, it also tells the plugin the
// template attributes and payload keys the block sets; without it, the
// plugin leaves its checks of them to its deliveries, as under a host
// before the protocol's ConfigureRequest.templates. A plugin restarted by
// its supervisor is told the same.
func (c *Client) Configure(ctx context.Context, configJSON []byte) ([]Diagnostic, error) {
	req := &pluginpb.ConfigureRequest{Notifier: c.spec.Notifier, ConfigJson: configJSON}
	if b := c.spec.Block; b != nil {
		req.Templates, req.PayloadKeys, req.TemplatesKnown, req.CheckOnly = b.Templates, b.PayloadKeys, true, b.CheckOnly
	}
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
