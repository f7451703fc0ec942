package pluginpb

import (
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

func TestDeliverSpanName(t *testing.T) {
	if want := Plugin_Deliver_FullMethodName[1:]; DeliverSpanName != want {
		t.Errorf("DeliverSpanName = %q; want %q", DeliverSpanName, want)
	}
}

func TestTraceFilter(t *testing.T) {
	for _, tc := range []struct {
		method string
		want   bool
	}{
		{Plugin_Deliver_FullMethodName, true},
		{Plugin_Configure_FullMethodName, true},
		{Plugin_Info_FullMethodName, true},
		{Plugin_Schema_FullMethodName, true},
		{Plugin_DeliverStream_FullMethodName, false},
		{Plugin_Health_FullMethodName, false},
		{"/plugin.GRPCStdio/StreamStdio", false},
		{"/grpc.health.v1.Health/Check", false},
	} {
		if got := TraceFilter(&stats.RPCTagInfo{FullMethodName: tc.method}); got != tc.want {
			t.Errorf("TraceFilter(%s) = %v; want %v", tc.method, got, tc.want)
		}
	}
}

func TestGRPCPluginHostServesNothing(t *testing.T) {
	srv := grpc.NewServer()
	defer srv.Stop()
	if err := (&GRPCPlugin{}).GRPCServer(nil, srv); err == nil {
		t.Error("GRPCServer without Impl: got nil; want an error")
	}
	if err := (&GRPCPlugin{Impl: UnimplementedPluginServer{}}).GRPCServer(nil, srv); err != nil {
		t.Errorf("GRPCServer with Impl: %v", err)
	}
	if _, ok := srv.GetServiceInfo()[Plugin_ServiceDesc.ServiceName]; !ok {
		t.Errorf("GRPCServer with Impl registered no %s", Plugin_ServiceDesc.ServiceName)
	}
}
