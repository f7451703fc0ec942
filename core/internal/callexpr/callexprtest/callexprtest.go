// Package callexprtest helps tests of per-call expressions: it parses an
// expression's source and gives a sample call.
package callexprtest

import (
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/ringside/ringside/core/internal/callback"
)

// Parse parses src as an HCL expression from a file named test.hcl; a
// syntax error fails tb.
func Parse(tb testing.TB, src string) hcl.Expression {
	tb.Helper()
	e, diags := hclsyntax.ParseExpression([]byte(src), "test.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		tb.Fatal(diags)
	}
	return e
}

// Call returns a new video call from 9286 at linecorp.com to 2809 at
// planetkit, whose param is base64 of {"callType":"A"}, with stid and
// app_svr_data "stid" and one extra key, tier = "gold".
func Call() *callback.Call {
	return &callback.Call{
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
}
