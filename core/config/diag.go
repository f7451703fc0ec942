package config

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
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
// disk when files is nil or lacks the file (as after a failed Load).
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) {
	sources := map[string][]byte{}
	source := func(name string) []byte {
		if f, ok := files[name]; ok && f != nil {
			return f.Bytes
		}
		if b, ok := sources[name]; ok {
			return b
		}
		b, err := os.ReadFile(name)
		if err != nil {
			b = nil
		}
		sources[name] = b
		return b
	}
	var buf bytes.Buffer
	for _, dg := range diags {
		sev := "error"
		if dg.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		if dg.Subject == nil {
			fmt.Fprintf(&buf, "%s: %s\n", sev, dg.Summary)
		} else {
			s := dg.Subject
			fmt.Fprintf(&buf, "%s:%d:%d: %s: %s\n", s.Filename, s.Start.Line, s.Start.Column, sev, dg.Summary)
			writeSnippet(&buf, source(s.Filename), s)
		}
		if dg.Detail != "" {
			for _, line := range strings.Split(strings.TrimRight(dg.Detail, "\n"), "\n") {
				if line == "" {
					buf.WriteString("\n")
					continue
				}
				buf.WriteString("  " + line + "\n")
			}
		}
		buf.WriteString("\n")
	}
	_, _ = w.Write(buf.Bytes())
}

// secretAttr matches an attribute assignment whose name says it holds a
// secret (notify_token, admin_token, secret, auth_token,
// certificate_password, …).
var secretAttr = regexp.MustCompile(`^(\s*"?[A-Za-z0-9_-]*(?i:token|secret|password|passwd|credential)[A-Za-z0-9_-]*"?\s*=\s*)(.*)$`)

// redactLine hides the value of a secret attribute in a source line shown
// under a diagnostic (diagnostics reach logs), unless the value is read
// with env() or file(), which say where the secret is, not what.
func redactLine(line string) string {
	m := secretAttr.FindStringSubmatch(line)
	if m == nil || m[2] == "" || strings.HasPrefix(m[2], "env(") || strings.HasPrefix(m[2], "file(") {
		return line
	}
	return m[1] + "<redacted>"
}

// maxSnippet is how much of a long source line a diagnostic shows.
const maxSnippet = 160

// writeSnippet prints the subject's first line and a caret line under it.
func writeSnippet(buf *bytes.Buffer, src []byte, rng *hcl.Range) {
	start := rng.Start.Byte
	if src == nil || start < 0 || start > len(src) {
		return
	}
	lineStart := bytes.LastIndexByte(src[:start], '\n') + 1
	lineEnd := len(src)
	if i := bytes.IndexByte(src[start:], '\n'); i >= 0 {
		lineEnd = start + i
	}
	line := strings.TrimRight(string(src[lineStart:lineEnd]), "\r")
	if start > lineStart+len(line) { // the subject starts on a trimmed "\r"
		start = lineStart + len(line)
	}
	end := rng.End.Byte
	if end > lineStart+len(line) || end < start {
		end = lineStart + len(line)
	}
	// A very long line (a big literal) is cut after the subject's start.
	if cut := max(maxSnippet, start-lineStart+20); len(line) > cut {
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		line = line[:cut] + "…"
		end = min(end, lineStart+cut)
	}
	width := utf8.RuneCount(src[start:end])
	if width < 1 {
		width = 1
	}
	var pad strings.Builder
	for _, r := range string(src[lineStart:start]) {
		if r == '\t' {
			pad.WriteByte('\t')
		} else {
			pad.WriteByte(' ')
		}
	}
	num := strconv.Itoa(rng.Start.Line)
	gutter := strings.Repeat(" ", len(num))
	fmt.Fprintf(buf, "  %s | %s\n", num, redactLine(line))
	fmt.Fprintf(buf, "  %s | %s%s\n", gutter, pad.String(), strings.Repeat("^", width))
}
