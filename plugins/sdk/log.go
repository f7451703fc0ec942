package sdk

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/ringside/ringside/plugins/sdk/pluginpb"
)

// levelTrace is hclog's trace level in slog terms.
const levelTrace = slog.LevelDebug - 4

// hclogTimeFormat is the @timestamp layout go-plugin's host parses.
const hclogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

var logger = sync.OnceValue(func() *slog.Logger {
	return slog.New(newLogHandler(stderr, logLevel()))
})

// Logger returns the plugin's logger. It writes JSON lines to the process's
// standard error in the shape go-plugin's host parses (hclog JSON: @level,
// @message, @timestamp and the attributes), so the host logs each line under
// the notifier's name at its level. The level comes from
// RINGSIDE_PLUGIN_LOG_LEVEL, which the host sets. Never log a secret, a whole
// device token or cc_param.
func Logger() *slog.Logger { return logger() }

// logLevel reads the level the host sets in the environment.
func logLevel() slog.Level {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(pluginpb.LogLevelEnv))) {
	case "trace":
		return levelTrace
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// newLogHandler returns a slog handler writing hclog-shaped JSON lines to w.
func newLogHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hclogTimeFormat))
			case slog.LevelKey:
				l, _ := a.Value.Any().(slog.Level)
				return slog.String("@level", levelName(l))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	})
}

// levelName is the hclog name of the slog level l (rounded down).
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}

// hclogLevel is the hclog level of the slog level l.
func hclogLevel(l slog.Level) hclog.Level {
	return hclog.LevelFromString(levelName(l))
}
