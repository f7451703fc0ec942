package config

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr"
	"github.com/ringside/ringside/core/internal/callexpr/callexprtest"
)

func TestPayloadKeepsTypes(t *testing.T) {
	x := callexprtest.Parse(t, `{
  caller  = call.from_user_id
  video   = call.type == "V"
  retries = 3
  tags    = ["a", call.type]
  meta    = { tier = lookup(call.extra, "tier", "none") }
}`)
	keys, diags := checkPayload(&hcl.Attribute{Name: "payload", Expr: x})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(keys) != 5 {
		t.Errorf("keys %q", keys)
	}
	v, diags := x.Value(callexpr.Context(callexprtest.Call()))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := cty.ObjectVal(map[string]cty.Value{
		"caller":  cty.StringVal("9286"),
		"video":   cty.True,
		"retries": cty.NumberIntVal(3),
		"tags":    cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.StringVal("V")}),
		"meta":    cty.ObjectVal(map[string]cty.Value{"tier": cty.StringVal("gold")}),
	})
	if !v.Equals(want).True() {
		t.Errorf("got %#v\nwant %#v", v, want)
	}
}

// TestCheckCallExprAccepts: the load-time check of a when accepts what
// evaluates per call, and refuses what cannot yield a bool.
func TestCheckCallExprAccepts(t *testing.T) {
	for _, src := range []string{
		`call["type"] == "V"`,
		`call.extra.anything == "1"`,
		`[for k, v in call.extra : k if v == "1"] != []`,
		`jsonencode(call) != ""`,
		`try(tobool(call.extra.vip), false)`,
		`lookup(call.extra, "tier", "") == "gold" && can(regex("^[0-9]+$", call.to_user_id))`,
		`contains(["2809", "1"], call.to_user_id) || coalesce("", call.stid) == "stid"`,
		`length(call.sid) == 36 && jsondecode(base64decode(call.param)).callType == "A"`,
		`"true"`,
	} {
		if diags := checkWhen(&hcl.Attribute{Name: "when", Expr: callexprtest.Parse(t, src)}, callback.KindNotify); diags.HasErrors() {
			t.Errorf("%s: %v", src, diags)
		}
	}
	for _, src := range []string{
		`call["typ"] == "V"`,
		`[for k, v in call.extra : x if v == "1"] != []`,
		`tobool("maybe")`,
		`"yes"`,
		`null`,
		`length(call)`,
	} {
		diags := checkWhen(&hcl.Attribute{Name: "when", Expr: callexprtest.Parse(t, src)}, callback.KindNotify)
		if !diags.HasErrors() {
			t.Errorf("%s: no error", src)
		}
	}
}

// TestPayloadKeyErrors: each bad key is reported, at the key, and the good
// keys are kept in order.
func TestPayloadKeyErrors(t *testing.T) {
	x := callexprtest.Parse(t, `{
  a          = 1
  (call.sid) = 2
  ([1])      = 3
  sid        = 4
  ""         = 5
  a          = 6
  b          = 7
}`)
	keys, diags := checkPayload(&hcl.Attribute{Name: "payload", Expr: x})
	_, vd := checkCallExpr(x, "payload", callback.KindNotify) // as Load does for each kind of route naming the notifier
	diags = append(diags, vd...)
	if fmt.Sprint(keys) != "[a b]" {
		t.Errorf("keys: got %q; want a, b", keys)
	}
	want := []string{
		"3: payload key is not known at load time",
		"4: Invalid payload key",
		`5: payload may not set "sid"`,
		"6: Empty payload key",
		`7: Duplicate payload key "a"`,
		"4: Incorrect key type", // from evaluating the object against an unknown call
	}
	var got []string
	for _, d := range diags {
		got = append(got, fmt.Sprintf("%d: %s", d.Subject.Start.Line, d.Summary))
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
