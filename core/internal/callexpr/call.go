// Package callexpr is the per-call expression runtime: the call as an HCL value
// and the functions that expressions evaluated per call may use. The route
// attribute when, a notifier's payload and a plugin's template attributes
// are evaluated in Context(c) for each call c.
//
// It does no I/O and sees no secrets: the only variable is call, which
// holds the callback's fields and nothing else, and every function
// computes on its arguments alone (no env, no file, no clock, no network).
// Loading a configuration (package config) checks those expressions
// against Type and the names of Functions before any call arrives.
//
// # The call
//
// call is an object of the string attributes sid, from_service_id,
// from_user_id, to_service_id, to_user_id, type, param, stid and
// app_svr_data, and extra, a map of strings holding the callback's other
// keys. A field the callback lacks is "".
//
// In routes on a Call Event or a Group Call Event, call is the event
// instead, with the fields TypeOf gives for its kind: times are RFC 3339
// strings in UTC ("" when absent) and counts and codes are numbers.
//
// # The function set
//
// Numbers: abs, ceil, floor, max, min.
// Collections: concat, contains, distinct, element, flatten, keys, length
// (also the number of characters of a string), lookup, merge, reverse, slice,
// sort, values, zipmap, coalesce (the first argument that is neither null nor
// "", as in Terraform), coalescelist, compact.
// Strings: chomp, format, formatlist, indent, join, lower, upper, replace
// (plain substring), regex, regexall, split, strrev, substr, title, trim,
// trimprefix, trimsuffix, trimspace.
// Encoding: jsonencode, jsondecode, base64encode, base64decode.
// Times (RFC 3339 strings, as events carry them): formatdate, timeadd.
// Conversion: tostring, tonumber, tobool.
// Errors: try, can.
//
// The functions are go-cty's stdlib and hcl's ext/tryfunc, except
// base64encode, base64decode, coalesce and the string form of length, which
// follow Terraform's functions of the same names.
package callexpr

import (
	"slices"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/ringside/ringside/core/internal/callback"
)

// callFields are the string attributes of call, in Type order.
var callFields = []string{
	"sid", "from_service_id", "from_user_id", "to_service_id", "to_user_id",
	"type", "param", "stid", "app_svr_data",
}

var callType = func() cty.Type {
	types := make(map[string]cty.Type, len(callFields)+1)
	for _, f := range callFields {
		types[f] = cty.String
	}
	types["extra"] = cty.Map(cty.String)
	return cty.Object(types)
}()

// Type is the type of the call variable: an object of the string
// attributes sid, from_service_id, from_user_id, to_service_id, to_user_id,
// type, param, stid and app_svr_data, and extra, a map of strings.
func Type() cty.Type { return callType }

// Fields returns the names of call's string attributes, in the order
// Type lists them (extra, the map, is not among them).
func Fields() []string { return slices.Clone(callFields) }

// Context is the evaluation context of when, payload and template
// expressions for one call: the variable call and the function set. The
// function map is shared by every context and must not be modified.
func Context(c *callback.Call) *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"call": Value(c)},
		Functions: functions,
	}
}

// Values shared by every Value (cty values are immutable).
var (
	emptyExtra = cty.MapValEmpty(cty.String)
	typeVals   = map[string]cty.Value{"A": cty.StringVal("A"), "V": cty.StringVal("V")}
	attrsPool  = sync.Pool{New: func() any { return make(map[string]cty.Value, len(callFields)+1) }}
)

// Value is c as a value of TypeOf(c.Kind).
func Value(c *callback.Call) cty.Value {
	if c.Kind != callback.KindNotify {
		return eventValue(c)
	}
	extra := emptyExtra
	if len(c.Extra) > 0 {
		m := make(map[string]cty.Value, len(c.Extra))
		for k, v := range c.Extra {
			m[k] = cty.StringVal(v)
		}
		extra = cty.MapVal(m)
	}
	typ, ok := typeVals[c.Type]
	if !ok {
		typ = cty.StringVal(c.Type)
	}
	// ObjectVal copies the map, so the map itself is reused.
	attrs := attrsPool.Get().(map[string]cty.Value)
	attrs["sid"] = cty.StringVal(c.SID)
	attrs["from_service_id"] = cty.StringVal(c.FromServiceID)
	attrs["from_user_id"] = cty.StringVal(c.FromUserID)
	attrs["to_service_id"] = cty.StringVal(c.ToServiceID)
	attrs["to_user_id"] = cty.StringVal(c.ToUserID)
	attrs["type"] = typ
	attrs["param"] = cty.StringVal(c.Param)
	attrs["stid"] = cty.StringVal(c.Stid)
	attrs["app_svr_data"] = cty.StringVal(c.AppSvrData)
	attrs["extra"] = extra
	v := cty.ObjectVal(attrs)
	clear(attrs)
	attrsPool.Put(attrs)
	return v
}
