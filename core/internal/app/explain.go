package app

import (
	"context"
	"fmt"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/plan"
)

// Explained is what the admin API's explain answers: what a notify_cb
// query would do now, with the live routes, notifiers and directory.
// Tokens are shortened; nothing is delivered and nothing recorded.
type Explained struct {
	SID       string             `json:"sid"`
	Status    string             `json:"status"`
	Routes    []string           `json:"routes"`
	Notifiers []calllog.Notifier `json:"notifiers"`
	Devices   []calllog.Device   `json:"devices"`
	// WhenErrors are the routes whose `when` failed for this call.
	WhenErrors []string `json:"when_errors,omitempty"`
}

// explain plans the callback of rawQuery (a notify_cb query string) with
// p; an invalid query is a *callback.FieldError.
func explain(ctx context.Context, p plan.Planner, rawQuery string, maxIDBytes int) (*Explained, error) {
	c, _, err := callback.Parse(rawQuery, maxIDBytes, time.Now())
	if err != nil {
		return nil, err
	}
	pl, err := p.Plan(ctx, c, nil)
	if err != nil {
		return nil, err
	}
	e := &Explained{SID: c.SID, Status: pl.Status, Routes: pl.Routes}
	if pl.Status != callback.StatusUnrouted && !lookedUp(pl) {
		// The plan looks devices up only for routes that name a notifier
		// with a device kind; explain shows the callee's devices anyway,
		// as served by no notifier.
		devs, err := p.Store.Lookup(ctx, c.ToServiceID, c.ToUserID)
		if err != nil {
			return nil, fmt.Errorf("look up devices: %w", err)
		}
		pl.Unserved = devs
	}
	e.Notifiers, e.Devices = calllog.DescribePlan(pl)
	if e.Notifiers == nil {
		e.Notifiers = []calllog.Notifier{}
	}
	if e.Devices == nil {
		e.Devices = []calllog.Device{}
	}
	for _, we := range pl.WhenErrors {
		e.WhenErrors = append(e.WhenErrors, we.Error())
	}
	return e, nil
}

// lookedUp reports whether planning looked up the callee's devices: some
// notifier the routes name, active, disabled or not rendered, has a
// device kind.
func lookedUp(pl *plan.Plan) bool {
	for _, dl := range pl.Deliveries {
		if dl.Notifier.Kind != "" {
			return true
		}
	}
	for _, dl := range pl.RenderErrors {
		if dl.Notifier.Kind != "" {
			return true
		}
	}
	for _, d := range pl.Disabled {
		if d.Kind != "" {
			return true
		}
	}
	return false
}
