package plan

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"go.opentelemetry.io/otel/attribute"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/route"
)

// needsCallee reports whether a matched route looks up the callee: a
// notify route always does, an event route unless it says users or rung.
func needsCallee(matched []*route.Route) bool {
	for _, r := range matched {
		if !r.Rung && r.Users == nil {
			return true
		}
	}
	return false
}

// others returns the devices an event route delivers to when they are not
// the callee's: those rung for the sid (rung = true), or those of the
// users its users expression names. A users expression that fails is a
// *route.WhenError: the route does not match. Each device's owner is
// recorded in the plan, for pruning.
func (p *Planner) others(ctx context.Context, plan *Plan, callCtx func() *hcl.EvalContext, r *route.Route) ([]directory.Device, error) {
	var owned []Owned
	if r.Rung {
		if p.Rung != nil {
			owned = p.Rung(plan.Call.SID)
		}
	} else {
		users, err := evalUsers(r, callCtx)
		if err != nil {
			return nil, &route.WhenError{Route: r.Name, Err: err}
		}
		tracer := p.tracer()
		for _, u := range users {
			lctx, span := tracer.Start(ctx, "directory.lookup")
			devs, err := p.Store.Lookup(lctx, u[0], u[1])
			span.SetAttributes(attribute.Int("ringside.devices", len(devs)))
			span.End()
			if err != nil {
				return nil, fmt.Errorf("look up devices: %w", err)
			}
			for _, d := range devs {
				owned = append(owned, Owned{Device: d, ServiceID: u[0], UserID: u[1]})
			}
		}
	}
	if plan.Owners == nil {
		plan.Owners = map[[2]string]Owned{}
	}
	out := make([]directory.Device, 0, len(owned))
	for _, o := range owned {
		k := [2]string{o.Kind, o.Token}
		if _, dup := plan.Owners[k]; dup {
			continue
		}
		plan.Owners[k] = o
		out = append(out, o.Device)
	}
	return out, nil
}

// evalUsers evaluates a route's users: one {service_id, user_id} object or
// a list of them, at most MaxUsers, each id non-empty.
func evalUsers(r *route.Route, callCtx func() *hcl.EvalContext) ([][2]string, error) {
	v, diags := r.Users.Value(callCtx())
	if diags.HasErrors() {
		return nil, fmt.Errorf("users: %w", diags)
	}
	if v.IsNull() || !v.IsWhollyKnown() {
		return nil, errors.New("users is null")
	}
	var vals []cty.Value
	ty := v.Type()
	if ty.IsListType() || ty.IsTupleType() || ty.IsSetType() {
		if v.LengthInt() > MaxUsers {
			return nil, fmt.Errorf("users names %d users, more than %d", v.LengthInt(), MaxUsers)
		}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			vals = append(vals, e)
		}
	} else {
		vals = []cty.Value{v}
	}
	out := make([][2]string, 0, len(vals))
	for i, e := range vals {
		u, err := user(e)
		if err != nil {
			return nil, fmt.Errorf("users[%d]: %w", i, err)
		}
		out = append(out, u)
	}
	return out, nil
}

func user(v cty.Value) ([2]string, error) {
	ty := v.Type()
	if v.IsNull() || !v.IsWhollyKnown() || !(ty.IsObjectType() || ty.IsMapType()) {
		return [2]string{}, errors.New("not an object with service_id and user_id")
	}
	var u [2]string
	for i, name := range []string{"service_id", "user_id"} {
		if (ty.IsObjectType() && !ty.HasAttribute(name)) || (ty.IsMapType() && !v.HasIndex(cty.StringVal(name)).True()) {
			return u, fmt.Errorf("has no %s", name)
		}
		var f cty.Value
		if ty.IsObjectType() {
			f = v.GetAttr(name)
		} else {
			f = v.Index(cty.StringVal(name))
		}
		if f.IsNull() || f.Type() != cty.String || f.AsString() == "" {
			return u, fmt.Errorf("%s is not a non-empty string", name)
		}
		u[i] = f.AsString()
	}
	return u, nil
}

// appendEventKeys appends the default payload keys of an event: the sid,
// which event it is, and its main fields, as strings.
func appendEventKeys(kv [][2]string, c *callback.Call) [][2]string {
	if c.Kind == callback.KindGroupCallEvent {
		g := c.Group
		if g == nil {
			g = &callback.GroupEvent{}
		}
		return append(kv,
			[2]string{"sid", c.SID},
			[2]string{"event", EventGroupCall},
			[2]string{"room_svc_id", g.SvcID},
			[2]string{"room_id", g.ID},
			[2]string{"app_user_sid", g.UserSvcID},
			[2]string{"app_user_uid", g.UserID},
			[2]string{"app_host_sid", g.HostSvcID},
			[2]string{"app_host_uid", g.HostID},
			[2]string{"sc", g.SC},
			[2]string{"msc", g.MSC},
			[2]string{"app_svr_data", c.AppSvrData})
	}
	outcome := ""
	if c.End != nil {
		outcome = c.End.Outcome()
	}
	return appendCallKeys(append(kv, [2]string{"sid", c.SID}, [2]string{"event", EventCallEnd}, [2]string{"outcome", outcome}), c)
}

// Values of the event key of an event's payload.
const (
	EventCallEnd   = "call_end"
	EventGroupCall = "group_call"
)
