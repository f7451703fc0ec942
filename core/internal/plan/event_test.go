package plan

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/route"
)

func groupEvent(extra map[string]string) *callback.Call {
	return &callback.Call{
		Kind: callback.KindGroupCallEvent, SID: "0123456789abcdef0123456789abcdef", Received: t0, Extra: extra,
		Group: &callback.GroupEvent{SvcID: "planetkit", ID: "room1", UserSvcID: "planetkit", UserID: "alice", HostSvcID: "planetkit", HostID: "alice", SC: "S"},
	}
}

// A group route looks up the users its users expression names, each
// device with its owner; a failing users is the route not matching.
func TestPlanGroupUsers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for user, tok := range map[string]string{"bob": "b1", "carol": "c1", "dave": "d1"} {
		if err := f.store.Put(ctx, "planetkit", user, "apns", tok, t0); err != nil {
			t.Fatal(err)
		}
	}
	p := f.planner(
		&route.Route{Name: "notify", Notify: []string{"ios2"}},
		&route.Route{Name: "started", On: callback.KindGroupCallEvent, When: expr(t, `call.sc == "S"`),
			Users:  expr(t, `[for u in split(",", call.extra.invitees) : { service_id = call.svc_id, user_id = u }]`),
			Notify: []string{"ios"}},
	)
	pl, err := p.Plan(ctx, groupEvent(map[string]string{"invitees": "bob,carol,erin"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Status != callback.StatusAccepted || !reflect.DeepEqual(pl.Routes, []string{"started"}) {
		t.Fatalf("got %s %v; want accepted by started only", pl.Status, pl.Routes)
	}
	got := summarize(pl)
	if want := []planned{{"ios", RoleNotify, true, []string{"b1", "c1"}}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("planned %+v; want %+v", got, want)
	}
	if s, u := pl.Owner(directory.Device{Kind: "apns", Token: "c1"}); s != "planetkit" || u != "carol" {
		t.Errorf("owner of c1: %s/%s; want planetkit/carol", s, u)
	}
	var payload map[string]any
	if err := json.Unmarshal(pl.Deliveries[0].Payload, &payload); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"sid": "0123456789abcdef0123456789abcdef", "event": "group_call", "room_id": "room1", "app_user_uid": "alice", "sc": "S"} {
		if payload[k] != v {
			t.Errorf("payload[%s] = %v; want %v (%s)", k, payload[k], v, pl.Deliveries[0].Payload)
		}
	}
	if _, ok := payload["cc_param"]; ok {
		t.Errorf("an event payload has cc_param: %s", pl.Deliveries[0].Payload)
	}

	// No invitees key: users fails, the route does not match.
	pl, err = p.Plan(ctx, groupEvent(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pl.Status != callback.StatusUnrouted || len(pl.WhenErrors) != 1 || !strings.Contains(pl.WhenErrors[0].Error(), "users") {
		t.Errorf("got %s, when errors %v; want unrouted with a users error", pl.Status, pl.WhenErrors)
	}
}

func TestEvalUsersShapes(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want string // "" ok, else in the error
	}{
		{`{ service_id = "s", user_id = "u" }`, ""},
		{`[{ service_id = "s", user_id = "u" }, { service_id = "s", user_id = "v" }]`, ""},
		{`"u"`, "not an object"},
		{`{ service_id = "s" }`, "has no user_id"},
		{`{ service_id = "s", user_id = "" }`, "user_id is not a non-empty string"},
		{"[" + strings.Repeat(`{ service_id = "s", user_id = "u" },`, 101) + "]", "more than 100"},
	} {
		r := &route.Route{Name: "r", On: callback.KindGroupCallEvent, Users: expr(t, tc.src)}
		c := groupEvent(nil)
		_, err := evalUsers(r, func() *hcl.EvalContext { return callexpr.Context(c) })
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v; want %q", tc.src, err, tc.want)
		}
	}
}
