package calllog

import (
	"slices"

	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/plan"
)

// DescribePlan describes every notifier the plan's routes name, and the
// callee's devices it found.
func DescribePlan(pl *plan.Plan) ([]Notifier, []Device) {
	n := len(pl.Deliveries) + len(pl.RenderErrors) + len(pl.Disabled)
	if n == 0 {
		return nil, nil
	}
	notifiers := make([]Notifier, 0, n)
	var devices []Device
	// A plan gives each device to one delivery at most, and Unserved are
	// the devices no delivery got; but a notifier that did not render, or
	// a fallback not needed, leaves its devices to a later notifier. Only
	// then are repeats looked for.
	var given map[directory.Device]bool
	addDevices := func(devs []directory.Device) {
		for _, dev := range devs {
			if given != nil {
				key := directory.Device{Kind: dev.Kind, Token: dev.Token}
				if given[key] {
					continue
				}
				given[key] = true
			}
			devices = append(devices, NewDevice(dev))
		}
	}
	if len(pl.RenderErrors) > 0 || slices.ContainsFunc(pl.Deliveries, func(dl *plan.Delivery) bool { return !dl.Active && len(dl.Devices) > 0 }) {
		given = map[directory.Device]bool{}
	}
	for _, dl := range pl.Deliveries {
		ln := Notifier{Name: dl.Notifier.Name, Plugin: dl.Notifier.Plugin, Route: dl.Route, Role: dl.Role,
			Kind: dl.Notifier.Kind, Active: dl.Active, Devices: len(dl.Devices)}
		switch {
		case dl.Active:
		case dl.Role == plan.RoleFallback && (dl.Notifier.Kind == "" || len(dl.Devices) > 0):
			ln.Reason = "fallback not needed yet: a notify notifier reaches a device"
		default:
			ln.Reason = "no " + dl.Notifier.Kind + " device"
		}
		notifiers = append(notifiers, ln)
		addDevices(dl.Devices)
	}
	for _, dl := range pl.RenderErrors {
		notifiers = append(notifiers, Notifier{Name: dl.Notifier.Name, Plugin: dl.Notifier.Plugin, Route: dl.Route,
			Role: dl.Role, Kind: dl.Notifier.Kind, Devices: len(dl.Devices), Reason: "skipped: " + dl.Err.Error()})
		addDevices(dl.Devices)
	}
	for _, dn := range pl.Disabled {
		notifiers = append(notifiers, Notifier{Name: dn.Name, Plugin: dn.Plugin, Route: dn.Route,
			Role: dn.Role, Kind: dn.Kind, Reason: "disabled: " + dn.Reason})
	}
	addDevices(pl.Unserved)
	return notifiers, devices
}
