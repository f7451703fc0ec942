package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

func TestLogShape(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(newLogHandler(&buf, slog.LevelDebug))
	l.Debug("connecting", "host", "api.push.apple.com", "n", 3)
	l.Warn("slow", slog.Group("g", "a", 1))
	l.Log(context.Background(), levelTrace, "dropped")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines; want 2:\n%s", len(lines), buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["@level"] != "debug" || m["@message"] != "connecting" || m["host"] != "api.push.apple.com" || m["n"] != 3.0 {
		t.Errorf("got %v", m)
	}
	// go-plugin's host parses @timestamp with exactly this layout.
	ts, _ := m["@timestamp"].(string)
	if _, err := time.Parse(hclogTimeFormat, ts); err != nil {
		t.Errorf("@timestamp %q: %v", ts, err)
	}
	for _, k := range []string{"time", "level", "msg"} {
		if _, ok := m[k]; ok {
			t.Errorf("line has slog key %q", k)
		}
	}
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
		t.Fatal(err)
	}
	if m["@level"] != "warn" {
		t.Errorf("got level %v; want warn", m["@level"])
	}
}

func TestLogLevelEnv(t *testing.T) {
	for env, want := range map[string]slog.Level{
		"": slog.LevelInfo, "trace": levelTrace, "DEBUG": slog.LevelDebug, "warn": slog.LevelWarn, "error": slog.LevelError, "bogus": slog.LevelInfo,
	} {
		t.Setenv(pluginpb.LogLevelEnv, env)
		if got := logLevel(); got != want {
			t.Errorf("%s=%q: got %v; want %v", pluginpb.LogLevelEnv, env, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://h/3/device/TOKEN?k=SECRET", nil)
	err := errors.New(`Get "https://h/3/device/TOKEN?k=SECRET": dial tcp: refused`)
	if got := redact(err, req.URL); strings.Contains(got, "TOKEN") || strings.Contains(got, "SECRET") {
		t.Fatalf("got %q", got)
	}
}
