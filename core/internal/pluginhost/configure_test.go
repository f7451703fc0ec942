package pluginhost

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

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

// Configure tells the plugin the template attributes the block sets,
// sorted, its payload keys, in file order, and whether the process is
// only to check the block, when the Spec has a Block; without one it
// tells nothing, as an older host.
func TestConfigureSendsTemplates(t *testing.T) {
	block := &Block{Templates: []string{"body", "collapse_id", "title"}, PayloadKeys: []string{"event", "aps"}}
	tests := []struct {
		name string
		spec Spec
		want *pluginpb.ConfigureRequest
	}{
		{"a block", Spec{Notifier: "ios_missed", Block: block}, &pluginpb.ConfigureRequest{Notifier: "ios_missed", ConfigJson: []byte(`{"topic":"t"}`),
			Templates: []string{"body", "collapse_id", "title"}, TemplatesKnown: true, PayloadKeys: []string{"event", "aps"}}},
		{"a block that sets nothing", Spec{Notifier: "ios", Block: &Block{}}, &pluginpb.ConfigureRequest{Notifier: "ios", ConfigJson: []byte(`{"topic":"t"}`), TemplatesKnown: true}},
		{"a block to check only", Spec{Notifier: "ios", Block: &Block{CheckOnly: true}}, &pluginpb.ConfigureRequest{Notifier: "ios", ConfigJson: []byte(`{"topic":"t"}`), TemplatesKnown: true, CheckOnly: true}},
		{"no block", Spec{Notifier: "ios_missed"}, &pluginpb.ConfigureRequest{Notifier: "ios_missed", ConfigJson: []byte(`{"topic":"t"}`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rpc := &recordingRPC{resp: &pluginpb.ConfigureResponse{Errors: []*pluginpb.AttributeError{
				{Attribute: "push_type", Message: "alert pushes need body"},
				{Attribute: "title", Message: "ignored", Warning: true},
			}}}
			diags, err := (&Client{rpc: rpc, spec: tc.spec}).Configure(t.Context(), []byte(`{"topic":"t"}`))
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
