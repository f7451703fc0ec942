package pluginhost

import (
	"context"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// deliverWire makes the attempt req describes in the protocol's terms
// through d, and answers in them: the tests say what the plugin gets and
// check what it answered, and every call goes through the translation both
// ways.
func deliverWire(ctx context.Context, d delivery.Deliverer, req *pluginpb.DeliverRequest) (*pluginpb.DeliverResponse, error) {
	return deliverReporting(ctx, d, req, nil)
}

// deliverReporting is deliverWire whose delivered, when set, gets the
// tokens reported delivered before the answer.
func deliverReporting(ctx context.Context, d delivery.Deliverer, req *pluginpb.DeliverRequest, delivered func(token string)) (*pluginpb.DeliverResponse, error) {
	a := &delivery.Attempt{
		ID:        req.GetDeliveryId(),
		Number:    int(req.GetAttempt()),
		Route:     req.GetRoute(),
		Call:      &callback.Call{},
		Payload:   req.GetPayloadJson(),
		Templates: req.GetTemplates(),
		Deadline:  time.Unix(0, req.GetDeadlineUnixNano()),
	}
	if c := req.GetCall(); c != nil {
		a.Call = &callback.Call{SID: c.GetSid(), FromServiceID: c.GetFromServiceId(), FromUserID: c.GetFromUserId(),
			ToServiceID: c.GetToServiceId(), ToUserID: c.GetToUserId(), Type: c.GetType(), Param: c.GetParam(),
			AppSvrData: c.GetAppSvrData(), Extra: c.GetExtra()}
	}
	for _, dv := range req.GetDevices() {
		a.Targets = append(a.Targets, delivery.Target{
			Device:        directory.Device{Kind: dv.GetKind(), Token: dv.GetToken(), UpdatedAt: time.Unix(0, dv.GetUpdatedAtUnixNano())},
			IdempotencyID: dv.GetIdempotencyId(),
		})
	}
	if delivered != nil {
		a.Delivered = func(i int) { delivered(a.Targets[i].Token) }
	}
	outs, err := d.Deliver(ctx, a)
	if err != nil {
		return nil, err
	}
	resp := &pluginpb.DeliverResponse{}
	for _, o := range outs {
		w := &pluginpb.Outcome{Kind: wireKind(o.Result), Reason: o.Reason, ProviderId: o.ProviderID, RetryAfterMs: o.RetryAfter.Milliseconds()}
		if o.Result == delivery.Gone && !o.GoneAt.IsZero() {
			w.GoneAtUnixNano = o.GoneAt.UnixNano()
		}
		resp.Outcomes = append(resp.Outcomes, w)
	}
	return resp, nil
}

// wireKind is the kind on the wire of result r, the inverse of result.
func wireKind(r delivery.Result) pluginpb.Outcome_Kind {
	for _, p := range kinds {
		if p.result == r {
			return p.wire
		}
	}
	return pluginpb.Outcome_KIND_RETRY
}
