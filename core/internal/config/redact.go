package config

import (
	"bytes"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// What a diagnostic never prints (diagnostics reach logs): the value of an
// attribute whose name says it holds a secret, of an attribute the plugin's
// schema marks sensitive, the values of a headers or env map, the userinfo
// and the query values of any URL, and any of those values wherever else
// they appear in a message. A value read with env() or file() stays
// visible: it says where the secret is, not what.

// redacted replaces what is hidden.
const redacted = "<redacted>"

// secretWord matches the attribute names that say they hold a secret:
// notify_token, admin_token, secret, auth_token, certificate_password,
// api_key, …
var secretWord = regexp.MustCompile(`(?i)token|secret|passw(?:or)?d|passphrase|credential|api_?key|private_?key|signing_?key|authorization|cookie`)

// secretName reports whether an attribute's name says it holds a secret.
func secretName(name string) bool { return secretWord.MatchString(name) }

// secretMapName reports whether an attribute is a map whose values are
// secrets, keys not: HTTP headers (Authorization, X-Api-Key, …) and a
// plugin's environment.
func secretMapName(name string) bool {
	return name == "headers" || name == "env" || strings.HasSuffix(name, "_headers")
}

// secretAttr matches, in a source line, an assignment to an attribute whose
// name says it holds a secret; it stands in for the syntax tree when the
// file does not parse.
var secretAttr = regexp.MustCompile(`^(\s*"?[A-Za-z0-9_-]*(?i:token|secret|passw(?:or)?d|passphrase|credential|api_?key|private_?key|signing_?key|authorization|cookie)[A-Za-z0-9_-]*"?\s*=\s*)(.*)$`)

// redactLine hides the value of a secret attribute in a source line, unless
// the value is read with env() or file().
func redactLine(line string) string {
	return string(applyMasks([]byte(line), lineMasks([]byte(line))))
}

// lineMasks is what the name rule hides in one source line.
func lineMasks(line []byte) []span {
	m := secretAttr.FindSubmatchIndex(line)
	if m == nil || m[4] == m[5] {
		return nil
	}
	v := line[m[4]:m[5]]
	if bytes.HasPrefix(v, []byte("env(")) || bytes.HasPrefix(v, []byte("file(")) {
		return nil
	}
	return []span{{m[4], m[5]}}
}

// urlPattern finds URLs in text: scheme, optional userinfo, host and path,
// optional query. Quotes, spaces and angle brackets end a URL.
var urlPattern = regexp.MustCompile(`(?i)[a-z][a-z0-9+.-]*://([^\s/?#@"'<>\\]*@)?[^\s?#"'<>\\]*(\?[^\s#"'<>\\]*)?`)

// urlMasks are the userinfo and the query values of every URL in text; a
// query parameter without "=" is hidden whole.
func urlMasks(text []byte) []span {
	var out []span
	for _, m := range urlPattern.FindAllSubmatchIndex(text, -1) {
		if m[2] >= 0 && m[3]-1 > m[2] { // userinfo, without its "@"
			out = append(out, span{m[2], m[3] - 1})
		}
		if m[4] < 0 {
			continue
		}
		q := m[4] + 1 // after "?"
		for q < m[5] {
			end := q + bytes.IndexAny(text[q:m[5]], "&;")
			if end < q {
				end = m[5]
			}
			if eq := bytes.IndexByte(text[q:end], '='); eq >= 0 {
				if q+eq+1 < end {
					out = append(out, span{q + eq + 1, end})
				}
			} else if end > q {
				out = append(out, span{q, end})
			}
			q = end + 1
		}
	}
	return out
}

// redactURLs hides the userinfo and query values of the URLs in s.
func redactURLs(s string) string {
	return string(applyMasks([]byte(s), urlMasks([]byte(s))))
}

// minScrub is the shortest value hidden wherever it appears in text; a
// shorter one ("true", a port) is hidden only where it is quoted, so that
// ordinary words of a message stay.
const minScrub = 6

// valueIndex finds the values to hide in a text in one pass: each value's
// needle (the value, or a short value quoted) indexed by its first three
// bytes, so that many values cost no more than a few.
type valueIndex struct {
	byPrefix map[string][]needle
}

type needle struct {
	text  string
	inner int // bytes of each end that stay (the quotes of a short value)
}

func newValueIndex(values []string) *valueIndex {
	x := &valueIndex{byPrefix: map[string][]needle{}}
	seen := map[string]bool{}
	for _, v := range values {
		if v == "" || seen[v] {
			continue
		}
		seen[v] = true
		n := needle{text: v}
		if len(v) < minScrub {
			n = needle{text: strconv.Quote(v), inner: 1}
		}
		x.byPrefix[n.text[:3]] = append(x.byPrefix[n.text[:3]], n)
	}
	return x
}

// masks are the places of the values in text: anywhere for values of at
// least minScrub bytes, between double quotes for shorter ones.
func (x *valueIndex) masks(text []byte) []span {
	if x == nil || len(x.byPrefix) == 0 {
		return nil
	}
	var out []span
	for i := 0; i+3 <= len(text); i++ {
		for _, n := range x.byPrefix[string(text[i:i+3])] {
			if bytes.HasPrefix(text[i:], []byte(n.text)) {
				out = append(out, span{i + n.inner, i + len(n.text) - n.inner})
			}
		}
	}
	return out
}

// scrub hides the values and the URL secrets in a message.
func (x *valueIndex) scrub(s string) string {
	b := []byte(s)
	return string(applyMasks(b, append(x.masks(b), urlMasks(b)...)))
}

// scrub hides the values and the URL secrets in a message.
func scrub(s string, values []string) string { return newValueIndex(values).scrub(s) }

// span is a byte range [start, end) of a text.
type span struct{ start, end int }

// mergeSpans sorts spans and joins those that overlap or touch; empty ones
// are dropped.
func mergeSpans(s []span) []span {
	s = slices.DeleteFunc(slices.Clone(s), func(x span) bool { return x.end <= x.start })
	sort.Slice(s, func(i, j int) bool { return s[i].start < s[j].start })
	var out []span
	for _, x := range s {
		if n := len(out); n > 0 && x.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, x.end)
			continue
		}
		out = append(out, x)
	}
	return out
}

// applyMasks replaces each (merged) span of text with redacted.
func applyMasks(text []byte, masks []span) []byte {
	masks = mergeSpans(masks)
	if len(masks) == 0 {
		return text
	}
	var b bytes.Buffer
	at := 0
	for _, m := range masks {
		m.start, m.end = max(m.start, at), min(m.end, len(text))
		if m.start >= m.end {
			continue
		}
		b.Write(text[at:m.start])
		b.WriteString(redacted)
		at = m.end
	}
	b.Write(text[at:])
	return b.Bytes()
}

// secretRanges walks a parsed file and returns the ranges of the values
// the name rules hide: attributes named like secrets, and the values of
// headers and env maps, except env() and file() reads.
func secretRanges(body hcl.Body) []hcl.Range {
	b, ok := body.(*hclsyntax.Body)
	if !ok || b == nil {
		return nil
	}
	var out []hcl.Range
	var walk func(b *hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		for name, a := range b.Attributes {
			if a == nil || a.Expr == nil {
				continue
			}
			out = append(out, valueRanges(name, a.Expr, secretName(name))...)
		}
		for _, blk := range b.Blocks {
			if blk != nil && blk.Body != nil {
				walk(blk.Body)
			}
		}
	}
	walk(b)
	return out
}

// valueRanges are the ranges to hide in the value of attribute name:
// the whole expression when sensitive, each value of a headers or env
// object; nothing for env() and file() reads.
func valueRanges(name string, expr hclsyntax.Expression, sensitive bool) []hcl.Range {
	if readsEnvOrFile(expr) {
		return nil
	}
	if sensitive {
		return []hcl.Range{expr.Range()}
	}
	if !secretMapName(name) {
		return nil
	}
	obj, ok := expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return []hcl.Range{expr.Range()}
	}
	var out []hcl.Range
	for _, item := range obj.Items {
		if item.ValueExpr != nil && !readsEnvOrFile(item.ValueExpr) {
			out = append(out, item.ValueExpr.Range())
		}
	}
	return out
}

// readsEnvOrFile reports whether expr is env("…") or file("…") of a literal.
func readsEnvOrFile(expr hclsyntax.Expression) bool {
	call, ok := expr.(*hclsyntax.FunctionCallExpr)
	if !ok || (call.Name != "env" && call.Name != "file") || len(call.Args) != 1 {
		return false
	}
	switch a := call.Args[0].(type) {
	case *hclsyntax.TemplateExpr:
		return a.IsStringLiteral()
	case *hclsyntax.LiteralValueExpr:
		return true
	}
	return false
}

// quoted finds the quoted strings of HCL source text.
var quoted = regexp.MustCompile(`"((?:[^"\\\n]|\\.)*)"`)

// literals are the string literals inside the source ranges: the values
// hidden in the source are hidden in messages too.
func literals(src []byte, ranges []span) []string {
	var out []string
	for _, r := range ranges {
		if r.start < 0 || r.end > len(src) || r.start >= r.end {
			continue
		}
		text := src[r.start:r.end]
		found := false
		for _, m := range quoted.FindAllSubmatch(text, -1) {
			found = true
			out = append(out, string(m[1]))
		}
		if !found {
			out = append(out, strings.TrimSpace(string(text)))
		}
	}
	return out
}

// secretValues are the strings of a value to hide in messages: a string,
// or every string in a list or map.
func secretValues(v cty.Value) []string {
	if v.IsNull() || !v.IsWhollyKnown() {
		return nil
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return []string{v.AsString()}
	case ty.IsListType() || ty.IsMapType() || ty.IsTupleType() || ty.IsObjectType() || ty.IsSetType():
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			out = append(out, secretValues(ev)...)
		}
		return out
	}
	return nil
}

// urlSecrets are the userinfo and query values of the URLs in s, to hide
// wherever they appear.
func urlSecrets(s string) []string {
	var out []string
	for _, m := range urlMasks([]byte(s)) {
		out = append(out, s[m.start:m.end])
		// "user:password": the password alone too (not the user name,
		// which may be an ordinary word).
		if _, p, ok := strings.Cut(s[m.start:m.end], ":"); ok {
			out = append(out, p)
		}
	}
	return out
}

// mapMasks are the values of headers and env maps that start in
// src[lineStart:lineEnd] (the whole file: 0, len(src)). It reads the file
// line by line from its start with
// a scanner that knows strings, comments and braces but not HCL's grammar,
// and ends every string at the end of its line (a quoted string cannot
// span lines), so it holds when the file does not parse: the syntax tree
// of a broken file may end a string where the text does not.
func mapMasks(src []byte, lineStart, lineEnd int) []span {
	var (
		out     []span
		stack   []bool // open braces: does each open a secret map?
		word    []byte // the last name or quoted key
		key     []byte // the name before the last "="
		afterEq bool   // a value is expected (after "=" or ":")
		inCall  int    // depth inside env(…) or file(…), whose strings stay
	)
	secretMap := func() bool { return len(stack) > 0 && stack[len(stack)-1] }
	for i := 0; i < lineEnd && i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\n':
			afterEq, word = false, nil
		case c == '#' || c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i+1 < len(src) && src[i+1] != '\n' {
				i++
			}
		case c == '"':
			start := i
			i = stringEnd(src, i)
			if i >= start+1 && i-start >= 1 {
				word = src[start+1 : min(i, len(src))]
			}
			if afterEq && secretMap() && inCall == 0 && start >= lineStart {
				out = append(out, span{start, min(i+1, lineEnd)})
			}
		case c == '{':
			stack = append(stack, afterEq && secretMapName(string(key)))
			afterEq = false
		case c == '}':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			afterEq = false
		case c == '(':
			if inCall > 0 || string(word) == "env" || string(word) == "file" {
				inCall++
			}
		case c == ')':
			if inCall > 0 {
				inCall--
			}
		case c == ',':
			afterEq = false
		case c == '=' || c == ':':
			next := byte(0)
			if i+1 < len(src) {
				next = src[i+1]
			}
			prev := byte(0)
			if i > 0 {
				prev = src[i-1]
			}
			if c == '=' && (next == '=' || next == '>' || prev == '=' || prev == '!' || prev == '<' || prev == '>') {
				continue
			}
			key, afterEq = word, true
		case c == '_' || c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9':
			start := i
			for i+1 < len(src) && (src[i+1] == '_' || src[i+1] == '-' || 'a' <= src[i+1] && src[i+1] <= 'z' || 'A' <= src[i+1] && src[i+1] <= 'Z' || '0' <= src[i+1] && src[i+1] <= '9') {
				i++
			}
			word = src[start : i+1]
		}
	}
	return out
}

// stringEnd is the index of the quote that ends the string opened at
// src[open], skipping escapes and ${…} interpolations, or of the end of
// its line (or of src) when it is not closed there.
func stringEnd(src []byte, open int) int {
	for i := open + 1; i < len(src); i++ {
		switch src[i] {
		case '\\':
			i++
		case '\n':
			return i - 1
		case '"':
			return i
		case '$', '%':
			if i+1 < len(src) && src[i+1] == '{' {
				depth := 0
				for i++; i < len(src) && src[i] != '\n'; i++ {
					if src[i] == '{' {
						depth++
					} else if src[i] == '}' {
						if depth--; depth == 0 {
							break
						}
					}
				}
				if i >= len(src) || src[i] == '\n' {
					return i - 1
				}
			}
		}
	}
	return len(src) - 1
}
