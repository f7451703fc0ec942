package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// mutationChars are what a one-character mistake inserts or replaces.
var mutationChars = []byte{'"', '{', '}', '[', ']', '=', ',', '.', '#', '$', ' ', '\n', 'x'}

// mutation is one one-character change of a file.
type mutation struct {
	at   int
	op   string // "delete", "insert" or "replace"
	char byte   // inserted or put in place
}

func (m mutation) apply(src []byte) []byte {
	out := make([]byte, 0, len(src)+1)
	out = append(out, src[:m.at]...)
	switch m.op {
	case "delete":
		return append(out, src[m.at+1:]...)
	case "insert":
		out = append(out, m.char)
		return append(out, src[m.at:]...)
	}
	out = append(out, m.char)
	return append(out, src[m.at+1:]...)
}

func (m mutation) String() string {
	if m.op == "delete" {
		return fmt.Sprintf("delete byte %d", m.at)
	}
	return fmt.Sprintf("%s %q at byte %d", m.op, m.char, m.at)
}

// mutations are the one-character changes of src tried: delete, and
// insert and replace with each of mutationChars, at a deterministic sample
// of positions. At a quote, a brace, =, #, _, a newline or a byte of a
// multi-byte character every change is tried; elsewhere half of the
// inserts and replaces, by turns, and in the middle of a run of letters and digits or of blanks
// only at every fourth position. In a comment (where a mistake matters
// only once a newline or a deleted # makes it code) every eighth position
// is tried, and each byte of a multi-byte character. A line of the same
// shape as one tried before (the same but for its names and strings, as
// the lines of env() are; seen holds the shapes tried, and gets src's) is
// tried at every fourth of those positions.
func mutations(src []byte, seen map[string]bool) []mutation {
	var out []mutation
	inComment, repeated := false, false
	lineStart := 0
	for i := 0; i <= len(src); i++ {
		if i == 0 || src[i-1] == '\n' {
			if i > 0 {
				seen[shape(line(src, lineStart))] = true
			}
			inComment = false
			lineStart = i
			repeated = seen[shape(line(src, lineStart))]
		}
		if i < len(src) && src[i] == '#' && !inComment && !inString(src, i) {
			inComment = true
		}
		switch {
		case inComment && src[i] != '#' && src[i] < 0x80 && i%8 != 0:
			continue
		case !inComment && midRun(src, i) && i%4 != 0:
			continue
		case repeated && i%4 != 0:
			continue
		}
		all := i < len(src) && (strings.IndexByte("\"{}=\n#_", src[i]) >= 0 || src[i] >= 0x80)
		if i < len(src) {
			out = append(out, mutation{at: i, op: "delete"})
		}
		for k, c := range mutationChars {
			if all || (i+k)%2 == 0 {
				out = append(out, mutation{at: i, op: "insert", char: c})
			}
			if i < len(src) && src[i] != c && (all || (i+k)%2 == 1) {
				out = append(out, mutation{at: i, op: "replace", char: c})
			}
		}
	}
	return out
}

// line is the line of src that starts at start, without its newline.
func line(src []byte, start int) string {
	rest := string(src[start:])
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		return rest[:i]
	}
	return rest
}

// shape is line with each run of letters, digits and underscores as "a"
// and each run of blanks as one space: "  key_id = env(\"APNS_KEY_ID\")"
// and "  topic = env(\"APNS_TOPIC\")" have one shape.
func shape(line string) string {
	var b strings.Builder
	last := -1
	for i := 0; i < len(line); i++ {
		k := class(line[i])
		if line[i] == '_' {
			k = 1
		}
		switch {
		case k == 0:
			b.WriteByte(line[i])
		case k == last:
			continue
		case k == 1:
			b.WriteByte('a')
		default:
			b.WriteByte(' ')
		}
		last = k
	}
	return b.String()
}

// class is 1 for a letter or digit, 2 for a blank, 0 for any other byte.
func class(c byte) int {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return 1
	case c == ' ' || c == '\t':
		return 2
	}
	return 0
}

// midRun reports whether bytes i-2 to i+2 of src are all letters and
// digits, or all blanks.
func midRun(src []byte, i int) bool {
	if i < 2 || i+2 >= len(src) {
		return false
	}
	k := class(src[i])
	for j := i - 2; j <= i+2; j++ {
		if class(src[j]) != k || k == 0 {
			return false
		}
	}
	return true
}

// inString reports whether byte i of src is inside a quoted string on
// its line (an odd number of unescaped quotes before it).
func inString(src []byte, i int) bool {
	start := strings.LastIndexByte(string(src[:i]), '\n') + 1
	quotes := 0
	for j := start; j < i; j++ {
		switch src[j] {
		case '\\':
			j++
		case '"':
			quotes++
		}
	}
	return quotes%2 == 1
}

// shippedSchemas are testSchemas with sms's body optional, as the sms
// plugin has it (it has a default text).
var shippedSchemas = func() map[string]Schema {
	m := map[string]Schema{}
	for name, s := range testSchemas {
		s.Attributes = slices.Clone(s.Attributes)
		for i, a := range s.Attributes {
			if name == "sms" && a.Name == "body" {
				s.Attributes[i].Required = false
			}
		}
		m[name] = s
	}
	return m
}()

// loadSource is what validate checks without starting a plugin: Load of
// src, then each notifier's schema. A panic is returned as an error.
func loadSource(path string, src []byte) (diags hcl.Diagnostics, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	cfg, diags := load(path, src, Options{Builtins: testBuiltins, Getenv: func(string) string { return "" }})
	if cfg == nil {
		return diags, nil
	}
	for _, n := range cfg.Notifiers {
		if s, ok := shippedSchemas[n.Plugin]; ok {
			diags = append(diags, cfg.ApplySchema(n, s)...)
		}
	}
	return diags, nil
}

// Every one-character mistake in the shipped configurations loads without
// a panic, and every diagnostic HCL wrote comes with ringside's hint (see
// hint.go): the test lists each summary still without one, with a
// mutation that shows it.
func TestMutationsHaveHints(t *testing.T) {
	// The lists first, in order: a line of dist/config.hcl shaped as one of
	// config.hcl is tried less.
	files := []string{"../../../config.hcl", "../../../dist/config.hcl"}
	srcs := make([][]byte, len(files))
	lists := make([][]mutation, len(files))
	seen := map[string]bool{}
	for i, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		srcs[i], lists[i] = src, mutations(src, seen)
	}
	for i, file := range files {
		src := srcs[i]
		t.Run(strings.TrimPrefix(file, "../../../"), func(t *testing.T) {
			t.Parallel()
			if diags, err := loadSource("config.hcl", src); err != nil || diags.HasErrors() {
				t.Fatalf("the file itself: %v %v", err, diags)
			}
			missing := map[string]mutation{}
			kinds := map[string]mutation{} // HCL's summaries
			panics := 0
			for _, m := range lists[i] {
				diags, err := loadSource("config.hcl", m.apply(src))
				if err != nil {
					if panics++; panics <= 5 {
						t.Errorf("%s: %v", m, err)
					}
					continue
				}
				for _, dg := range diags {
					if dg.Subject == nil {
						t.Errorf("%s: %q has no subject", m, dg.Summary)
					}
					if _, seen := missing[dg.Summary]; unhinted(dg) && !seen {
						missing[dg.Summary] = m
					}
					if g, ok := dg.Extra.(*generic); ok {
						if _, seen := kinds[g.summary]; !seen {
							kinds[g.summary] = m
						}
					}
				}
			}
			for _, s := range slices.Sorted(mapKeys(missing)) {
				m := missing[s]
				var buf strings.Builder
				diags, _ := loadSource("config.hcl", m.apply(src))
				WriteDiagnostics(&buf, map[string]*hcl.File{"config.hcl": {Bytes: m.apply(src)}}, diags)
				t.Errorf("HCL's %q has no hint; %s gives:\n%s", s, m, buf.String())
			}
			golden := goldenKinds(t)
			for _, s := range slices.Sorted(mapKeys(kinds)) {
				if !golden[s] {
					t.Errorf("HCL's %q has no golden in testdata/errors; %s gives it", s, kinds[s])
				}
			}
		})
	}
}

// goldenKinds are the summaries HCL wrote (before any rewording) of the
// diagnostics of testdata/errors/*.hcl.
func goldenKinds(t *testing.T) map[string]bool {
	t.Helper()
	paths, err := filepath.Glob("testdata/errors/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, path := range paths {
		_, diags := loadAndApply(t, path, func(string) string { return "" })
		for _, dg := range diags {
			if g, ok := dg.Extra.(*generic); ok {
				kinds[g.summary] = true
			}
		}
	}
	return kinds
}
