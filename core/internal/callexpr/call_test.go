package callexpr

import (
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/ringside/ringside/core/internal/callback"
	"github.com/ringside/ringside/core/internal/callexpr/callexprtest"
)

var (
	testCall  = callexprtest.Call()
	parseExpr = callexprtest.Parse
)

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
			v, diags := parseExpr(t, tc.when).Value(Context(tc.call))
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if v.Type() != cty.Bool || v.True() != tc.want {
				t.Errorf("got %#v; want %v", v, tc.want)
			}
		})
	}
}

// TestCallValueType: every call, even an empty one, is a value of
// Type, and the per-call context has no load-time function.
func TestCallValueType(t *testing.T) {
	for _, c := range []*callback.Call{testCall, {}} {
		v := Value(c)
		if !v.Type().Equals(Type()) {
			t.Errorf("Value type %#v; want %#v", v.Type(), Type())
		}
	}
	ctx := Context(&callback.Call{})
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

// TestFunctionNamesMatchDoc: the function set is the one the package
// documentation lists.
func TestFunctionNamesMatchDoc(t *testing.T) {
	want := strings.Fields(`abs base64decode base64encode can ceil chomp coalesce coalescelist compact concat contains
		distinct element flatten floor format formatdate formatlist indent join jsondecode jsonencode keys length lookup lower
		max merge min regex regexall replace reverse slice sort split strrev substr timeadd title tobool tonumber tostring
		trim trimprefix trimspace trimsuffix try upper values zipmap`)
	if got := FunctionNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// BenchmarkWhen is the hot path of routing: a context per call and one
// typical when.
func BenchmarkWhen(b *testing.B) {
	expr := parseExpr(b, `call.to_service_id == "planetkit" && call.type == "V"`)
	b.ReportAllocs()
	for b.Loop() {
		v, diags := expr.Value(Context(testCall))
		if diags.HasErrors() || !v.True() {
			b.Fatal(diags)
		}
	}
}

func BenchmarkCallContext(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Context(testCall)
	}
}

func BenchmarkPayload(b *testing.B) {
	expr := parseExpr(b, `{
  caller = call.from_user_id
  video  = call.type == "V"
}`)
	ctx := Context(testCall)
	b.ReportAllocs()
	for b.Loop() {
		if _, diags := expr.Value(ctx); diags.HasErrors() {
			b.Fatal(diags)
		}
	}
}
