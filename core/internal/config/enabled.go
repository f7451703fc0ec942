package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// DisabledReason says why notifier n is disabled, in words an operator can
// act on, or "" when it is enabled. When its enabled expression reads
// environment variables that are empty or unset it names them, as in
// `enabled = env("APNS_KEY_ID") != "" is false: APNS_KEY_ID is not set`;
// otherwise it points at the attribute: `enabled is false (config.hcl:36:3)`.
// It never prints a variable's value.
func (c *Config) DisabledReason(n *Notifier) string {
	if n.Enabled {
		return ""
	}
	attr, src := c.enabledAttr(n)
	if attr == nil {
		return "enabled is false"
	}
	at := fmt.Sprintf("%s:%d:%d", attr.SrcRange.Filename, attr.SrcRange.Start.Line, attr.SrcRange.Start.Column)
	unset := c.unsetEnv(attr.Expr)
	if len(unset) == 0 {
		return fmt.Sprintf("enabled is false (%s)", at)
	}
	verb := "is"
	if len(unset) > 1 {
		verb = "are"
	}
	what := fmt.Sprintf("%s %s not set", joinAnd(unset), verb)
	if src == "" || strings.ContainsAny(src, "\r\n") {
		return fmt.Sprintf("enabled is false (%s): %s", at, what)
	}
	return fmt.Sprintf("enabled = %s is false: %s", src, what)
}

// enabledAttr finds n's enabled attribute in the parsed files, and the
// source text of its expression.
func (c *Config) enabledAttr(n *Notifier) (*hclsyntax.Attribute, string) {
	f := c.Files[n.DeclRange.Filename]
	if f == nil {
		return nil, ""
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil, ""
	}
	for _, b := range body.Blocks {
		if b.Type != "notifier" || len(b.Labels) != 1 || b.Labels[0] != n.Name {
			continue
		}
		a := b.Body.Attributes["enabled"]
		if a == nil {
			return nil, ""
		}
		r := a.Expr.Range()
		if r.Start.Byte < 0 || r.End.Byte > len(f.Bytes) || r.Start.Byte > r.End.Byte {
			return a, ""
		}
		return a, string(f.Bytes[r.Start.Byte:r.End.Byte])
	}
	return nil, ""
}

// unsetEnv returns the variables expr reads with env("NAME") that are
// empty or unset, each once, in the order they appear.
func (c *Config) unsetEnv(expr hclsyntax.Expression) []string {
	getenv := c.env
	if getenv == nil {
		getenv = osGetenv
	}
	var out []string
	_ = hclsyntax.VisitAll(expr, func(node hclsyntax.Node) hcl.Diagnostics {
		call, ok := node.(*hclsyntax.FunctionCallExpr)
		if !ok || call.Name != "env" || len(call.Args) != 1 {
			return nil
		}
		v, diags := call.Args[0].Value(nil)
		if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
			return nil
		}
		name := v.AsString()
		if getenv(name) == "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
		return nil
	})
	return out
}

// joinAnd joins names as "A", "A and B", "A, B and C".
func joinAnd(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
