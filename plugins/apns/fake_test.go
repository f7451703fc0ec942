package apns

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/ringside/ringside/plugins/fakes"
	"github.com/ringside/ringside/plugins/sdk/sdktest"
)

const (
	testTeamID = fakes.APNsTeamID
	testKeyID  = fakes.APNsKeyID
	testTopic  = "com.example.planet.voip"
	// testToken is a device token as iOS hands it out: 32 bytes in hex.
	testToken = "8b5f3f7a0c1d2e3f405162738495a6b7c8d9eaf00112233445566778899aabbc"
	lineParam = fakes.LineParam
)

// writeP8 writes the team key of the fake APNs f (nil: a new one's) as a
// .p8 into a new folder and returns its path.
func writeP8(t testing.TB, f *fakes.APNs) string {
	t.Helper()
	if f == nil {
		f = fakes.NewAPNs(fakes.APNsOptions{})
	}
	path, err := f.WriteP8(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// logBuffer collects the plugin's log lines.
type logBuffer struct{ sdktest.Buffer }

// lines returns the JSON log lines.
func (b *logBuffer) lines() []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// warnings returns the JSON log lines at level WARN.
func (b *logBuffer) warnings() []map[string]any {
	var out []map[string]any
	for _, l := range b.lines() {
		if l["level"] == "WARN" {
			out = append(out, l)
		}
	}
	return out
}

// tokenSetup is a fake APNs for token auth and a config that reaches it.
type tokenSetup struct {
	fake *fakes.APNs
	cfg  Config
	logs *logBuffer
}

func newTokenSetup(t testing.TB, opts ...fakes.APNsOptions) *tokenSetup {
	t.Helper()
	var o fakes.APNsOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	f := fakes.StartAPNs(o)
	t.Cleanup(f.Close)
	return &tokenSetup{
		fake: f,
		cfg:  Config{TeamID: f.TeamID(), KeyID: f.KeyID(), KeyFile: writeP8(t, f), Topic: testTopic, Endpoint: f.URL},
		logs: &logBuffer{},
	}
}

// plugin configures a plugin with s.cfg (after mutate) that trusts the fake.
func (s *tokenSetup) plugin(t testing.TB, mutate ...func(*Config)) *Plugin {
	t.Helper()
	cfg := s.cfg
	for _, m := range mutate {
		m(&cfg)
	}
	p := New()
	p.rootCAs = s.fake.CertPool()
	p.log = slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sdktest.Configured(t, p, cfg)
	return p
}
