package config

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// WriteDiagnostics prints each diagnostic as
//
//	FILE:LINE:COL: severity: summary
//	  LINE | the source line
//	       |     ^^^^^ (under the subject's range on that line)
//	  detail
//
// followed by an empty line. A diagnostic without a subject prints as
// "severity: summary" and its detail. Source lines come from files, or from
// disk when files is nil or lacks the file (as after a failed Load). Secrets
// are never printed (see redact.go): in source lines they show as
// <redacted>, and so do their values in summaries and details. Any bytes
// render: invalid UTF-8 and control characters show as U+FFFD.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) {
	r := &renderer{files: files}
	r.write(w, diags)
}

// WriteDiagnostics is the package's WriteDiagnostics for the diagnostics
// of c (Load's warnings, ApplySchema's, a plugin's Configure): it also
// hides the attributes the plugins' schemas mark sensitive, and the values
// of c's secrets wherever they appear.
func (c *Config) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics) {
	r := &renderer{files: c.Files, masks: c.masks, secrets: c.secrets}
	r.write(w, diags)
}

// renderer prints diagnostics; sources are read (and parsed) once each.
type renderer struct {
	files   map[string]*hcl.File
	masks   []hcl.Range // source ranges to hide besides the name rules'
	secrets []string    // values to hide besides the source's
	sources map[string]*source
}

// source is one file as a diagnostic shows it.
type source struct {
	src     []byte
	masks   []span   // byte ranges of src to hide, merged
	secrets []string // the string literals inside them
}

func (r *renderer) source(name string) *source {
	if s, ok := r.sources[name]; ok {
		return s
	}
	s := &source{}
	var body hcl.Body
	if f, ok := r.files[name]; ok && f != nil {
		s.src, body = f.Bytes, f.Body
	} else if b, err := os.ReadFile(name); err == nil {
		s.src = b
		if f, _ := hclsyntax.ParseConfig(b, name, hcl.InitialPos); f != nil {
			body = f.Body
		}
	}
	var masks []span
	for _, rng := range append(secretRanges(body), r.masks...) {
		if rng.Filename == name {
			masks = append(masks, span{max(rng.Start.Byte, 0), min(rng.End.Byte, len(s.src))})
		}
	}
	masks = append(masks, mapMasks(s.src, 0, len(s.src))...)
	s.masks = mergeSpans(masks)
	s.secrets = literals(s.src, s.masks)
	if r.sources == nil {
		r.sources = map[string]*source{}
	}
	r.sources[name] = s
	return s
}

func (r *renderer) write(w io.Writer, diags hcl.Diagnostics) {
	// Every value hidden in any source is hidden in every message.
	secrets := r.secrets
	seen := map[string]bool{}
	for _, dg := range diags {
		if dg.Subject != nil && !seen[dg.Subject.Filename] {
			seen[dg.Subject.Filename] = true
			secrets = append(secrets, r.source(dg.Subject.Filename).secrets...)
		}
	}
	values := newValueIndex(secrets)
	var buf bytes.Buffer
	for _, dg := range diags {
		sev := "error"
		if dg.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		summary := printable(values.scrub(dg.Summary))
		if dg.Subject == nil {
			fmt.Fprintf(&buf, "%s: %s\n", sev, summary)
		} else {
			s := dg.Subject
			fmt.Fprintf(&buf, "%s:%d:%d: %s: %s\n", printable(s.Filename), s.Start.Line, s.Start.Column, sev, summary)
			src := r.source(s.Filename)
			writeSnippet(&buf, src.src, s, src.masks, values)
		}
		if dg.Detail != "" {
			detail := values.scrub(dg.Detail)
			for _, line := range strings.Split(strings.TrimRight(detail, "\n"), "\n") {
				if line == "" {
					buf.WriteString("\n")
					continue
				}
				buf.WriteString("  " + printable(line) + "\n")
			}
		}
		buf.WriteString("\n")
	}
	_, _ = w.Write(buf.Bytes())
}

// maxSnippet is how many characters of a long source line a diagnostic shows.
const maxSnippet = 160

// writeSnippet prints the subject's first line and a caret line under it.
// masks are the byte ranges of src to hide, sorted and disjoint (as
// mergeSpans leaves them); values are hidden wherever
// they appear in the line, and so are the secrets the name rules and URL
// rules find in it. src may be any bytes, and rng any range: a range
// outside src prints nothing, one past its line's end is cut there.
func writeSnippet(buf *bytes.Buffer, src []byte, rng *hcl.Range, masks []span, values *valueIndex) {
	start := rng.Start.Byte
	if src == nil || start < 0 || start > len(src) {
		return
	}
	lineStart := bytes.LastIndexByte(src[:start], '\n') + 1
	lineEnd := len(src)
	if i := bytes.IndexByte(src[start:], '\n'); i >= 0 {
		lineEnd = start + i
	}
	if lineEnd > lineStart && src[lineEnd-1] == '\r' {
		lineEnd--
	}
	start = min(start, lineEnd) // the subject may start on a trimmed "\r"
	end := rng.End.Byte
	if end > lineEnd || end < start {
		end = lineEnd
	}
	line := src[lineStart:lineEnd]

	var lm []span
	// masks are sorted and disjoint: start at the first that ends past lineStart.
	for _, m := range masks[sort.Search(len(masks), func(i int) bool { return masks[i].end > lineStart }):] {
		if m.start >= lineEnd {
			break
		}
		lm = append(lm, span{max(m.start, lineStart) - lineStart, min(m.end, lineEnd) - lineStart})
	}
	lm = append(lm, lineMasks(line)...)
	lm = append(lm, urlMasks(line)...)
	lm = append(lm, values.masks(line)...)
	cells, first, last := displayLine(line, mergeSpans(lm))

	// The caret covers the cells of the subject's bytes on this line.
	// (the whole of a character or a hidden value the range ends inside).
	cs, ce := first[start-lineStart], first[start-lineStart]
	if end > start {
		ce = last[end-1-lineStart]
	}
	// A very long line (a big literal) is cut after the subject's start.
	if cut := max(maxSnippet, cs+20); len(cells) > cut {
		cells = append(cells[:cut:cut], '…')
		ce = min(ce, cut)
	}
	width := max(ce-cs, 1)
	var pad strings.Builder
	for _, c := range cells[:cs] {
		if c == '\t' {
			pad.WriteByte('\t')
		} else {
			pad.WriteByte(' ')
		}
	}
	num := strconv.Itoa(rng.Start.Line)
	gutter := strings.Repeat(" ", len(num))
	fmt.Fprintf(buf, "  %s | %s\n", num, string(cells))
	fmt.Fprintf(buf, "  %s | %s%s\n", gutter, pad.String(), strings.Repeat("^", width))
}

// displayLine turns a source line into the characters printed: each masked
// span becomes redacted, each character itself, except that invalid UTF-8
// and characters that would move the cursor or reorder text print as
// U+FFFD. first[i] and last[i] are the cells (indexes into cells) where the
// unit holding byte i starts and ends; first[len(line)] = len(cells).
func displayLine(line []byte, masks []span) (cells []rune, first, last []int) {
	first = make([]int, len(line)+1)
	last = make([]int, len(line)+1)
	mi := 0
	for i := 0; i < len(line); {
		from := len(cells)
		next := i
		if mi < len(masks) && masks[mi].start <= i {
			cells = append(cells, []rune(redacted)...)
			next = max(masks[mi].end, i+1)
			mi++
		} else {
			r, size := utf8.DecodeRune(line[i:])
			cells = append(cells, displayRune(r))
			next = i + size
		}
		for j := i; j < next && j < len(line); j++ {
			first[j], last[j] = from, len(cells)
		}
		i = next
	}
	first[len(line)], last[len(line)] = len(cells), len(cells)
	return cells, first, last
}

// displayRune is r as a diagnostic prints it.
func displayRune(r rune) rune {
	switch {
	case r == '\t':
		return r
	case r == utf8.RuneError, r < 0x20, r == 0x7f, 0x80 <= r && r < 0xa0,
		0x202a <= r && r <= 0x202e, 0x2066 <= r && r <= 0x2069, r == 0x200e, r == 0x200f:
		return utf8.RuneError
	}
	return r
}

// printable is s with invalid UTF-8 and control characters (but tabs and
// newlines) shown as U+FFFD: a message may quote the file's bytes.
func printable(s string) string {
	ok := utf8.ValidString(s)
	if ok {
		for _, r := range s {
			if r != '\n' && displayRune(r) != r {
				ok = false
				break
			}
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == '\n' {
			b.WriteRune(r)
			continue
		}
		b.WriteRune(displayRune(r))
	}
	return b.String()
}
