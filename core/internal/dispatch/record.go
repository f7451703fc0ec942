package dispatch

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/journal"
	"github.com/ringside/ringside/core/internal/plan"
)

// record is how an accepted callback is kept in the journal.
type record struct {
	Call       *callback.Call   `json:"call"`
	Status     string           `json:"status"`
	Routes     []string         `json:"routes"`
	Deliveries []recordDelivery `json:"deliveries"`
}

type recordDelivery struct {
	Notifier  string             `json:"notifier"`
	Route     string             `json:"route"`
	Role      string             `json:"role"`
	Active    bool               `json:"active"`
	Devices   []directory.Device `json:"devices,omitempty"`
	Payload   json.RawMessage    `json:"payload"`
	Templates map[string]string  `json:"templates,omitempty"`
	Deadline  time.Time          `json:"deadline"`
}

// encodeRecord writes the record by appending, the payload copied as it is
// (encoding/json would validate and compact it again); decoding uses
// encoding/json with the same field names.
func encodeRecord(p *plan.Plan) ([]byte, error) {
	c := p.Call
	size := 512 + len(c.Param) + len(c.AppSvrData)
	for _, d := range p.Deliveries {
		size += 256 + len(d.Payload) + 96*len(d.Devices)
	}
	b := make([]byte, 0, size)
	str := callback.AppendJSONString
	b = append(b, `{"call":{"SID":`...)
	b = str(b, c.SID)
	for _, f := range [...]struct{ k, v string }{
		{"FromServiceID", c.FromServiceID}, {"FromUserID", c.FromUserID},
		{"ToServiceID", c.ToServiceID}, {"ToUserID", c.ToUserID}, {"Type", c.Type},
		{"Param", c.Param}, {"Stid", c.Stid}, {"AppSvrData", c.AppSvrData},
	} {
		b = append(b, ',')
		b = str(b, f.k)
		b = append(b, ':')
		b = str(b, f.v)
	}
	if c.Kind != callback.KindNotify {
		// An event keeps its query, parsed again on resume.
		b = append(b, `,"Kind":`...)
		b = strconv.AppendUint(b, uint64(c.Kind), 10)
		b = append(b, `,"Query":`...)
		b = str(b, c.Query)
	}
	b = append(b, `,"Extra":`...)
	b = appendStringMap(b, c.Extra)
	b = append(b, `,"Received":"`...)
	b = c.Received.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `"},"status":`...)
	b = str(b, p.Status)
	b = append(b, `,"routes":`...)
	b = callback.AppendJSONStrings(b, p.Routes)
	b = append(b, `,"deliveries":[`...)
	for i, d := range p.Deliveries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"notifier":`...)
		b = str(b, d.Notifier.Name)
		b = append(b, `,"route":`...)
		b = str(b, d.Route)
		b = append(b, `,"role":`...)
		b = str(b, d.Role)
		b = append(b, `,"active":`...)
		b = strconv.AppendBool(b, d.Active)
		if len(d.Devices) > 0 {
			b = append(b, `,"devices":[`...)
		}
		for k, dev := range d.Devices {
			if k > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"Kind":`...)
			b = str(b, dev.Kind)
			b = append(b, `,"Token":`...)
			b = str(b, dev.Token)
			b = append(b, `,"UpdatedAt":"`...)
			b = dev.UpdatedAt.AppendFormat(b, time.RFC3339Nano)
			b = append(b, `"}`...)
		}
		if len(d.Devices) > 0 {
			b = append(b, ']')
		}
		b = append(b, `,"payload":`...)
		if len(d.Payload) == 0 {
			b = append(b, "null"...)
		} else {
			b = append(b, d.Payload...)
		}
		if len(d.Templates) > 0 {
			b = append(b, `,"templates":`...)
			b = appendStringMap(b, d.Templates)
		}
		b = append(b, `,"deadline":"`...)
		b = d.Deadline.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `"}`...)
	}
	b = append(b, "]}"...)
	return b, nil
}

func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	first := true
	for k, v := range m {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = callback.AppendJSONString(b, k)
		b = append(b, ':')
		b = callback.AppendJSONString(b, v)
	}
	return append(b, '}')
}

// Resume restarts the deliveries of journal entries left by a previous run:
// devices already delivered are skipped, a route that delivered anything
// does not fall back, deliveries past their deadline are dropped, and the
// callback is claimed in the dedup window again. It returns how many
// callbacks it resumed. In cluster mode an entry whose work Redis holds
// (recorded there too, so taken over by a live replica or finished) is not
// resumed: its takeover delivers it.
func (d *Dispatcher) Resume(ctx context.Context, entries []journal.Entry) int {
	return d.resume(ctx, entries, false)
}

// ResumeTaken starts the deliveries of work taken over from a replica that
// died (cluster mode), as Resume does for the journal: only to the devices
// not marked delivered, never past a delivery's deadline, and under the
// same journal key, so the idempotency ids are those the dead replica used.
// Its marks go to Redis.
func (d *Dispatcher) ResumeTaken(ctx context.Context, entries []journal.Entry) int {
	return d.resume(ctx, entries, true)
}

func (d *Dispatcher) resume(ctx context.Context, entries []journal.Entry, taken bool) int {
	p := d.planner.Load()
	now := d.now()
	resumed := 0
	for _, e := range entries {
		var r record
		if err := json.Unmarshal(e.Data, &r); err != nil || r.Call == nil || len(r.Routes) == 0 {
			d.log.Error("journal entry unreadable; dropped", "key", e.Key, "error", err)
			d.finishEntry(e.Key, taken)
			continue
		}
		if r.Call.Kind != callback.KindNotify {
			ev, _, err := callback.ParseEvent(r.Call.Kind, r.Call.Query, 0, r.Call.Received)
			if err != nil {
				d.log.Error("journal entry's event unreadable; dropped", "key", e.Key, "error", err)
				d.finishEntry(e.Key, taken)
				continue
			}
			r.Call = ev
		}
		ka, kb, kc := dedupArgs(r.Call)
		if !taken && d.shared != nil {
			held, err := d.shared.Held(ctx, keyOf(ka, kb, kc))
			if err != nil {
				d.log.Warn("cluster: cannot tell whether another replica took this journaled callback over; resuming it here", "sid", r.Call.SID, "error", err)
			} else if held {
				d.log.Info("journaled callback is in redis too; its takeover delivers it, not resumed here", "sid", r.Call.SID)
				d.finishEntry(e.Key, false)
				continue
			}
		}
		pl := &plan.Plan{Call: r.Call, Status: r.Status, Routes: r.Routes, Reachable: true}
		deliveredRoutes := map[string]bool{}
		var before []calllog.Event // what the journal says was delivered before the restart
		for _, rd := range r.Deliveries {
			n := p.Notifiers[rd.Notifier]
			if n == nil {
				d.log.Warn("journal: notifier no longer configured; its deliveries are dropped", "sid", r.Call.SID, "notifier", rd.Notifier)
				continue
			}
			dl := &plan.Delivery{Notifier: n, Route: rd.Route, Role: rd.Role, Active: rd.Active,
				Payload: rd.Payload, Templates: rd.Templates, Deadline: rd.Deadline}
			if n.Kind == "" {
				if e.Delivered[[2]string{rd.Notifier, ""}] {
					deliveredRoutes[rd.Route] = true
					dl.Active = false
					before = append(before, deliveredBefore(rd, nil, taken))
				}
			} else {
				for _, dev := range rd.Devices {
					if e.Delivered[[2]string{rd.Notifier, dev.Token}] {
						deliveredRoutes[rd.Route] = true
						before = append(before, deliveredBefore(rd, &dev, taken))
						continue
					}
					dl.Devices = append(dl.Devices, dev)
				}
				if len(dl.Devices) == 0 {
					dl.Active = false
				}
			}
			if !dl.Deadline.After(now) {
				dl.Active = false
			}
			pl.Deliveries = append(pl.Deliveries, dl)
		}
		d.dedup.Claim(ka, kb, kc, r.Call.Received)
		j := d.newJob(e.Key, pl)
		j.shared = taken
		for route := range deliveredRoutes {
			if rs := j.routes[route]; rs != nil {
				rs.delivered = true
			}
		}
		if taken {
			d.log.Info("taking over callback of a replica that died", "sid", r.Call.SID, "routes", r.Routes)
		} else {
			d.log.Info("resuming journaled callback", "sid", r.Call.SID, "routes", r.Routes)
		}
		j.log = d.logResumed(r, pl, before)
		d.jobs.Add(1) // resumed work is not bounded: it was accepted already
		j.start(ctx)
		resumed++
	}
	return resumed
}

// deliveredBefore is the call log's event for a delivery the journal
// marked before a restart; dev is nil for a notifier without devices.
func deliveredBefore(rd recordDelivery, dev *directory.Device, taken bool) calllog.Event {
	reason := "delivered before the restart"
	if taken {
		reason = "delivered by the replica that died, before the takeover"
	}
	e := calllog.Event{Type: calllog.EventAttempt, Notifier: rd.Notifier, Route: rd.Route,
		Outcome: "delivered", Reason: reason}
	if dev != nil {
		ld := calllog.NewDevice(*dev)
		e.Device = &ld
	}
	return e
}

// logResumed starts the call log record of a resumed call: the call, the
// notifiers and devices as the journal kept them, and what was delivered
// before the restart. The attempts before the restart that delivered
// nothing are not in the journal and not in the record.
func (d *Dispatcher) logResumed(r record, pl *plan.Plan, before []calllog.Event) *calllog.Entry {
	if d.calls == nil {
		return nil
	}
	full := &plan.Plan{Call: r.Call, Status: r.Status, Routes: r.Routes}
	for _, rd := range r.Deliveries {
		n := &plan.Notifier{Name: rd.Notifier}
		for _, dl := range pl.Deliveries {
			if dl.Notifier.Name == rd.Notifier {
				n = dl.Notifier
			}
		}
		full.Deliveries = append(full.Deliveries, &plan.Delivery{Notifier: n, Route: rd.Route, Role: rd.Role, Active: rd.Active, Devices: rd.Devices})
	}
	c := d.logCall(context.Background(), r.Call, full, r.Status, true)
	for _, e := range before {
		c.Add(e, "")
	}
	return c
}

// finishEntry removes the record of key: from Redis when shared, else
// from the journal.
func (d *Dispatcher) finishEntry(key string, shared bool) {
	switch {
	case shared:
		d.shared.Finish(key)
	case d.journal != nil:
		d.journal.Finish(key)
	}
}
