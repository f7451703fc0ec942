package route_test

import (
	"fmt"
	"testing"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/callexpr/callexprtest"
	"github.com/ringside/ringside/core/internal/route"
)

// BenchmarkMatchRoutes is routing as the table grows: n notify routes,
// each with a `when` on the callee, of which only the last holds, so every
// op tries all n. Each op includes callexpr.Context, as the hot path does;
// ns/route is the cost of one more route tried.
func BenchmarkMatchRoutes(b *testing.B) {
	c := benchCall()
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			t := route.New(curveRoutes(b, n), nil)
			b.ReportAllocs()
			for b.Loop() {
				m, errs := t.Match(callback.KindNotify, callexpr.Context(c))
				if len(m) != 1 || m[0].Name != "last" || len(errs) != 0 {
					b.Fatal(m, errs)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/route")
		})
	}
}

// curveRoutes returns n routes whose whens compare the callee, only the
// last (named "last") matching the callee 2809.
func curveRoutes(tb testing.TB, n int) []*route.Route {
	routes := make([]*route.Route, n)
	for i := range n - 1 {
		routes[i] = &route.Route{
			Name:   fmt.Sprint("r", i),
			When:   callexprtest.Parse(tb, fmt.Sprintf(`call.to_service_id == "planetkit" && call.to_user_id == "u%d"`, i)),
			Notify: []string{"ios"},
		}
	}
	routes[n-1] = &route.Route{
		Name:   "last",
		When:   callexprtest.Parse(tb, `call.to_service_id == "planetkit" && call.to_user_id == "2809"`),
		Notify: []string{"ios"},
	}
	return routes
}
