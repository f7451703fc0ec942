package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/calllog"
	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/plan"
	"github.com/ringside/ringside/core/internal/pluginhost"
	"github.com/ringside/ringside/plugins/sdk"
)

// replayParam stands in for cc_param in every replayed call: the call log
// never keeps it.
const replayParam = "cmluZ3NpZGUgZGlmZiByZXBsYXk" // base64url of "ringside diff replay"

// The kinds of change diff reports, in the order it prints them.
const (
	changeRoutes    = "routes"
	changeNotifiers = "notifiers"
	changeDevices   = "devices"
	changePayload   = "payload"
)

var changeKinds = []string{changeRoutes, changeNotifiers, changeDevices, changePayload}

var changeTitles = map[string]string{
	changeRoutes:    "routes changed",
	changeNotifiers: "notifiers changed",
	changeDevices:   "devices reached changed",
	changePayload:   "payload changed",
}

// diff replays recent calls through the live and a candidate config and
// lists the calls whose routes, notifiers, devices reached or payloads
// would change. Exit 1 when any would, 0 when none would; a failure
// (an unreachable admin API, an invalid config, an unreadable file) is
// exit 1 too, with a message that says "error:".
func (c *cmd) diff(args []string) int {
	fs, candidate := c.flags("diff")
	live := fs.String("live", "config.hcl", "the live (running) configuration `file`")
	addr := fs.String("admin", "", "admin listener `address` (host:port or URL); default: the live config's admin_listen")
	token := fs.String("token", "", "admin `token`; default: $RINGSIDE_ADMIN_TOKEN, else the live config's admin_token")
	callsFile := fs.String("calls", "", "replay the calls in this exported JSON `file` instead of asking the admin API")
	limit := fs.Int("limit", calllog.DefaultLimit, fmt.Sprintf("replay at most `N` recent calls (1 to %d)", calllog.MaxLimit))
	asJSON := fs.Bool("json", false, "print a JSON report")
	if exit, ok := c.parse(fs, args); !ok {
		return exit
	}
	const usage = "usage: ringside diff -config CANDIDATE [-live FILE] [-admin ADDR] [-token T] [-calls FILE] [-limit N] [-json]"
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(c.stderr, "ringside diff: unexpected argument %q\n%s\n", fs.Arg(0), usage)
		return ExitUsage
	case !flagSet(fs, "config"):
		fmt.Fprintf(c.stderr, "ringside diff: -config CANDIDATE is required\n%s\n", usage)
		return ExitUsage
	case *limit < 1 || *limit > calllog.MaxLimit:
		fmt.Fprintf(c.stderr, "ringside diff: -limit must be from 1 to %d\n", calllog.MaxLimit)
		return ExitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(c.stderr, "ringside diff: error: "+format+"\n", a...)
		return ExitError
	}

	defer pluginhost.Cleanup()
	ctx := context.Background()
	lp, ok := c.startDiffConfig(ctx, "live", *live)
	if !ok {
		return ExitError
	}
	defer lp.Close()
	cp, ok := c.startDiffConfig(ctx, "candidate", *candidate)
	if !ok {
		return ExitError
	}
	defer cp.Close()

	var cl *adminAPI
	if *callsFile == "" || flagSet(fs, "admin") {
		var err error
		if cl, err = c.adminClient(*live, *addr, *token, flagSet(fs, "live")); err != nil {
			return fail("%v", err)
		}
	}
	var calls []*replayCall
	warnings := []string{}
	source := *callsFile
	if *callsFile == "" {
		source = cl.base
		var bracketList struct{ Calls []calllog.Summary }
		if _, err := cl.get(ctx, "/v1/calls?limit="+strconv.Itoa(*limit), &bracketList); err != nil {
			return fail("%v", err)
		}
		for _, s := range bracketList.Calls {
			calls = append(calls, &replayCall{Summary: s})
		}
	} else {
		var err error
		if calls, err = readCallsFile(*callsFile); err != nil {
			return fail("%v", err)
		}
		if flagSet(fs, "limit") && len(calls) > *limit {
			calls = calls[:*limit]
		}
	}
	if err := fetchDevices(ctx, cl, calls); err != nil {
		return fail("%v", err)
	}
	if n := countUnknownDevices(calls); n > 0 {
		warnings = append(warnings, fmt.Sprintf("%d of %d calls are summaries without their devices: they are replayed with none (export full records, GET /v1/calls/{sid}, or pass -admin to fetch the devices)", n, len(calls)))
	}
	if names := callValuesRead(lp.cfg, cp.cfg); len(names) > 0 {
		warnings = append(warnings, fmt.Sprintf("the configs read %s: the call log does not keep those values, so replays carry placeholders and differences that depend on them are not visible", strings.Join(names, ", ")))
	}

	rep := diffReport{Source: source, Live: *live, Candidate: *candidate, Calls: len(calls), Warnings: warnings, Counts: map[string]int{}, Changed: []callDiff{}}
	for _, k := range changeKinds {
		rep.Counts[k] = 0
	}
	for _, rc := range calls {
		call := rc.call()
		lo, err := planReplay(ctx, lp, call, rc)
		if err != nil {
			return fail("live config: %v", err)
		}
		co, err := planReplay(ctx, cp, call, rc)
		if err != nil {
			return fail("candidate config: %v", err)
		}
		if rc.recordedDiffers(lo) {
			rep.Stale++
		}
		d := compareOutcomes(lo, co)
		if len(d.Kinds) == 0 {
			continue
		}
		d.SID, d.Caller, d.Callee, d.Type, d.Received = rc.SID, rc.Caller, rc.Callee, rc.Type, rc.Received
		d.Live, d.Candidate = lo.masked(), co.masked()
		for _, k := range d.Kinds {
			rep.Counts[k]++
		}
		rep.Changed = append(rep.Changed, d)
	}
	if rep.Stale > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d calls replay through the live config %s to other routes than they were recorded with: the running ringside serves another config, or its config changed since those calls", rep.Stale, *live))
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(c.stderr, "ringside diff: warning: %s\n", w)
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail("%v", err)
		}
	} else {
		writeDiff(c.stdout, &rep)
	}
	if len(rep.Changed) > 0 {
		return ExitError
	}
	return ExitOK
}

// startDiffConfig starts the config at path for planning; when it is
// invalid it says which of the two it is, after the diagnostics.
func (c *cmd) startDiffConfig(ctx context.Context, which, path string) (*planning, bool) {
	p, _, ok := c.startPlanning(ctx, path)
	if !ok {
		fmt.Fprintf(c.stderr, "ringside diff: error: the %s config %s is invalid\n", which, path)
	}
	return p, ok
}

// replayCall is one call to replay: its summary and the callee's devices
// as both configs see them.
type replayCall struct {
	calllog.Summary
	// Devices are the callee's devices; their tokens are whole (from the
	// devices API, kept in memory only) unless shortened.
	Devices []directory.Device
	// known reports whether Devices were found (a full record, or the
	// devices API); shortened, whether the tokens are shortened already.
	known, shortened bool
	// full reports whether the call came as a full record.
	full bool
}

// call rebuilds the callback: the call log keeps neither cc_param nor
// app_svr_data, stid or the extra keys, so cc_param is a placeholder and
// the others are empty.
func (rc *replayCall) call() *callback.Call {
	return &callback.Call{
		SID:           rc.SID,
		FromServiceID: rc.Caller.ServiceID,
		FromUserID:    rc.Caller.UserID,
		ToServiceID:   rc.Callee.ServiceID,
		ToUserID:      rc.Callee.UserID,
		Type:          rc.Type,
		Param:         replayParam,
		Received:      rc.Received,
	}
}

// show is how a device token of this call is printed.
func (rc *replayCall) show(token string) string {
	if rc.shortened {
		return token
	}
	return sdk.ShortToken(token)
}

// recordedDiffers reports whether the live replay matched other routes
// than the record says the call did. Only first callbacks that were
// answered after routing tell.
func (rc *replayCall) recordedDiffers(lo *diffOutcome) bool {
	switch rc.Status {
	case callback.StatusAccepted, callback.StatusUnrouted, callback.StatusNoDevices:
	default:
		return false
	}
	return !rc.Resumed && !slices.Equal(orEmpty(rc.Routes), orEmpty(lo.Routes))
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// readCallsFile reads exported calls: the JSON of GET /v1/calls (or
// `ringside calls -json`), an array of GET /v1/calls/{sid} records (or of
// summaries), or one record.
func readCallsFile(path string) ([]*replayCall, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	const want = "want the JSON of GET /v1/calls, a JSON array of GET /v1/calls/{sid} records, or one such record"
	b = bytes.TrimSpace(b)
	var elems []json.RawMessage
	switch {
	case len(b) > 0 && b[0] == '[':
		if err := json.Unmarshal(b, &elems); err != nil {
			return nil, fmt.Errorf("%s: %v (%s)", path, err, want)
		}
	case len(b) > 0 && b[0] == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return nil, fmt.Errorf("%s: %v (%s)", path, err, want)
		}
		if bracketList, ok := obj["calls"]; ok {
			if err := json.Unmarshal(bracketList, &elems); err != nil {
				return nil, fmt.Errorf("%s: calls: %v (%s)", path, err, want)
			}
		} else {
			elems = []json.RawMessage{b}
		}
	default:
		return nil, fmt.Errorf("%s: not JSON (%s)", path, want)
	}
	calls := make([]*replayCall, 0, len(elems))
	for i, e := range elems {
		rc, err := decodeCall(e)
		if err != nil {
			return nil, fmt.Errorf("%s: call %d: %v (%s)", path, i+1, err, want)
		}
		calls = append(calls, rc)
	}
	return calls, nil
}

// decodeCall decodes one exported call: a full record when it has events
// or devices, else a summary.
func decodeCall(raw json.RawMessage) (*replayCall, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, err
	}
	rc := &replayCall{}
	_, events := keys["events"]
	_, devices := keys["devices"]
	if events || devices {
		var rec calllog.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, err
		}
		rc.Summary, rc.full, rc.known, rc.shortened = rec.Summary, true, true, true
		for _, d := range rec.Devices {
			rc.Devices = append(rc.Devices, directory.Device{Kind: d.Kind, Token: d.Token})
		}
	} else if err := json.Unmarshal(raw, &rc.Summary); err != nil {
		return nil, err
	}
	switch {
	case rc.SID == "":
		return nil, errors.New("no sid")
	case rc.Callee.ServiceID == "" || rc.Callee.UserID == "":
		return nil, fmt.Errorf("%s: no callee", rc.SID)
	}
	return rc, nil
}

// fetchDevices asks the devices API (when cl is not nil) for the devices
// of each callee whose devices are not known, once per callee.
func fetchDevices(ctx context.Context, cl *adminAPI, calls []*replayCall) error {
	if cl == nil {
		return nil
	}
	cache := map[calllog.Party][]directory.Device{}
	for _, rc := range calls {
		if rc.known {
			continue
		}
		devs, ok := cache[rc.Callee]
		if !ok {
			var body struct {
				Devices []struct{ Kind, Token string }
			}
			path := "/v1/devices/" + url.PathEscape(rc.Callee.ServiceID) + "/" + url.PathEscape(rc.Callee.UserID)
			if _, err := cl.get(ctx, path, &body); err != nil {
				return fmt.Errorf("devices of %s: %w", party(rc.Callee), err)
			}
			devs = []directory.Device{}
			for _, d := range body.Devices {
				devs = append(devs, directory.Device{Kind: d.Kind, Token: d.Token})
			}
			cache[rc.Callee] = devs
		}
		rc.Devices, rc.known = devs, true
	}
	return nil
}

func countUnknownDevices(calls []*replayCall) int {
	n := 0
	for _, rc := range calls {
		if !rc.known {
			n++
		}
	}
	return n
}

// callValuesRead names the call values the call log does not keep (and
// replays do not carry) that a `when`, payload or template of either
// config reads.
func callValuesRead(cfgs ...*config.Config) []string {
	lost := map[string]bool{"param": false, "stid": false, "app_svr_data": false, "extra": false}
	var exprs []hcl.Expression
	for _, cfg := range cfgs {
		for _, r := range cfg.Routes {
			exprs = append(exprs, r.When)
		}
		for _, n := range cfg.Notifiers {
			exprs = append(exprs, n.Payload)
			for _, k := range sortedExprNames(n.Templates) {
				exprs = append(exprs, n.Templates[k])
			}
		}
	}
	for _, x := range exprs {
		if x == nil {
			continue
		}
		for _, tr := range x.Variables() {
			if tr.RootName() != "call" {
				continue
			}
			if len(tr) < 2 {
				// The whole call: every value.
				for k := range lost {
					lost[k] = true
				}
				continue
			}
			var name string
			switch step := tr[1].(type) {
			case hcl.TraverseAttr:
				name = step.Name
			case hcl.TraverseIndex:
				if step.Key.Type() == cty.String && step.Key.IsKnown() && !step.Key.IsNull() {
					name = step.Key.AsString()
				}
			}
			if _, ok := lost[name]; ok {
				lost[name] = true
			}
		}
	}
	var out []string
	for _, k := range []string{"param", "stid", "app_svr_data", "extra"} {
		if lost[k] {
			out = append(out, "call."+k)
		}
	}
	return out
}

func sortedExprNames(m map[string]hcl.Expression) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// diffOutcome is what one config would do with a replayed call, in the terms
// diff compares.
type diffOutcome struct {
	Status    string         `json:"status"`
	Routes    []string       `json:"routes"`
	Notifiers []diffNotifier `json:"notifiers"`
	// Devices are the devices each delivering notifier reaches, "kind
	// token" with the token shortened, by notifier.
	Devices map[string][]string `json:"devices_reached"`
	// Payloads are the rendered payloads of the notifiers that deliver or
	// are a fallback not needed yet, by notifier.
	Payloads map[string]json.RawMessage `json:"payloads"`
}

// diffNotifier is a notifier the routes name, with its role and what
// it would do: delivers, not needed (a fallback), reaches no device,
// render error or disabled.
type diffNotifier struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	State string `json:"state"`
}

// Notifier states.
const (
	diffDelivers  = "delivers"
	diffNotNeeded = "not needed"
	diffNoDevice  = "reaches no device"
	diffNoRender  = "payload does not render"
	diffDisabled  = "disabled"
)

// planReplay plans call through p with the call's device snapshot, delivering
// nothing.
func planReplay(ctx context.Context, p *planning, call *callback.Call, rc *replayCall) (*diffOutcome, error) {
	store := directory.NewMemory()
	for _, d := range rc.Devices {
		if err := store.Put(ctx, call.ToServiceID, call.ToUserID, d.Kind, d.Token, call.Received); err != nil {
			return nil, err
		}
	}
	// The plan itself, not explain's view of it: explain shortens the
	// tokens, and a token from the call log is shortened already.
	planner := p.rt.Planner(store)
	pl, err := planner.Plan(ctx, call, callexpr.Context(call))
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", call.SID, err)
	}
	e := explanation(pl)
	o := &diffOutcome{Status: e.Status, Routes: orEmpty(e.Routes), Notifiers: []diffNotifier{}, Devices: map[string][]string{}, Payloads: map[string]json.RawMessage{}}
	for _, n := range e.Notifiers {
		state := diffDelivers
		switch {
		case n.Disabled != "":
			state = diffDisabled
		case n.RenderError != "":
			state = diffNoRender
		case !n.Active && n.Role == plan.RoleFallback:
			state = diffNotNeeded
		case !n.Active:
			state = diffNoDevice
		}
		o.Notifiers = append(o.Notifiers, diffNotifier{Name: n.Name, Role: n.Role, State: state})
		// A payload matters where it may be sent: a notifier that
		// delivers, or a fallback that may be needed later.
		if state != diffDelivers && state != diffNotNeeded {
			continue
		}
		if _, seen := o.Payloads[n.Name]; !seen {
			o.Payloads[n.Name] = diffCanonical(n.Payload)
		}
	}
	for _, d := range pl.Deliveries {
		if !d.Active || d.Notifier.Kind == "" {
			continue
		}
		devs := []string{}
		for _, dev := range d.Devices {
			devs = append(devs, dev.Kind+" "+rc.show(dev.Token))
		}
		slices.Sort(devs)
		o.Devices[d.Notifier.Name] = devs
	}
	return o, nil
}

// diffCanonical re-encodes raw with sorted keys and no spaces.
func diffCanonical(raw json.RawMessage) json.RawMessage {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

// diffMasked are payload keys whose values diff never prints.
var diffMasked = map[string]bool{"cc_param": true}

const diffMaskedValue = `"(not shown)"`

// masked is o as the report shows it: cc_param hidden in the payloads.
func (o *diffOutcome) masked() *diffOutcome {
	m := *o
	m.Payloads = make(map[string]json.RawMessage, len(o.Payloads))
	for name, p := range o.Payloads {
		var obj map[string]json.RawMessage
		if json.Unmarshal(p, &obj) != nil {
			m.Payloads[name] = p
			continue
		}
		for k := range obj {
			if diffMasked[k] {
				obj[k] = json.RawMessage(diffMaskedValue)
			}
		}
		b, _ := json.Marshal(obj)
		m.Payloads[name] = b
	}
	return &m
}

// diffReport is what diff found; -json prints it.
type diffReport struct {
	Source    string   `json:"source"`
	Live      string   `json:"live"`
	Candidate string   `json:"candidate"`
	Calls     int      `json:"calls"`
	Warnings  []string `json:"warnings"`
	// Stale counts the calls whose live replay matched other routes than
	// the record says they did.
	Stale int `json:"stale"`
	// Counts are the changed calls by kind of change.
	Counts  map[string]int `json:"counts"`
	Changed []callDiff     `json:"changed"`
}

// callDiff is one call that would change.
type callDiff struct {
	SID      string        `json:"sid"`
	Received time.Time     `json:"received"`
	Caller   calllog.Party `json:"caller"`
	Callee   calllog.Party `json:"callee"`
	Type     string        `json:"type"`
	// Kinds are the kinds of change, in changeKinds order; Details says
	// each in words.
	Kinds     []string          `json:"kinds"`
	Details   map[string]string `json:"details"`
	Live      *diffOutcome      `json:"live"`
	Candidate *diffOutcome      `json:"candidate"`
}

// compareOutcomes returns the kinds of change from a to b and each in words.
func compareOutcomes(a, b *diffOutcome) callDiff {
	d := callDiff{Kinds: []string{}, Details: map[string]string{}}
	add := func(kind, detail string) {
		if detail != "" {
			d.Kinds = append(d.Kinds, kind)
			d.Details[kind] = detail
		}
	}
	if !slices.Equal(a.Routes, b.Routes) {
		add(changeRoutes, fmt.Sprintf("routes: %s → %s", bracketList(a.Routes), bracketList(b.Routes)))
	}
	add(changeNotifiers, notifierChanges(a.Notifiers, b.Notifiers))
	add(changeDevices, deviceChanges(a.Devices, b.Devices))
	add(changePayload, payloadChanges(a.Payloads, b.Payloads))
	return d
}

func bracketList(s []string) string { return "[" + strings.Join(s, ", ") + "]" }

// notifierChanges says which notifiers (by name and role) one side names
// and the other does not, and whose state differs.
func notifierChanges(a, b []diffNotifier) string {
	type key struct{ name, role string }
	states := func(ns []diffNotifier) ([]key, map[key]string) {
		var order []key
		m := map[key]string{}
		for _, n := range ns {
			k := key{n.Name, n.Role}
			prev, seen := m[k]
			if !seen {
				order = append(order, k)
			}
			if !seen || prev != diffDelivers && n.State == diffDelivers {
				m[k] = n.State
			}
		}
		return order, m
	}
	ao, am := states(a)
	bo, bm := states(b)
	var out []string
	for _, k := range ao {
		switch bs, ok := bm[k]; {
		case !ok:
			out = append(out, fmt.Sprintf("%s (%s) removed", k.name, k.role))
		case bs != am[k]:
			out = append(out, fmt.Sprintf("%s (%s) %s → %s", k.name, k.role, am[k], bs))
		}
	}
	for _, k := range bo {
		if _, ok := am[k]; !ok {
			out = append(out, fmt.Sprintf("%s (%s) added, %s", k.name, k.role, bm[k]))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "notifiers: " + strings.Join(out, "; ")
}

// deviceChanges says, per notifier, which devices it reaches on each side
// when they differ.
func deviceChanges(a, b map[string][]string) string {
	var out []string
	for _, name := range diffKeys(a, b) {
		da, db := a[name], b[name]
		if slices.Equal(da, db) {
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s → %s", name, deviceList(da), deviceList(db)))
	}
	if len(out) == 0 {
		return ""
	}
	return "devices: " + strings.Join(out, "; ")
}

func deviceList(d []string) string {
	if len(d) == 0 {
		return "none"
	}
	return strings.Join(d, ", ")
}

// payloadChanges says, for each notifier rendered on both sides, which
// payload keys differ; cc_param's value is never shown.
func payloadChanges(a, b map[string]json.RawMessage) string {
	var out []string
	for _, name := range diffKeys(a, b) {
		pa, okA := a[name]
		pb, okB := b[name]
		if !okA || !okB || bytes.Equal(pa, pb) {
			continue
		}
		var oa, ob map[string]json.RawMessage
		if json.Unmarshal(pa, &oa) != nil || json.Unmarshal(pb, &ob) != nil {
			out = append(out, fmt.Sprintf("notifier %s: payload differs", name))
			continue
		}
		var keys []string
		for _, k := range diffKeys(oa, ob) {
			va, inA := oa[k]
			vb, inB := ob[k]
			switch {
			case inA && inB && bytes.Equal(va, vb):
			case diffMasked[k]:
				keys = append(keys, fmt.Sprintf("payload.%s changed (value not shown)", k))
			case !inB:
				keys = append(keys, fmt.Sprintf("payload.%s %s removed", k, clipJSON(va)))
			case !inA:
				keys = append(keys, fmt.Sprintf("payload.%s %s added", k, clipJSON(vb)))
			default:
				keys = append(keys, fmt.Sprintf("payload.%s %s → %s", k, clipJSON(va), clipJSON(vb)))
			}
		}
		out = append(out, fmt.Sprintf("notifier %s: %s", name, strings.Join(keys, ", ")))
	}
	return strings.Join(out, "; ")
}

// clipJSON shortens a JSON value for a line of output.
func clipJSON(v json.RawMessage) string {
	const most = 60
	if r := []rune(string(v)); len(r) > most {
		return string(r[:most-1]) + "…"
	}
	return string(v)
}

func diffKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// writeDiff prints the report grouped by kind of change, then the count.
func writeDiff(w io.Writer, rep *diffReport) {
	for _, kind := range changeKinds {
		fmt.Fprintf(w, "%s: %s\n", changeTitles[kind], callCount(rep.Counts[kind]))
		for _, d := range rep.Changed {
			if detail, ok := d.Details[kind]; ok {
				fmt.Fprintf(w, "  %s %s→%s %s  %s\n", d.SID, d.Caller.UserID, d.Callee.UserID, d.Type, detail)
			}
		}
	}
	fmt.Fprintf(w, "%d of %s would change (replayed from %s, live %s, candidate %s)\n",
		len(rep.Changed), callCount(rep.Calls), rep.Source, rep.Live, rep.Candidate)
}

// callCount is "1 call" or "N calls".
func callCount(n int) string {
	if n == 1 {
		return "1 call"
	}
	return fmt.Sprintf("%d calls", n)
}
