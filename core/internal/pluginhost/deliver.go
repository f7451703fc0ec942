package pluginhost

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/delivery"
	"github.com/ringside/ringside/core/internal/pluginhost/deliverstream"
	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// Deliver makes one attempt through the plugin, on DeliverStream when the
// plugin serves it, and returns one outcome per target (one when a has no
// targets); a response with any other count is an error.
//
// An attempt too large for one message (a callee with thousands of
// devices) is split into calls to fewer devices, each within the plugin's
// message limit, made side by side; their outcomes are joined in the order
// of a's targets, and a part that fails as a whole answers retry for its
// own devices only. An attempt that cannot be encoded (a string that is
// not UTF-8), or is too large even for one device, would fail the same way
// every time: its targets fail permanently, with the reason.
func (c *Client) Deliver(ctx context.Context, a *delivery.Attempt) ([]delivery.Outcome, error) {
	req := wireRequest(a)
	err := deliverstream.CheckUTF8(req)
	var parts []part
	if err == nil {
		parts, err = split(req, c.maxCall-deliverstream.CallOverhead)
	}
	if err != nil {
		return refused(len(a.Targets), err.Error()), nil
	}
	if parts == nil {
		return c.deliverPart(ctx, req, a.Delivered)
	}
	outs := make([]delivery.Outcome, len(a.Targets))
	delivered := make(chan int, len(a.Targets))
	done := make(chan struct{}, len(parts))
	for _, p := range parts {
		go func() {
			defer func() { done <- struct{}{} }()
			report := func(i int) { delivered <- p.from + i } // never blocks: room for every target
			if a.Delivered == nil {
				report = nil
			}
			po, err := c.deliverPart(ctx, p.req, report)
			for i := range p.req.GetDevices() {
				if err != nil {
					outs[p.from+i] = delivery.Outcome{Result: delivery.Retry, Reason: err.Error()}
				} else {
					outs[p.from+i] = po[i]
				}
			}
		}()
	}
	for left := len(parts); left > 0; {
		select {
		case i := <-delivered:
			a.Delivered(i)
		case <-done:
			left--
		}
	}
	for len(delivered) > 0 {
		a.Delivered(<-delivered)
	}
	return outs, nil
}

// deliverPart makes one call, on the stream or as a unary RPC, and checks
// it has an outcome per target.
func (c *Client) deliverPart(ctx context.Context, req *pluginpb.DeliverRequest, delivered func(i int)) ([]delivery.Outcome, error) {
	var resp *pluginpb.DeliverResponse
	var err error
	if c.stream != nil {
		var progress func(int, *pluginpb.Outcome)
		if delivered != nil {
			progress = func(i int, o *pluginpb.Outcome) {
				if o.GetKind() == pluginpb.Outcome_KIND_DELIVERED {
					delivered(i)
				}
			}
		}
		resp, err = c.stream.Deliver(ctx, req, progress)
	} else {
		resp, err = c.rpc.Deliver(ctx, req)
	}
	if err != nil {
		if status.Code(err) == codes.ResourceExhausted {
			return nil, fmt.Errorf("%w: %w", delivery.ErrOverloaded, c.rpcError("deliver", err))
		}
		return nil, c.rpcError("deliver", err)
	}
	if want := max(1, len(req.GetDevices())); len(resp.GetOutcomes()) != want {
		return nil, fmt.Errorf("plugin %q (notifier %q): deliver: %d outcomes for %d devices", c.spec.Plugin, c.spec.Notifier, len(resp.GetOutcomes()), len(req.GetDevices()))
	}
	outs := make([]delivery.Outcome, len(resp.GetOutcomes()))
	for i, o := range resp.GetOutcomes() {
		outs[i] = outcome(o)
	}
	return outs, nil
}

// wireRequest is a as the protocol says it.
func wireRequest(a *delivery.Attempt) *pluginpb.DeliverRequest {
	req := &pluginpb.DeliverRequest{
		DeliveryId:       a.ID,
		Attempt:          int32(a.Number),
		Route:            a.Route,
		Call:             wireCall(a.Call),
		PayloadJson:      a.Payload,
		Templates:        a.Templates,
		DeadlineUnixNano: a.Deadline.UnixNano(),
	}
	if len(a.Targets) > 0 {
		req.Devices = make([]*pluginpb.Device, len(a.Targets))
		for i, t := range a.Targets {
			req.Devices[i] = &pluginpb.Device{Kind: t.Kind, Token: t.Token, UpdatedAtUnixNano: t.UpdatedAt.UnixNano(), IdempotencyId: t.IdempotencyID}
		}
	}
	return req
}

func wireCall(c *callback.Call) *pluginpb.Call {
	return &pluginpb.Call{
		Sid:           c.SID,
		FromServiceId: c.FromServiceID,
		FromUserId:    c.FromUserID,
		ToServiceId:   c.ToServiceID,
		ToUserId:      c.ToUserID,
		Type:          c.Type,
		Param:         c.Param,
		AppSvrData:    c.AppSvrData,
		Extra:         c.Extra,
	}
}

// kinds pairs each result with its kind on the wire.
var kinds = [...]struct {
	wire   pluginpb.Outcome_Kind
	result delivery.Result
}{
	{pluginpb.Outcome_KIND_DELIVERED, delivery.Delivered},
	{pluginpb.Outcome_KIND_PERMANENT, delivery.Permanent},
	{pluginpb.Outcome_KIND_GONE, delivery.Gone},
	{pluginpb.Outcome_KIND_RETRY, delivery.Retry},
}

// result is the result of kind k; a kind this host does not know is
// retried.
func result(k pluginpb.Outcome_Kind) delivery.Result {
	for _, p := range kinds {
		if p.wire == k {
			return p.result
		}
	}
	return delivery.Retry
}

// outcome is o in core's terms.
func outcome(o *pluginpb.Outcome) delivery.Outcome {
	out := delivery.Outcome{Result: result(o.GetKind()), Reason: o.GetReason(), ProviderID: o.GetProviderId()}
	switch out.Result {
	case delivery.Gone:
		if ns := o.GetGoneAtUnixNano(); ns > 0 {
			out.GoneAt = time.Unix(0, ns)
		}
	case delivery.Retry:
		out.RetryAfter = time.Duration(o.GetRetryAfterMs()) * time.Millisecond
	}
	return out
}

// refused is the answer to an attempt the host cannot send: every target
// failed permanently, with reason.
func refused(targets int, reason string) []delivery.Outcome {
	outs := make([]delivery.Outcome, max(1, targets))
	for i := range outs {
		outs[i] = delivery.Outcome{Result: delivery.Permanent, Reason: reason}
	}
	return outs
}

// part is one call of a split attempt: its request and the index of its
// first device in the whole request.
type part struct {
	req  *pluginpb.DeliverRequest
	from int
}

// split divides req's devices into parts whose encoded size stays within
// budget bytes; nil when req fits whole. An error means a part of one
// device (or the request without devices) is already over budget.
func split(req *pluginpb.DeliverRequest, budget int) ([]part, error) {
	size := proto.Size(req)
	if size <= budget {
		return nil, nil
	}
	devs := req.GetDevices()
	base := size
	for _, d := range devs {
		base -= deviceSize(d)
	}
	if base >= budget || len(devs) == 0 {
		return nil, fmt.Errorf("the call is %d bytes, more than the %d bytes a message to the plugin may hold", size, budget)
	}
	var parts []part
	from, n := 0, base
	for i, d := range devs {
		ds := deviceSize(d)
		if base+ds > budget {
			return nil, fmt.Errorf("one device makes a call of %d bytes, more than the %d bytes a message to the plugin may hold", base+ds, budget)
		}
		if n+ds > budget {
			parts = append(parts, part{req: withDevices(req, devs[from:i]), from: from})
			from, n = i, base
		}
		n += ds
	}
	return append(parts, part{req: withDevices(req, devs[from:]), from: from}), nil
}

// deviceSize is what a device adds to the encoded request (its field tag
// and length prefix included).
func deviceSize(d *pluginpb.Device) int {
	n := proto.Size(d)
	return 1 + protowire.SizeVarint(uint64(n)) + n
}

func withDevices(req *pluginpb.DeliverRequest, devs []*pluginpb.Device) *pluginpb.DeliverRequest {
	return &pluginpb.DeliverRequest{
		DeliveryId:       req.GetDeliveryId(),
		Attempt:          req.GetAttempt(),
		Route:            req.GetRoute(),
		Call:             req.GetCall(),
		PayloadJson:      req.GetPayloadJson(),
		Templates:        req.GetTemplates(),
		Devices:          devs,
		DeadlineUnixNano: req.GetDeadlineUnixNano(),
	}
}
