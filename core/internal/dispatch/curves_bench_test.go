package dispatch

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/cluster"
	"github.com/ringside/ringside/core/internal/cluster/redistest"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/plan"
	"github.com/ringside/ringside/core/internal/route"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// curveKinds are the device kinds of the curves' notifiers, one notifier
// each, named after the kind.
var curveKinds = []string{"apns", "fcm", "hms"}

// curvePlanner plans for the callee svc/user, who has devices devices
// spread in turn over the kinds of the first notifiers notifiers. routes
// nil is one route, always true, naming every notifier.
func curvePlanner(tb testing.TB, routes []*route.Route, notifiers, devices int, svc, user string) plan.Planner {
	store := directory.NewMemory()
	for i := range devices {
		kind := curveKinds[i%notifiers]
		if err := store.Put(context.Background(), svc, user, kind, fmt.Sprintf("%064x", i), time.Now()); err != nil {
			tb.Fatal(err)
		}
	}
	ns := map[string]*plan.Notifier{}
	var names []string
	for _, kind := range curveKinds[:notifiers] {
		ns[kind] = &plan.Notifier{Name: kind, Plugin: kind, Kind: kind, TTL: 60 * time.Second, Deliverer: instant{}}
		names = append(names, kind)
	}
	if routes == nil {
		routes = []*route.Route{{Name: "all", Notify: names}}
	}
	return plan.Planner{Routes: route.New(routes, nil), Notifiers: ns, Store: store}
}

// planAndRecord is the accept path's synchronous work on a parsed call:
// its plan (the dispatcher's, without a prepared HCL context) and its
// journal record; it returns the record's size.
func planAndRecord(b *testing.B, p *plan.Planner, c *callback.Call) int {
	pl, err := p.Plan(context.Background(), c, nil)
	if err != nil || pl.Status != callback.StatusAccepted {
		b.Fatal(pl, err)
	}
	rec, err := encodeRecord(pl)
	if err != nil {
		b.Fatal(err)
	}
	return len(rec)
}

// perUnit reports the op's time divided by n under unit.
func perUnit(b *testing.B, n int, unit string) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), unit)
}

// BenchmarkPlanRoutes is Plan as the route table grows: n notify routes
// with a `when` on the callee, only the last matching, so every callback
// tries all n; the callee has one apns device.
func BenchmarkPlanRoutes(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			routes := make([]*route.Route, n)
			for i := range n {
				user := fmt.Sprint("u", i)
				if i == n-1 {
					user = "2809"
				}
				routes[i] = &route.Route{
					Name:   fmt.Sprint("r", i),
					When:   benchExpr(b, fmt.Sprintf(`call.to_service_id == "planetkit" && call.to_user_id == %q`, user)),
					Notify: []string{"apns"},
				}
			}
			p := curvePlanner(b, routes, 1, 1, "planetkit", "2809")
			c := benchCall()
			b.ReportAllocs()
			for b.Loop() {
				planAndRecord(b, &p, c)
			}
			perUnit(b, n, "ns/route")
		})
	}
}

// BenchmarkFanOut is a callee with more devices: all on one notifier, or
// spread in turn over three (apns, fcm, hms). "plan+record" is Plan and
// the journal record; "in-process" the whole in-process path with the
// call log (as serve has it), no journal, each device answered delivered
// at once.
func BenchmarkFanOut(b *testing.B) {
	for _, notifiers := range []int{1, 3} {
		for _, devices := range []int{1, 10, 100} {
			name := fmt.Sprintf("notifiers=%d/devices=%d", notifiers, devices)
			b.Run(name+"/plan+record", func(b *testing.B) {
				p := curvePlanner(b, nil, notifiers, devices, "planetkit", "2809")
				c := benchCall()
				size := 0
				b.ReportAllocs()
				for b.Loop() {
					size = planAndRecord(b, &p, c)
				}
				perUnit(b, devices, "ns/device")
				b.ReportMetric(float64(size), "record-B")
			})
			b.Run(name+"/in-process", func(b *testing.B) {
				opt := Options{
					Planner: curvePlanner(b, nil, notifiers, devices, "planetkit", "2809"),
					Metrics: telemetry.NewMetrics(),
					CallLog: calllog.New(calllog.Options{}),
				}
				inProcess(b, opt)
				perUnit(b, devices, "ns/device")
			})
		}
	}
}

// inProcess runs the in-process path (handler, plan, dedup, delivery,
// job end; one callback at a time) on a dispatcher made with opt, for the
// callee planetkit/2809.
func inProcess(b *testing.B, opt Options) {
	d := New(opt)
	h := &callback.Handler{Acceptor: d, Metrics: opt.Metrics}
	r := httptest.NewRequest(http.MethodGet, "/notify_cb", nil)
	w := &nopWriter{h: http.Header{}}
	base := "&from_service_id=linecorp.com&from_user_id=9286&to_service_id=planetkit&to_user_id=2809&type=A&stid=stid&param=" + url.QueryEscape(benchParam)
	ctx := context.Background()
	var seq uint64
	b.ReportAllocs()
	for b.Loop() {
		seq++
		r.URL.RawQuery = fmt.Sprintf("sid=151ad995-749c-4a28-893f-%012x", seq) + base
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
		if err := d.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPayloadSize is one callback's parse, plan and journal record
// as its query grows, from the fewest bytes the contract allows to every
// field at its limit: "minimal" (one-byte ids but the callee's, a
// 4-byte param, no stid), "line-example" (LINE Planet's documented
// example), "param-max" (the example with a 4,096-byte param) and
// "all-max" (256-byte ids, a 4,096-byte param, stid and app_svr_data of
// 4,096 bytes each). query-B is the raw query's size, record-B the
// journal record's.
func BenchmarkPayloadSize(b *testing.B) {
	maxParam := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("p", callback.MaxParamBytes/4*3)))
	id := func(c byte) string { return strings.Repeat(string(c), callback.DefaultMaxIDBytes) }
	data := strings.Repeat("d", callback.MaxAppDataBytes)
	for _, tc := range []struct {
		name                 string
		fromSvc, fromUser    string
		svc, user            string
		param, stid, appData string
	}{
		{"minimal", "l", "1", "planetkit", "2809", "eA==", "", ""},
		{"line-example", "linecorp.com", "9286", "planetkit", "2809", benchParam, "stid", ""},
		{"param-max", "linecorp.com", "9286", "planetkit", "2809", maxParam, "stid", ""},
		{"all-max", id('f'), id('g'), id('s'), id('u'), maxParam, data, data},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := url.Values{
				"from_service_id": {tc.fromSvc}, "from_user_id": {tc.fromUser},
				"to_service_id": {tc.svc}, "to_user_id": {tc.user}, "type": {"A"}, "param": {tc.param},
			}
			if tc.stid != "" {
				q.Set("stid", tc.stid)
			}
			if tc.appData != "" {
				q.Set("app_svr_data", tc.appData)
			}
			raw := "sid=151ad995-749c-4a28-893f-636700469db1&" + q.Encode()
			p := curvePlanner(b, nil, 1, 1, tc.svc, tc.user)
			size := 0
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				c, _, err := callback.Parse(raw, 0, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				size = planAndRecord(b, &p, c)
			}
			b.ReportMetric(float64(len(raw)), "query-B")
			b.ReportMetric(float64(size), "record-B")
		})
	}
}

// BenchmarkCallLogCost is the in-process path (one apns device, no
// journal) without a call log, with serve's (10,000 records kept), and
// with one of 100 records, so that nearly every callback evicts one.
func BenchmarkCallLogCost(b *testing.B) {
	for _, v := range []struct {
		name string
		log  *calllog.Options
	}{
		{"off", nil},
		{"on", &calllog.Options{}},
		{"on-evicting", &calllog.Options{MaxCalls: 100}},
	} {
		b.Run(v.name, func(b *testing.B) {
			opt := Options{Planner: curvePlanner(b, nil, 1, 1, "planetkit", "2809"), Metrics: telemetry.NewMetrics()}
			if v.log != nil {
				opt.CallLog = calllog.New(*v.log)
			}
			inProcess(b, opt)
		})
	}
}

// BenchmarkClusterCost sets cluster mode's steps on the callback's way
// against the embedded mode's: the callee's lookup (two devices) in the
// embedded directory cache and in cluster mode's client-side cache (both
// hits), and the claim: the local dedup claim, the local claim and the
// journal append waited for (embedded mode's record), and cluster mode's
// claim carrying the record to Redis in one round trip. Each claim is of
// a new call, 2,000 a second of the clock the dedup sees. The cluster
// cases start a redis-server and are skipped without one.
func BenchmarkClusterCost(b *testing.B) {
	ctx := context.Background()
	lookup := func(b *testing.B, s directory.Store) {
		for _, kind := range []string{"apns", "fcm"} {
			if err := s.Put(ctx, "planetkit", "500", kind, fmt.Sprintf("%064x", 500), time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.Lookup(ctx, "planetkit", "500"); err != nil { // a write dropped the user: cache it again
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			devs, err := s.Lookup(ctx, "planetkit", "500")
			if err != nil || len(devs) != 2 {
				b.Fatalf("got %d devices, %v; want 2, nil", len(devs), err)
			}
		}
	}
	b.Run("lookup/embedded-cache", func(b *testing.B) {
		lookup(b, directory.NewCache(directory.NewMemory(), 0))
	})
	b.Run("lookup/cluster-cache", func(b *testing.B) {
		lookup(b, curveCluster(b).Directory())
	})

	p := curvePlanner(b, nil, 1, 1, "planetkit", "2809")
	pl, err := p.Plan(ctx, benchCall(), nil)
	if err != nil {
		b.Fatal(err)
	}
	rec, err := encodeRecord(pl)
	if err != nil {
		b.Fatal(err)
	}
	window := callback.DefaultDedupWindow
	claim := func(b *testing.B, after func(sid string, k dedupKey, deadline time.Time)) {
		d := NewDedup(window)
		now := time.Now()
		n := 0
		b.ReportAllocs()
		for b.Loop() {
			n++
			now = now.Add(500 * time.Microsecond)
			sid := sidN(n)
			if !d.Claim(sid, "planetkit", "2809", now) {
				b.Fatal("a new call claimed already")
			}
			if after != nil {
				after(sid, keyOf(sid, "planetkit", "2809"), now.Add(time.Minute))
			}
		}
		b.ReportMetric(float64(len(rec)), "record-B")
	}
	b.Run("claim/local-dedup", func(b *testing.B) { claim(b, nil) })
	b.Run("claim/local-dedup+journal", func(b *testing.B) {
		j, err := journal.Open(filepath.Join(b.TempDir(), "j.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { j.Close() })
		claim(b, func(sid string, _ dedupKey, deadline time.Time) {
			if err := j.Append(sid, deadline, rec).Wait(ctx); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("claim/cluster-record", func(b *testing.B) {
		w := curveCluster(b).Work(cluster.WorkOptions{})
		b.Cleanup(func() { w.Close(ctx) })
		var e journal.Entry
		claim(b, func(sid string, k dedupKey, deadline time.Time) {
			e = journal.Entry{Key: sid, Deadline: deadline, Data: rec}
			if ok, err := w.Claim(ctx, k, window, &e); !ok || err != nil {
				b.Fatal(ok, err)
			}
		})
	})
}

// curveCluster connects to a redis-server of its own (the benchmark is
// skipped without one) with a client-side cache of an hour.
func curveCluster(b *testing.B) *cluster.Client {
	srv := redistest.Start(b)
	c, err := cluster.Connect(context.Background(), cluster.Settings{Addresses: []string{srv.Addr()}, KeyPrefix: "b:", CacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
