package pluginhost

import (
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// BenchmarkDeliverRealistic is one Deliver RPC across the plugin boundary
// (go-plugin gRPC over AutoMTLS to a real plugin process) carrying what a
// callback carries: the whole call with LINE's example param, a rendered
// payload of ~480 bytes and one device, serially ("serial") and from
// GOMAXPROCS·4 goroutines at once ("parallel", ns/op is then per RPC of
// the aggregate throughput), on DeliverStream ("stream") and as unary
// calls ("unary", what plugins built before DeliverStream get).
func BenchmarkDeliverRealistic(b *testing.B) {
	c := startTestPlugin(b)
	unary := *c
	unary.stream = nil
	for _, m := range []struct {
		name string
		c    *Client
	}{{"stream", c}, {"unary", &unary}} {
		b.Run(m.name, func(b *testing.B) { benchDeliver(b, m.c) })
	}
}

func benchDeliver(b *testing.B, c *Client) {
	const param = "eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ=="
	req := &pluginpb.DeliverRequest{
		DeliveryId: "msg_0123456789abcdef0123456789abcdef", Route: "all", Attempt: 1,
		Call: &pluginpb.Call{Sid: "151ad995-749c-4a28-893f-636700469db1", FromServiceId: "linecorp.com", FromUserId: "9286",
			ToServiceId: "planetkit", ToUserId: "2809", Type: "A", Param: param, AppSvrData: "stid"},
		PayloadJson:      []byte(`{"cc_param":"` + param + `","sid":"151ad995-749c-4a28-893f-636700469db1","app_caller_sid":"linecorp.com","app_caller_uid":"9286","app_callee_sid":"planetkit","app_callee_uid":"2809","app_call_type":"A","app_svr_data":"stid"}`),
		Devices:          []*pluginpb.Device{{Kind: "testdev", Token: "ok", UpdatedAtUnixNano: 1}},
		DeadlineUnixNano: time.Now().Add(time.Hour).UnixNano(),
	}
	b.Run("serial", func(b *testing.B) {
		ctx := b.Context()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := deliverWire(ctx, c, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		ctx := b.Context()
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := deliverWire(ctx, c, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
