package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

func TestRedactLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{`  notify_token = "s3cret-value"`, `  notify_token = <redacted>`},
		{`  admin_token="abc" # c`, `  admin_token=<redacted>`},
		{`  secret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`, `  secret  = <redacted>`},
		{`  certificate_password = "pw"`, `  certificate_password = <redacted>`},
		{`  api_key = "k"`, `  api_key = <redacted>`},
		{`  auth_token = env("TWILIO_AUTH_TOKEN")`, `  auth_token = env("TWILIO_AUTH_TOKEN")`},
		{`  url = "https://example.com/hook"`, `  url = "https://example.com/hook"`},
		{`  key_file = "AuthKey.p8"`, `  key_file = "AuthKey.p8"`},
		{`notify = ["ios"]`, `notify = ["ios"]`},
	}
	for _, tc := range tests {
		if got := redactLine(tc.in); got != tc.want {
			t.Errorf("redactLine(%q): got %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	tests := []struct{ in, want string }{
		{`https://example.com/hook`, `https://example.com/hook`},
		{`url "https://u:p4ss@example.com/h?k=v&flag&x=" is bad`, `url "https://<redacted>@example.com/h?k=<redacted>&<redacted>&x=" is bad`},
		{`got https://TOKEN@h/x;`, `got https://<redacted>@h/x;`},
		{`a=http://h/?q=1;r=2#frag`, `a=http://h/?q=<redacted>;r=<redacted>#frag`},
		{`no url: user:pass@host`, `no url: user:pass@host`},
	}
	for _, tc := range tests {
		if got := redactURLs(tc.in); got != tc.want {
			t.Errorf("redactURLs(%q): got %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestScrub(t *testing.T) {
	got := scrub(`secret "hunter22" is wrong; pin "42" too; 42 ok`, []string{"hunter22", "42", ""})
	if want := `secret "<redacted>" is wrong; pin "<redacted>" too; 42 ok`; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// A 161-byte file, 140 ASCII characters and then bytes that are not UTF-8,
// made the snippet writer slice past its line and panic: validate died,
// and so did a serving ringside reloading it. Any bytes must render.
func TestWriteDiagnosticsAnyBytes(t *testing.T) {
	crash := append(bytes.Repeat([]byte("A"), 140), bytes.Repeat([]byte{0x80}, 21)...)
	inputs := map[string][]byte{
		"crash":             crash,
		"crash, newline":    append(append([]byte{}, crash...), '\n'),
		"cut in a rune":     append(bytes.Repeat([]byte("x"), 159), []byte("日本語 = 1")...),
		"long continuation": append(bytes.Repeat([]byte("b = 1\n"), 3), append(bytes.Repeat([]byte{0xbf}, 400), '\n')...),
		"controls":          []byte("server {\n  listen = \"\x1b[2J\x00\u202e\"\n}\n"),
		"secret past cut":   []byte("server {\n  notify_token = \"" + strings.Repeat("s", 300) + "\" x\n}\n"),
		"only CR":           []byte("\r"),
		"NUL":               []byte{0},
	}
	for name, src := range inputs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.hcl")
			if err := os.WriteFile(path, src, 0o600); err != nil {
				t.Fatal(err)
			}
			_, diags := Load(path, Options{Builtins: testBuiltins, Getenv: noEnv})
			if !diags.HasErrors() {
				t.Fatalf("want an error; got %v", diags)
			}
			var out bytes.Buffer
			WriteDiagnostics(&out, nil, diags)
			if !utf8.Valid(out.Bytes()) {
				t.Errorf("output is not UTF-8:\n%q", out.String())
			}
			if strings.ContainsAny(out.String(), "\x1b\x00\u202e") {
				t.Errorf("output holds control characters:\n%q", out.String())
			}
			if !strings.Contains(out.String(), "^") {
				t.Errorf("no caret:\n%s", out.String())
			}
		})
	}
}

// Ranges that do not fit the source (the file changed between Load and
// rendering) never panic.
func TestWriteSnippetAnyRange(t *testing.T) {
	srcs := [][]byte{nil, {}, []byte("a"), []byte("ab\ncd\r\n"), []byte("\xff\xfe\n\xe6\x97"), []byte("x = \"" + strings.Repeat("é", 90) + "\"\n")}
	for _, src := range srcs {
		for start := -1; start <= len(src)+1; start++ {
			for end := -1; end <= len(src)+1; end++ {
				var buf bytes.Buffer
				rng := &hcl.Range{Filename: "f", Start: hcl.Pos{Line: 1, Column: 1, Byte: start}, End: hcl.Pos{Line: 1, Column: 1, Byte: end}}
				writeSnippet(&buf, src, rng, mergeSpans([]span{{1, 3}, {-5, 1}, {len(src) - 1, len(src) + 9}}), newValueIndex([]string{"cd", "abcdefgh"}))
			}
		}
	}
}

// The snippet's caret stays under the subject when a value before it is
// hidden, and covers a hidden value whole.
func TestSnippetCaretAfterMask(t *testing.T) {
	src := []byte(`  h = { a = "s3cret-s3cret", b = nosuch() }` + "\n")
	at := bytes.Index(src, []byte("nosuch"))
	var buf bytes.Buffer
	rng := &hcl.Range{Start: hcl.Pos{Line: 1, Column: at + 1, Byte: at}, End: hcl.Pos{Line: 1, Column: at + 7, Byte: at + 6}}
	secretAt := bytes.Index(src, []byte(`"s3cret`))
	writeSnippet(&buf, src, rng, []span{{secretAt, secretAt + 15}}, nil)
	want := "  1 |   h = { a = <redacted>, b = nosuch() }\n" +
		"    |                             ^^^^^^\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	buf.Reset()
	rng = &hcl.Range{Start: hcl.Pos{Line: 1, Column: secretAt + 3, Byte: secretAt + 2}, End: hcl.Pos{Line: 1, Column: secretAt + 5, Byte: secretAt + 4}}
	writeSnippet(&buf, src, rng, []span{{secretAt, secretAt + 15}}, nil)
	if want := "    |             ^^^^^^^^^^\n"; !strings.HasSuffix(buf.String(), want) {
		t.Errorf("inside a hidden value: got\n%s\nwant the caret line %q", buf.String(), want)
	}
}

// An attribute the plugin's schema marks sensitive is hidden whatever its
// name, in source lines and in messages, once ApplySchema has seen it; and
// a plugin's message that quotes a secret is scrubbed.
func TestSchemaSensitiveHidden(t *testing.T) {
	cfg := loadWebhook(t, `
  url    = "https://hooks.example/services/T0/B0/plantedpath"
  dsn    = ["postgres://db/planted"]
  pin    = "0042"
`)
	n := cfg.Notifiers[0]
	s := Schema{Attributes: []Attribute{
		{Name: "url", Type: AttrString, Sensitive: true},
		{Name: "dsn", Type: AttrString, Sensitive: true},
		{Name: "pin", Type: AttrString, Sensitive: true},
	}}
	diags := cfg.ApplySchema(n, s)
	if !diags.HasErrors() {
		t.Fatal("want dsn's type error")
	}
	diags = append(diags,
		n.AttrDiagnostic("url", "https://hooks.example/services/T0/B0/plantedpath answers 404"),
		n.AttrDiagnostic("pin", `pin "0042" is too short`))
	var out bytes.Buffer
	cfg.WriteDiagnostics(&out, diags)
	for _, planted := range []string{"plantedpath", "postgres://db", "0042"} {
		if strings.Contains(out.String(), planted) {
			t.Errorf("%q printed:\n%s", planted, out.String())
		}
	}
	if !strings.Contains(out.String(), "  3 |   url    = <redacted>") || !strings.Contains(out.String(), "<redacted> answers 404") {
		t.Errorf("want the hidden url line and message:\n%s", out.String())
	}
}

// The values of headers and env maps are found line by line, so they stay
// hidden when the file does not parse (a string left open on an earlier
// line makes the parser end strings where the text does not).
func TestMapMasks(t *testing.T) {
	src := `notifier "a" {
  secret  = "whsec_open
  headers = { Authorization = "Bearer abc123", "X-Id" = 7 }
  headers = {
    "X-Api-Key" = "k-123456"   # the key stays
    X-Env       = env("API_KEY")
    X-Tmpl      = "v-${call.sid == "x" ? "a" : "b"}"
  }
  url = "https://h/?q=1" # not a map
}
plugin "p" {
  env = { TOKEN = "t-98765" }
}
`
	var got []string
	for line, start := 1, 0; start < len(src); line++ {
		end := start + strings.IndexByte(src[start:], '\n')
		for _, m := range mapMasks([]byte(src), start, end) {
			got = append(got, fmt.Sprintf("%d:%s", line, src[m.start:m.end]))
		}
		start = end + 1
	}
	want := []string{
		`3:"Bearer abc123"`,
		`5:"k-123456"`,
		`7:"v-${call.sid == "x" ? "a" : "b"}"`,
		`12:"t-98765"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A type error on an attribute named like a secret, or on a headers map,
// does not quote the value, even before rendering.
func TestTypeErrorDoesNotQuoteSecrets(t *testing.T) {
	cfg := loadWebhook(t, `
  url     = "https://x"
  headers = "Bearer hdr1"
`)
	diags := cfg.ApplySchema(cfg.Notifiers[0], testSchemas["webhook"])
	if !diags.HasErrors() || strings.Contains(diags[0].Detail, "hdr1") {
		t.Errorf("got %v; want a type error that does not quote the value", diags)
	}
}
