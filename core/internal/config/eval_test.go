package config

import (
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/ringside/ringside/core/internal/callback"
)

var testCall = &callback.Call{
	SID:           "151ad995-749c-4a28-893f-636700469db1",
	FromServiceID: "linecorp.com",
	FromUserID:    "9286",
	ToServiceID:   "planetkit",
	ToUserID:      "2809",
	Type:          "V",
	Param:         "eyJjYWxsVHlwZSI6IkEifQ==",
	Stid:          "stid",
	AppSvrData:    "stid",
	Extra:         map[string]string{"tier": "gold"},
}

func parseExpr(t testing.TB, src string) hcl.Expression {
	t.Helper()
	expr, diags := hclsyntax.ParseExpression([]byte(src), "test.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return expr
}

func TestWhenEvaluation(t *testing.T) {
	plain := *testCall
	plain.Extra = nil
	tests := []struct {
		name string
		when string
		call *callback.Call
		want bool
	}{
		{"match", `call.to_service_id == "planetkit" && call.type == "V"`, testCall, true},
		{"no match", `call.to_service_id == "planetkit" && call.type == "A"`, testCall, false},
		{"lookup present", `lookup(call.extra, "tier", "") == "gold"`, testCall, true},
		{"lookup absent", `lookup(call.extra, "tier", "") == "gold"`, &plain, false},
		{"try present", `try(call.extra.tier == "gold", false)`, testCall, true},
		{"try absent", `try(call.extra.tier == "gold", false)`, &plain, false},
		{"can", `can(call.extra.tier)`, &plain, false},
		{"regex", `can(regex("^[0-9]+$", call.to_user_id))`, testCall, true},
		{"contains", `contains(["2809", "1"], call.to_user_id)`, testCall, true},
		{"coalesce of strings", `coalesce("", call.stid) == "stid"`, testCall, true},
		{"length of string", `length(call.sid) == 36`, testCall, true},
		{"jsondecode param", `jsondecode(base64decode(call.param)).callType == "A"`, testCall, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expr := parseExpr(t, tc.when)
			if diags := checkWhen(&hcl.Attribute{Name: "when", Expr: expr}); diags.HasErrors() {
				t.Fatalf("load check: %v", diags)
			}
			v, diags := expr.Value(CallContext(tc.call))
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if v.Type() != cty.Bool || v.True() != tc.want {
				t.Errorf("got %#v; want %v", v, tc.want)
			}
		})
	}
}

func TestPayloadKeepsTypes(t *testing.T) {
	expr := parseExpr(t, `{
  caller  = call.from_user_id
  video   = call.type == "V"
  retries = 3
  tags    = ["a", call.type]
  meta    = { tier = lookup(call.extra, "tier", "none") }
}`)
	keys, diags := checkPayload(&hcl.Attribute{Name: "payload", Expr: expr})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(keys) != 5 {
		t.Errorf("keys %q", keys)
	}
	v, diags := expr.Value(CallContext(testCall))
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

func TestCallValueType(t *testing.T) {
	for _, c := range []*callback.Call{testCall, {}} {
		v := CallValue(c)
		if !v.Type().Equals(CallType()) {
			t.Errorf("CallValue type %#v; want %#v", v.Type(), CallType())
		}
	}
	ctx := CallContext(&callback.Call{})
	if _, ok := ctx.Functions["env"]; ok {
		t.Error("env is in the call function set")
	}
	if _, ok := ctx.Functions["file"]; ok {
		t.Error("file is in the call function set")
	}
	v, diags := parseExpr(t, `length(call.extra) == 0 && call.stid == ""`).Value(ctx)
	if diags.HasErrors() || !v.True() {
		t.Errorf("empty call: got %#v, %v", v, diags)
	}
}

func TestCheckCallExprAccepts(t *testing.T) {
	for _, src := range []string{
		`call["type"] == "V"`,
		`call.extra.anything == "1"`,
		`[for k, v in call.extra : k if v == "1"] != []`,
		`jsonencode(call) != ""`,
		`try(tobool(call.extra.vip), false)`,
		`"true"`,
	} {
		if diags := checkWhen(&hcl.Attribute{Name: "when", Expr: parseExpr(t, src)}); diags.HasErrors() {
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
		diags := checkWhen(&hcl.Attribute{Name: "when", Expr: parseExpr(t, src)})
		if !diags.HasErrors() {
			t.Errorf("%s: no error", src)
		}
	}
}

// BenchmarkWhen is the hot path of routing: a context per call and one
// typical when.
func BenchmarkWhen(b *testing.B) {
	expr := parseExpr(b, `call.to_service_id == "planetkit" && call.type == "V"`)
	b.ReportAllocs()
	for b.Loop() {
		v, diags := expr.Value(CallContext(testCall))
		if diags.HasErrors() || !v.True() {
			b.Fatal(diags)
		}
	}
}

func BenchmarkCallContext(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = CallContext(testCall)
	}
}

func BenchmarkPayload(b *testing.B) {
	expr := parseExpr(b, `{
  caller = call.from_user_id
  video  = call.type == "V"
}`)
	ctx := CallContext(testCall)
	b.ReportAllocs()
	for b.Loop() {
		if _, diags := expr.Value(ctx); diags.HasErrors() {
			b.Fatal(diags)
		}
	}
}
