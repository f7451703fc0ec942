package calllog

import (
	"slices"
	"sync/atomic"
	"time"
)

// Filter selects records; zero fields select everything.
type Filter struct {
	// Status matches the answer to any callback of the call.
	Status string
	// Outcome matches the call's outcome.
	Outcome string
	// Callee and Caller match the user id; CalleeService and CallerService
	// the service id.
	Callee, CalleeService string
	Caller, CallerService string
	// Route and Notifier match a matched route and a notifier the routes
	// name (active or not).
	Route, Notifier string
	// Since and Until bound the received time (Until excluded).
	Since, Until time.Time
	// Limit bounds the answer; 0 → DefaultLimit, at most MaxLimit.
	Limit int
}

// FilterParams are the names a Filter is given by, as query parameters of
// the admin API and flags of `ringside calls`.
var FilterParams = []string{"status", "outcome", "callee", "callee_service", "caller", "caller_service", "route", "notifier", "since", "until", "limit"}

// List bounds.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// List returns the summaries of the records f selects, newest first.
func (l *Log) List(f Filter) []Summary {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	l.mu.Lock()
	calls := slices.Clone(l.order)
	maxAge := l.maxAge
	l.mu.Unlock()
	now := l.now()
	out := []Summary{}
	for i := len(calls) - 1; i >= 0 && len(out) < limit; i-- {
		c := calls[i]
		if now.Sub(c.received()) > maxAge {
			break // older ones are older still
		}
		c.mu.Lock()
		ok := f.match(&c.rec, c.events)
		var s Summary
		if ok {
			s = c.summaryLocked()
		}
		c.mu.Unlock()
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// match reports whether f selects r, whose call keeps events; r's call is
// locked.
func (f *Filter) match(r *Record, events []kept) bool {
	switch {
	case f.Outcome != "" && r.Outcome != f.Outcome,
		f.Callee != "" && r.Callee.UserID != f.Callee,
		f.CalleeService != "" && r.Callee.ServiceID != f.CalleeService,
		f.Caller != "" && r.Caller.UserID != f.Caller,
		f.CallerService != "" && r.Caller.ServiceID != f.CallerService,
		f.Route != "" && !slices.Contains(r.Routes, f.Route),
		!f.Since.IsZero() && r.Received.Before(f.Since),
		!f.Until.IsZero() && !r.Received.Before(f.Until):
		return false
	}
	if f.Notifier != "" && !slices.ContainsFunc(r.Notifiers, func(n Notifier) bool { return n.Name == f.Notifier }) {
		return false
	}
	if f.Status != "" && r.Status != f.Status && !slices.ContainsFunc(events, func(e kept) bool {
		return e.typ == EventCallback && e.status == f.Status
	}) {
		return false
	}
	return true
}

// Subscription receives every event of the log from its start. Events
// that find its channel full are dropped and counted, never waited for.
type Subscription struct {
	log     *Log
	C       <-chan *Event
	c       chan *Event
	dropped func()
	n       atomic.Uint64
}

// Subscribe starts a subscription with a channel of buf events. dropped,
// when not nil, is called for each event dropped (for a metric).
func (l *Log) Subscribe(buf int, dropped func()) *Subscription {
	ch := make(chan *Event, max(buf, 1))
	s := &Subscription{log: l, C: ch, c: ch, dropped: dropped}
	l.subMu.Lock()
	l.subs[s] = struct{}{}
	l.nsubs.Store(int32(len(l.subs)))
	l.subMu.Unlock()
	return s
}

// Close ends the subscription; its channel is not closed (an event may
// be in the middle of a send to it), it just receives nothing more.
func (s *Subscription) Close() {
	l := s.log
	l.subMu.Lock()
	delete(l.subs, s)
	l.nsubs.Store(int32(len(l.subs)))
	l.subMu.Unlock()
}

// Dropped is how many events found the channel full.
func (s *Subscription) Dropped() uint64 { return s.n.Load() }

func (l *Log) publish(e *Event) {
	if l.nsubs.Load() == 0 {
		return
	}
	l.subMu.RLock()
	defer l.subMu.RUnlock()
	for s := range l.subs {
		select {
		case s.c <- e:
		default:
			s.n.Add(1)
			if s.dropped != nil {
				s.dropped()
			}
		}
	}
}
