package route

import (
	"slices"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr/callexprtest"
)

var when = callexprtest.Parse

func callCtx(typ string) *hcl.EvalContext {
	return &hcl.EvalContext{Variables: map[string]cty.Value{
		"call": cty.ObjectVal(map[string]cty.Value{
			"type":  cty.StringVal(typ),
			"extra": cty.MapValEmpty(cty.String),
		}),
	}}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name   string
		routes func(t *testing.T) []*Route
		typ    string
		want   []string
		errs   []string
	}{
		{"no routes", func(*testing.T) []*Route { return nil }, "A", nil, nil},
		{"absent when always matches", func(*testing.T) []*Route { return []*Route{{Name: "all"}, {Name: "next"}} }, "A", []string{"all"}, nil},
		{"first true wins", func(t *testing.T) []*Route {
			return []*Route{{Name: "v", When: when(t, `call.type == "V"`)}, {Name: "a", When: when(t, `call.type == "A"`)}, {Name: "all"}}
		}, "A", []string{"a"}, nil},
		{"continue goes on", func(t *testing.T) []*Route {
			return []*Route{{Name: "a", When: when(t, `call.type == "A"`), Continue: true}, {Name: "v", When: when(t, `call.type == "V"`)}, {Name: "all", Continue: true}, {Name: "last"}}
		}, "A", []string{"a", "all", "last"}, nil},
		{"a failing when is no match and reported", func(t *testing.T) []*Route {
			return []*Route{{Name: "bad", When: when(t, `call.extra["x"] == "y"`)}, {Name: "null", When: when(t, `null`)}, {Name: "all"}}
		}, "A", []string{"all"}, []string{"bad", "null"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := New(tc.routes(t), nil)
			got, errs := tab.Match(callback.KindNotify, callCtx(tc.typ))
			var names []string
			for _, r := range got {
				names = append(names, r.Name)
			}
			if len(names) != len(tc.want) {
				t.Fatalf("got %v; want %v", names, tc.want)
			}
			for i := range names {
				if names[i] != tc.want[i] {
					t.Fatalf("got %v; want %v", names, tc.want)
				}
			}
			if len(errs) != len(tc.errs) {
				t.Fatalf("errors: got %v; want routes %v", errs, tc.errs)
			}
			for i, e := range errs {
				if e.Route != tc.errs[i] {
					t.Errorf("error %d: got %s; want %s", i, e.Route, tc.errs[i])
				}
			}
		})
	}
}

func TestNewDropsDisabledNotifiers(t *testing.T) {
	tab := New([]*Route{
		{Name: "r", Notify: []string{"ios", "off"}, Fallback: []string{"off2", "sms"}},
		{Name: "on", Notify: []string{"ios"}},
	}, func(n string) bool { return n != "off" && n != "off2" })
	r := tab.Routes()[0]
	if len(r.Notify) != 1 || r.Notify[0] != "ios" || len(r.Fallback) != 1 || r.Fallback[0] != "sms" {
		t.Errorf("got notify %v fallback %v", r.Notify, r.Fallback)
	}
	want := []Ref{{Name: "off"}, {Name: "off2", Fallback: true}}
	if !slices.Equal(r.Disabled, want) {
		t.Errorf("got disabled %v; want %v", r.Disabled, want)
	}
	if d := tab.Routes()[1].Disabled; d != nil {
		t.Errorf("a route naming only enabled notifiers: got disabled %v; want nil", d)
	}
}

func TestNeedsCall(t *testing.T) {
	if New([]*Route{{Name: "all"}}, nil).NeedsCall(callback.KindNotify) {
		t.Error("a table without when needs the call")
	}
	if !New([]*Route{{Name: "all"}, {Name: "v", When: when(t, `call.type == "V"`)}}, nil).NeedsCall(callback.KindNotify) {
		t.Error("a table with a when does not need the call")
	}
	// Without when, Match takes a nil context.
	if got, _ := New([]*Route{{Name: "all"}}, nil).Match(callback.KindNotify, nil); len(got) != 1 {
		t.Errorf("got %v", got)
	}
}

func TestMatchOnlyRoutesOfTheKind(t *testing.T) {
	tab := New([]*Route{
		{Name: "notify"},
		{Name: "ended", On: callback.KindCallEvent},
		{Name: "group", On: callback.KindGroupCallEvent, When: when(t, `call.type == "V"`)},
	}, nil)
	for kind, want := range map[callback.Kind]string{
		callback.KindNotify:    "notify",
		callback.KindCallEvent: "ended",
	} {
		got, _ := tab.Match(kind, nil)
		if len(got) != 1 || got[0].Name != want {
			t.Errorf("Match(%s) = %v, want only %s", kind, got, want)
		}
	}
	if tab.NeedsCall(callback.KindNotify) || tab.NeedsCall(callback.KindCallEvent) || !tab.NeedsCall(callback.KindGroupCallEvent) {
		t.Error("NeedsCall: only the group_call_event routes have a when")
	}
}
