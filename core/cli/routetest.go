package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/config"
	"github.com/ringside/ringside/core/internal/directory"
	"github.com/ringside/ringside/core/internal/plan"
)

// testSuffix ends the name of every route test file.
const testSuffix = ".test.hcl"

// The call a test sends when its call block leaves a field out. param is a
// harmless fixed value ("ringside test" in base64), never a real cc_param.
var callDefaults = []struct{ key, value string }{
	{"sid", "00000000-0000-4000-8000-000000000000"},
	{"from_service_id", "test-service"},
	{"from_user_id", "caller"},
	{"to_service_id", "test-service"},
	{"to_user_id", "callee"},
	{"type", "A"},
	{"param", "cmluZ3NpZGUgdGVzdA=="},
	{"stid", ""},
	{"app_svr_data", ""},
}

// groupDefaults are the keys a test's Group Call Event has unless its call
// block sets them.
var groupDefaults = []struct{ key, value string }{
	{"sid", "00000000000000000000000000000000"},
	{"svc_id", "test-service"},
	{"id", "room"},
	{"user_svc_id", "test-service"},
	{"user_id", "callee"},
	{"sc", "S"},
}

// callKeys are the keys a test's call of kind has, with their defaults
// ("" for absent): notify's, a Call Event's (notify's without param, and
// the end of the call) or a Group Call Event's.
func callKeys(kind callback.Kind) []struct{ key, value string } {
	keys := callDefaults
	switch kind {
	case callback.KindNotify:
		return keys
	case callback.KindCallEvent:
		keys = slices.DeleteFunc(slices.Clone(keys), func(d struct{ key, value string }) bool { return d.key == "param" })
	case callback.KindGroupCallEvent:
		keys = slices.Clone(groupDefaults)
	}
	for _, f := range callexpr.FieldsOf(kind) {
		if f != "outcome" && !slices.ContainsFunc(keys, func(d struct{ key, value string }) bool { return d.key == f }) {
			keys = append(keys, struct{ key, value string }{f, ""})
		}
	}
	return keys
}

// test runs the route tests of the files and folders given, or of the
// config's folder: each test plans one call against the config, with its
// own devices, and compares the plan with its expectations. Nothing is
// delivered.
func (c *cmd) test(args []string) int {
	fs, path := c.flags("test")
	asJSON := fs.Bool("json", false, "print one JSON object per test, one a line")
	run := fs.String("run", "", "run only the tests whose name matches `regexp`")
	if exit, ok := c.parse(fs, args); !ok {
		return exit
	}
	re, err := regexp.Compile(*run)
	if err != nil {
		fmt.Fprintf(c.stderr, "ringside test: -run: %v\n", err)
		return ExitUsage
	}
	names, err := testFiles(*path, fs.Args())
	if err != nil {
		fmt.Fprintf(c.stderr, "ringside test: %v\n", err)
		return ExitUsage
	}
	files := map[string]*hcl.File{}
	tests, diags := parseTestFiles(names, files)
	if diags.HasErrors() {
		config.WriteDiagnostics(c.stderr, files, diags)
		return ExitError
	}
	return c.withPlanning(*path, func(ctx context.Context, p *planning) int {
		diags = append(diags, checkTests(tests, p.cfg)...)
		if len(diags) > 0 {
			config.WriteDiagnostics(c.stderr, files, diags)
			if diags.HasErrors() {
				return ExitError
			}
		}
		ran, failed := 0, 0
		for _, t := range tests {
			if !re.MatchString(t.name) {
				continue
			}
			ran++
			res := t.run(ctx, p)
			if !res.Pass {
				failed++
			}
			if *asJSON {
				b, err := json.Marshal(res)
				if err != nil {
					fmt.Fprintf(c.stderr, "ringside test: %v\n", err)
					return ExitError
				}
				fmt.Fprintf(c.stdout, "%s\n", b)
				continue
			}
			writeTestResult(c.stdout, res)
		}
		if ran == 0 {
			fmt.Fprintf(c.stderr, "ringside test: no test matches -run %q\n", *run)
		}
		if !*asJSON {
			if failed > 0 {
				fmt.Fprintf(c.stdout, "FAIL  %s, %d failed\n", testCount(ran), failed)
			} else {
				fmt.Fprintf(c.stdout, "ok  %s\n", testCount(ran))
			}
		}
		if failed > 0 {
			return ExitError
		}
		return ExitOK
	})
}

// testCount is "1 test" or "N tests".
func testCount(n int) string {
	if n == 1 {
		return "1 test"
	}
	return fmt.Sprintf("%d tests", n)
}

// testFiles returns the test files to run: the *.test.hcl files of the
// config's folder when paths is empty, else each file named and the
// *.test.hcl files of each folder named.
func testFiles(configPath string, paths []string) ([]string, error) {
	if len(paths) == 0 {
		dir := filepath.Dir(configPath)
		names, err := testFilesIn(dir)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("no test files in %s (the folder of %s): route test files are named *%s", dir, configPath, testSuffix)
		}
		return names, nil
	}
	var out []string
	for _, path := range paths {
		if strings.HasPrefix(path, "-") {
			return nil, fmt.Errorf("unexpected argument %q: flags go before the paths", path)
		}
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			if !strings.HasSuffix(path, testSuffix) {
				return nil, fmt.Errorf("%s: route test files are named *%s", path, testSuffix)
			}
			out = append(out, path)
			continue
		}
		names, err := testFilesIn(path)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("no test files in %s: route test files are named *%s", path, testSuffix)
		}
		out = append(out, names...)
	}
	return slices.Compact(out), nil
}

// testFilesIn lists the *.test.hcl files of dir (not its subfolders), by
// name.
func testFilesIn(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), testSuffix) {
			names = append(names, filepath.Join(dir, e.Name()))
		}
	}
	return names, nil
}

// routeTest is one test block.
type routeTest struct {
	name string
	def  hcl.Range // the block's first line

	kind      callback.Kind             // the call's kind: on in the call block
	fields    map[string]*hcl.Attribute // the call's attributes set
	extra     map[string]string
	callRange hcl.Range // the call block, or the test block without one
	call      *callback.Call

	devices []testDevice
	checks  []*expectation
	refs    []nameRef
}

type testDevice struct {
	kind, token string
	at          hcl.Range // the kind label
}

// nameRef is a notifier or route a test names, checked against the config.
type nameRef struct {
	kind, name string // kind: "notifier" or "route"
	rng        hcl.Range
}

// expectation is one attribute (or notifier block) of an expect block.
type expectation struct {
	at       hcl.Range
	what     string
	expected any
	// check compares the plan with expected; it returns what the plan has
	// and, when it differs, why (a note for what) and false.
	check func(e explained) (got any, note string, ok bool)
	// where, when set, narrows at for a failed check (a payload's key).
	where func(e explained) hcl.Range
}

// testResult is what -json prints for a test.
type testResult struct {
	Name     string        `json:"name"`
	File     string        `json:"file"`
	Line     int           `json:"line"`
	Pass     bool          `json:"pass"`
	Failures []testFailure `json:"failures"`
}

type testFailure struct {
	At       string          `json:"at"`
	What     string          `json:"what"`
	Expected json.RawMessage `json:"expected"`
	Got      json.RawMessage `json:"got"`
	line     int
}

var (
	fileSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "test", LabelNames: []string{"name"}}}}
	testSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "call"}, {Type: "device", LabelNames: []string{"kind"}}, {Type: "expect"},
	}}
	callSchema = func() *hcl.BodySchema {
		s := &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "extra"}, {Name: "on"}}}
		for _, k := range allCallKeys() {
			s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: k})
		}
		return s
	}()
	deviceSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "token"}}}
	expectSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "status"}, {Name: "routes"}, {Name: "fallback"}, {Name: "no_notifier"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "notifier", LabelNames: []string{"name"}}},
	}
	notifierSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "role"}, {Name: "delivers"}, {Name: "disabled"}, {Name: "route"}, {Name: "devices"}, {Name: "payload"},
	}}
)

// valueContext evaluates a test file's values: HCL's functions, no
// variables.
var valueContext = &hcl.EvalContext{Functions: callexpr.Functions()}

// parseTestFiles parses and decodes the test files, keeping each parsed
// file in files for the diagnostics.
func parseTestFiles(names []string, files map[string]*hcl.File) ([]*routeTest, hcl.Diagnostics) {
	var tests []*routeTest
	var diags hcl.Diagnostics
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read the test file", Detail: err.Error()})
			continue
		}
		f, d := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
		files[name] = f
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		content, d := f.Body.Content(fileSchema)
		diags = append(diags, d...)
		seen := map[string]hcl.Range{}
		for _, b := range content.Blocks {
			name := b.Labels[0]
			if prev, dup := seen[name]; dup {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Duplicate test",
					Detail:  fmt.Sprintf("A test named %q is already defined at line %d.", name, prev.Start.Line),
					Subject: b.LabelRanges[0].Ptr(),
				})
				continue
			}
			seen[name] = b.DefRange
			if strings.TrimSpace(name) == "" {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Empty test name",
					Detail:  "A test's name says what it checks, as in test \"video calls ring the iPhone\".",
					Subject: b.LabelRanges[0].Ptr(),
				})
			}
			t, d := decodeTest(b)
			diags = append(diags, d...)
			tests = append(tests, t)
		}
		if len(content.Blocks) == 0 && !diags.HasErrors() {
			end := f.Body.MissingItemRange()
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "No test in the file",
				Detail:  `A route test file holds test "NAME" { call { … } expect { … } } blocks.`,
				Subject: &end,
			})
		}
	}
	sortDiagnostics(diags)
	return tests, diags
}

// sortDiagnostics orders diags by file, in the order the files were
// read, then by position.
func sortDiagnostics(diags hcl.Diagnostics) {
	files := map[string]int{}
	for _, d := range diags {
		if d.Subject != nil {
			if _, ok := files[d.Subject.Filename]; !ok {
				files[d.Subject.Filename] = len(files)
			}
		}
	}
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		if a.Subject == nil || b.Subject == nil {
			return 0
		}
		if c := files[a.Subject.Filename] - files[b.Subject.Filename]; c != 0 {
			return c
		}
		return a.Subject.Start.Byte - b.Subject.Start.Byte
	})
}

func decodeTest(b *hcl.Block) (*routeTest, hcl.Diagnostics) {
	t := &routeTest{name: b.Labels[0], def: b.DefRange, callRange: b.DefRange}
	content, diags := b.Body.Content(testSchema)
	var call, expect *hcl.Block
	for _, sub := range content.Blocks {
		switch sub.Type {
		case "call", "expect":
			first := &call
			if sub.Type == "expect" {
				first = &expect
			}
			if *first != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Duplicate " + sub.Type + " block",
					Detail:  fmt.Sprintf("A test has one %s block; this one's is at line %d.", sub.Type, (*first).DefRange.Start.Line),
					Subject: sub.DefRange.Ptr(),
				})
				continue
			}
			*first = sub
		case "device":
			diags = append(diags, t.decodeDevice(sub)...)
		}
	}
	if call != nil {
		diags = append(diags, t.decodeCall(call)...)
	}
	if expect == nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Missing expect block",
			Detail:  "A test says what it expects of the plan: expect { status = …, routes = […], notifier \"NAME\" { … } }.",
			Subject: b.DefRange.Ptr(),
		})
		return t, diags
	}
	diags = append(diags, t.decodeExpect(expect)...)
	return t, diags
}

func (t *routeTest) decodeCall(b *hcl.Block) hcl.Diagnostics {
	t.callRange = b.DefRange
	content, diags := b.Body.Content(callSchema)
	t.fields = map[string]*hcl.Attribute{}
	if attr, ok := content.Attributes["on"]; ok {
		var on string
		d := gohcl.DecodeExpression(attr.Expr, valueContext, &on)
		diags = append(diags, d...)
		kind, known := callback.ParseKind(on)
		if !d.HasErrors() && !known {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown callback kind",
				Detail:  fmt.Sprintf("on is the kind of callback the test's call is: notify (the default), call_event or group_call_event; got %q.", on),
				Subject: attr.Expr.Range().Ptr()})
		}
		t.kind = kind
	}
	keys := callKeys(t.kind)
	for name, attr := range content.Attributes {
		if name != "extra" && name != "on" && !slices.ContainsFunc(keys, func(d struct{ key, value string }) bool { return d.key == name }) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("%s is not a field of a %s call", name, t.kind),
				Detail:  fmt.Sprintf("A %s callback has no %s; set on = \"…\" to the kind whose field it is.", t.kind, name),
				Subject: attr.NameRange.Ptr()})
			continue
		}
		if name == "on" {
			continue
		}
		if name == "extra" {
			var extra map[string]string
			d := gohcl.DecodeExpression(attr.Expr, valueContext, &extra)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(extra)) {
				var why string
				switch {
				case k == "":
					why = "A key of extra must not be empty."
				case k == "token":
					why = "token is checked against notify_token and never reaches a route; it cannot be part of a test's call."
				case isCallField(k):
					why = fmt.Sprintf("%s is a field of its own: set it as %s = … in the call block.", k, k)
				}
				if why != "" {
					at := payloadKeyRange(attr.Expr, []string{k})
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid extra key", Detail: why, Subject: &at})
				}
			}
			t.extra = extra
			continue
		}
		var s string
		d := gohcl.DecodeExpression(attr.Expr, valueContext, &s)
		diags = append(diags, d...)
		if !d.HasErrors() {
			t.fields[name] = attr
		}
	}
	return diags
}

// allCallKeys are the keys a call block may set, of every kind.
func allCallKeys() []string {
	var out []string
	for _, kind := range []callback.Kind{callback.KindNotify, callback.KindCallEvent, callback.KindGroupCallEvent} {
		for _, d := range callKeys(kind) {
			if !slices.Contains(out, d.key) {
				out = append(out, d.key)
			}
		}
	}
	return out
}

// isCallField reports whether k is a call field a call block sets as an
// attribute.
func isCallField(k string) bool {
	return k == "on" || slices.Contains(allCallKeys(), k)
}

func (t *routeTest) decodeDevice(b *hcl.Block) hcl.Diagnostics {
	content, diags := b.Body.Content(deviceSchema)
	kind := b.Labels[0]
	if kind == "" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Empty device kind", Detail: `A device block names its kind: device "apns" { token = "…" }.`, Subject: b.LabelRanges[0].Ptr()})
	}
	token := fmt.Sprintf("test-%s-token-%d", kind, len(t.devices)+1)
	if attr, ok := content.Attributes["token"]; ok {
		d := gohcl.DecodeExpression(attr.Expr, valueContext, &token)
		diags = append(diags, d...)
		if !d.HasErrors() && token == "" {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Empty device token", Detail: "Leave token out for a made-up one.", Subject: attr.Expr.Range().Ptr()})
		}
	}
	t.devices = append(t.devices, testDevice{kind: kind, token: token, at: b.LabelRanges[0]})
	return diags
}

// Values an expect block's attributes may take.
var (
	statuses = []string{callback.StatusAccepted, callback.StatusUnrouted, callback.StatusNoDevices}
	roles    = []string{plan.RoleNotify, plan.RoleFallback}
)

func (t *routeTest) decodeExpect(b *hcl.Block) hcl.Diagnostics {
	content, diags := b.Body.Content(expectSchema)
	if attr, ok := content.Attributes["status"]; ok {
		if want, ok := decodeOneOf(attr, statuses, &diags); ok {
			t.expect(attr, "status", want, func(e explained) (any, string, bool) {
				return e.Status, "", e.Status == want
			})
		}
	}
	if attr, ok := content.Attributes["routes"]; ok {
		if want, ok := t.names(attr, "route", &diags); ok {
			t.expect(attr, "routes", want, func(e explained) (any, string, bool) {
				return e.Routes, "", slices.Equal(e.Routes, want)
			})
		}
	}
	for _, nb := range content.Blocks {
		diags = append(diags, t.decodeNotifier(nb)...)
	}
	if attr, ok := content.Attributes["fallback"]; ok {
		if want, ok := t.names(attr, "notifier", &diags); ok {
			t.expect(attr, "fallback", want, func(e explained) (any, string, bool) {
				got := []string{}
				for _, n := range e.Notifiers {
					if n.Role == plan.RoleFallback && deliversNow(n) && !slices.Contains(got, n.Name) {
						got = append(got, n.Name)
					}
				}
				return got, "", slices.Equal(got, want)
			})
		}
	}
	if attr, ok := content.Attributes["no_notifier"]; ok {
		if want, ok := t.names(attr, "notifier", &diags); ok {
			t.expect(attr, "no_notifier", want, func(e explained) (any, string, bool) {
				var in []string
				for _, name := range want {
					if slices.ContainsFunc(e.Notifiers, func(n explainedNotifier) bool { return n.Name == name }) {
						in = append(in, name)
					}
				}
				return notifierNames(e), quoteNames(in) + " in the plan", len(in) == 0
			})
		}
	}
	return diags
}

func (t *routeTest) decodeNotifier(b *hcl.Block) hcl.Diagnostics {
	name := b.Labels[0]
	t.refs = append(t.refs, nameRef{kind: "notifier", name: name, rng: b.LabelRanges[0]})
	content, diags := b.Body.Content(notifierSchema)
	what := fmt.Sprintf("notifier %q", name)
	// The notifier must be in the plan for any of its attributes to be
	// checked: one failure says it is not.
	t.checks = append(t.checks, &expectation{at: b.DefRange, what: what, expected: name, check: func(e explained) (any, string, bool) {
		if _, ok := pickNotifier(e, name); ok {
			return name, "", true
		}
		return notifierNames(e), "not among the plan's notifiers", false
	}})
	on := func(attr *hcl.Attribute, field string, want any, got func(n explainedNotifier) (any, string, bool)) {
		t.expect(attr, what+": "+field, want, func(e explained) (any, string, bool) {
			n, ok := pickNotifier(e, name)
			if !ok {
				return nil, "", true // reported once, above
			}
			return got(n)
		})
	}
	if attr, ok := content.Attributes["role"]; ok {
		if want, ok := decodeOneOf(attr, roles, &diags); ok {
			on(attr, "role", want, func(n explainedNotifier) (any, string, bool) { return n.Role, "", n.Role == want })
		}
	}
	if attr, ok := content.Attributes["delivers"]; ok {
		var want bool
		if d := gohcl.DecodeExpression(attr.Expr, valueContext, &want); d.HasErrors() {
			diags = append(diags, d...)
		} else {
			on(attr, "delivers", want, func(n explainedNotifier) (any, string, bool) {
				return deliversNow(n), whyNotDelivering(n), deliversNow(n) == want
			})
		}
	}
	if attr, ok := content.Attributes["disabled"]; ok {
		var want bool
		if d := gohcl.DecodeExpression(attr.Expr, valueContext, &want); d.HasErrors() {
			diags = append(diags, d...)
		} else {
			on(attr, "disabled", want, func(n explainedNotifier) (any, string, bool) {
				return n.Disabled != "", n.Disabled, (n.Disabled != "") == want
			})
		}
	}
	if attr, ok := content.Attributes["route"]; ok {
		var want string
		if d := gohcl.DecodeExpression(attr.Expr, valueContext, &want); d.HasErrors() {
			diags = append(diags, d...)
		} else {
			t.refs = append(t.refs, nameRef{kind: "route", name: want, rng: attr.Expr.Range()})
			on(attr, "route", want, func(n explainedNotifier) (any, string, bool) { return n.Route, "", n.Route == want })
		}
	}
	if attr, ok := content.Attributes["devices"]; ok {
		var want int
		if d := gohcl.DecodeExpression(attr.Expr, valueContext, &want); d.HasErrors() {
			diags = append(diags, d...)
		} else if want < 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid device count", Detail: "devices is how many of the callee's devices the notifier gets: 0 or more.", Subject: attr.Expr.Range().Ptr()})
		} else {
			on(attr, "devices", want, func(n explainedNotifier) (any, string, bool) { return len(n.Devices), "", len(n.Devices) == want })
		}
	}
	if attr, ok := content.Attributes["payload"]; ok {
		want, d := payloadValue(attr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			t.checks = append(t.checks, &expectation{at: attr.Expr.Range(), what: what + ": payload", expected: want, check: func(e explained) (any, string, bool) {
				n, ok := pickNotifier(e, name)
				if !ok {
					return nil, "", true
				}
				got, err := decodeTestJSON(n.Payload)
				if err != nil {
					return string(n.Payload), err.Error(), false
				}
				if diffs := payloadDiffs(want, got, nil); len(diffs) > 0 {
					where := make([]string, len(diffs))
					for i, p := range diffs {
						where[i] = payloadPath(p)
					}
					return n.Payload, "differs at " + strings.Join(where, ", "), false
				}
				return n.Payload, "", true
			}, where: func(e explained) hcl.Range {
				n, _ := pickNotifier(e, name)
				got, _ := decodeTestJSON(n.Payload)
				// The first difference in the file.
				var first hcl.Range
				for _, p := range payloadDiffs(want, got, nil) {
					if rng := payloadKeyRange(attr.Expr, p); first.Filename == "" || rng.Start.Byte < first.Start.Byte {
						first = rng
					}
				}
				return first
			}})
		}
	}
	return diags
}

// expect adds an expectation at attr.
func (t *routeTest) expect(attr *hcl.Attribute, what string, want any, check func(e explained) (any, string, bool)) {
	t.checks = append(t.checks, &expectation{at: attr.Expr.Range(), what: what, expected: want, check: check})
}

// decodeOneOf decodes attr as one of the strings allowed.
func decodeOneOf(attr *hcl.Attribute, allowed []string, diags *hcl.Diagnostics) (string, bool) {
	var s string
	if d := gohcl.DecodeExpression(attr.Expr, valueContext, &s); d.HasErrors() {
		*diags = append(*diags, d...)
		return "", false
	}
	if !slices.Contains(allowed, s) {
		*diags = append(*diags, &hcl.Diagnostic{
			Severity: hcl.DiagError, Summary: "Invalid " + attr.Name,
			Detail:  fmt.Sprintf("%s is one of %s.", attr.Name, quoteNames(allowed)),
			Subject: attr.Expr.Range().Ptr(),
		})
		return "", false
	}
	return s, true
}

func quoteNames(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// names decodes attr as a list of route or notifier names, each to be
// checked against the config.
func (t *routeTest) names(attr *hcl.Attribute, kind string, diags *hcl.Diagnostics) ([]string, bool) {
	var list []string
	if d := gohcl.DecodeExpression(attr.Expr, valueContext, &list); d.HasErrors() {
		*diags = append(*diags, d...)
		return nil, false
	}
	if list == nil {
		list = []string{}
	}
	tuple, _ := attr.Expr.(*hclsyntax.TupleConsExpr)
	for i, name := range list {
		rng := attr.Expr.Range()
		if tuple != nil && i < len(tuple.Exprs) {
			rng = tuple.Exprs[i].Range()
		}
		t.refs = append(t.refs, nameRef{kind: kind, name: name, rng: rng})
	}
	return list, true
}

// payloadValue decodes a payload expectation: an object, as JSON values.
func payloadValue(attr *hcl.Attribute) (any, hcl.Diagnostics) {
	v, diags := attr.Expr.Value(valueContext)
	if diags.HasErrors() {
		return nil, diags
	}
	if v.IsNull() || !v.IsWhollyKnown() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError, Summary: "Invalid payload",
			Detail:  "payload is an object: the keys (and their values) the rendered payload must have, as in payload = { video = true }.",
			Subject: attr.Expr.Range().Ptr(),
		}}
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid payload", Detail: err.Error(), Subject: attr.Expr.Range().Ptr()}}
	}
	want, err := decodeTestJSON(b)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid payload", Detail: err.Error(), Subject: attr.Expr.Range().Ptr()}}
	}
	return want, nil
}

func decodeTestJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// payloadDiffs returns where want is not a subset of got: every key of
// an object of want is in got's, with a subset of its value; arrays have
// the same length and each element is a subset of got's; numbers are
// equal in value; anything else is equal. Each path is where a difference
// is, in the order of the sorted keys.
func payloadDiffs(want, got any, path []string) [][]string {
	at := func() [][]string { return [][]string{slices.Clone(path)} }
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return at()
		}
		var out [][]string
		for _, k := range slices.Sorted(maps.Keys(w)) {
			gv, ok := g[k]
			if !ok {
				out = append(out, append(slices.Clone(path), k))
				continue
			}
			out = append(out, payloadDiffs(w[k], gv, append(slices.Clone(path), k))...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return at()
		}
		var out [][]string
		for i := range w {
			out = append(out, payloadDiffs(w[i], g[i], append(slices.Clone(path), strconv.Itoa(i)))...)
		}
		return out
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			return at()
		}
		if w == g {
			return nil
		}
		a, _, errA := big.ParseFloat(string(w), 10, 256, big.ToNearestEven)
		b, _, errB := big.ParseFloat(string(g), 10, 256, big.ToNearestEven)
		if errA == nil && errB == nil && a.Cmp(b) == 0 {
			return nil
		}
		return at()
	default:
		if want != got {
			return at()
		}
		return nil
	}
}

// payloadPath spells a path of keys as jq does: .a.b[0], ."odd key".
func payloadPath(path []string) string {
	if len(path) == 0 {
		return "."
	}
	var b strings.Builder
	for _, k := range path {
		if _, err := strconv.Atoi(k); err == nil {
			b.WriteString("[" + k + "]")
			continue
		}
		if hclsyntax.ValidIdentifier(k) {
			b.WriteString("." + k)
			continue
		}
		b.WriteString("." + strconv.Quote(k))
	}
	return b.String()
}

// payloadKeyRange is the range in expr, an object constructor, of the value at
// path, as deep as the source spells it.
func payloadKeyRange(expr hcl.Expression, path []string) hcl.Range {
	rng := expr.Range()
	for _, key := range path {
		switch e := expr.(type) {
		case *hclsyntax.ObjectConsExpr:
			var next hcl.Expression
			for _, item := range e.Items {
				k, d := item.KeyExpr.Value(nil)
				if !d.HasErrors() && k.IsKnown() && !k.IsNull() && k.Type().FriendlyName() == "string" && k.AsString() == key {
					next = item.ValueExpr
					rng = hcl.RangeBetween(item.KeyExpr.Range(), item.ValueExpr.Range())
				}
			}
			if next == nil {
				return rng
			}
			expr = next
		case *hclsyntax.TupleConsExpr:
			i, err := strconv.Atoi(key)
			if err != nil || i >= len(e.Exprs) {
				return rng
			}
			expr = e.Exprs[i]
			rng = expr.Range()
		default:
			return rng
		}
	}
	return rng
}

// pickNotifier returns the plan's entry for notifier name: the first that
// delivers, else the first.
func pickNotifier(e explained, name string) (explainedNotifier, bool) {
	var first *explainedNotifier
	for i, n := range e.Notifiers {
		if n.Name != name {
			continue
		}
		if deliversNow(n) {
			return n, true
		}
		if first == nil {
			first = &e.Notifiers[i]
		}
	}
	if first == nil {
		return explainedNotifier{}, false
	}
	return *first, true
}

// deliversNow reports whether the plan delivers through n now.
func deliversNow(n explainedNotifier) bool {
	return n.Active && n.Disabled == "" && n.RenderError == ""
}

// whyNotDelivering says why n does not deliver ("" when it does), as explain does.
func whyNotDelivering(n explainedNotifier) string {
	switch {
	case n.Disabled != "":
		return "disabled: " + n.Disabled
	case n.RenderError != "":
		return "its payload did not render: " + n.RenderError
	case !n.Active && n.Role == plan.RoleFallback:
		return "fallback not needed: notify reaches a device"
	case !n.Active && n.Kind != "":
		return fmt.Sprintf("no %s device", n.Kind)
	case !n.Active:
		return "reaches no device"
	}
	return ""
}

// notifierNames lists the notifiers in the plan, once each.
func notifierNames(e explained) []string {
	names := []string{}
	for _, n := range e.Notifiers {
		if !slices.Contains(names, n.Name) {
			names = append(names, n.Name)
		}
	}
	return names
}

// checkTests checks what the tests name against the config and builds
// each test's call as a real callback would be checked.
func checkTests(tests []*routeTest, cfg *config.Config) hcl.Diagnostics {
	var notifiers, routes, kinds []string
	for _, n := range cfg.Notifiers {
		notifiers = append(notifiers, n.Name)
		if n.Devices != "" && !slices.Contains(kinds, n.Devices) {
			kinds = append(kinds, n.Devices)
		}
	}
	for _, r := range cfg.Routes {
		routes = append(routes, r.Name)
	}
	var diags hcl.Diagnostics
	for _, t := range tests {
		for _, ref := range t.refs {
			have := notifiers
			if ref.kind == "route" {
				have = routes
			}
			if !slices.Contains(have, ref.name) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Unknown " + ref.kind,
					Detail:  fmt.Sprintf("%s has no %s named %q; its %ss are %s.", cfg.Path, ref.kind, ref.name, ref.kind, quoteNames(have)),
					Subject: ref.rng.Ptr(),
				})
			}
		}
		for _, d := range t.devices {
			if d.kind != "" && !slices.Contains(kinds, d.kind) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagWarning, Summary: "No notifier serves this device kind",
					Detail:  fmt.Sprintf("No notifier of %s delivers to %q devices, so this device never rings; the kinds it serves are %s.", cfg.Path, d.kind, quoteNames(kinds)),
					Subject: d.at.Ptr(),
				})
			}
		}
		diags = append(diags, t.buildCall(cfg.Server.MaxIDBytes)...)
	}
	sortDiagnostics(diags)
	return diags
}

// buildCall makes the test's call into a notify_cb query and parses it as
// the callback handler does, so a field a real callback could not have is
// an error at its attribute.
func (t *routeTest) buildCall(maxIDBytes int) hcl.Diagnostics {
	var q strings.Builder
	add := func(k, v string) {
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString(escapeQueryValue(k) + "=" + escapeQueryValue(v))
	}
	for _, d := range callKeys(t.kind) {
		v := d.value
		if attr, ok := t.fields[d.key]; ok {
			_ = gohcl.DecodeExpression(attr.Expr, valueContext, &v) // decoded once already
		} else if v == "" {
			continue
		}
		add(d.key, v)
	}
	keys := make([]string, 0, len(t.extra))
	for k := range t.extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add(k, t.extra[k])
	}
	call, _, err := callback.ParseEvent(t.kind, q.String(), maxIDBytes, time.Now())
	if err != nil {
		var fe *callback.FieldError
		subject := t.callRange
		detail := err.Error()
		if errors.As(err, &fe) {
			detail = fmt.Sprintf("ringside refuses a callback like this one: %s: %s.", fe.Field, fe.Message)
			if attr, ok := t.fields[fe.Field]; ok {
				subject = attr.Expr.Range()
			}
		}
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid call", Detail: detail, Subject: &subject}}
	}
	t.call = call
	return nil
}

// escapeQueryValue percent-encodes every byte of s but ASCII letters, digits
// and -._~, so that callback.Parse decodes s back exactly.
func escapeQueryValue(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// run plans the test's call with its devices and checks the expectations.
func (t *routeTest) run(ctx context.Context, p *planning) testResult {
	res := testResult{Name: t.name, File: t.def.Filename, Line: t.def.Start.Line, Failures: []testFailure{}}
	store := directory.NewMemory()
	// The devices are the callee's; a group call has none, so they are the
	// event's user's (user_svc_id, user_id).
	service, user := t.call.ToServiceID, t.call.ToUserID
	if g := t.call.Group; g != nil {
		service, user = g.UserSvcID, g.UserID
	}
	for _, d := range t.devices {
		// A Memory store fails only on a cancelled context, and then so
		// does the plan.
		_ = store.Put(ctx, service, user, d.kind, d.token, t.call.Received)
	}
	e, err := p.explain(ctx, t.call, store)
	if err != nil {
		res.Failures = append(res.Failures, newFailure(t.def, "plan", nil, err.Error()))
		return res
	}
	for _, x := range t.checks {
		got, note, ok := x.check(e)
		if ok {
			continue
		}
		at := x.at
		if x.where != nil {
			at = x.where(e)
		}
		what := x.what
		if note != "" {
			what += " (" + note + ")"
		}
		res.Failures = append(res.Failures, newFailure(at, what, x.expected, got))
	}
	slices.SortStableFunc(res.Failures, func(a, b testFailure) int { return a.line - b.line })
	res.Pass = len(res.Failures) == 0
	return res
}

func newFailure(at hcl.Range, what string, expected, got any) testFailure {
	return testFailure{
		At: fmt.Sprintf("%s:%d", at.Filename, at.Start.Line), What: what,
		Expected: testJSON(expected), Got: testJSON(got), line: at.Start.Line,
	}
}

// testJSON is v as compact JSON; a json.RawMessage keeps its key order.
func testJSON(v any) json.RawMessage {
	if raw, ok := v.(json.RawMessage); ok {
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			return b.Bytes()
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return json.RawMessage("null")
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

func writeTestResult(w io.Writer, r testResult) {
	if r.Pass {
		fmt.Fprintf(w, "--- PASS: %s (%s:%d)\n", r.Name, r.File, r.Line)
		return
	}
	fmt.Fprintf(w, "--- FAIL: %s (%s:%d)\n", r.Name, r.File, r.Line)
	for _, f := range r.Failures {
		fmt.Fprintf(w, "    %s: %s\n        expected: %s\n             got: %s\n", f.At, f.What, f.Expected, f.Got)
	}
}
