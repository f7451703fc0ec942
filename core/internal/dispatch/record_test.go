package dispatch

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ringside/ringside/core/internal/route"
)

// The hand-written record encoder says what encoding/json would.
func TestEncodeRecordMatchesEncodingJSON(t *testing.T) {
	f := newFixture(t)
	f.put(t, "apns", t0, "a\"1")
	f.put(t, "phone", t0.Add(time.Nanosecond), "+819012345678")
	p := f.planner(&route.Route{Name: "r", Notify: []string{"ios", "hook"}, Fallback: []string{"sms"}})
	c := testCall()
	c.Received = time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	c.Extra = map[string]string{"k\u2028": "v<&>\x01", "x": ""}
	c.Stid = "st\"id"
	f.notifiers["sms"].Templates = nil
	pl, err := p.Plan(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	pl.Deliveries[0].Templates = map[string]string{"body": "hi \"there\"\n"}
	got, err := encodeRecord(pl)
	if err != nil {
		t.Fatal(err)
	}
	r := record{Call: pl.Call, Status: pl.Status, Routes: pl.Routes}
	for _, d := range pl.Deliveries {
		r.Deliveries = append(r.Deliveries, recordDelivery{
			Notifier: d.Notifier.Name, Route: d.Route, Role: d.Role, Active: d.Active,
			Devices: d.Devices, Payload: d.Payload, Templates: d.Templates, Deadline: d.Deadline,
		})
	}
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	_ = json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var back record
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Call.Received.Equal(c.Received) || back.Call.Extra["k\u2028"] != "v<&>\x01" || back.Deliveries[0].Devices[0].Token != "a\"1" {
		t.Errorf("round trip: got %+v", back)
	}
}
