// Package dispatch turns an accepted callback into deliveries: it matches
// routes, looks up the callee's devices, renders each notifier's payload,
// chooses fallback notifiers when the route's notify notifiers reach no one,
// and runs each delivery detached from the HTTP request, with retries owned
// by the host, until the delivery's deadline.
package dispatch

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ringside/ringside/core/callback"
	"github.com/ringside/ringside/core/config"
	"github.com/ringside/ringside/core/directory"
	"github.com/ringside/ringside/core/route"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// Deliverer makes one delivery attempt through a plugin process;
// *pluginhost.Client is one.
type Deliverer interface {
	Deliver(ctx context.Context, req *pluginpb.DeliverRequest) (*pluginpb.DeliverResponse, error)
}

// AsyncDeliverer is a Deliverer that can also make a call with no
// goroutine waiting for it: done gets what Deliver would return, once,
// never on the caller's goroutine, and must not block.
// pluginhost.Supervised is one; the dispatcher then needs no goroutine per
// delivery.
type AsyncDeliverer interface {
	Deliverer
	DeliverAsync(ctx context.Context, req *pluginpb.DeliverRequest, done func(*pluginpb.DeliverResponse, error))
}

// Notifier is one configured, enabled delivery channel.
type Notifier struct {
	Name   string
	Plugin string
	// Kind is the device kind it delivers to; "" means it needs no device
	// (like webhook) and is always reachable.
	Kind string
	TTL  time.Duration
	// Payload is the notifier's `payload` expression, nil when absent.
	Payload hcl.Expression
	// Templates are the plugin's template attributes, rendered per call.
	Templates map[string]hcl.Expression
	// Deliverer is the notifier's plugin process.
	Deliverer Deliverer
}

// Roles of a notifier in a plan.
const (
	RoleNotify   = "notify"
	RoleFallback = "fallback"
)

// Plan is what a callback will cause.
type Plan struct {
	Call   *callback.Call
	Status string
	// Routes are the matched routes' names, in order.
	Routes []string
	// Reachable reports whether any delivery will be attempted.
	Reachable bool
	// Deliveries lists every notifier the matched routes name, in order,
	// each once — but a fallback not needed at lookup may appear again for a
	// later route that names it. Active ones are delivered.
	Deliveries []*Delivery
	// WhenErrors are the routes whose `when` failed at run time.
	WhenErrors []*route.WhenError
}

// Delivery is one notifier's share of a callback.
type Delivery struct {
	Notifier *Notifier
	Route    string
	Role     string
	// Active is false for a notifier that reaches nobody, and for fallback
	// notifiers not needed at lookup.
	Active bool
	// Devices are the callee's devices of the notifier's kind not already
	// rung by an earlier notifier of the same callback.
	Devices []directory.Device
	// Payload is the rendered payload, a JSON object.
	Payload []byte
	// Templates are the rendered template attributes.
	Templates map[string]string
	Deadline  time.Time
}

// Planner builds plans from routes, notifiers and a directory.
type Planner struct {
	Routes    *route.Table
	Notifiers map[string]*Notifier
	Store     directory.Store
	// Tracer traces route matching and the directory lookup; nil → none.
	Tracer trace.Tracer
	// FallbackAfter runs a route's fallback notifiers when nothing was
	// delivered that long after the callback arrived; 0 → never by time.
	FallbackAfter time.Duration
}

// deadline is the latest deadline of the plan's deliveries.
func (p *Plan) deadline() time.Time {
	var dl time.Time
	for _, d := range p.Deliveries {
		if d.Deadline.After(dl) {
			dl = d.Deadline
		}
	}
	return dl
}

// Plan matches c against the routes, looks up the callee's devices and
// renders the payloads. ectx is config.CallContext(c), or nil: it is then
// built only if a `when`, a payload or a template needs it.
func (p *Planner) Plan(ctx context.Context, c *callback.Call, ectx *hcl.EvalContext) (*Plan, error) {
	callCtx := func() *hcl.EvalContext {
		if ectx == nil {
			ectx = config.CallContext(c)
		}
		return ectx
	}
	tracer := p.Tracer
	if tracer == nil {
		tracer = noop.NewTracerProvider().Tracer("")
	}
	_, span := tracer.Start(ctx, "route.match")
	var mctx *hcl.EvalContext
	if p.Routes.NeedsCall() {
		mctx = callCtx()
	}
	matched, whenErrs := p.Routes.Match(mctx)
	span.SetAttributes(attribute.Int("ringside.routes", len(matched)))
	span.End()
	plan := &Plan{Call: c, WhenErrors: whenErrs, Routes: make([]string, 0, len(matched))}
	if len(matched) == 0 {
		plan.Status = callback.StatusUnrouted
		return plan, nil
	}
	for _, r := range matched {
		plan.Routes = append(plan.Routes, r.Name)
	}
	var devices []directory.Device
	if p.needsDevices(matched) {
		lctx, span := tracer.Start(ctx, "directory.lookup")
		var err error
		devices, err = p.Store.Lookup(lctx, c.ToServiceID, c.ToUserID)
		span.SetAttributes(attribute.Int("ringside.devices", len(devices)))
		span.End()
		if err != nil {
			return nil, fmt.Errorf("look up devices: %w", err)
		}
	}

	seen := map[string]*Delivery{} // notifiers already planned
	rung := map[[2]string]bool{}   // devices already given to a notifier
	for _, r := range matched {
		reached := false
		for _, name := range r.Notify {
			if d := p.add(plan, seen, rung, devices, name, r.Name, RoleNotify); d != nil && d.Active {
				reached = true
			}
		}
		for _, name := range r.Fallback {
			d := p.add(plan, seen, rung, devices, name, r.Name, RoleFallback)
			if d != nil && reached {
				// Not needed at lookup: give its devices back.
				d.Active = false
				for _, dev := range d.Devices {
					delete(rung, [2]string{dev.Kind, dev.Token})
				}
			}
		}
	}
	for _, d := range plan.Deliveries {
		if d.Active {
			plan.Reachable = true
			break
		}
	}
	if !plan.Reachable {
		plan.Status = callback.StatusNoDevices
		return plan, nil
	}
	plan.Status = callback.StatusAccepted
	for _, d := range plan.Deliveries {
		if err := render(d, c, callCtx); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

func (p *Planner) needsDevices(matched []*route.Route) bool {
	for _, r := range matched {
		for _, names := range [][]string{r.Notify, r.Fallback} {
			for _, name := range names {
				if n := p.Notifiers[name]; n != nil && n.Kind != "" {
					return true
				}
			}
		}
	}
	return false
}

func (p *Planner) add(plan *Plan, seen map[string]*Delivery, rung map[[2]string]bool, devices []directory.Device, name, routeName, role string) *Delivery {
	n := p.Notifiers[name]
	if n == nil {
		return nil
	}
	// A notifier delivers once per callback, for the first route that uses
	// it; a fallback that was not needed may still serve a later route.
	if prev := seen[name]; prev != nil && (prev.Active || prev.Role != RoleFallback) {
		return nil
	}
	d := &Delivery{
		Notifier: n,
		Route:    routeName,
		Role:     role,
		Deadline: plan.Call.Received.Add(n.TTL),
	}
	if n.Kind == "" {
		d.Active = true
	} else {
		for _, dev := range devices {
			k := [2]string{dev.Kind, dev.Token}
			if dev.Kind != n.Kind || rung[k] {
				continue
			}
			rung[k] = true
			d.Devices = append(d.Devices, dev)
		}
		d.Active = len(d.Devices) > 0
	}
	seen[name] = d
	plan.Deliveries = append(plan.Deliveries, d)
	return d
}

// render fills the delivery's payload and templates; callCtx gives the
// call's evaluation context, built on first use.
func render(d *Delivery, c *callback.Call, callCtx func() *hcl.EvalContext) error {
	var ectx *hcl.EvalContext
	if d.Notifier.Payload != nil || len(d.Notifier.Templates) > 0 {
		ectx = callCtx()
	}
	payload, err := Payload(c, d.Notifier.Payload, ectx)
	if err != nil {
		return fmt.Errorf("notifier %q: %w", d.Notifier.Name, err)
	}
	d.Payload = payload
	if len(d.Notifier.Templates) > 0 {
		d.Templates = make(map[string]string, len(d.Notifier.Templates))
		for name, expr := range d.Notifier.Templates {
			v, diags := expr.Value(ectx)
			if diags.HasErrors() {
				return fmt.Errorf("notifier %q: %s: %s", d.Notifier.Name, name, diags.Error())
			}
			v, err := convert.Convert(v, cty.String)
			if err != nil || v.IsNull() || !v.IsKnown() {
				return fmt.Errorf("notifier %q: %s: not a string", d.Notifier.Name, name)
			}
			d.Templates[name] = v.AsString()
		}
	}
	return nil
}

// Payload renders the JSON payload of c: the default keys (cc_param, sid,
// app_caller_sid, app_caller_uid, app_callee_sid, app_callee_uid,
// app_call_type and app_svr_data when present), then the keys of extra,
// which may override the app_* keys, with their JSON types kept.
func Payload(c *callback.Call, extra hcl.Expression, ectx *hcl.EvalContext) ([]byte, error) {
	defaults := [...][2]string{
		{"cc_param", c.Param},
		{"sid", c.SID},
		{"app_caller_sid", c.FromServiceID},
		{"app_caller_uid", c.FromUserID},
		{"app_callee_sid", c.ToServiceID},
		{"app_callee_uid", c.ToUserID},
		{"app_call_type", c.Type},
		{"app_svr_data", c.AppSvrData},
	}
	var add map[string]cty.Value
	if extra != nil {
		v, diags := extra.Value(ectx)
		if diags.HasErrors() {
			return nil, fmt.Errorf("payload: %s", diags.Error())
		}
		if !v.IsNull() {
			if !v.IsKnown() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
				return nil, fmt.Errorf("payload: not an object")
			}
			add = v.AsValueMap()
		}
	}
	b := make([]byte, 0, 256+len(c.Param)+len(c.AppSvrData))
	b = append(b, '{')
	key := func(k string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = callback.AppendJSONString(b, k)
		b = append(b, ':')
	}
	for _, kv := range defaults {
		if _, over := add[kv[0]]; over {
			continue
		}
		if kv[0] == "app_svr_data" && kv[1] == "" {
			continue
		}
		key(kv[0])
		b = callback.AppendJSONString(b, kv[1])
	}
	keys := make([]string, 0, len(add))
	for k := range add {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := add[k]
		key(k)
		if v.IsNull() {
			b = append(b, "null"...)
			continue
		}
		if !v.IsWhollyKnown() {
			return nil, fmt.Errorf("payload: %s: value unknown", k)
		}
		if v.Type() == cty.String {
			b = callback.AppendJSONString(b, v.AsString())
			continue
		}
		js, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return nil, fmt.Errorf("payload: %s: %w", k, err)
		}
		b = append(b, js...)
	}
	b = append(b, '}')
	return b, nil
}
