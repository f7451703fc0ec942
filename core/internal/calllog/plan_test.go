package calllog

import (
	"testing"

	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/plan"
	"github.com/ringside/ringside/plugins/sdk"
)

func TestDescribePlan(t *testing.T) {
	ios := &plan.Notifier{Name: "ios", Plugin: "apns", Kind: "apns"}
	backup := &plan.Notifier{Name: "backup", Plugin: "apns", Kind: "apns"}
	hook := &plan.Notifier{Name: "hook", Plugin: "webhook"}
	a := directory.Device{Kind: "apns", Token: "aaaaaa1111111111111111bbbb"}
	phone := directory.Device{Kind: "phone", Token: "+818012345678"}
	pl := &plan.Plan{
		Deliveries: []*plan.Delivery{
			{Notifier: hook, Route: "r1", Role: plan.RoleNotify, Active: true},
			// A fallback not needed gives its device back to a later route.
			{Notifier: backup, Route: "r1", Role: plan.RoleFallback, Devices: []directory.Device{a}},
			{Notifier: ios, Route: "r2", Role: plan.RoleNotify, Active: true, Devices: []directory.Device{a}},
		},
		Disabled: []plan.Disabled{{Name: "sms", Plugin: "sms", Kind: "phone", Route: "r2", Role: plan.RoleFallback, Reason: "TWILIO_ACCOUNT_SID is not set"}},
		Unserved: []directory.Device{phone},
	}
	notifiers, devices := DescribePlan(pl)
	want := []Notifier{
		{Name: "hook", Plugin: "webhook", Route: "r1", Role: "notify", Active: true},
		{Name: "backup", Plugin: "apns", Route: "r1", Role: "fallback", Kind: "apns", Devices: 1, Reason: "fallback not needed yet: a notify notifier reaches a device"},
		{Name: "ios", Plugin: "apns", Route: "r2", Role: "notify", Kind: "apns", Active: true, Devices: 1},
		{Name: "sms", Plugin: "sms", Route: "r2", Role: "fallback", Kind: "phone", Reason: "disabled: TWILIO_ACCOUNT_SID is not set"},
	}
	if len(notifiers) != len(want) {
		t.Fatalf("notifiers %+v", notifiers)
	}
	for i := range want {
		if notifiers[i] != want[i] {
			t.Errorf("notifier %d: %+v, want %+v", i, notifiers[i], want[i])
		}
	}
	if len(devices) != 2 || devices[0] != (Device{"apns", sdk.ShortToken(a.Token)}) || devices[1].Kind != "phone" {
		t.Errorf("devices %+v; want the apns device once (shortened) and the unserved phone", devices)
	}
}
