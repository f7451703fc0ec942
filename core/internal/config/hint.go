package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// HCL's own diagnostics (the parser's, gohcl's, an expression's) are
// generic: they know the syntax, not ringside. Each is marked where it
// enters this package (fromHCL); the code that rewrites one in ringside's
// words says so (reworded), and the last pass (addHints) gives every
// other one a hint: what the mistake most likely is here, and how to fix
// it. The subject, and so FILE:LINE:COL, stays HCL's.

// generic marks a diagnostic that HCL wrote; it wraps the Extra HCL gave it.
type generic struct {
	inner   any
	summary string // HCL's
	hinted  bool   // reworded, or given a hint
}

// UnwrapDiagnosticExtra lets hcl.DiagnosticExtra find HCL's own Extra.
func (g *generic) UnwrapDiagnosticExtra() any { return g.inner }

// fromHCL marks diags as HCL's own.
func fromHCL(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, dg := range diags {
		if _, ok := dg.Extra.(*generic); !ok {
			dg.Extra = &generic{inner: dg.Extra, summary: dg.Summary}
		}
	}
	return diags
}

// reworded records that dg, if HCL wrote it, is now in ringside's words.
func reworded(dg *hcl.Diagnostic) {
	if g, ok := dg.Extra.(*generic); ok {
		g.hinted = true
	}
}

// unhinted reports whether dg is HCL's and still has no hint.
func unhinted(dg *hcl.Diagnostic) bool {
	g, ok := dg.Extra.(*generic)
	return ok && !g.hinted
}

// addHints gives each of HCL's diagnostics in diags that has none a hint,
// from the text of its file in files.
func addHints(files map[string]*hcl.File, diags hcl.Diagnostics) hcl.Diagnostics {
	for _, dg := range diags {
		if !unhinted(dg) {
			continue
		}
		var f *hcl.File
		if dg.Subject != nil {
			f = files[dg.Subject.Filename]
		}
		if detail, ok := hintFor(f, dg); ok {
			dg.Detail = detail
			reworded(dg)
		}
	}
	return diags
}

// hintFor returns dg's new detail: HCL's and a hint, or a detail of ours
// where HCL's would mislead (and a summary of ours where HCL's would, as
// for an = that was meant as ==). ok is false when there is no hint for dg.
func hintFor(f *hcl.File, dg *hcl.Diagnostic) (detail string, ok bool) {
	h := &hinter{dg: dg}
	if f != nil && dg.Subject != nil {
		h.src = f.Bytes
		h.body, _ = f.Body.(*hclsyntax.Body)
		if s := dg.Subject.Start.Byte; s >= 0 && s <= len(h.src) {
			h.at = s
		} else {
			h.src = nil
		}
	}
	if cmp := h.comparison(); cmp != "" {
		dg.Summary = "Use == to compare: " + cmp
		return "A single = sets an attribute; within an expression, == tests equality (and != inequality).", true
	}
	switch s := dg.Summary; {
	case s == "Missing newline after argument":
		return h.also("Each attribute is on its own line: check for a stray character after the value, or a value that goes on where it should have ended (an unclosed quote or bracket)."), true
	case s == "Unexpected comma after argument":
		return h.also("A block's attributes are one per line, without commas between them: remove the comma (commas separate the items of a list [ … ] or an object { … })."), true
	case s == "Missing newline after block definition":
		return h.also("After a block's closing }, start the next block or attribute on a new line."), true
	case s == "Argument or block definition required":
		if strings.HasPrefix(strings.TrimLeft(h.nextLine(), " \t"), "{") {
			return h.also("A block's { goes on the line of its name: write name \"label\" { on one line."), true
		}
		return h.also("Each line of a block is an attribute, name = value, or a nested block, name \"label\" { … }; a comment starts with #. Check this line for a stray character, a missing = or #, or an unbalanced quote or brace."), true
	case s == "Argument definition required", s == "Invalid single-argument block definition":
		return h.also("Write a block as name \"label\" {, with the labels in double quotes, then its attributes one per line and the closing } on a line of its own. Check this line for a { where a quote was meant, or a stray brace."), true
	case s == "Invalid block definition":
		switch {
		case strings.Contains(dg.Detail, `"="`):
			return h.also("A block has no =: write name \"label\" { … }. Or, for an attribute, write name = value without labels."), true
		case strings.Contains(dg.Detail, "starting on the same line"):
			return h.also("Put the block's opening { at the end of its first line: name \"label\" {."), true
		}
		return h.also("Each top-level line is an attribute (name = value), a block (name \"label\" { … }, its labels in double quotes) or a comment (starting with #): check for a stray character, an unquoted label or a missing #."), true
	case s == "Unclosed configuration block":
		return h.also("Every { needs its }: add the } that ends this block, or remove a stray { within it. The missing brace or quote may be anywhere between this block and the end of the file."), true
	case s == "Attribute redefined":
		return h.redefined(), true
	case s == "Invalid argument name":
		return h.also("Write the attribute's name bare, without quotes, such as listen = \"127.0.0.1:20200\"; check for a stray quote."), true
	case s == "Invalid attribute name":
		return h.also("A dot is followed by a field name, such as call.type; check for a stray dot, or a string missing its quotes (\"127.0.0.1:20200\")."), true
	case s == "Invalid character":
		return h.also("Strings are in double quotes, attributes one per line, and a comment starts with #. If this line was a comment, put the # back at its start."), true
	case s == "Invalid character encoding":
		return h.also("The file must be UTF-8 text: the byte here is not. Retype the character, or save the file as UTF-8."), true
	case s == "Invalid expression":
		if h.lineEndsAfterEquals() {
			return h.also("The value is missing: write one after =, such as a string in double quotes, a number, true or false, a list [ … ] or an object { … }. To start a block, write name { without =."), true
		}
		return h.also("A value is expected here: a string in double quotes, a number, true or false, a list [ … ], an object { … }, call.FIELD or a function call. Check for a stray character or a missing quote."), true
	case s == "Invalid legacy index syntax", s == "Invalid number literal":
		return "This looks like a string without its quotes, such as an address or a version: put it in double quotes, such as listen = \"127.0.0.1:20200\".", true
	case s == "Invalid multi-line string", s == "Unterminated template string":
		if h.src != nil && (strings.Count(h.line(), `"`)-strings.Count(h.line(), `\"`))%2 == 0 {
			return h.also("A quoted string ends on the line it starts on, but one opened above runs into this line: look above for a missing or extra double quote (an error reported above is the likely cause)."), true
		}
		return h.also("A quoted string ends on the line it starts on: a double quote is missing, or there is one too many, on this line."), true
	case s == "Invalid string literal":
		return h.also("A string is one pair of double quotes; check this line for a doubled or stray quote."), true
	case s == "Missing argument separator":
		return h.also("Separate a function's arguments with commas, and check the quotes, such as env(\"APNS_KEY_ID\")."), true
	case s == "Missing attribute separator", s == "Missing key/value separator", s == "Missing attribute value":
		return h.also("In an object { … }, write each entry as key = value, one per line or separated by commas. Check this line for a stray character, a missing = or an unbalanced quote or brace."), true
	case s == "Missing item separator":
		return h.also("Separate the items of a list with commas, such as [\"ios\", \"android\"]; check for a stray character or an unbalanced quote or bracket."), true
	case s == "Missing close bracket on index":
		return h.also("An index, such as call.extra[\"kind\"], ends with ]: look at or above this line for a [ without its ], such as a stray [ after a value."), true
	case s == "Unbalanced parentheses":
		return h.also("Parentheses come in pairs: add the closing one, or remove a stray opening one."), true
	case s == "Unsupported operator":
		return h.also("Combine conditions with && (and) and || (or), such as call.type == \"V\" && call.to_service_id == \"my-svc\"."), true
	case s == "Extra characters after interpolation expression":
		return h.also("A ${ … } in a string holds one expression and ends with }: check for a missing }, or a stray character within it."), true
	case s == "Call to unknown function":
		return h.unknownFunction(), true
	case s == "Unsupported argument":
		return h.unsupportedArgument(), true
	case s == "Unsupported block type":
		return h.unsupportedBlock(), true
	case strings.HasPrefix(s, "Extraneous label for "), strings.HasPrefix(s, "Missing name for "), strings.HasPrefix(s, "Missing kind for "):
		return h.labels(), true
	}
	return "", false
}

// hinter is what a hint knows of its diagnostic.
type hinter struct {
	dg   *hcl.Diagnostic
	src  []byte          // the file; nil when unknown
	at   int             // the subject's first byte in src
	body *hclsyntax.Body // the file's body (partial after a syntax error); nil when unknown
}

// also is HCL's detail followed by hint, on a line of its own.
func (h *hinter) also(hint string) string {
	if h.dg.Detail == "" {
		return hint
	}
	return h.dg.Detail + "\n" + hint
}

// comparison returns the comparison an assignment in an expression most
// likely meant, such as call.type == "V", when the subject is a lone =
// between a reference to call (call.FIELD, call.extra["KEY"]) and a
// string, number or name that ends the expression or a part of it; else "".
func (h *hinter) comparison() string {
	src, at := h.src, h.at
	if src == nil || at >= len(src) || src[at] != '=' {
		return ""
	}
	lineStart := strings.LastIndexByte(string(src[:at]), '\n') + 1
	lineEnd := len(src)
	if i := strings.IndexByte(string(src[at:]), '\n'); i >= 0 {
		lineEnd = at + i
	}
	m := leftOperand.FindStringSubmatch(string(src[lineStart:at]))
	if m == nil {
		return ""
	}
	r := rightOperand.FindStringSubmatch(string(src[at+1 : lineEnd]))
	if r == nil {
		return ""
	}
	return m[1] + " == " + r[1]
}

var (
	// leftOperand matches a line up to a reference to call and blanks, the
	// reference in group 1, after the start of an expression.
	leftOperand = regexp.MustCompile(`(?:^|[=(\[{,?:!&|]|\$\{)\s*(call(?:\.[A-Za-z_][A-Za-z0-9_]*|\["(?:[^"\\]|\\.)*"\])+)\s*$`)
	// rightOperand matches what follows the =: a string, number or name
	// (group 1), then the end of the line, a comment or what may follow
	// an operand.
	rightOperand = regexp.MustCompile(`^\s*("(?:[^"\\]|\\.)*"|[A-Za-z0-9_.]+)\s*(?:$|#|//|&&|\|\||\?|\)|\]|\}|,)`)
)

// lineEndsAfterEquals reports whether the subject's line ends (but for
// a comment) after an = before the subject: a value left out.
func (h *hinter) lineEndsAfterEquals() bool {
	if h.src == nil {
		return false
	}
	lineStart := strings.LastIndexByte(string(h.src[:h.at]), '\n') + 1
	before := strings.TrimRight(string(h.src[lineStart:h.at]), " \t\r\n")
	after := strings.TrimSpace(strings.TrimPrefix(h.line(), string(h.src[lineStart:h.at])))
	return strings.HasSuffix(before, "=") && !strings.HasSuffix(before, "==") &&
		(after == "" || strings.HasPrefix(after, "#") || strings.HasPrefix(after, "//"))
}

// line is the subject's line, without its newline.
func (h *hinter) line() string {
	start := strings.LastIndexByte(string(h.src[:h.at]), '\n') + 1
	end := len(h.src)
	if i := strings.IndexByte(string(h.src[h.at:]), '\n'); i >= 0 {
		end = h.at + i
	}
	return strings.TrimSuffix(string(h.src[start:end]), "\r")
}

// nextLine is the line after the subject's; "" when there is none.
func (h *hinter) nextLine() string {
	if h.src == nil {
		return ""
	}
	i := strings.IndexByte(string(h.src[h.at:]), '\n')
	if i < 0 {
		return ""
	}
	rest := string(h.src[h.at+i+1:])
	if j := strings.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

var alreadySetAt = regexp.MustCompile(`^The argument "([^"]+)" was already set at (.+):(\d+),(\d+)-[\d,]+\.`)

// redefined rewords "Attribute redefined" to print the first as FILE:LINE:COL.
func (h *hinter) redefined() string {
	m := alreadySetAt.FindStringSubmatch(h.dg.Detail)
	if m == nil {
		return h.also("An attribute may be set only once in a block: remove one of the two, or fix this line's name if it meant another attribute.")
	}
	return fmt.Sprintf("%s is already set at %s:%s:%s, and an attribute may be set only once in a block: remove one of the two, or fix this line's name if it meant another attribute.", m[1], m[2], m[3], m[4])
}

var noFunctionNamed = regexp.MustCompile(`^There is no function named "([^"]+)"`)

// unknownFunction names the functions of the load-time context.
func (h *hinter) unknownFunction() string {
	name := ""
	if extra, ok := hcl.DiagnosticExtra[hclsyntax.FunctionCallUnknownDiagExtra](h.dg); ok {
		name = extra.CalledFunctionName()
	} else if m := noFunctionNamed.FindStringSubmatch(h.dg.Detail); m != nil {
		name = m[1]
	}
	names := slices.Sorted(mapKeys(loadContext("", nil).Functions))
	detail := fmt.Sprintf("There is no function named %q.", name)
	if s := suggest(name, names); s != "" {
		detail = fmt.Sprintf("There is no function named %q; did you mean %s()?", name, s)
	}
	return detail + " Here, env(\"NAME\") reads an environment variable and file(\"PATH\") a file; the functions of when and payload, such as lower() and format(), work too (see \"Expressions and functions\" in docs/configuration.md)."
}

// blockSchemas are the attributes and nested blocks of each block type
// ("" is the top level) that gohcl decodes.
var blockSchemas = map[string]*hcl.BodySchema{}

func init() {
	for name, raw := range map[string]any{
		"": rawFile{}, "server": rawServer{}, "tls": rawTLS{}, "admin_tls": rawTLS{},
		"delivery": rawDelivery{}, "call_log": rawCallLog{}, "feedback": rawFeedback{},
		"log": rawLog{}, "telemetry": rawTelemetry{}, "directory": rawDirectory{},
		"plugin": rawPlugin{}, "notifier": rawNotifier{}, "route": rawRoute{},
		"cluster": rawCluster{}, "cluster/tls": rawClusterTLS{},
	} {
		s, _ := gohcl.ImpliedBodySchema(reflect.New(reflect.TypeOf(raw)).Interface())
		blockSchemas[name] = s
	}
}

// blockAt returns the innermost block whose body holds the byte at, and
// whether it is known ("" and true at the top level). A block whose type
// starts at at is the subject itself, not its container.
func (h *hinter) blockAt() (string, bool) {
	if h.body == nil {
		return "", false
	}
	typ, body := "", h.body
	for {
		var inner *hclsyntax.Block
		for _, b := range body.Blocks {
			if b.OpenBraceRange.End.Byte <= h.at && h.at < b.CloseBraceRange.Start.Byte && b.TypeRange.Start.Byte != h.at {
				inner = b
				break
			}
		}
		if inner == nil {
			return typ, true
		}
		if typ == "cluster" && inner.Type == "tls" {
			typ, body = "cluster/tls", inner.Body // not the server's tls block
			continue
		}
		typ, body = inner.Type, inner.Body
	}
}

// where says where a block type's body is, for a message.
func where(typ string) string {
	if typ == "" {
		return "at the top level"
	}
	if parent, child, ok := strings.Cut(typ, "/"); ok {
		return "in the " + child + " block of a " + parent + " block"
	}
	return "in a " + typ + " block"
}

var unsupportedName = regexp.MustCompile(`^(?:An argument named|Blocks of type) "([^"]+)"`)

// unsupportedArgument names the attributes the block takes.
func (h *hinter) unsupportedArgument() string {
	typ, known := h.blockAt()
	schema := blockSchemas[typ]
	m := unsupportedName.FindStringSubmatch(h.dg.Detail)
	if !known || schema == nil || m == nil {
		return h.also("Check the attribute's name, and that it is in the block it belongs to (see docs/configuration.md).")
	}
	var attrs, blocks []string
	for _, a := range schema.Attributes {
		attrs = append(attrs, a.Name)
	}
	for _, b := range schema.Blocks {
		blocks = append(blocks, b.Type)
	}
	detail := fmt.Sprintf("There is no attribute %q %s.", m[1], where(typ))
	if s := suggest(m[1], attrs); s != "" {
		detail = fmt.Sprintf("There is no attribute %q %s; did you mean %q?", m[1], where(typ), s)
	}
	switch {
	case typ == "":
		detail += fmt.Sprintf(" The top level holds blocks (%s) and the attribute %s: is this attribute outside its block (a } too early)?", strings.Join(blocks, ", "), strings.Join(attrs, ", "))
	default:
		detail += fmt.Sprintf(" The attributes of a %s block are %s.", strings.ReplaceAll(typ, "/", " "), strings.Join(attrs, ", "))
	}
	return detail
}

// unsupportedBlock names the blocks that may appear here.
func (h *hinter) unsupportedBlock() string {
	typ, known := h.blockAt()
	schema := blockSchemas[typ]
	m := unsupportedName.FindStringSubmatch(h.dg.Detail)
	if !known || schema == nil || m == nil {
		return h.also("Check the block's name, and that it is where it belongs (see docs/configuration.md).")
	}
	var blocks []string
	for _, b := range schema.Blocks {
		blocks = append(blocks, b.Type)
	}
	detail := fmt.Sprintf("There is no block %q %s.", m[1], where(typ))
	if s := suggest(m[1], blocks); s != "" {
		detail = fmt.Sprintf("There is no block %q %s; did you mean %q?", m[1], where(typ), s)
	}
	if len(blocks) == 0 {
		return detail + fmt.Sprintf(" A %s block holds only attributes, written name = value: is an = missing, or a quote?", typ)
	}
	return detail + fmt.Sprintf(" The blocks here are %s; an attribute is written name = value (is an = missing?).", strings.Join(blocks, ", "))
}

// labels says how many labels the block takes.
func (h *hinter) labels() string {
	typ := ""
	for _, p := range []string{"Extraneous label for ", "Missing name for ", "Missing kind for "} {
		if t, ok := strings.CutPrefix(h.dg.Summary, p); ok {
			typ = t
		}
	}
	switch typ {
	case "notifier", "route", "plugin":
		return h.also(fmt.Sprintf("A %s block has one label, its name in double quotes: %s \"NAME\" { … }. Check for a stray character or quote between the name and {.", typ, typ))
	case "directory":
		return h.also("A directory block has one label, its kind: directory \"embedded\" { … }. Check for a stray character or quote between the label and {.")
	case "cluster":
		return h.also("A cluster block has one label, its kind: cluster \"redis\" { … }. Check for a stray character or quote between the label and {.")
	}
	return h.also(fmt.Sprintf("A %s block has no label: write %s { … }, with nothing between %s and {.", typ, typ, typ))
}
