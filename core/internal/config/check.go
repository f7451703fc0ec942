package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
)

// checkCtxs are the contexts a call expression is checked in at load time,
// by the kind of callback it is evaluated for.
var checkCtxs = func() map[callback.Kind]*hcl.EvalContext {
	m := map[callback.Kind]*hcl.EvalContext{}
	for _, k := range []callback.Kind{callback.KindNotify, callback.KindCallEvent, callback.KindGroupCallEvent} {
		m[k] = &hcl.EvalContext{
			Variables: map[string]cty.Value{"call": cty.UnknownVal(callexpr.TypeOf(k))},
			Functions: callexpr.Functions(),
		}
	}
	return m
}()

// loadOnlyFuncs are the functions that exist only at load time.
var loadOnlyFuncs = map[string]bool{"env": true, "file": true}

// loadContext is the load-time context: the call function set plus env and
// file, and no variables.
func loadContext(dir string, getenv func(string) string) *hcl.EvalContext {
	funcs := maps.Clone(callexpr.Functions())
	funcs["env"] = function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or an empty string when it is unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(getenv(args[0].AsString())), nil
		},
	})
	funcs["file"] = function.New(&function.Spec{
		Description: "Returns the contents of a file; relative paths resolve from the configuration file's folder.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := resolvePath(dir, args[0].AsString())
			b, err := os.ReadFile(p)
			if err != nil {
				return cty.NilVal, fmt.Errorf("cannot read %s: %w", p, unwrapPathError(err))
			}
			if !utf8.Valid(b) {
				return cty.NilVal, fmt.Errorf("%s is not valid UTF-8 text", p)
			}
			return cty.StringVal(string(b)), nil
		},
	})
	return &hcl.EvalContext{Functions: funcs}
}

// unwrapPathError drops the "open PATH:" prefix the caller already prints.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// resolvePath resolves a relative p from dir; "" stays "".
func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// checkCallExpr checks a call expression at load time (what may appear in it)
// and evaluates it against an unknown call. It returns the value (possibly
// unknown) when there are no errors.
func checkCallExpr(x hcl.Expression, what string, kind callback.Kind) (cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	for _, tr := range x.Variables() {
		diags = append(diags, checkTraversal(tr, what, kind)...)
	}
	if syn, ok := x.(hclsyntax.Expression); ok {
		diags = append(diags, hclsyntax.VisitAll(syn, func(n hclsyntax.Node) hcl.Diagnostics {
			call, ok := n.(*hclsyntax.FunctionCallExpr)
			if !ok {
				return nil
			}
			return checkFunction(call, what)
		})...)
	}
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	v, vd := x.Value(checkCtxs[kind])
	diags = append(diags, polish(fromHCL(vd))...)
	return v, diags
}

func checkTraversal(tr hcl.Traversal, what string, kind callback.Kind) hcl.Diagnostics {
	root := tr.RootName()
	if root != "call" {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Unknown variable %q", root),
			Detail:   fmt.Sprintf("%s can refer only to call (its fields: %s, extra).", what, strings.Join(callexpr.FieldsOf(kind), ", ")),
			Subject:  tr.SourceRange().Ptr(),
		}}
	}
	if len(tr) < 2 {
		return nil
	}
	var name string
	var rng hcl.Range
	switch step := tr[1].(type) {
	case hcl.TraverseAttr:
		name, rng = step.Name, step.SrcRange
		if rng.End.Byte-rng.Start.Byte > len(name) { // skip the dot
			rng.Start.Byte++
			rng.Start.Column++
		}
	case hcl.TraverseIndex:
		if !step.Key.IsKnown() || step.Key.IsNull() || step.Key.Type() != cty.String {
			return hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Invalid call field",
				Detail:   "call is an object: use call.FIELD or call[\"FIELD\"].",
				Subject:  step.SrcRange.Ptr(),
			}}
		}
		name, rng = step.Key.AsString(), step.SrcRange
	default:
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid call field",
			Detail:   "call is an object: use call.FIELD.",
			Subject:  tr.SourceRange().Ptr(),
		}}
	}
	if callexpr.TypeOf(kind).HasAttribute(name) {
		return nil
	}
	fields := callexpr.FieldsOf(kind)
	on := ""
	if kind != callback.KindNotify {
		on = fmt.Sprintf(" in a %s route", kind)
	}
	if others := kindsWith(name); len(others) > 0 {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("call.%s is not available%s", name, on),
			Detail: fmt.Sprintf("%s is a field of %s callbacks only; this expression is evaluated for %s callbacks, whose fields are %s and extra.",
				name, strings.Join(others, " and "), kind, strings.Join(fields, ", ")),
			Subject: rng.Ptr(),
		}}
	}
	detail := fmt.Sprintf("call has no field %q%s. Its fields are %s and extra (a map of the callback's other keys).", name, on, strings.Join(fields, ", "))
	if s := suggest(name, append(fields, "extra")); s != "" {
		detail = fmt.Sprintf("call has no field %q%s; did you mean %q? Its fields are %s and extra (a map of the callback's other keys).", name, on, s, strings.Join(fields, ", "))
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Unknown call field %q", name),
		Detail:   detail,
		Subject:  rng.Ptr(),
	}}
}

// kindsWith returns the callback kinds whose call has the field name.
func kindsWith(name string) []string {
	var out []string
	for _, k := range []callback.Kind{callback.KindNotify, callback.KindCallEvent, callback.KindGroupCallEvent} {
		if callexpr.TypeOf(k).HasAttribute(name) {
			out = append(out, k.String())
		}
	}
	return out
}

// inRoutes adds to the errors of a notifier's expression checked for an
// event kind that it is checked so because a route of that kind names it.
func inRoutes(diags hcl.Diagnostics, n *Notifier, kind callback.Kind) hcl.Diagnostics {
	if kind == callback.KindNotify && len(n.Kinds) <= 1 {
		return diags
	}
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			d.Detail += fmt.Sprintf(" (Notifier %q is named by an on = %q route, so its payload and templates are evaluated for those events too.)", n.Name, kind)
		}
	}
	return diags
}

// checkUsers checks an event route's users: an object {service_id,
// user_id} or a list of them.
func checkUsers(attr *hcl.Attribute, kind callback.Kind) hcl.Diagnostics {
	v, diags := checkCallExpr(attr.Expr, "users", kind)
	if diags.HasErrors() {
		return diags
	}
	ty := v.Type()
	isUser := func(t cty.Type) bool {
		return t == cty.DynamicPseudoType || (t.IsObjectType() && t.HasAttribute("service_id") && t.HasAttribute("user_id")) ||
			(t.IsMapType() && (t.ElementType() == cty.String || t.ElementType() == cty.DynamicPseudoType))
	}
	ok := isUser(ty)
	switch {
	case ty.IsListType() || ty.IsSetType():
		ok = isUser(ty.ElementType())
	case ty.IsTupleType():
		ok = true
		for _, et := range ty.TupleElementTypes() {
			ok = ok && isUser(et)
		}
	}
	if !ok {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "users is not a user or a list of users",
			Detail:   fmt.Sprintf("users must be { service_id = ..., user_id = ... } or a list of such objects, such as [{ service_id = call.host_svc_id, user_id = call.host_id }]; this is %s.", article(ty)),
			Subject:  attr.Expr.Range().Ptr(),
		})
	}
	return diags
}

func checkFunction(call *hclsyntax.FunctionCallExpr, what string) hcl.Diagnostics {
	if _, ok := callexpr.Functions()[call.Name]; ok {
		return nil
	}
	rng := hcl.RangeBetween(call.NameRange, call.CloseParenRange)
	if loadOnlyFuncs[call.Name] {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Function %s() is not available in %s", call.Name, what),
			Detail:   fmt.Sprintf("%s() exists only at load time, in ordinary attributes; %s is evaluated for each call, where only call and the call functions are available.", call.Name, what),
			Subject:  rng.Ptr(),
		}}
	}
	detail := fmt.Sprintf("There is no function named %q in %s.", call.Name, what)
	if s := suggest(call.Name, callexpr.FunctionNames()); s != "" {
		detail = fmt.Sprintf("There is no function named %q in %s; did you mean %q?", call.Name, what, s)
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Unknown function %s()", call.Name),
		Detail:   detail,
		Subject:  call.NameRange.Ptr(),
	}}
}

// checkWhen checks a route's when: it must yield a bool.
func checkWhen(attr *hcl.Attribute, kind callback.Kind) hcl.Diagnostics {
	what := "when"
	v, diags := checkCallExpr(attr.Expr, what, kind)
	if diags.HasErrors() {
		return diags
	}
	ty := v.Type()
	switch {
	case ty == cty.Bool || ty == cty.DynamicPseudoType:
		if v.IsKnown() && v.IsNull() {
			return append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "when is null",
				Detail:   "when must be a bool expression; omit it to match every call.",
				Subject:  attr.Expr.Range().Ptr(),
			})
		}
		return diags
	case v.IsWhollyKnown():
		if _, err := convert.Convert(v, cty.Bool); err == nil && !v.IsNull() {
			return diags
		}
	}
	return append(diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "when is not a bool",
		Detail:   fmt.Sprintf("when must be a bool expression (such as call.type == \"V\"), but this is %s.", article(ty)),
		Subject:  attr.Expr.Range().Ptr(),
	})
}

// checkTemplate checks a template attribute: it must yield a string.
func checkTemplate(attr *hcl.Attribute, kind callback.Kind) hcl.Diagnostics {
	what := fmt.Sprintf("the template attribute %q", attr.Name)
	v, diags := checkCallExpr(attr.Expr, what, kind)
	if diags.HasErrors() {
		return diags
	}
	if v.IsKnown() && v.IsNull() {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("%s is null", attr.Name),
			Detail:   fmt.Sprintf("%s is a template and must yield a string.", attr.Name),
			Subject:  attr.Expr.Range().Ptr(),
		})
	}
	if _, err := convert.Convert(v, cty.String); err != nil {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("%s must yield a string", attr.Name),
			Detail:   fmt.Sprintf("%s is a template, rendered per call into a string, but this is %s.", attr.Name, article(v.Type())),
			Subject:  attr.Expr.Range().Ptr(),
		})
	}
	return diags
}

// reservedPayloadKeys are set by ringside itself and may not be overridden.
var reservedPayloadKeys = map[string]string{
	"cc_param": "the callback's param, byte for byte",
	"sid":      "the callback's session ID",
}

// checkPayload checks a notifier's payload and returns its keys in order.
func checkPayload(attr *hcl.Attribute) ([]string, hcl.Diagnostics) {
	pairs, diags := hcl.ExprMap(attr.Expr)
	if diags.HasErrors() {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "payload is not an object",
			Detail:   "payload must be an object constructor, { key = expression, ... }, so its keys are known at load time.",
			Subject:  attr.Expr.Range().Ptr(),
		}}
	}
	var keys []string
	seen := map[string]hcl.Range{}
	for _, p := range pairs {
		k, summary, detail := payloadKey(p.Key)
		if prev, dup := seen[k]; summary == "" && dup {
			summary, detail = fmt.Sprintf("Duplicate payload key %q", k), fmt.Sprintf("%q is already set at %s.", k, prev)
		}
		if summary != "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  summary,
				Detail:   detail,
				Subject:  p.Key.Range().Ptr(),
			})
			continue
		}
		seen[k] = p.Key.Range()
		keys = append(keys, k)
	}
	return keys, diags
}

// payloadKey returns the key a payload entry sets, or why it cannot be
// set: a summary and a detail.
func payloadKey(key hcl.Expression) (k, summary, detail string) {
	kv, kd := key.Value(nil)
	if kd.HasErrors() || !kv.IsKnown() || kv.IsNull() {
		return "", "payload key is not known at load time", "Each payload key must be a name or a string literal; only values may refer to call."
	}
	ks, err := convert.Convert(kv, cty.String)
	if err != nil {
		return "", "Invalid payload key", fmt.Sprintf("A payload key must be a string, but this is %s.", kv.Type().FriendlyName())
	}
	k = ks.AsString()
	switch {
	case reservedPayloadKeys[k] != "":
		return "", fmt.Sprintf("payload may not set %q", k),
			fmt.Sprintf("ringside sets %s itself in every payload (%s); a payload may add keys or override the app_* ones.", k, reservedPayloadKeys[k])
	case k == "":
		return "", "Empty payload key", "A payload key must not be empty."
	}
	return k, "", ""
}

// suggest returns the candidate nearest to name, if it is near enough to be
// a likely typo: one edit (a transposition counts as one) for names of up to
// four characters, two for longer ones.
func suggest(name string, candidates []string) string {
	limit := 1
	if len([]rune(name)) > 4 {
		limit = 2
	}
	best, bestD := "", limit+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// polish rewrites HCL's generic function-call failure so it names the
// function and points at the whole call.
func polish(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, dg := range diags {
		extra, ok := hcl.DiagnosticExtra[hclsyntax.FunctionCallDiagExtra](dg)
		if !ok || dg.Summary != "Error in function call" || extra.FunctionCallError() == nil {
			continue
		}
		dg.Summary = fmt.Sprintf("Call to %s() failed", extra.CalledFunctionName())
		dg.Detail = extra.FunctionCallError().Error() + "."
		if dg.Context != nil {
			dg.Subject = dg.Context
		}
		reworded(dg)
	}
	return diags
}

// article prefixes a type's friendly name with "a" or "an".
func article(ty cty.Type) string {
	n := ty.FriendlyName()
	if strings.ContainsRune("aeiou", rune(n[0])) {
		return "an " + n
	}
	return "a " + n
}
