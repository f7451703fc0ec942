package apns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ringside/ringside/plugins/sdk"
)

// alertTemplates are the template attributes that build an alert push's
// aps dictionary, in the order they are named.
var alertTemplates = []string{"title", "subtitle", "body", "sound", "thread_id", "category"}

// aps is the dictionary APNs reads in an alert or background push.
type aps struct {
	Alert            *alert `json:"alert,omitempty"`
	Sound            string `json:"sound,omitempty"`
	ThreadID         string `json:"thread-id,omitempty"`
	Category         string `json:"category,omitempty"`
	ContentAvailable int    `json:"content-available,omitempty"`
}

// alert is aps.alert: what the notification shows.
type alert struct {
	Title    string `json:"title,omitempty"`
	Subtitle string `json:"subtitle,omitempty"`
	Body     string `json:"body,omitempty"`
}

// wire returns the body of d's push for the notifier's push type:
//
//   - alert: the payload plus an "aps" built from the alert templates
//     (body required, sound "default" unless set);
//   - background: the payload plus "aps": {"content-available": 1};
//   - voip and the rest: the payload as it is.
//
// A payload with its own "aps" is sent as it is; with alert templates set
// as well it is refused, not merged. Alert templates set on another push
// type are ignored, and logged once.
func (p *Plugin) wire(d *sdk.Delivery) ([]byte, error) {
	payload, err := wireBody(d.PayloadJSON)
	if err != nil {
		return nil, err
	}
	switch p.pushType {
	case "alert", "background":
	default:
		p.logIgnored(d)
		return payload, nil
	}

	var keys map[string]json.RawMessage
	if err := json.Unmarshal(payload, &keys); err != nil {
		return nil, errors.New("the rendered payload is not a JSON object")
	}
	_, ownAPS := keys["aps"]

	var dict aps
	if p.pushType == "background" {
		p.logIgnored(d)
		if ownAPS {
			return payload, nil
		}
		dict.ContentAvailable = 1
		return appendAPS(payload, len(keys) == 0, dict)
	}

	if ownAPS {
		if set := setTemplates(d); len(set) > 0 {
			return nil, fmt.Errorf("the payload has its own \"aps\" key and the notifier sets %s: ringside builds aps from the alert attributes and does not merge it with the payload's; drop one or the other", strings.Join(set, ", "))
		}
		return payload, nil // the app's own aps dictionary
	}
	body, ok := d.Templates["body"]
	switch {
	case !ok:
		return nil, errors.New("body is not set: an alert push needs the notifier's body, the text it shows (or an \"aps\" key of its own in payload)")
	case strings.TrimSpace(body) == "":
		return nil, errors.New("body rendered empty: an alert push without text shows nothing")
	}
	dict.Alert = &alert{Title: d.Templates["title"], Subtitle: d.Templates["subtitle"], Body: body}
	dict.Sound = DefaultSound
	if s, ok := d.Templates["sound"]; ok {
		dict.Sound = s
	}
	dict.ThreadID = d.Templates["thread_id"]
	dict.Category = d.Templates["category"]
	return appendAPS(payload, len(keys) == 0, dict)
}

// appendAPS returns the JSON object payload with the key "aps" added last;
// the payload's own keys keep their bytes and order.
func appendAPS(payload []byte, empty bool, dict aps) ([]byte, error) {
	value, err := json.Marshal(dict)
	if err != nil {
		return nil, fmt.Errorf("encode aps: %w", err)
	}
	out := make([]byte, 0, len(payload)+len(`,"aps":`)+len(value))
	if empty {
		out = append(out, '{')
	} else {
		out = append(out, payload[:len(payload)-1]...)
		out = append(out, ',')
	}
	out = append(out, `"aps":`...)
	out = append(out, value...)
	return append(out, '}'), nil
}

// setTemplates lists the alert templates d carries (those the notifier
// sets).
func setTemplates(d *sdk.Delivery) []string {
	var set []string
	for _, name := range alertTemplates {
		if _, ok := d.Templates[name]; ok {
			set = append(set, name)
		}
	}
	return set
}

// checkTemplates checks the alert templates the notifier block sets
// against its push type, when the host said which it sets (Configure's
// ctx; an older host does not, and wire's checks at delivery are then the
// only ones): an alert push needs body, unless the payload brings its own
// "aps", which then takes no alert template; another push type ignores
// them, a warning at each. ignored lists the templates warned about.
func checkTemplates(ctx context.Context, pushType string) (errs, warns sdk.Diagnostics, ignored []string) {
	if !sdk.TemplatesKnown(ctx) {
		return nil, nil, nil
	}
	var set []string
	for _, name := range alertTemplates {
		if sdk.TemplateSet(ctx, name) {
			set = append(set, name)
		}
	}
	switch {
	case pushType != "alert":
		for _, name := range set {
			warns.AddAttributeWarning(name, "ignored for push_type %s: the alert attributes build an alert push's aps", pushType)
		}
		return nil, warns, set
	case sdk.PayloadKeySet(ctx, "aps") && len(set) > 0:
		errs.AddAttributeError(set[0], "the payload has its own \"aps\" key and the notifier sets %s: ringside builds aps from the alert attributes and does not merge it with the payload's; drop one or the other", strings.Join(set, ", "))
	case sdk.PayloadKeySet(ctx, "aps"):
		// The app's own aps dictionary.
	case !slices.Contains(set, "body"):
		errs.AddAttributeError("push_type", "alert pushes need body, the text of the alert: add body = \"…\" (an expression over call, such as \"You missed a call from ${call.from_user_id}\"), or give payload an \"aps\" key of its own")
	}
	return errs, nil, nil
}

// logIgnored logs, once per notifier, the alert templates a push type other
// than alert ignores, but for those Configure warned about already.
func (p *Plugin) logIgnored(d *sdk.Delivery) {
	if len(d.Templates) == 0 || p.ignoredLogged.Load() {
		return
	}
	set := slices.DeleteFunc(setTemplates(d), func(name string) bool { return slices.Contains(p.ignoredWarned, name) })
	if len(set) == 0 || !p.ignoredLogged.CompareAndSwap(false, true) {
		return
	}
	p.log.Warn(fmt.Sprintf("apns: %s ignored for push_type %s (they build an alert push's aps)", strings.Join(set, ", "), p.pushType),
		"attributes", strings.Join(set, ","), "push_type", string(p.pushType))
}
