package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/ringside/ringside/core/internal/calllog"
)

// CallLog is the call_log block: how many calls the call log keeps, and
// for how long.
type CallLog struct {
	MaxCalls int
	MaxAge   time.Duration
}

// Feedback is the feedback block: outcome events for the app server,
// delivered in batches through a notifier (a webhook notifier, so they
// are signed as its calls are).
type Feedback struct {
	// Notifier names the notifier that carries the events; it needs no
	// device kind.
	Notifier string
	// Events are the kinds sent: pruned, failed, expired, delivered.
	Events []string
	// Batch is the most events in one request; Queue the most waiting
	// (more are dropped and counted); RetryFor how long one batch is
	// retried; FlushAfter how long an event waits for a batch to fill.
	Batch, Queue int
	RetryFor     time.Duration
	FlushAfter   time.Duration
	DeclRange    hcl.Range
	// NotifierRange is the notifier attribute's value, for messages.
	NotifierRange hcl.Range
}

// Feedback event kinds.
const (
	FeedbackPruned    = "pruned"
	FeedbackFailed    = "failed"
	FeedbackExpired   = "expired"
	FeedbackDelivered = "delivered"
)

// Call log and feedback defaults.
const (
	DefaultCallLogMaxCalls    = calllog.DefaultMaxCalls
	DefaultCallLogMaxAge      = calllog.DefaultMaxAge
	MaxCallLogMaxCalls        = 1000000
	DefaultFeedbackBatch      = 100
	MaxFeedbackBatch          = 1000
	DefaultFeedbackQueue      = 10000
	DefaultFeedbackRetryFor   = 10 * time.Minute
	DefaultFeedbackFlushAfter = 100 * time.Millisecond
)

type rawCallLog struct {
	MaxCalls *hcl.Attribute `hcl:"max_calls,optional"`
	MaxAge   *hcl.Attribute `hcl:"max_age,optional"`
}

type rawFeedback struct {
	Notifier   *hcl.Attribute `hcl:"notifier,optional"`
	Events     *hcl.Attribute `hcl:"events,optional"`
	Batch      *hcl.Attribute `hcl:"batch,optional"`
	Queue      *hcl.Attribute `hcl:"queue,optional"`
	RetryFor   *hcl.Attribute `hcl:"retry_for,optional"`
	FlushAfter *hcl.Attribute `hcl:"flush_after,optional"`
	DefRange   hcl.Range      `hcl:",def_range"`
}

func (d *decoder) callLog(c *CallLog, raw *rawCallLog) {
	if raw == nil {
		raw = &rawCallLog{}
	}
	c.MaxCalls = d.positiveInt(raw.MaxCalls, DefaultCallLogMaxCalls)
	if c.MaxCalls > MaxCallLogMaxCalls {
		d.errorf(raw.MaxCalls.Expr.Range(), "max_calls is too large",
			"The call log keeps its records in memory (about 1.3 KB each); at most %d. Got %d.", MaxCallLogMaxCalls, c.MaxCalls)
		c.MaxCalls = DefaultCallLogMaxCalls
	}
	c.MaxAge = d.duration(raw.MaxAge, DefaultCallLogMaxAge, 0)
}

func (d *decoder) feedback(raw *rawFeedback, notifiers map[string]*Notifier) *Feedback {
	if raw == nil {
		return nil
	}
	f := &Feedback{DeclRange: raw.DefRange}
	if raw.Notifier == nil {
		d.errorf(raw.DefRange, "feedback has no notifier",
			"The feedback block sends outcome events through a notifier that needs no device, such as a webhook notifier: notifier = \"app_events\".")
	} else {
		f.Notifier = d.str(raw.Notifier, "")
		f.NotifierRange = raw.Notifier.Expr.Range()
		n := notifiers[f.Notifier]
		switch {
		case f.Notifier == "":
		case n == nil:
			d.errorf(f.NotifierRange, fmt.Sprintf("Unknown notifier %q", f.Notifier),
				"feedback.notifier must name a notifier block of this file (%s).", strings.Join(slices.Sorted(mapKeys(notifiers)), ", "))
		case !n.Enabled:
			d.errorf(f.NotifierRange, fmt.Sprintf("Notifier %q is disabled", f.Notifier),
				"feedback.notifier names a disabled notifier, so no event would reach the app server; enable it or remove the feedback block.")
		}
	}
	f.Events = []string{FeedbackPruned, FeedbackFailed, FeedbackExpired}
	if list, ranges := d.strList(raw.Events, false); list != nil {
		f.Events = list
		if len(list) == 0 {
			d.errorf(raw.Events.Expr.Range(), "events is empty",
				"feedback.events lists the kinds of outcome event to send (\"pruned\", \"failed\", \"expired\", \"delivered\"); an empty list would send nothing: remove the feedback block instead, or omit events for the default.")
		}
		for i, e := range list {
			switch {
			case !slices.Contains([]string{FeedbackPruned, FeedbackFailed, FeedbackExpired, FeedbackDelivered}, e):
				d.errorf(ranges[i], fmt.Sprintf("Unknown feedback event %q", e),
					"feedback.events lists kinds of outcome event: \"pruned\", \"failed\", \"expired\" and \"delivered\".")
			case slices.Contains(list[:i], e):
				d.errorf(ranges[i], fmt.Sprintf("Feedback event %q is listed twice", e), "List each kind of outcome event once.")
			}
		}
	}
	f.Batch = d.positiveInt(raw.Batch, DefaultFeedbackBatch)
	if f.Batch > MaxFeedbackBatch {
		d.errorf(raw.Batch.Expr.Range(), "batch is too large", "At most %d events go in one request. Got %d.", MaxFeedbackBatch, f.Batch)
	}
	f.Queue = d.positiveInt(raw.Queue, DefaultFeedbackQueue)
	f.RetryFor = d.duration(raw.RetryFor, DefaultFeedbackRetryFor, 0)
	f.FlushAfter = d.duration(raw.FlushAfter, DefaultFeedbackFlushAfter, 10*time.Second)
	return f
}
