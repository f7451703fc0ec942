package pluginhost

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/ringside/ringside/core/internal/logtest"
)

func TestHCLogger(t *testing.T) {
	var buf logtest.Buffer
	l := newHCLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("notifier", "n1"))
	if got := l.GetLevel(); got != hclog.Debug {
		t.Errorf("GetLevel = %v; want debug", got)
	}
	if l.IsTrace() || !l.IsDebug() || !l.IsError() {
		t.Error("Is* disagree with the slog level")
	}
	w := l.With("plugin", "apns").Named("exe")
	w.Trace("dropped")
	w.Warn("slow", "ms", 12, "timestamp", "2026-01-01", "f", hclog.Fmt("%d%%", 5))
	l.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}).Print("[ERROR] broke")
	fmt.Fprint(l.StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}), "part ")
	sw := l.StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})
	fmt.Fprint(sw, "one ")
	fmt.Fprint(sw, "line\nnext\n")

	lines := buf.Records()
	want := []struct{ level, msg string }{{"WARN", "slow"}, {"ERROR", "broke"}, {"DEBUG", "one line"}, {"DEBUG", "next"}}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines; want %d: %v", len(lines), len(want), lines)
	}
	for i, w := range want {
		if lines[i]["level"] != w.level || lines[i]["msg"] != w.msg || lines[i]["notifier"] != "n1" {
			t.Errorf("line %d: got %v; want %s %q", i, lines[i], w.level, w.msg)
		}
	}
	if m := lines[0]; m["plugin"] != "apns" || m["ms"] != 12.0 || m["f"] != "5%" || m["timestamp"] != nil {
		t.Errorf("got %v", m)
	}
	if got := levelName(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))); got != "warn" {
		t.Errorf("levelName = %q; want warn", got)
	}
}
