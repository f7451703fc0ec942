package dispatch

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/route"
	"github.com/ringside/ringside/core/internal/telemetry"
)

// A payload or template that fails at run time (an absent call.extra key, a
// function refusing the call's value) costs only its own notifier: the
// call is still accepted, every other notifier rings, the route falls back
// when that notifier was its only way to the callee, and the failure is
// logged (at its FILE:LINE:COL, without the call's values) and counted.
func TestRenderFailureSkipsOnlyThatNotifier(t *testing.T) {
	missing := `{ caller = call.extra["missing"] }`
	tonumber := `{ n = tonumber(call.param) }`
	tests := []struct {
		name     string
		setup    func(t *testing.T, f *fixture)
		route    *route.Route
		status   string
		rung     map[string]int // notifier → deliveries
		failed   []string
		fallback string // the route's fallback reason counted, if any
	}{
		{
			name:   "payload fails: the other notifiers ring",
			setup:  func(t *testing.T, f *fixture) { f.notifiers["hook"].Payload = expr(t, missing) },
			route:  &route.Route{Name: "r", Notify: []string{"hook", "ios", "sms"}},
			status: callback.StatusAccepted,
			rung:   map[string]int{"hook": 0, "ios": 1, "sms": 1},
			failed: []string{"hook"},
		},
		{
			name:     "the only notify notifier fails: fallback",
			setup:    func(t *testing.T, f *fixture) { f.notifiers["ios"].Payload = expr(t, tonumber) },
			route:    &route.Route{Name: "r", Notify: []string{"ios"}, Fallback: []string{"sms", "hook"}},
			status:   callback.StatusAccepted,
			rung:     map[string]int{"ios": 0, "sms": 1, "hook": 1},
			failed:   []string{"ios"},
			fallback: "lookup",
		},
		{
			name: "a template fails: the next notifier of the same kind gets the device",
			setup: func(t *testing.T, f *fixture) {
				f.notifiers["ios"].Templates = map[string]hcl.Expression{"body": expr(t, `call.extra["nope"]`)}
			},
			route:  &route.Route{Name: "r", Notify: []string{"ios", "ios2"}},
			status: callback.StatusAccepted,
			rung:   map[string]int{"ios": 0, "ios2": 1},
			failed: []string{"ios"},
		},
		{
			name: "a fallback fails: the other fallback rings",
			setup: func(t *testing.T, f *fixture) {
				f.notifiers["sms"].Payload = expr(t, missing)
			},
			route:    &route.Route{Name: "r", Notify: []string{"android"}, Fallback: []string{"sms", "hook"}},
			status:   callback.StatusAccepted,
			rung:     map[string]int{"android": 0, "sms": 0, "hook": 1},
			failed:   []string{"sms"},
			fallback: "lookup",
		},
		{
			name: "every notifier fails: no one to ring, still a 200",
			setup: func(t *testing.T, f *fixture) {
				f.notifiers["ios"].Payload = expr(t, missing)
				f.notifiers["hook"].Payload = expr(t, tonumber)
			},
			route:  &route.Route{Name: "r", Notify: []string{"ios", "hook"}},
			status: callback.StatusNoDevices,
			rung:   map[string]int{"ios": 0, "hook": 0},
			failed: []string{"ios", "hook"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.put(t, "apns", t0, "a1")
			f.put(t, "phone", t0, "+819012345678")
			tc.setup(t, f)
			m := telemetry.NewMetrics()
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			d := New(Options{Planner: f.planner(tc.route), Metrics: m, Logger: log})
			c := testCall()
			ans, err := d.Accept(context.Background(), c, true)
			if err != nil {
				t.Fatalf("Accept: %v; want an answer", err)
			}
			if ans.Status != tc.status {
				t.Errorf("status: got %q; want %q", ans.Status, tc.status)
			}
			_ = d.Wait(context.Background())
			for name, want := range tc.rung {
				if got := f.plugins[name].calls; got != want {
					t.Errorf("%s deliveries: got %d; want %d", name, got, want)
				}
			}
			for _, name := range tc.failed {
				if got := testutil.ToFloat64(m.RenderErrors.WithLabelValues(name)); got != 1 {
					t.Errorf("render errors{notifier=%s}: got %v; want 1", name, got)
				}
			}
			if tc.fallback != "" {
				if got := testutil.ToFloat64(m.Fallbacks.WithLabelValues("r", tc.fallback)); got != 1 {
					t.Errorf("fallbacks{reason=%s}: got %v; want 1", tc.fallback, got)
				}
			}
			out := logs.String()
			if n := strings.Count(out, "payload did not render"); n != len(tc.failed) {
				t.Errorf("render failures logged %d times; want %d:\n%s", n, len(tc.failed), out)
			}
			if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "test.hcl:1:") {
				t.Errorf("want a WARN naming the expression's file and line:\n%s", out)
			}
			if strings.Contains(out, c.Param) {
				t.Errorf("the log quotes cc_param:\n%s", out)
			}
		})
	}
}
