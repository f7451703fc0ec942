package dispatch

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/callexpr/callexprtest"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/plan"
	"github.com/ringside/ringside/core/internal/route"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// benchParam is LINE Planet's documented example param.
const benchParam = "eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ=="

func benchExpr(tb testing.TB, src string) hcl.Expression { return callexprtest.Parse(tb, src) }

func benchCall() *callback.Call {
	return &callback.Call{
		SID: "151ad995-749c-4a28-893f-636700469db1", FromServiceID: "linecorp.com", FromUserID: "9286",
		ToServiceID: "planetkit", ToUserID: "2809", Type: "A", Param: benchParam, AppSvrData: "stid",
		Received: time.Now(),
	}
}

// BenchmarkRender is the payload stage: the default keys alone (the
// shipped apns notifier), and with a two-key payload expression.
func BenchmarkRender(b *testing.B) {
	c := benchCall()
	ectx := callexpr.Context(c)
	for _, bc := range []struct {
		name  string
		extra hcl.Expression
	}{
		{"defaults", nil},
		{"payload-expr", benchExpr(b, `{ caller = call.from_user_id, video = call.type == "V" }`)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := plan.Payload(c, bc.extra, ectx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// instant is a Deliverer that answers every device delivered at once.
type instant struct{}

func (instant) Deliver(_ context.Context, a *delivery.Attempt) ([]delivery.Outcome, error) {
	return delivered(a), nil
}

// benchPlanner is the shape of the load test's config: one route, always
// true, to one apns notifier; the callee has one apns device.
func benchPlanner(tb testing.TB, when string) plan.Planner {
	store := directory.NewMemory()
	if err := store.Put(context.Background(), "planetkit", "2809", "apns", fmt.Sprintf("%064x", 7), time.Now()); err != nil {
		tb.Fatal(err)
	}
	n := &plan.Notifier{Name: "ios", Plugin: "apns", Kind: "apns", TTL: 60 * time.Second, Deliverer: instant{}}
	r := &route.Route{Name: "all", Notify: []string{"ios"}}
	if when != "" {
		r.When = benchExpr(tb, when)
	}
	return plan.Planner{
		Routes:    route.New([]*route.Route{r}, nil),
		Notifiers: map[string]*plan.Notifier{"ios": n},
		Store:     store,
	}
}

// BenchmarkPlan is route match, directory lookup (in memory) and payload
// render together, for one callback.
func BenchmarkPlan(b *testing.B) {
	p := benchPlanner(b, `call.to_service_id == "planetkit" && call.type == "A"`)
	c := benchCall()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		pl, err := p.Plan(ctx, c, callexpr.Context(c))
		if err != nil || pl.Status != callback.StatusAccepted {
			b.Fatal(pl, err)
		}
	}
}

// BenchmarkEncodeRecord is the journal record of an accepted plan.
func BenchmarkEncodeRecord(b *testing.B) {
	p := benchPlanner(b, "")
	c := benchCall()
	pl, err := p.Plan(context.Background(), c, callexpr.Context(c))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeRecord(pl); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInProcessPath is the whole callback path inside ringside's
// process, one callback at a time: the notify_cb handler parses and checks
// the query, the dispatcher plans (route, in-memory directory, payload),
// claims dedup, starts the delivery, which a Deliverer answering at once
// completes, and the job ends. Each op waits for its delivery to end, so
// ns/op is the serial cost of one callback (the HTTP server, the plugin
// RPC and the APNs push are not in it). "journal" adds the journal
// (group commit of one, so every op pays a write); "call-log" adds the
// call log (as serve always has it) to "no-journal".
func BenchmarkInProcessPath(b *testing.B) {
	for _, v := range []struct {
		name                 string
		withJournal, withLog bool
	}{{"no-journal", false, false}, {"journal", true, false}, {"call-log", false, true}} {
		withJournal := v.withJournal
		b.Run(v.name, func(b *testing.B) {
			opt := Options{Planner: benchPlanner(b, ""), Metrics: telemetry.NewMetrics()}
			if v.withLog {
				opt.CallLog = calllog.New(calllog.Options{})
			}
			if withJournal {
				j, err := journal.Open(filepath.Join(b.TempDir(), "j.db"))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { j.Close() })
				opt.Journal = j
			}
			inProcess(b, opt)
		})
	}
}

// nopWriter is a ResponseWriter that keeps the status and the header map.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }
