package dispatch

import (
	"context"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/plan"
)

// RungKeep is how long after a notify callback ringside remembers the
// devices it rang for the sid, when a call_event route says rung = true: a
// call that is not answered ends within its ring window (60 s at most), so
// its Call Event comes well inside it.
const RungKeep = 2 * time.Minute

// sids indexes by sid the calls ringside is ringing or rang lately: the
// jobs still delivering (a Call Event stops them) and the devices rung
// (a cancel goes to exactly those). It is sharded so that the callback
// goroutines registering jobs seldom meet on a lock.
type sids struct {
	seed   maphash.Seed
	shards [64]sidShard
}

type sidShard struct {
	mu   sync.Mutex
	m    map[string]*sidEntry
	fifo []sidExpiry // in the order entries were made, for expiry
}

type sidExpiry struct {
	sid string
	at  time.Time
}

type sidEntry struct {
	received time.Time // the notify callback's arrival
	jobs     []*job
	rung     []rungDevice
}

// rungDevice is a device a notify delivery reached, with whose it is and
// which route and notifier rang it.
type rungDevice struct {
	plan.Owned
	route, notifier string
}

func newSids() *sids { return &sids{seed: maphash.MakeSeed()} }

func (s *sids) shard(sid string) *sidShard {
	return &s.shards[maphash.String(s.seed, sid)%uint64(len(s.shards))]
}

// entryLocked returns the entry of sid, made when absent, and drops the
// expired entries that have no job; sh.mu is held.
func (sh *sidShard) entryLocked(sid string, received, now time.Time) *sidEntry {
	for len(sh.fifo) > 0 && now.After(sh.fifo[0].at) {
		x := sh.fifo[0]
		if e := sh.m[x.sid]; e != nil && len(e.jobs) == 0 {
			delete(sh.m, x.sid)
		} else if e != nil {
			break // still ringing: keep it, and those after it
		}
		sh.fifo = sh.fifo[1:]
	}
	if sh.m == nil {
		sh.m = map[string]*sidEntry{}
	}
	e := sh.m[sid]
	if e == nil {
		// The sid is a slice of the request that carried it: keep a copy.
		sid = strings.Clone(sid)
		e = &sidEntry{received: received}
		sh.m[sid] = e
		sh.fifo = append(sh.fifo, sidExpiry{sid: sid, at: received.Add(RungKeep)})
	}
	return e
}

// add registers a notify job while it delivers.
func (s *sids) add(j *job, now time.Time) {
	c := j.plan.Call
	sh := s.shard(c.SID)
	sh.mu.Lock()
	e := sh.entryLocked(c.SID, c.Received, now)
	e.jobs = append(e.jobs, j)
	sh.mu.Unlock()
}

// remove forgets a job that ended.
func (s *sids) remove(j *job) {
	sid := j.plan.Call.SID
	sh := s.shard(sid)
	sh.mu.Lock()
	if e := sh.m[sid]; e != nil {
		if i := slices.Index(e.jobs, j); i >= 0 {
			e.jobs = slices.Delete(e.jobs, i, i+1)
		}
	}
	sh.mu.Unlock()
}

// rang records a device a notify delivery reached.
func (s *sids) rang(j *job, dl *plan.Delivery, dev directory.Device, now time.Time) {
	c := j.plan.Call
	service, user := j.plan.Owner(dev)
	service, user = strings.Clone(service), strings.Clone(user)
	sh := s.shard(c.SID)
	sh.mu.Lock()
	e := sh.entryLocked(c.SID, c.Received, now)
	e.rung = append(e.rung, rungDevice{Owned: plan.Owned{Device: dev, ServiceID: service, UserID: user}, route: dl.Route, notifier: dl.Notifier.Name})
	sh.mu.Unlock()
}

// Rung returns the devices rung for sid, each once.
func (s *sids) Rung(sid string) []plan.Owned {
	sh := s.shard(sid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[sid]
	if e == nil {
		return nil
	}
	out := make([]plan.Owned, 0, len(e.rung))
	for _, r := range e.rung {
		if !slices.ContainsFunc(out, func(o plan.Owned) bool { return o.Kind == r.Kind && o.Token == r.Token }) {
			out = append(out, r.Owned)
		}
	}
	return out
}

// end returns sid's jobs still delivering, what was
// rung and when the notify callback came; ok is false when ringside knows
// nothing of the sid.
func (s *sids) end(sid string) (jobs []*job, rung []rungDevice, received time.Time, ok bool) {
	sh := s.shard(sid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[sid]
	if e == nil {
		return nil, nil, time.Time{}, false
	}
	return slices.Clone(e.jobs), slices.Clone(e.rung), e.received, true
}

// callEnded acts on a Call Event the first time it comes: it stops the
// sid's deliveries that are still retrying or waiting to fall back, and
// records how the call ended in the metrics and the call log.
func (d *Dispatcher) callEnded(ctx context.Context, c *callback.Call) {
	end := c.End
	if end == nil {
		end = &callback.CallEnd{}
	}
	outcome := end.Outcome()
	jobs, rung, received, known := d.sids.end(c.SID)
	for _, j := range jobs {
		j.stop()
	}
	var pairs [][2]string // [route, notifier] that rang the call
	for _, r := range rung {
		if k := [2]string{r.route, r.notifier}; !slices.Contains(pairs, k) {
			pairs = append(pairs, k)
		}
	}
	if len(pairs) == 0 {
		// The devices are kept only for rung routes; the call log knows
		// which notifiers rang.
		var logged bool
		var at time.Time
		if at, pairs, logged = d.calls.Rang(c.SID); logged {
			received, known = at, true
		}
	}
	for _, k := range pairs {
		d.metrics.CallOutcomes.WithLabelValues(k[0], k[1], outcome).Inc()
	}
	if len(pairs) == 0 {
		d.metrics.CallOutcomes.WithLabelValues("", "", outcome).Inc()
	}
	var ringToAnswer time.Duration
	if outcome == callback.OutcomeAnswered && known && !end.StartTime.IsZero() {
		ringToAnswer = max(end.StartTime.Sub(received), 0)
		d.metrics.RingToAnswer.Observe(ringToAnswer.Seconds())
	}
	if d.calls != nil {
		d.calls.Ended(c.SID, calllog.End{
			Outcome: outcome, Terminate: end.Terminate, Duration: end.Duration,
			SetupTime: timePtr(end.SetupTime), StartTime: timePtr(end.StartTime), EndTime: timePtr(end.EndTime),
			RingToAnswer: ringToAnswer.Seconds(), Stopped: len(jobs),
		})
	}
	d.log.InfoContext(ctx, "call ended", "sid", c.SID, "outcome", outcome, "terminate", end.Terminate, "stopped", len(jobs))
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// indexLocked puts a notify job in the sid index, once, so that a Call
// Event can stop it; j.mu is held.
func (j *job) indexLocked() {
	if j.indexed || j.plan.Call.Kind != callback.KindNotify {
		return
	}
	j.indexed = true
	j.d.sids.add(j, j.d.now())
}

// watch lets a Call Event stop a delivery that is about to retry: cancel
// is the delivery's. It reports false when the call ended already.
func (j *job) watch(cancel context.CancelFunc) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopped.Load() {
		return false
	}
	j.cancels = append(j.cancels, cancel)
	j.indexLocked()
	return true
}

// stop ends the job's deliveries because the call ended: retries in
// progress are cancelled and fallbacks not started never start.
func (j *job) stop() {
	j.mu.Lock()
	if j.done || j.stopped.Load() {
		j.mu.Unlock()
		return
	}
	j.stopped.Store(true)
	if j.timer != nil {
		j.timer.Stop()
	}
	for route, rs := range j.routes {
		if !rs.fellBack && len(rs.fallback) > 0 {
			rs.fellBack = true
			j.log.Add(calllog.Event{Type: calllog.EventEnded, Route: route, Outcome: "ended", Reason: "the call ended before fallback was needed"}, "")
		}
	}
	cancels := j.cancels
	j.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
}

// dedupArgs are the dedup claim's arguments for c: its sid and callee for
// notify, the event's own key for events.
func dedupArgs(c *callback.Call) (a, b, cc string) {
	if c.Kind == callback.KindNotify {
		return c.SID, c.ToServiceID, c.ToUserID
	}
	return c.DedupKey(), "\x00event", ""
}
