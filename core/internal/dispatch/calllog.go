package dispatch

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/plan"
)

// logCall records a callback answered status in the call log, with what
// its plan (nil for a callback refused before planning) would do; nil when
// there is no call log.
func (d *Dispatcher) logCall(ctx context.Context, c *callback.Call, pl *plan.Plan, status string, resumed bool) *calllog.Entry {
	if d.calls == nil {
		return nil
	}
	s := calllog.Start{
		SID: c.SID, Received: c.Received, Type: c.Type, Status: status, Resumed: resumed,
		Caller: calllog.Party{ServiceID: c.FromServiceID, UserID: c.FromUserID},
		Callee: calllog.Party{ServiceID: c.ToServiceID, UserID: c.ToUserID},
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		s.TraceID = sc.TraceID().String()
	}
	if pl != nil {
		s.Routes = pl.Routes
		s.Notifiers, s.Devices = calllog.DescribePlan(pl)
	}
	return d.calls.Begin(s)
}
