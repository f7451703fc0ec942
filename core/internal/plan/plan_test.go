package plan

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/callexpr/callexprtest"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/route"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func expr(t *testing.T, src string) hcl.Expression { return callexprtest.Parse(t, src) }

// testCall is a video call from 9286 at linecorp.com to 2809 at planetkit.
func testCall() *callback.Call {
	c := callexprtest.Call()
	c.Param, c.AppSvrData, c.Received = "eyJ+/a==", "data", t0
	return c
}

// fixture is a directory and the notifiers plans are made for: ios and
// ios2 (apns devices), android (fcm), sms (phone), and hook (no device);
// disabled, ios_off (apns), sms_off (phone) and hook_off (no device).
type fixture struct {
	store     *directory.Memory
	notifiers map[string]*Notifier
	disabled  map[string]Disabled
}

func newFixture(*testing.T) *fixture {
	f := &fixture{store: directory.NewMemory(), notifiers: map[string]*Notifier{}, disabled: map[string]Disabled{}}
	for _, n := range []struct{ name, kind string }{{"ios", "apns"}, {"android", "fcm"}, {"hook", ""}, {"sms", "phone"}, {"ios2", "apns"}} {
		f.notifiers[n.name] = &Notifier{Name: n.name, Plugin: n.name, Kind: n.kind, TTL: 60 * time.Second}
	}
	for _, n := range []struct{ name, kind string }{{"ios_off", "apns"}, {"sms_off", "phone"}, {"hook_off", ""}} {
		f.disabled[n.name] = Disabled{Name: n.name, Plugin: n.name, Kind: n.kind, Reason: n.name + " is off"}
	}
	return f
}

func (f *fixture) put(t *testing.T, kind, token string, at time.Time) {
	t.Helper()
	if err := f.store.Put(context.Background(), "planetkit", "2809", kind, token, at); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) planner(routes ...*route.Route) Planner {
	return Planner{
		Routes:    route.New(routes, func(n string) bool { return f.notifiers[n] != nil }),
		Notifiers: f.notifiers,
		Disabled:  f.disabled,
		Store:     f.store,
	}
}

type planned struct {
	name, role string
	active     bool
	devices    []string
}

func summarize(p *Plan) []planned {
	var out []planned
	for _, d := range p.Deliveries {
		var toks []string
		for _, dev := range d.Devices {
			toks = append(toks, dev.Token)
		}
		out = append(out, planned{d.Notifier.Name, d.Role, d.Active, toks})
	}
	return out
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name       string
		routes     func(t *testing.T) []*route.Route
		devices    [][2]string
		status     string
		routeNames []string
		want       []planned
		// disabled are the plan's disabled notifiers as NAME/ROLE/ROUTE;
		// unserved its unserved devices' tokens.
		disabled []string
		unserved []string
	}{
		{
			name: "unrouted",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{{Name: "x", When: expr(t, `call.type == "A"`), Notify: []string{"ios"}}}
			},
			status: callback.StatusUnrouted,
		},
		{
			name: "first match wins",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{
					{Name: "video", When: expr(t, `call.type == "V"`), Notify: []string{"ios"}},
					{Name: "all", Notify: []string{"hook"}},
				}
			},
			devices:    [][2]string{{"apns", "a1"}},
			status:     callback.StatusAccepted,
			routeNames: []string{"video"},
			want:       []planned{{"ios", "notify", true, []string{"a1"}}},
		},
		{
			name: "continue evaluates the routes below",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{
					{Name: "video", When: expr(t, `call.type == "V"`), Notify: []string{"ios"}, Continue: true},
					{Name: "never", When: expr(t, `call.type == "A"`), Notify: []string{"android"}},
					{Name: "all", Notify: []string{"hook"}},
					{Name: "after", Notify: []string{"sms"}},
				}
			},
			devices:    [][2]string{{"apns", "a1"}},
			status:     callback.StatusAccepted,
			routeNames: []string{"video", "all"},
			want:       []planned{{"ios", "notify", true, []string{"a1"}}, {"hook", "notify", true, nil}},
		},
		{
			name: "no device of any kind",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{{Name: "r", Notify: []string{"ios", "android"}}}
			},
			devices:    [][2]string{{"phone", "+8190"}},
			status:     callback.StatusNoDevices,
			routeNames: []string{"r"},
			want:       []planned{{"ios", "notify", false, nil}, {"android", "notify", false, nil}},
			unserved:   []string{"+8190"},
		},
		{
			name: "fallback at lookup when notify reaches no one",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{{Name: "r", Notify: []string{"ios"}, Fallback: []string{"sms"}}}
			},
			devices:    [][2]string{{"phone", "+8190"}},
			status:     callback.StatusAccepted,
			routeNames: []string{"r"},
			want:       []planned{{"ios", "notify", false, nil}, {"sms", "fallback", true, []string{"+8190"}}},
		},
		{
			name: "fallback unused when notify reaches a device",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{{Name: "r", Notify: []string{"ios"}, Fallback: []string{"sms"}}}
			},
			devices:    [][2]string{{"apns", "a1"}, {"phone", "+8190"}},
			status:     callback.StatusAccepted,
			routeNames: []string{"r"},
			want:       []planned{{"ios", "notify", true, []string{"a1"}}, {"sms", "fallback", false, []string{"+8190"}}},
		},
		{
			name: "a webhook always reaches",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{{Name: "r", Notify: []string{"hook"}, Fallback: []string{"sms"}}}
			},
			devices:    [][2]string{{"phone", "+8190"}},
			status:     callback.StatusAccepted,
			routeNames: []string{"r"},
			want:       []planned{{"hook", "notify", true, nil}, {"sms", "fallback", false, []string{"+8190"}}},
		},
		{
			name: "a fallback not needed still serves a later route",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{
					{Name: "r", Notify: []string{"ios"}, Fallback: []string{"hook"}, Continue: true},
					{Name: "all", Notify: []string{"hook", "ios"}},
				}
			},
			devices:    [][2]string{{"apns", "a1"}},
			status:     callback.StatusAccepted,
			routeNames: []string{"r", "all"},
			want:       []planned{{"ios", "notify", true, []string{"a1"}}, {"hook", "fallback", false, nil}, {"hook", "notify", true, nil}},
		},
		{
			name:       "a device rings once across notifiers of its kind",
			routes:     func(t *testing.T) []*route.Route { return []*route.Route{{Name: "r", Notify: []string{"ios", "ios2"}}} },
			devices:    [][2]string{{"apns", "a1"}, {"apns", "a2"}},
			status:     callback.StatusAccepted,
			routeNames: []string{"r"},
			want:       []planned{{"ios", "notify", true, []string{"a1", "a2"}}, {"ios2", "notify", false, nil}},
		},
		{
			name:       "a disabled notifier is skipped",
			routes:     func(t *testing.T) []*route.Route { return []*route.Route{{Name: "r", Notify: []string{"gone", "ios"}}} },
			devices:    [][2]string{{"apns", "a1"}},
			status:     callback.StatusAccepted,
			routeNames: []string{"r"},
			want:       []planned{{"ios", "notify", true, []string{"a1"}}},
			disabled:   []string{"gone/notify/r"},
		},
		{
			name: "disabled notifiers are listed per route with their role, their devices unserved",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{
					{Name: "r", Notify: []string{"ios_off", "hook"}, Fallback: []string{"sms_off"}, Continue: true},
					{Name: "all", Notify: []string{"hook_off", "ios_off"}},
				}
			},
			devices:    [][2]string{{"apns", "a1"}, {"fcm", "f1"}, {"phone", "+8190"}},
			status:     callback.StatusAccepted,
			routeNames: []string{"r", "all"},
			want:       []planned{{"hook", "notify", true, nil}},
			disabled:   []string{"ios_off/notify/r", "sms_off/fallback/r", "hook_off/notify/all", "ios_off/notify/all"},
			unserved:   []string{"a1", "f1", "+8190"},
		},
		{
			name: "a device no notifier names is unserved",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{{Name: "r", Notify: []string{"ios"}, Fallback: []string{"sms_off"}}}
			},
			devices:    [][2]string{{"apns", "a1"}, {"fcm", "f1"}, {"phone", "+8190"}},
			status:     callback.StatusAccepted,
			routeNames: []string{"r"},
			want:       []planned{{"ios", "notify", true, []string{"a1"}}},
			disabled:   []string{"sms_off/fallback/r"},
			unserved:   []string{"f1", "+8190"},
		},
		{
			name: "only disabled notifiers with devices: looked up, all unserved",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{{Name: "r", Notify: []string{"ios_off"}}}
			},
			devices:    [][2]string{{"apns", "a1"}},
			status:     callback.StatusNoDevices,
			routeNames: []string{"r"},
			disabled:   []string{"ios_off/notify/r"},
			unserved:   []string{"a1"},
		},
		{
			name: "a when that fails at run time does not match",
			routes: func(t *testing.T) []*route.Route {
				return []*route.Route{
					{Name: "bad", When: expr(t, `call.extra["missing"] == "x"`), Notify: []string{"ios"}},
					{Name: "all", Notify: []string{"hook"}},
				}
			},
			status:     callback.StatusAccepted,
			routeNames: []string{"all"},
			want:       []planned{{"hook", "notify", true, nil}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			for _, d := range tc.devices {
				f.put(t, d[0], d[1], t0)
			}
			p := f.planner(tc.routes(t)...)
			c := testCall()
			pl, err := p.Plan(context.Background(), c, callexpr.Context(c))
			if err != nil {
				t.Fatal(err)
			}
			if pl.Status != tc.status {
				t.Errorf("status: got %s; want %s", pl.Status, tc.status)
			}
			if pl.Reachable != (tc.status == callback.StatusAccepted) {
				t.Errorf("reachable: got %v", pl.Reachable)
			}
			if len(pl.Routes) != len(tc.routeNames) {
				t.Errorf("routes: got %v; want %v", pl.Routes, tc.routeNames)
			}
			for i := range min(len(pl.Routes), len(tc.routeNames)) {
				if pl.Routes[i] != tc.routeNames[i] {
					t.Errorf("routes: got %v; want %v", pl.Routes, tc.routeNames)
				}
			}
			got := summarize(pl)
			if len(got) != len(tc.want) {
				t.Fatalf("deliveries: got %+v; want %+v", got, tc.want)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.name != w.name || g.role != w.role || g.active != w.active || len(g.devices) != len(w.devices) {
					t.Errorf("delivery %d: got %+v; want %+v", i, g, w)
					continue
				}
				for j := range g.devices {
					if g.devices[j] != w.devices[j] {
						t.Errorf("delivery %d: got %+v; want %+v", i, g, w)
					}
				}
			}
			var disabled, unserved []string
			for _, d := range pl.Disabled {
				disabled = append(disabled, d.Name+"/"+d.Role+"/"+d.Route)
				if want := f.disabled[d.Name]; want.Name != "" && (d.Plugin != want.Plugin || d.Kind != want.Kind || d.Reason != want.Reason) {
					t.Errorf("disabled %s: got %+v; want %+v", d.Name, d, want)
				}
			}
			for _, d := range pl.Unserved {
				unserved = append(unserved, d.Token)
			}
			if !slices.Equal(disabled, tc.disabled) {
				t.Errorf("disabled: got %v; want %v", disabled, tc.disabled)
			}
			slices.Sort(unserved)
			slices.Sort(tc.unserved)
			if !slices.Equal(unserved, tc.unserved) {
				t.Errorf("unserved: got %v; want %v", unserved, tc.unserved)
			}
		})
	}
}

func TestPayload(t *testing.T) {
	c := testCall()
	ectx := callexpr.Context(c)
	tests := []struct {
		name  string
		extra string
		want  map[string]any
	}{
		{"defaults", "", map[string]any{
			"cc_param": "eyJ+/a==", "sid": c.SID, "app_caller_sid": "linecorp.com", "app_caller_uid": "9286",
			"app_callee_sid": "planetkit", "app_callee_uid": "2809", "app_call_type": "V", "app_svr_data": "data",
		}},
		{"extra keys keep their JSON types and override app_*", `{ video = call.type == "V", n = 3, caller = upper(call.from_service_id), app_call_type = "video", tags = ["a"] }`, map[string]any{
			"cc_param": "eyJ+/a==", "sid": c.SID, "app_caller_sid": "linecorp.com", "app_caller_uid": "9286",
			"app_callee_sid": "planetkit", "app_callee_uid": "2809", "app_call_type": "video", "app_svr_data": "data",
			"video": true, "n": 3.0, "caller": "LINECORP.COM", "tags": []any{"a"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e hcl.Expression
			if tc.extra != "" {
				e = expr(t, tc.extra)
			}
			b, err := Payload(c, e, ectx)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(tc.want)
			if string(gb) != string(wb) {
				t.Errorf("got %s; want %s", gb, wb)
			}
		})
	}
	t.Run("app_svr_data omitted when absent", func(t *testing.T) {
		c := testCall()
		c.AppSvrData = ""
		b, _ := Payload(c, nil, callexpr.Context(c))
		var got map[string]any
		_ = json.Unmarshal(b, &got)
		if _, ok := got["app_svr_data"]; ok {
			t.Errorf("got %s", b)
		}
	})
}

// The plan keeps a failed notifier's error for explain: its Error names the
// place and the problem but no value; Detail may say more.
func TestRenderErrorInPlan(t *testing.T) {
	f := newFixture(t)
	f.put(t, "apns", "a1", t0)
	f.notifiers["ios"].Payload = expr(t, `{ n = tonumber(call.param) }`)
	p := f.planner(&route.Route{Name: "r", Notify: []string{"ios", "hook"}})
	c := testCall()
	pl, err := p.Plan(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.RenderErrors) != 1 || pl.RenderErrors[0].Notifier.Name != "ios" || pl.RenderErrors[0].Err == nil {
		t.Fatalf("render errors: %+v", pl.RenderErrors)
	}
	if len(pl.Deliveries) != 1 || pl.Deliveries[0].Notifier.Name != "hook" {
		t.Errorf("deliveries: %+v", summarize(pl))
	}
	e := pl.RenderErrors[0].Err
	msg := e.Error()
	if !strings.HasPrefix(msg, `notifier "ios": payload at test.hcl:1:`) || strings.Contains(msg, c.Param) {
		t.Errorf("Error(): %q", msg)
	}
	if len(pl.RenderErrors[0].Devices) != 1 {
		t.Errorf("the failed notifier's devices (for explain): %v", pl.RenderErrors[0].Devices)
	}
	// No other notifier rings the device: it is unserved.
	if len(pl.Unserved) != 1 || pl.Unserved[0].Token != "a1" {
		t.Errorf("unserved: got %v; want a1", pl.Unserved)
	}
}
