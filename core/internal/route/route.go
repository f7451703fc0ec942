// Package route decides which routes, and so which notifiers, a call goes
// to: routes are tried in file order and the first whose `when` holds wins,
// unless it says `continue`, in which case the routes below are tried too.
package route

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/ringside/ringside/core/internal/callback"
)

// Route is one compiled route.
type Route struct {
	Name string
	// On is the kind of callback the route handles (notify by default).
	On callback.Kind
	// Users, in an event route, yields whose devices to look up: an
	// object {service_id, user_id} or a list of them; nil looks up the
	// callee (to_service_id, to_user_id).
	Users hcl.Expression
	// Rung, in a call_event route, delivers to exactly the devices rung
	// for the call's sid, instead of looking any up.
	Rung bool
	// When is nil for a route that always matches.
	When hcl.Expression
	// Notify and Fallback name enabled notifiers only.
	Notify   []string
	Fallback []string
	// Disabled are the notifiers the route names for which enabled was
	// false, those of notify first, each in file order; nil when there is
	// none. They deliver nothing, but an operator is told of them.
	Disabled []Ref
	Continue bool
}

// Ref is a notifier a route names, and whether it names it in fallback.
type Ref struct {
	Name     string
	Fallback bool
}

// Table is the compiled routes, in file order. It is immutable.
type Table struct {
	routes  []*Route
	hasWhen [3]bool // by kind
}

// New returns a table of routes. A route's notifiers for which enabled is
// false are left out of Notify and Fallback and listed in Disabled; a
// route left with no notifier at all still matches (and reaches no one).
// A nil enabled keeps every notifier.
func New(routes []*Route, enabled func(notifier string) bool) *Table {
	t := &Table{routes: make([]*Route, 0, len(routes))}
	for _, r := range routes {
		c := *r
		c.Disabled = nil
		c.Notify = keep(r.Notify, enabled, false, &c.Disabled)
		c.Fallback = keep(r.Fallback, enabled, true, &c.Disabled)
		t.routes = append(t.routes, &c)
		if int(r.On) < len(t.hasWhen) {
			t.hasWhen[r.On] = t.hasWhen[r.On] || r.When != nil || r.Users != nil
		}
	}
	return t
}

// keep returns the names enabled holds for; the others are appended to
// disabled.
func keep(names []string, enabled func(string) bool, fallback bool, disabled *[]Ref) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if enabled == nil || enabled(n) {
			out = append(out, n)
			continue
		}
		*disabled = append(*disabled, Ref{Name: n, Fallback: fallback})
	}
	return out
}

// NeedsCall reports whether matching a callback of the kind evaluates any
// `when` (or users), and so needs the call's evaluation context; when it
// does not, Match accepts nil.
func (t *Table) NeedsCall(kind callback.Kind) bool {
	return int(kind) < len(t.hasWhen) && t.hasWhen[kind]
}

// Routes returns the table's routes in order.
func (t *Table) Routes() []*Route { return t.routes }

// WhenError is a route whose `when` failed at run time; it counts as no match.
type WhenError struct {
	Route string
	Err   error
}

func (e *WhenError) Error() string { return fmt.Sprintf("route %q: when: %v", e.Route, e.Err) }

func (e *WhenError) Unwrap() error { return e.Err }

// Match returns the routes on kind that match the call in ectx (see
// callexpr.Context), in order, and the `when` failures met on the way. A
// route whose `when` fails does not match.
func (t *Table) Match(kind callback.Kind, ectx *hcl.EvalContext) (matched []*Route, errs []*WhenError) {
	for _, r := range t.routes {
		if r.On != kind {
			continue
		}
		ok, err := holds(r.When, ectx)
		if err != nil {
			errs = append(errs, &WhenError{Route: r.Name, Err: err})
			continue
		}
		if !ok {
			continue
		}
		matched = append(matched, r)
		if !r.Continue {
			break
		}
	}
	return matched, errs
}

func holds(when hcl.Expression, ectx *hcl.EvalContext) (bool, error) {
	if when == nil {
		return true, nil
	}
	v, diags := when.Value(ectx)
	if diags.HasErrors() {
		return false, diags
	}
	v, err := convert.Convert(v, cty.Bool)
	if err != nil {
		return false, err
	}
	if v.IsNull() || !v.IsKnown() {
		return false, fmt.Errorf("when is null or unknown")
	}
	return v.True(), nil
}
