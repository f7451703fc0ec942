// Package calllog keeps the recent story of every valid callback: what it
// was answered, which routes and notifiers it reached (and why a notifier
// did not), the devices found, every attempt with its outcome and the
// provider's reason, fallback, pruning and the final outcome per device
// and per call. It is what answers "why didn't it ring?".
//
// The log is bounded by a count and an age, lives in memory, and never
// holds cc_param, a whole device token or a secret. Readers get copies;
// subscribers get every event as it happens through a bounded channel
// whose overflow is counted, never waited on: recording must not slow the
// callback path.
package calllog

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/plugins/sdk"
)

// Statuses of a callback besides the callback package's answers.
const (
	// StatusOverloaded is a valid callback answered 503: ringside was at
	// its bound of callbacks in delivery.
	StatusOverloaded = "overloaded"
)

// Outcomes of a call, in Record.Outcome.
const (
	OutcomeRinging      = "ringing"       // deliveries still running
	OutcomeDelivered    = "delivered"     // at least one device (or the app) was reached
	OutcomeNotDelivered = "not_delivered" // deliveries ended, none reached anyone
	OutcomeNone         = "none"          // nothing was to be delivered (not accepted)
)

// Event types, in Event.Type.
const (
	EventCallback = "callback" // a callback arrived and was answered Status
	EventAttempt  = "attempt"  // one device's (or the app's) outcome of one attempt
	EventExpired  = "expired"  // a device's delivery ran out of time
	EventFallback = "fallback" // a route's fallback notifiers started
	EventPruned   = "pruned"   // a gone device token: Outcome removed, kept or failed
	EventResumed  = "resumed"  // the call was resumed from the journal after a restart
	EventFinished = "finished" // every delivery ended: Outcome is the call's
	EventEnded    = "ended"    // a delivery or a fallback stopped because the call ended
	EventCallEnd  = "call_end" // the Call Event came: Outcome is how the call ended
)

// End is how a call ended, as its Call Event tells it.
type End struct {
	// Outcome is answered, missed, rejected, canceled, busy or failed.
	Outcome   string     `json:"outcome"`
	Terminate int        `json:"terminate"`
	Duration  int64      `json:"duration"`
	SetupTime *time.Time `json:"setup_time,omitempty"`
	// StartTime is when the call was answered.
	StartTime *time.Time `json:"start_time,omitempty"`
	EndTime   *time.Time `json:"end_time,omitempty"`
	// RingToAnswer is the seconds from the notify callback to StartTime,
	// for an answered call; 0 otherwise.
	RingToAnswer float64 `json:"ring_to_answer_seconds,omitempty"`
	// Stopped counts the calls' deliveries still running that the end
	// stopped.
	Stopped int `json:"stopped,omitempty"`
}

// Party is a caller or a callee.
type Party struct {
	ServiceID string `json:"service_id"`
	UserID    string `json:"user_id"`
}

// Device is a device as the log shows it: its kind and shortened token.
type Device struct {
	Kind  string `json:"kind"`
	Token string `json:"token"`
}

// NewDevice shortens a device for the log.
func NewDevice(d directory.Device) Device {
	return Device{Kind: d.Kind, Token: sdk.ShortToken(d.Token)}
}

// Notifier is one notifier a matched route names.
type Notifier struct {
	Name   string `json:"name"`
	Plugin string `json:"plugin,omitempty"`
	Route  string `json:"route"`
	Role   string `json:"role"`
	Kind   string `json:"device_kind,omitempty"`
	// Active reports whether it delivers for this call.
	Active bool `json:"active"`
	// Reason says why it does not: disabled (and why), no device of its
	// kind, its payload did not render, or a fallback not needed.
	Reason  string `json:"reason,omitempty"`
	Devices int    `json:"devices"`
}

// Event is one step of a call's story.
type Event struct {
	// Seq orders every event of the log; a live stream resumes after it.
	Seq  uint64    `json:"seq"`
	SID  string    `json:"sid"`
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	// Status is the answer, for a callback event.
	Status   string  `json:"status,omitempty"`
	Route    string  `json:"route,omitempty"`
	Notifier string  `json:"notifier,omitempty"`
	Device   *Device `json:"device,omitempty"`
	Attempt  int     `json:"attempt,omitempty"`
	// Outcome is delivered, retry, permanent, gone or error for an
	// attempt; removed, kept or failed for pruning; the call's outcome
	// for finished.
	Outcome    string `json:"outcome,omitempty"`
	Reason     string `json:"reason,omitempty"`
	ProviderID string `json:"provider_id,omitempty"`
	// RetryAfterMS is the provider's Retry-After, in milliseconds.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
	// LatencyMS is how long the attempt took.
	LatencyMS float64 `json:"latency_ms,omitempty"`
	// Call summarizes the call, on callback and finished events, so a live
	// view can list it without asking for the record.
	Call *Summary `json:"call,omitempty"`

	// token is the whole device token, for in-process consumers that must
	// name it (the app server's feedback); it is never encoded, nor kept
	// in the record. call is the event's call, on published events.
	token string
	call  *Entry
}

// Callee is the callee of the event's call, on events a subscription
// receives.
func (e *Event) Callee() Party {
	if e.call == nil {
		return Party{}
	}
	return e.call.rec.Callee // set before the record is shared, never changed
}

// DeviceToken is the whole token of the event's device, "" when none. It
// is for in-process consumers only; the log's JSON never carries it.
func (e *Event) DeviceToken() string { return e.token }

// Summary is a call's line in a list.
type Summary struct {
	SID       string     `json:"sid"`
	Received  time.Time  `json:"received"`
	Status    string     `json:"status"`
	Outcome   string     `json:"outcome"`
	Finished  *time.Time `json:"finished,omitempty"`
	Caller    Party      `json:"caller"`
	Callee    Party      `json:"callee"`
	Type      string     `json:"type"`
	Routes    []string   `json:"routes"`
	Notifiers []string   `json:"notifiers"`
	Resumed   bool       `json:"resumed,omitempty"`
	// Callbacks counts the callbacks with this sid and callee (repeats are
	// answered duplicate).
	Callbacks int `json:"callbacks"`
	// End is how the call ended, once its Call Event came.
	End *End `json:"end,omitempty"`
}

// Result is the final outcome of one notifier's delivery to one device
// (or to the app, with no device).
type Result struct {
	Notifier string  `json:"notifier"`
	Device   *Device `json:"device,omitempty"`
	// Outcome is delivered, permanent, gone, expired, or pending while
	// the call is ringing.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// Record is one call's whole story, as GET /v1/calls/{sid} shows it.
type Record struct {
	Summary
	TraceID   string     `json:"trace_id,omitempty"`
	Notifiers []Notifier `json:"notifiers"`
	Devices   []Device   `json:"devices"`
	Results   []Result   `json:"results"`
	Events    []Event    `json:"events"`
	// EventsOmitted counts the events past MaxEvents that the record did
	// not keep (a callee with many devices failing for a whole ring
	// window); they were still streamed.
	EventsOmitted int `json:"events_omitted,omitempty"`
}

// MaxEvents bounds the events one record keeps, besides its finished
// event, so that memory stays bounded per record too.
const MaxEvents = 256

// Entry is the live record of one call in the log. Its methods are safe
// for concurrent use and cheap: a short lock and an append.
type Entry struct {
	log *Log
	mu  sync.Mutex
	// rec is the record but for its summary's Notifiers and Finished,
	// which summaryLocked derives (so a record costs no allocation for
	// them while no one reads it), and its events, kept in events.
	rec      Record
	events   []kept
	finished time.Time
}

// kept is an event as its record keeps it, in about half an Event's
// memory: what every event has inline, and what only some have (an
// attempt's, an expiry's, a pruning's, a fallback's route, notifier,
// device, reason...) behind a pointer that the others (callback, finished,
// call_end) leave nil. The sid is the record's; the whole token and the
// call are never kept.
type kept struct {
	seq     uint64
	time    time.Time
	typ     string
	status  string
	outcome string
	more    *keptMore
}

type keptMore struct {
	route, notifier, reason, providerID string
	device                              *Device
	attempt                             int
	retryAfterMS                        int64
	latencyMS                           float64
}

func keep(e *Event) kept {
	k := kept{seq: e.Seq, time: e.Time, typ: e.Type, status: e.Status, outcome: e.Outcome}
	if e.Route != "" || e.Notifier != "" || e.Device != nil || e.Attempt != 0 || e.Reason != "" ||
		e.ProviderID != "" || e.RetryAfterMS != 0 || e.LatencyMS != 0 {
		k.more = &keptMore{route: e.Route, notifier: e.Notifier, reason: e.Reason, providerID: e.ProviderID,
			device: e.Device, attempt: e.Attempt, retryAfterMS: e.RetryAfterMS, latencyMS: e.LatencyMS}
	}
	return k
}

// event is the kept event of the call with the sid.
func (k *kept) event(sid string) Event {
	e := Event{Seq: k.seq, SID: sid, Time: k.time, Type: k.typ, Status: k.status, Outcome: k.outcome}
	if m := k.more; m != nil {
		e.Route, e.Notifier, e.Reason, e.ProviderID = m.route, m.notifier, m.reason, m.providerID
		e.Device, e.Attempt, e.RetryAfterMS, e.LatencyMS = m.device, m.attempt, m.retryAfterMS, m.latencyMS
	}
	return e
}

// Options configures a Log.
type Options struct {
	// MaxCalls bounds the records kept; 0 → DefaultMaxCalls.
	MaxCalls int
	// MaxAge drops records older than it; 0 → DefaultMaxAge.
	MaxAge time.Duration
	// Now is the clock; nil → time.Now.
	Now func() time.Time
}

// Retention defaults.
const (
	DefaultMaxCalls = 10000
	DefaultMaxAge   = time.Hour
)

// Log is the bounded call log.
type Log struct {
	now func() time.Time
	seq atomic.Uint64

	mu       sync.Mutex
	maxCalls int
	maxAge   time.Duration
	bySID    map[string]*Entry
	order    []*Entry // oldest first
	// shared are the notifier descriptions of a recent record: calls
	// through the same routes describe their notifiers alike, and share
	// one copy (records never change theirs).
	shared []Notifier

	subMu sync.RWMutex
	subs  map[*Subscription]struct{}
	nsubs atomic.Int32
}

// New returns an empty log.
func New(opt Options) *Log {
	l := &Log{now: opt.Now, bySID: map[string]*Entry{}, subs: map[*Subscription]struct{}{}}
	if l.now == nil {
		l.now = time.Now
	}
	l.SetRetention(opt.MaxCalls, opt.MaxAge)
	return l
}

// SetRetention changes the bounds (a reload); the next record applies them.
func (l *Log) SetRetention(maxCalls int, maxAge time.Duration) {
	if maxCalls <= 0 {
		maxCalls = DefaultMaxCalls
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	l.mu.Lock()
	l.maxCalls, l.maxAge = maxCalls, maxAge
	l.mu.Unlock()
}

// Start is what a new record knows when the callback is answered.
type Start struct {
	SID      string
	Received time.Time
	Caller   Party
	Callee   Party
	Type     string
	Status   string
	TraceID  string
	Routes   []string
	// Notifiers and Devices describe the plan; empty when there was none.
	Notifiers []Notifier
	Devices   []Device
	Resumed   bool
}

// Begin records a callback. A callback whose sid and callee have a record
// already (a repeat, answered duplicate) is added to it as an event and
// that record is returned; otherwise a new record starts. The record's
// outcome is ringing when status is accepted, none otherwise (End is then
// not needed).
func (l *Log) Begin(s Start) *Entry {
	now := l.now()
	l.mu.Lock()
	if c := l.bySID[s.SID]; c != nil && c.rec.Callee == s.Callee && !s.Resumed {
		l.mu.Unlock()
		c.mu.Lock()
		c.rec.Callbacks++
		c.addLocked(Event{Time: now, Type: EventCallback, Status: s.Status}, true)
		return c
	}
	// The call's strings are slices of the request that carried it: a
	// record that outlives the request keeps copies, not the request.
	s.SID, s.Type = strings.Clone(s.SID), strings.Clone(s.Type)
	s.Caller = Party{ServiceID: strings.Clone(s.Caller.ServiceID), UserID: strings.Clone(s.Caller.UserID)}
	s.Callee = Party{ServiceID: strings.Clone(s.Callee.ServiceID), UserID: strings.Clone(s.Callee.UserID)}
	c := &Entry{log: l,
		// Room for the common story: callback, attempt, finished.
		events: make([]kept, 0, 3),
		rec: Record{Summary: Summary{
			SID: s.SID, Received: s.Received, Status: s.Status, Outcome: OutcomeNone,
			Caller: s.Caller, Callee: s.Callee, Type: s.Type, Routes: s.Routes,
			Resumed: s.Resumed, Callbacks: 1,
		},
			TraceID: s.TraceID, Notifiers: s.Notifiers, Devices: s.Devices,
		}}
	if s.Status == "accepted" {
		c.rec.Outcome = OutcomeRinging
	}
	if len(s.Notifiers) > 0 {
		if slices.Equal(s.Notifiers, l.shared) {
			c.rec.Notifiers = l.shared
		} else {
			l.shared = s.Notifiers
		}
	}
	l.evictLocked(now)
	l.order = append(l.order, c)
	l.bySID[s.SID] = c
	l.mu.Unlock()

	typ := EventCallback
	if s.Resumed {
		typ = EventResumed
	}
	c.mu.Lock()
	c.addLocked(Event{Time: now, Type: typ, Status: s.Status}, true)
	return c
}

// evictLocked drops the records past the count bound or older than the
// age bound, oldest first; l.mu is held.
func (l *Log) evictLocked(now time.Time) {
	cut := 0
	for cut < len(l.order) && (len(l.order)-cut >= l.maxCalls || now.Sub(l.order[cut].received()) > l.maxAge) {
		c := l.order[cut]
		if l.bySID[c.rec.SID] == c {
			delete(l.bySID, c.rec.SID)
		}
		l.order[cut] = nil
		cut++
	}
	if cut == 0 {
		return
	}
	// Move the live part down when the dropped prefix is large, so the
	// backing array does not grow without bound.
	if cut >= len(l.order)/2 {
		l.order = append(l.order[:0], l.order[cut:]...)
	} else {
		l.order = l.order[cut:]
	}
}

// received is immutable after Begin: no lock needed.
func (c *Entry) received() time.Time { return c.rec.Received }

// Len is the number of records kept.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.order)
}

// appendLocked adds an event to the record and returns it with its
// sequence number; c.mu is held.
func (c *Entry) appendLocked(e Event) Event {
	e.Seq = c.log.seq.Add(1)
	e.SID = c.rec.SID
	if len(c.events) < MaxEvents || e.Type == EventFinished {
		c.events = append(c.events, keep(&e))
	} else {
		c.rec.EventsOmitted++
	}
	e.call = c
	return e
}

// summaryLocked is a copy of the call's summary; c.mu is held.
func (c *Entry) summaryLocked() Summary {
	s := c.rec.Summary
	s.Routes = slices.Clone(s.Routes)
	s.Notifiers = []string{}
	for _, n := range c.rec.Notifiers {
		if n.Active {
			s.Notifiers = append(s.Notifiers, n.Name)
		}
	}
	if !c.finished.IsZero() {
		f := c.finished
		s.Finished = &f
	}
	return s
}

// Add records an event of the call (its Seq, SID and, when zero, Time are
// set here) and publishes it. token, when not empty, is the device's
// whole token, kept off the record but given to in-process subscribers.
func (c *Entry) Add(e Event, token string) {
	if c == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = c.log.now()
	}
	e.token = token
	c.mu.Lock()
	c.addLocked(e, false)
}

// End records that every delivery of the call ended; outcome is
// OutcomeDelivered or OutcomeNotDelivered.
func (c *Entry) End(outcome string) {
	if c == nil {
		return
	}
	now := c.log.now()
	c.mu.Lock()
	c.rec.Outcome = outcome
	c.finished = now
	c.addLocked(Event{Time: now, Type: EventFinished, Outcome: outcome}, true)
}

// Lookup returns the live record of the newest call with the sid, nil when
// there is none (or no log): the deliveries of an event about the call
// join its record.
func (l *Log) Lookup(sid string) *Entry {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bySID[sid]
}

// Rang returns when the newest call with the sid was received and the
// routes and notifiers ([route, notifier]) whose deliveries reached a
// device (or the app) for it, each once; ok is false when the log does
// not have the call.
func (l *Log) Rang(sid string) (received time.Time, rang [][2]string, ok bool) {
	c := l.Lookup(sid)
	if c == nil {
		return time.Time{}, nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.events {
		e := c.events[i].event(c.rec.SID)
		k := [2]string{e.Route, e.Notifier}
		if e.Type == EventAttempt && e.Outcome == "delivered" && !slices.Contains(rang, k) {
			rang = append(rang, k)
		}
	}
	return c.rec.Received, rang, true
}

// Ended records how the call with the sid ended, when the log has it.
func (l *Log) Ended(sid string, end End) {
	c := l.Lookup(sid)
	if c == nil {
		return
	}
	now := c.log.now()
	c.mu.Lock()
	c.rec.End = &end
	c.addLocked(Event{Time: now, Type: EventCallEnd, Outcome: end.Outcome}, true)
}

// addLocked appends e and, when anyone listens, publishes it (with the
// call's summary when summary is set); c.mu is held and released.
func (c *Entry) addLocked(e Event, summary bool) {
	e = c.appendLocked(e)
	if c.log.nsubs.Load() == 0 {
		c.mu.Unlock()
		return
	}
	if summary {
		sum := c.summaryLocked()
		e.Call = &sum
	}
	c.mu.Unlock()
	c.log.publish(&e)
}

// Get returns a copy of the newest record with the sid.
func (l *Log) Get(sid string) (Record, bool) {
	l.mu.Lock()
	c := l.bySID[sid]
	l.mu.Unlock()
	if c == nil || l.expired(c) {
		return Record{}, false
	}
	return c.snapshot(), true
}

func (l *Log) expired(c *Entry) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now().Sub(c.received()) > l.maxAge
}

// snapshot copies the record and derives its per-device results.
func (c *Entry) snapshot() Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rec
	r.Summary = c.summaryLocked()
	r.Notifiers = slices.Clone(r.Notifiers)
	r.Devices = slices.Clone(r.Devices)
	r.Events = make([]Event, len(c.events))
	for i := range c.events {
		r.Events[i] = c.events[i].event(r.SID)
	}
	r.Results = results(&r)
	if r.Notifiers == nil {
		r.Notifiers = []Notifier{}
	}
	if r.Devices == nil {
		r.Devices = []Device{}
	}
	return r
}

// results is the last word of each (notifier, device): a final outcome, or
// pending while the call rings.
func results(r *Record) []Result {
	type key struct {
		notifier, route string
		dev             Device
	}
	var order []key
	last := map[key]Result{}
	for _, e := range r.Events {
		if e.Type != EventAttempt && e.Type != EventExpired && e.Type != EventEnded || e.Outcome == "error" || e.Notifier == "" {
			continue // an error is the attempt's, not a device's
		}
		k := key{notifier: e.Notifier, route: e.Route}
		if e.Device != nil {
			k.dev = *e.Device
		}
		res := Result{Notifier: e.Notifier, Device: e.Device, Reason: e.Reason}
		switch e.Outcome {
		case "delivered", "permanent", "gone", "expired", "ended":
			res.Outcome = e.Outcome
		default:
			res.Outcome = "pending"
			if r.Outcome != OutcomeRinging {
				res.Outcome = "expired"
			}
		}
		if _, seen := last[k]; !seen {
			order = append(order, k)
		}
		last[k] = res
	}
	out := make([]Result, 0, len(order))
	for _, k := range order {
		out = append(out, last[k])
	}
	return out
}
