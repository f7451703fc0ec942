package route_test

import (
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/callexpr/callexprtest"
	"github.com/ringside/ringside/core/internal/route"
)

// BenchmarkMatch is the routing stage for one call: "always" is a single
// route without when (the load test's config); "typical" three routes
// whose whens are tried in order, the third matching; each op includes
// callexpr.Context (the call as an HCL value), as the hot path does.
func BenchmarkMatch(b *testing.B) {
	c := benchCall()
	for _, bc := range []struct {
		name   string
		routes []*route.Route
	}{
		{"always", []*route.Route{{Name: "all", Notify: []string{"ios"}}}},
		{"typical", []*route.Route{
			{Name: "video", When: callexprtest.Parse(b, `call.to_service_id == "planetkit" && call.type == "V"`), Notify: []string{"ios"}},
			{Name: "vip", When: callexprtest.Parse(b, `contains(["1", "2", "3"], call.to_user_id)`), Notify: []string{"ios"}},
			{Name: "audio", When: callexprtest.Parse(b, `call.type == "A" && lookup(call.extra, "region", "") != "cn"`), Notify: []string{"ios"}},
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			t := route.New(bc.routes, nil)
			b.ReportAllocs()
			for b.Loop() {
				m, errs := t.Match(callback.KindNotify, callexpr.Context(c))
				if len(m) != 1 || len(errs) != 0 {
					b.Fatal(m, errs)
				}
			}
		})
	}
}

// benchCall is the call the routing benchmarks route.
func benchCall() *callback.Call {
	return &callback.Call{
		SID: "151ad995-749c-4a28-893f-636700469db1", FromServiceID: "linecorp.com", FromUserID: "9286",
		ToServiceID: "planetkit", ToUserID: "2809", Type: "A", Param: "eyJ9", AppSvrData: "stid",
		Received: time.Now(),
	}
}
