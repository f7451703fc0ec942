package config

import (
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// decoder evaluates attributes in the load-time context and collects
// diagnostics. Each method takes the attribute (nil when absent) and returns
// the default when it is absent, null, or wrong (the wrong case is reported).
type decoder struct {
	ctx   *hcl.EvalContext
	dir   string
	diags hcl.Diagnostics
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  rng.Ptr(),
	})
}

// value evaluates attr and converts it to want (described as wantText). ok
// is false when attr is absent, null or wrong.
func (d *decoder) value(attr *hcl.Attribute, want cty.Type, wantText string, sensitive bool) (cty.Value, bool) {
	if attr == nil {
		return cty.NilVal, false
	}
	v, diags := attr.Expr.Value(d.ctx)
	for _, dg := range fromHCL(diags) {
		if dg.Summary == "Variables not allowed" {
			dg.Summary = fmt.Sprintf("%s cannot refer to variables", attr.Name)
			dg.Detail = fmt.Sprintf("%s is evaluated once, at load time, where there are no variables; only when, payload and plugin template attributes can refer to call.", attr.Name)
			reworded(dg)
		}
	}
	d.diags = append(d.diags, polish(diags)...)
	if diags.HasErrors() || v.IsNull() {
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, want)
	if err != nil || !cv.IsWhollyKnown() {
		d.typeError(attr, v, wantText, sensitive)
		return cty.NilVal, false
	}
	if (want.IsListType() || want.IsMapType()) && !cv.IsNull() {
		for it := cv.ElementIterator(); it.Next(); {
			if _, ev := it.Element(); ev.IsNull() {
				d.errorf(attr.Expr.Range(), fmt.Sprintf("%s must be %s", attr.Name, wantText),
					"%s contains null, which is not a string.", attr.Name)
				return cty.NilVal, false
			}
		}
	}
	return cv, true
}

func (d *decoder) typeError(attr *hcl.Attribute, got cty.Value, wantText string, sensitive bool) {
	sensitive = sensitive || secretName(attr.Name) || secretMapName(attr.Name)
	detail := fmt.Sprintf("Got %s.", describe(got, sensitive))
	d.errorf(attr.Expr.Range(), fmt.Sprintf("%s must be %s", attr.Name, wantText), "%s", detail)
}

// describe names a value's type, quoting short known strings.
func describe(v cty.Value, sensitive bool) string {
	ty := v.Type()
	if ty == cty.String && v.IsKnown() && !v.IsNull() && !sensitive {
		s := v.AsString()
		if len(s) <= 40 {
			return fmt.Sprintf("the string %q", redactURLs(s))
		}
	}
	switch {
	case ty == cty.String:
		return "a string"
	case ty == cty.Number:
		if !sensitive && v.IsKnown() && !v.IsNull() {
			return "the number " + v.AsBigFloat().Text('g', -1)
		}
		return "a number"
	case ty == cty.Bool:
		return "a bool"
	case ty.IsTupleType() || ty.IsListType() || ty.IsSetType():
		return "a list"
	case ty.IsObjectType() || ty.IsMapType():
		return "an object"
	}
	return ty.FriendlyName()
}

func (d *decoder) str(attr *hcl.Attribute, def string) string {
	v, ok := d.value(attr, cty.String, "a string", false)
	if !ok {
		return def
	}
	return v.AsString()
}

// secret is a string whose value never appears in a message.
func (d *decoder) secret(attr *hcl.Attribute) string {
	v, ok := d.value(attr, cty.String, "a string", true)
	if !ok {
		return ""
	}
	return v.AsString()
}

func (d *decoder) nonEmpty(attr *hcl.Attribute, def string) string {
	s := d.str(attr, def)
	if attr != nil && s == "" {
		d.errorf(attr.Expr.Range(), fmt.Sprintf("%s is empty", attr.Name), "%s must not be empty; omit it for the default, %q.", attr.Name, def)
		return def
	}
	return s
}

func (d *decoder) path(attr *hcl.Attribute, def string) string {
	return resolvePath(d.dir, d.str(attr, def))
}

func (d *decoder) boolean(attr *hcl.Attribute, def bool) bool {
	v, ok := d.value(attr, cty.Bool, "true or false", false)
	if !ok {
		return def
	}
	return v.True()
}

func (d *decoder) positiveInt(attr *hcl.Attribute, def int) int {
	v, ok := d.value(attr, cty.Number, "a whole number", false)
	if !ok {
		return def
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	if !bf.IsInt() || acc != big.Exact || n > 1<<31 {
		d.errorf(attr.Expr.Range(), fmt.Sprintf("%s must be a whole number", attr.Name), "Got %s.", describe(v, false))
		return def
	}
	if n <= 0 {
		d.errorf(attr.Expr.Range(), fmt.Sprintf("%s must be at least 1", attr.Name), "Got %d; omit it for the default, %d.", n, def)
		return def
	}
	return int(n)
}

// duration parses a Go duration string that must be positive and, when max
// is not 0, at most max.
func (d *decoder) duration(attr *hcl.Attribute, def, max time.Duration) time.Duration {
	dur, ok := d.durationValue(attr, max)
	if !ok {
		return def
	}
	return dur
}

// durationValue evaluates a duration in (0, max] (max 0 = no bound); ok is
// false when attr is absent, null or wrong (reported).
func (d *decoder) durationValue(attr *hcl.Attribute, max time.Duration) (time.Duration, bool) {
	if attr == nil {
		return 0, false
	}
	if raw, diags := attr.Expr.Value(d.ctx); !diags.HasErrors() && raw.Type() == cty.Number && raw.IsKnown() && !raw.IsNull() {
		n := raw.AsBigFloat().Text('g', -1)
		d.errorf(attr.Expr.Range(), fmt.Sprintf("%s must be a duration string", attr.Name),
			"Got the number %s; a duration is a string with a unit, such as \"%ss\" (units ns, us, ms, s, m, h).", n, n)
		return 0, false
	}
	v, ok := d.value(attr, cty.String, "a duration string", false)
	if !ok {
		return 0, false
	}
	dur, err := parseDuration(v.AsString())
	if err != nil {
		d.errorf(attr.Expr.Range(), fmt.Sprintf("Invalid duration for %s", attr.Name), "%v.", err)
		return 0, false
	}
	bound := "more than 0"
	if max > 0 {
		bound = fmt.Sprintf("more than 0 and at most %s", fmtDuration(max))
	}
	switch {
	case dur <= 0:
		d.errorf(attr.Expr.Range(), fmt.Sprintf("%s must be more than 0", attr.Name), "%s must be %s; got %q.", attr.Name, bound, v.AsString())
		return 0, false
	case max > 0 && dur > max:
		d.errorf(attr.Expr.Range(), fmt.Sprintf("%s is longer than %s", attr.Name, fmtDuration(max)), "%s must be %s; got %q.", attr.Name, bound, v.AsString())
		return 0, false
	}
	return dur, true
}

func parseDuration(s string) (time.Duration, error) {
	dur, err := time.ParseDuration(s)
	if err != nil {
		hint := ""
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			hint = " (a unit is required)"
		}
		return 0, fmt.Errorf("%q is not a duration%s: write a Go duration such as \"500ms\", \"10s\" or \"1m30s\" (units ns, us, ms, s, m, h)", s, hint)
	}
	return dur, nil
}

// fmtDuration prints a duration the way a config would write it: "60s",
// "120s", "10m", "1h30m", "1.5s".
func fmtDuration(dur time.Duration) string {
	switch {
	case dur%time.Second == 0 && dur <= 300*time.Second:
		return fmt.Sprintf("%ds", dur/time.Second)
	case dur%time.Minute == 0:
		h, m := dur/time.Hour, (dur%time.Hour)/time.Minute
		switch {
		case h == 0:
			return fmt.Sprintf("%dm", m)
		case m == 0:
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	return dur.String()
}

func (d *decoder) enum(attr *hcl.Attribute, def string, allowed ...string) string {
	s := d.str(attr, def)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	detail := fmt.Sprintf("%s must be one of %s; got %q.", attr.Name, strings.Join(quoted, ", "), s)
	if sg := suggest(strings.ToLower(s), allowed); sg != "" {
		detail = fmt.Sprintf("%s must be one of %s; got %q. Did you mean %q?", attr.Name, strings.Join(quoted, ", "), s, sg)
	}
	d.errorf(attr.Expr.Range(), fmt.Sprintf("Invalid %s %q", attr.Name, s), "%s", detail)
	return def
}

func splitHostPort(s string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(s)
	if err != nil {
		if ae, ok := err.(*net.AddrError); ok {
			return "", "", fmt.Errorf("%s", ae.Err)
		}
		return "", "", err
	}
	if n, perr := strconv.ParseUint(port, 10, 16); perr != nil || n > 65535 {
		return "", "", fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return host, port, nil
}

func (d *decoder) hostPort(attr *hcl.Attribute, def string) string {
	s := d.str(attr, def)
	if _, _, err := splitHostPort(s); err != nil {
		d.errorf(attr.Expr.Range(), fmt.Sprintf("%s must be HOST:PORT", attr.Name),
			"%q is not HOST:PORT (%v); for example %q, or %q for every interface.", s, err, def, def[strings.LastIndex(def, ":"):])
		return def
	}
	return s
}

func (d *decoder) baseURL(attr *hcl.Attribute, def string) string {
	s := d.str(attr, def)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.errorf(attr.Expr.Range(), fmt.Sprintf("%s must be an http or https URL", attr.Name),
			"Got %q; for example %q.", s, def)
		return def
	}
	return s
}

// strList evaluates a list of strings; ranges are the elements' ranges when
// the expression is a list constructor, else the whole expression's range
// for each element. list is nil when absent or wrong, non-nil (maybe empty)
// otherwise.
func (d *decoder) strList(attr *hcl.Attribute, sensitive bool) (list []string, ranges []hcl.Range) {
	v, ok := d.value(attr, cty.List(cty.String), "a list of strings", sensitive)
	if !ok {
		return nil, nil
	}
	list = make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, ev := it.Element()
		list = append(list, ev.AsString())
	}
	exprs, diags := hcl.ExprList(attr.Expr)
	ranges = make([]hcl.Range, len(list))
	for i := range ranges {
		if !diags.HasErrors() && len(exprs) == len(list) {
			ranges[i] = exprs[i].Range()
		} else {
			ranges[i] = attr.Expr.Range()
		}
	}
	return list, ranges
}

func (d *decoder) strMap(attr *hcl.Attribute) map[string]string {
	v, ok := d.value(attr, cty.Map(cty.String), "a map of strings", false)
	if !ok {
		return nil
	}
	m := make(map[string]string, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		k, ev := it.Element()
		m[k.AsString()] = ev.AsString()
	}
	return m
}

// prefixes parses a list of CIDR prefixes; a bare address is a one-address prefix.
func (d *decoder) prefixes(attr *hcl.Attribute) []netip.Prefix {
	list, ranges := d.strList(attr, false)
	var out []netip.Prefix
	for i, s := range list {
		p, err := parsePrefix(s)
		if err != nil {
			d.errorf(ranges[i], fmt.Sprintf("Invalid CIDR in %s", attr.Name),
				"%q is not an IP prefix such as \"10.0.0.0/8\", \"2001:db8::/32\" or a single address such as \"192.0.2.7\".", s)
			continue
		}
		out = append(out, p)
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}
