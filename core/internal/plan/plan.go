// Package plan decides what an accepted callback will cause, without
// causing it: it matches the routes, looks up the callee's devices, renders
// each notifier's payload and templates, and chooses which notifiers
// deliver now and which are kept as fallback. Planning is pure and
// synchronous: it sends nothing, waits on no plugin and writes nothing;
// the dispatcher makes the deliveries a plan lists.
package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/route"
)

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
	Deliverer delivery.Deliverer
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
	// RenderErrors are the notifiers whose payload or template failed to
	// render for this call (an absent call.extra key, a failed function):
	// each is skipped for this call alone, as if it reached no device, so
	// the other notifiers still ring and a route it was the only way of
	// reaching the callee falls back. Their Err says why; they are not in
	// Deliveries.
	RenderErrors []*Delivery
	// Disabled lists the notifiers the matched routes name that are
	// disabled in the config (enabled = false), with why.
	Disabled []Disabled
	// Unserved are the callee's devices that no active notifier of the
	// plan delivers to (no notifier of their kind, or only disabled ones).
	Unserved []directory.Device
	// Owners are whose the planned devices are, for an event whose routes
	// looked up someone other than the callee (users, rung); nil when
	// every device is the callee's.
	Owners map[[2]string]Owned
}

// Owner returns whose dev is: its owner in Owners, else the callee.
func (p *Plan) Owner(dev directory.Device) (serviceID, userID string) {
	if o, ok := p.Owners[[2]string{dev.Kind, dev.Token}]; ok {
		return o.ServiceID, o.UserID
	}
	return p.Call.ToServiceID, p.Call.ToUserID
}

// Disabled is a notifier a matched route names that is disabled in the
// config: it delivers nothing, and Reason says why in words an operator
// can act on (for example which environment variable is empty).
type Disabled struct {
	Name, Plugin, Kind, Route, Role string
	Reason                          string
}

// Delivery is one notifier's share of a callback: its payload to the
// callee's devices of its kind. The dispatcher makes it in attempts
// (delivery.Attempt) until every device has a final outcome or Deadline.
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
	// Err is why the payload or a template did not render (in
	// Plan.RenderErrors only).
	Err *RenderError
}

// RenderError is a notifier's payload or template attribute that failed to
// render for a call. Its Error names the notifier, the attribute, the
// expression's FILE:LINE:COL and HCL's summary of the problem, never a
// value: it is what the log says. Detail may quote the call's values
// (cc_param among them) and is only for explain, which prints them anyway.
type RenderError struct {
	Notifier string
	Attr     string    // "payload", or the template attribute's name
	Range    hcl.Range // the expression, or the part of it that failed
	Summary  string
	Detail   string
}

func (e *RenderError) Error() string {
	at := ""
	if e.Range.Filename != "" {
		at = fmt.Sprintf(" at %s:%d:%d", e.Range.Filename, e.Range.Start.Line, e.Range.Start.Column)
	}
	who := ""
	if e.Notifier != "" {
		who = fmt.Sprintf("notifier %q: ", e.Notifier)
	}
	return fmt.Sprintf("%s%s%s: %s", who, e.Attr, at, e.Summary)
}

// renderError is the RenderError of an evaluation's diagnostics: the
// first error's subject (else the expression's range) and summary.
func renderError(attr string, expr hcl.Expression, diags hcl.Diagnostics) *RenderError {
	e := &RenderError{Attr: attr, Summary: "failed to render"}
	if expr != nil {
		e.Range = expr.Range()
	}
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if d.Subject != nil {
			e.Range = *d.Subject
		}
		e.Summary, e.Detail = d.Summary, d.Detail
		break
	}
	return e
}

// Planner builds plans from routes, notifiers and a directory.
type Planner struct {
	Routes    *route.Table
	Notifiers map[string]*Notifier
	// Disabled are the configured notifiers that are disabled, by name,
	// with their plugin, device kind and reason (Route and Role empty):
	// a plan lists those its routes name. A disabled notifier missing here
	// is listed by name alone.
	Disabled map[string]Disabled
	Store    directory.Store
	// Tracer traces route matching and the directory lookup; nil → none.
	Tracer trace.Tracer
	// FallbackAfter runs a route's fallback notifiers when nothing was
	// delivered that long after the callback arrived; 0 → never by time.
	FallbackAfter time.Duration
	// Rung returns the devices rung for a sid, for call_event routes with
	// rung = true; nil → none.
	Rung func(sid string) []Owned
}

// Owned is a device and whose it is.
type Owned struct {
	directory.Device
	ServiceID, UserID string
}

// MaxUsers bounds the users an event route's users may name.
const MaxUsers = 100

func (p *Planner) tracer() trace.Tracer {
	if p.Tracer == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return p.Tracer
}

// Deadline is the latest deadline of the plan's deliveries.
func (p *Plan) Deadline() time.Time {
	var dl time.Time
	for _, d := range p.Deliveries {
		if d.Deadline.After(dl) {
			dl = d.Deadline
		}
	}
	return dl
}

// Plan matches c against the routes, looks up the callee's devices and
// renders the payloads. ectx is callexpr.Context(c), or nil: it is then
// built only if a `when`, a payload or a template needs it.
func (p *Planner) Plan(ctx context.Context, c *callback.Call, ectx *hcl.EvalContext) (*Plan, error) {
	callCtx := func() *hcl.EvalContext {
		if ectx == nil {
			ectx = callexpr.Context(c)
		}
		return ectx
	}
	tracer := p.tracer()
	_, span := tracer.Start(ctx, "route.match")
	var mctx *hcl.EvalContext
	if p.Routes.NeedsCall(c.Kind) {
		mctx = callCtx()
	}
	matched, whenErrs := p.Routes.Match(c.Kind, mctx)
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
	// The devices are looked up when an enabled notifier needs them, or
	// to tell which of them only a disabled notifier would ring; the
	// lookup failing then costs the call nothing but that report.
	if enabled, disabled := p.needsDevices(matched); (enabled || disabled) && needsCallee(matched) {
		lctx, span := tracer.Start(ctx, "directory.lookup")
		var err error
		devices, err = p.Store.Lookup(lctx, c.ToServiceID, c.ToUserID)
		span.SetAttributes(attribute.Int("ringside.devices", len(devices)))
		span.End()
		if err != nil && enabled {
			return nil, fmt.Errorf("look up devices: %w", err)
		}
	}

	pl := &planning{plan: plan, devices: devices, seen: map[string]*Delivery{}, rung: map[[2]string]bool{}, callCtx: callCtx}
	var others []directory.Device // looked up by event routes' users or rung
	for _, r := range matched {
		routeDevices := devices
		if r.Rung || r.Users != nil {
			var err error
			if routeDevices, err = p.others(ctx, plan, pl.callCtx, r); err != nil {
				var we *route.WhenError
				if errors.As(err, &we) {
					// As a failing when: the route does not match.
					plan.WhenErrors = append(plan.WhenErrors, we)
					plan.Routes = slices.DeleteFunc(plan.Routes, func(name string) bool { return name == r.Name })
					continue
				}
				return nil, err
			}
			others = append(others, routeDevices...)
		}
		reached := false
		for _, name := range r.Notify {
			if d := p.add(pl, routeDevices, name, r.Name, RoleNotify); d != nil && d.Active {
				reached = true
			}
		}
		for _, name := range r.Fallback {
			d := p.add(pl, routeDevices, name, r.Name, RoleFallback)
			if d != nil && reached {
				// Not needed at lookup: give its devices back.
				d.Active = false
				for _, dev := range d.Devices {
					delete(pl.rung, [2]string{dev.Kind, dev.Token})
				}
			}
		}
		for _, ref := range r.Disabled {
			d := p.Disabled[ref.Name]
			d.Name, d.Route, d.Role = ref.Name, r.Name, RoleNotify
			if ref.Fallback {
				d.Role = RoleFallback
			}
			plan.Disabled = append(plan.Disabled, d)
		}
	}
	if len(plan.Routes) == 0 {
		plan.Status = callback.StatusUnrouted
		return plan, nil
	}
	plan.Unserved = pl.unserved(pl.devices, others)
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
	return plan, nil
}

// planning is one Plan call's state.
type planning struct {
	plan    *Plan
	devices []directory.Device
	seen    map[string]*Delivery // notifiers already planned
	rung    map[[2]string]bool   // devices already given to a notifier
	failed  map[string]bool      // notifiers that did not render; nil until one
	callCtx func() *hcl.EvalContext
}

// needsDevices reports whether a matched route names an enabled notifier
// that delivers to devices, and whether one names such a disabled one.
func (p *Planner) needsDevices(matched []*route.Route) (enabled, disabled bool) {
	for _, r := range matched {
		for _, names := range [][]string{r.Notify, r.Fallback} {
			for _, name := range names {
				if n := p.Notifiers[name]; n != nil && n.Kind != "" {
					return true, false
				}
			}
		}
		for _, ref := range r.Disabled {
			disabled = disabled || p.Disabled[ref.Name].Kind != ""
		}
	}
	return false, disabled
}

// unserved returns the devices looked up that no planned delivery got: a
// fallback that was not needed still serves its devices, a notifier that
// did not render serves none. It allocates only when a device is unserved.
func (pl *planning) unserved(lists ...[]directory.Device) []directory.Device {
	var out []directory.Device
	for _, list := range lists {
		for _, dev := range list {
			if pl.rung[[2]string{dev.Kind, dev.Token}] || pl.idleServes(dev) {
				continue
			}
			out = append(out, dev)
		}
	}
	return out
}

// idleServes reports whether an inactive delivery (a fallback not needed
// at lookup) holds dev.
func (pl *planning) idleServes(dev directory.Device) bool {
	for _, d := range pl.plan.Deliveries {
		if d.Active {
			continue
		}
		for _, got := range d.Devices {
			if got.Kind == dev.Kind && got.Token == dev.Token {
				return true
			}
		}
	}
	return false
}

// add plans notifier name for a route. A notifier that can reach someone
// (a device of its kind not rung yet, or no kind needed) is rendered first:
// one that does not render goes to plan.RenderErrors, claims no device and
// reaches no one, so the next notifier of its kind gets the devices and
// the route's fallback is needed.
func (p *Planner) add(pl *planning, devices []directory.Device, name, routeName, role string) *Delivery {
	n := p.Notifiers[name]
	if n == nil || pl.failed[name] {
		return nil
	}
	// A notifier delivers once per callback, for the first route that uses
	// it; a fallback that was not needed may still serve a later route.
	if prev := pl.seen[name]; prev != nil && (prev.Active || prev.Role != RoleFallback) {
		return nil
	}
	plan := pl.plan
	d := &Delivery{
		Notifier: n,
		Route:    routeName,
		Role:     role,
		Deadline: plan.Call.Received.Add(n.TTL),
	}
	if n.Kind != "" {
		for _, dev := range devices {
			if dev.Kind == n.Kind && !pl.rung[[2]string{dev.Kind, dev.Token}] {
				d.Devices = append(d.Devices, dev)
			}
		}
	}
	if n.Kind == "" || len(d.Devices) > 0 {
		if err := render(d, plan.Call, pl.callCtx); err != nil {
			d.Err = err
			if pl.failed == nil {
				pl.failed = map[string]bool{}
			}
			pl.failed[name] = true
			plan.RenderErrors = append(plan.RenderErrors, d)
			return nil
		}
		d.Active = true
	}
	for _, dev := range d.Devices {
		pl.rung[[2]string{dev.Kind, dev.Token}] = true
	}
	pl.seen[name] = d
	plan.Deliveries = append(plan.Deliveries, d)
	return d
}

// render fills the delivery's payload and templates; callCtx gives the
// call's evaluation context, built on first use.
func render(d *Delivery, c *callback.Call, callCtx func() *hcl.EvalContext) *RenderError {
	var ectx *hcl.EvalContext
	if d.Notifier.Payload != nil || len(d.Notifier.Templates) > 0 {
		ectx = callCtx()
	}
	payload, err := Payload(c, d.Notifier.Payload, ectx)
	if err != nil {
		err.Notifier = d.Notifier.Name
		return err
	}
	d.Payload = payload
	if len(d.Notifier.Templates) > 0 {
		d.Templates = make(map[string]string, len(d.Notifier.Templates))
		for name, expr := range d.Notifier.Templates {
			v, diags := expr.Value(ectx)
			if diags.HasErrors() {
				e := renderError(name, expr, diags)
				e.Notifier = d.Notifier.Name
				return e
			}
			v, err := convert.Convert(v, cty.String)
			if err != nil || v.IsNull() || !v.IsKnown() {
				return &RenderError{Notifier: d.Notifier.Name, Attr: name, Range: expr.Range(), Summary: "not a string"}
			}
			d.Templates[name] = v.AsString()
		}
	}
	return nil
}

// appendCallKeys appends the default payload keys that a call's payload and
// its call end event's share: its parties, type and app_svr_data.
func appendCallKeys(kv [][2]string, c *callback.Call) [][2]string {
	return append(kv,
		[2]string{"app_caller_sid", c.FromServiceID},
		[2]string{"app_caller_uid", c.FromUserID},
		[2]string{"app_callee_sid", c.ToServiceID},
		[2]string{"app_callee_uid", c.ToUserID},
		[2]string{"app_call_type", c.Type},
		[2]string{"app_svr_data", c.AppSvrData})
}

// Payload renders the JSON payload of c: the default keys (cc_param, sid,
// app_caller_sid, app_caller_uid, app_callee_sid, app_callee_uid,
// app_call_type and app_svr_data when present), then the keys of extra,
// which may override the app_* keys, with their JSON types kept. An error
// is a *RenderError.
func Payload(c *callback.Call, extra hcl.Expression, ectx *hcl.EvalContext) ([]byte, *RenderError) {
	var buf [11][2]string // room for the most default keys, a group call event's
	defaults := buf[:0]
	if c.Kind == callback.KindNotify {
		defaults = appendCallKeys(append(defaults, [2]string{"cc_param", c.Param}, [2]string{"sid", c.SID}), c)
	} else {
		defaults = appendEventKeys(defaults, c)
	}
	var add map[string]cty.Value
	if extra != nil {
		v, diags := extra.Value(ectx)
		if diags.HasErrors() {
			return nil, renderError("payload", extra, diags)
		}
		if !v.IsNull() {
			if !v.IsKnown() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
				return nil, &RenderError{Attr: "payload", Range: extra.Range(), Summary: "not an object"}
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
		if kv[1] == "" && kv[0] != "cc_param" && kv[0] != "sid" {
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
			return nil, &RenderError{Attr: "payload", Range: extra.Range(), Summary: fmt.Sprintf("%s: value unknown", k)}
		}
		if v.Type() == cty.String {
			b = callback.AppendJSONString(b, v.AsString())
			continue
		}
		js, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return nil, &RenderError{Attr: "payload", Range: extra.Range(), Summary: fmt.Sprintf("%s: cannot encode as JSON", k), Detail: err.Error()}
		}
		b = append(b, js...)
	}
	b = append(b, '}')
	return b, nil
}
