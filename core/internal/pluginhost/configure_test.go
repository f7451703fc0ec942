package pluginhost

import (
	"context"
	"slices"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// recordingRPC records the ConfigureRequest it gets and answers with
// resp.
type recordingRPC struct {
	pluginpb.PluginClient
	got  *pluginpb.ConfigureRequest
	resp *pluginpb.ConfigureResponse
}

func (r *recordingRPC) Configure(_ context.Context, req *pluginpb.ConfigureRequest, _ ...grpc.CallOption) (*pluginpb.ConfigureResponse, error) {
	r.got = req
	return r.resp, nil
}

// ConfigureNotifier tells the plugin the template attributes the block
// sets, sorted, and its payload keys, in file order; Configure tells
// nothing, as an older host.
func TestConfigureSendsTemplates(t *testing.T) {
	n := &config.Notifier{
		Name:        "ios_missed",
		Templates:   map[string]hcl.Expression{"title": nil, "body": nil, "collapse_id": nil},
		PayloadKeys: []string{"event", "aps"},
	}
	tests := []struct {
		name      string
		configure func(*Client) ([]Diagnostic, error)
		want      *pluginpb.ConfigureRequest
	}{
		{"ConfigureNotifier", func(c *Client) ([]Diagnostic, error) {
			return c.ConfigureNotifier(t.Context(), n, []byte(`{"topic":"t"}`))
		}, &pluginpb.ConfigureRequest{Notifier: "ios_missed", ConfigJson: []byte(`{"topic":"t"}`),
			Templates: []string{"body", "collapse_id", "title"}, TemplatesKnown: true, PayloadKeys: []string{"event", "aps"}}},
		{"ConfigureNotifier, nothing set", func(c *Client) ([]Diagnostic, error) {
			return c.ConfigureNotifier(t.Context(), &config.Notifier{Name: "ios"}, []byte(`{}`))
		}, &pluginpb.ConfigureRequest{Notifier: "ios", ConfigJson: []byte(`{}`), TemplatesKnown: true}},
		{"Configure", func(c *Client) ([]Diagnostic, error) {
			return c.Configure(t.Context(), "ios_missed", []byte(`{"topic":"t"}`))
		}, &pluginpb.ConfigureRequest{Notifier: "ios_missed", ConfigJson: []byte(`{"topic":"t"}`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rpc := &recordingRPC{resp: &pluginpb.ConfigureResponse{Errors: []*pluginpb.AttributeError{
				{Attribute: "push_type", Message: "alert pushes need body"},
				{Attribute: "title", Message: "ignored", Warning: true},
			}}}
			diags, err := tc.configure(&Client{rpc: rpc})
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(rpc.got, tc.want) {
				t.Errorf("sent %v; want %v", rpc.got, tc.want)
			}
			want := []Diagnostic{{Attribute: "push_type", Message: "alert pushes need body"}, {Attribute: "title", Message: "ignored", Warning: true}}
			if !slices.Equal(diags, want) {
				t.Errorf("got diagnostics %v; want %v", diags, want)
			}
		})
	}
}
