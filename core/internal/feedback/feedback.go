// Package feedback tells the app server what became of its devices and
// calls: a device token ringside pruned, a delivery that failed for good,
// a call that ended without reaching anyone and, when asked, every
// delivery. The app server keeps its own copy of the device tokens and
// must hear of these to keep it true.
//
// A Sender subscribes to the call log, turns the events of the configured
// kinds into outcome events and sends them in batches through a notifier
// without a device kind (a webhook notifier, so a batch is signed as the
// notifier's calls are). The subscription never blocks the call log, and
// the Sender's queue is bounded: what finds it full is dropped and
// counted. One batch is in flight at a time, so events arrive in order;
// a batch is retried by the Sender (full-jitter backoff, never sooner
// than the receiver's Retry-After) with the same id until retry_for has
// passed, then dropped and counted.
package feedback

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/config"
)

// Outcome event types, in Event.Type.
const (
	// TypePruned is a device token removed from the directory because its
	// provider said it is gone.
	TypePruned = "device.pruned"
	// TypeFailed is a delivery to a device (or to the app, for a notifier
	// without devices) that failed permanently.
	TypeFailed = "delivery.failed"
	// TypeNotDelivered is a call whose deliveries all ended (expired or
	// failed) without reaching anyone.
	TypeNotDelivered = "call.not_delivered"
	// TypeDelivered is a delivery a provider accepted.
	TypeDelivered = "delivery.delivered"
)

// PayloadType is the type of every batch's payload.
const PayloadType = "ringside.feedback"

// Event is one outcome event as the app server receives it.
type Event struct {
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	SID  string    `json:"sid"`
	// ServiceID and UserID are the callee's, for device and delivery
	// events.
	ServiceID string `json:"service_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	// Kind and Token are the device's; Token is whole, so the app server
	// can find its copy.
	Kind     string `json:"kind,omitempty"`
	Token    string `json:"token,omitempty"`
	Notifier string `json:"notifier,omitempty"`
	// Reason is the provider's reason of a failed delivery.
	Reason string `json:"reason,omitempty"`
	// ProviderID is the provider's id of a delivered message.
	ProviderID string `json:"provider_id,omitempty"`
	// Caller and Callee are the call's, for a call event.
	Caller *calllog.Party `json:"caller,omitempty"`
	Callee *calllog.Party `json:"callee,omitempty"`
	// Reasons are the last reason of each notifier that failed, for a call
	// event, when the call log still holds the call's record.
	Reasons map[string]string `json:"reasons,omitempty"`

	// seq is the call log event's sequence number: a batch's id derives
	// from its first and last.
	seq uint64
}

// Payload is a batch's payload.
type Payload struct {
	Type   string  `json:"type"`
	Events []Event `json:"events"`
}

// encode is the payload of a batch, strings not HTML-escaped.
func encode(events []Event) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Payload{Type: PayloadType, Events: events}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// kinds is the set of configured event kinds.
type kinds map[string]bool

// outcome returns the outcome event of a call log event, ok false when
// e is not one of the kinds sent. log, when not nil, gives the reasons of
// a call that was not delivered.
func (k kinds) outcome(e *calllog.Event, log *calllog.Log) (ev Event, ok bool) {
	ev = Event{Time: e.Time.UTC(), SID: e.SID, Notifier: e.Notifier, seq: e.Seq}
	device := func() {
		callee := e.Callee()
		ev.ServiceID, ev.UserID = callee.ServiceID, callee.UserID
		if e.Device != nil {
			ev.Kind, ev.Token = e.Device.Kind, e.DeviceToken()
		}
	}
	switch {
	case e.Type == calllog.EventPruned && e.Outcome == "removed" && k[config.FeedbackPruned]:
		ev.Type = TypePruned
		device()
	// An attempt numbered 0 was made before a restart (the journal kept
	// its outcome): it was reported then.
	case e.Type == calllog.EventAttempt && e.Attempt > 0 && e.Outcome == "permanent" && k[config.FeedbackFailed]:
		ev.Type, ev.Reason = TypeFailed, e.Reason
		device()
	case e.Type == calllog.EventAttempt && e.Attempt > 0 && e.Outcome == "delivered" && k[config.FeedbackDelivered]:
		ev.Type, ev.ProviderID = TypeDelivered, e.ProviderID
		device()
	case e.Type == calllog.EventFinished && e.Outcome == calllog.OutcomeNotDelivered && k[config.FeedbackExpired]:
		ev.Type, ev.Notifier = TypeNotDelivered, ""
		if e.Call != nil {
			caller, callee := e.Call.Caller, e.Call.Callee
			ev.Caller, ev.Callee = &caller, &callee
		} else {
			callee := e.Callee()
			ev.Callee = &callee
		}
		ev.Reasons = reasons(log, e.SID, *ev.Callee)
	default:
		return Event{}, false
	}
	return ev, true
}

// reasons is the last reason of each notifier of the call's record that
// has one; nil when the log no longer holds the record.
func reasons(log *calllog.Log, sid string, callee calllog.Party) map[string]string {
	if log == nil {
		return nil
	}
	rec, ok := log.Get(sid)
	if !ok || rec.Callee != callee {
		return nil
	}
	var out map[string]string
	for _, r := range slices.Backward(rec.Results) {
		if r.Reason == "" || r.Outcome == "delivered" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		if _, seen := out[r.Notifier]; !seen {
			out[r.Notifier] = r.Reason
		}
	}
	return out
}

// Settings is f without its source ranges, for telling whether a reload
// changed the feedback block; nil stays nil.
func Settings(f *config.Feedback) *config.Feedback {
	if f == nil {
		return nil
	}
	c := *f
	c.DeclRange, c.NotifierRange = hcl.Range{}, hcl.Range{}
	return &c
}
