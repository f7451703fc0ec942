package apns

import (
	"encoding/json"
	"errors"
	"fmt"
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

// logIgnored logs, once per notifier, the alert templates a push type other
// than alert ignores.
func (p *Plugin) logIgnored(d *sdk.Delivery) {
	if len(d.Templates) == 0 || p.ignoredLogged.Load() {
		return
	}
	set := setTemplates(d)
	if len(set) == 0 || !p.ignoredLogged.CompareAndSwap(false, true) {
		return
	}
	p.log.Warn(fmt.Sprintf("apns: %s ignored for push_type %s (they build an alert push's aps)", strings.Join(set, ", "), p.pushType),
		"attributes", strings.Join(set, ","), "push_type", string(p.pushType))
}
