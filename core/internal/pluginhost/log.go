package pluginhost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is hclog's trace level in slog terms.
const levelTrace = slog.LevelDebug - 4

// hcLogger is an hclog.Logger over the host's slog logger: go-plugin's own
// messages and the plugin's log lines (which go-plugin parses from the
// plugin's stderr) come out of the host's logger, at their level, with the
// logger's attributes (logger=plugin.<notifier>, notifier=<name>).
type hcLogger struct {
	l       *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*hcLogger)(nil)

func newHCLogger(l *slog.Logger) *hcLogger { return &hcLogger{l: l} }

func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// attrs turns hclog's alternating keys and values into slog arguments. The
// "timestamp" go-plugin adds to each forwarded plugin line is dropped: the
// host stamps its own.
func attrs(args []any) []any {
	out := make([]any, 0, len(args))
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			out = append(out, slog.Any("EXTRA_VALUE_AT_END", args[i]))
			break
		}
		k := fmt.Sprint(args[i])
		if k == "timestamp" {
			continue
		}
		v := args[i+1]
		if f, ok := v.(hclog.Format); ok && len(f) > 0 {
			if s, ok := f[0].(string); ok {
				v = fmt.Sprintf(s, f[1:]...)
			}
		}
		out = append(out, slog.Any(k, v))
	}
	return out
}

func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	if level == hclog.Info && msg == "plugin process exited" {
		// A clean exit is one ringside asked for (a schema-only start, a
		// reload, shutdown); a crash comes at error level with its status.
		level = hclog.Debug
	}
	h.l.Log(context.Background(), toSlog(level), msg, attrs(args)...)
}

func (h *hcLogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hcLogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hcLogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hcLogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hcLogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hcLogger) enabled(l slog.Level) bool { return h.l.Enabled(context.Background(), l) }

func (h *hcLogger) IsTrace() bool { return h.enabled(levelTrace) }
func (h *hcLogger) IsDebug() bool { return h.enabled(slog.LevelDebug) }
func (h *hcLogger) IsInfo() bool  { return h.enabled(slog.LevelInfo) }
func (h *hcLogger) IsWarn() bool  { return h.enabled(slog.LevelWarn) }
func (h *hcLogger) IsError() bool { return h.enabled(slog.LevelError) }

func (h *hcLogger) ImpliedArgs() []any { return h.implied }

func (h *hcLogger) With(args ...any) hclog.Logger {
	return &hcLogger{l: h.l.With(attrs(args)...), name: h.name, implied: append(h.implied[:len(h.implied):len(h.implied)], args...)}
}

// Name is the sub-name go-plugin gave the logger; the host's attributes
// already name the notifier.
func (h *hcLogger) Name() string { return h.name }

// Named keeps the host's attributes: go-plugin names the logger of a
// plugin's stderr after the executable, which the notifier name already
// identifies better.
func (h *hcLogger) Named(name string) hclog.Logger {
	n := *h
	if n.name != "" {
		name = n.name + "." + name
	}
	n.name = name
	return &n
}

func (h *hcLogger) ResetNamed(name string) hclog.Logger {
	n := *h
	n.name = name
	return &n
}

// SetLevel does nothing: the host's slog handler owns the level.
func (h *hcLogger) SetLevel(hclog.Level) {}

// GetLevel is the lowest level the host's logger records. go-plugin skips
// the plugin's lines below it.
func (h *hcLogger) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.enabled(toSlog(l)) {
			return l
		}
	}
	return hclog.Off
}

func (h *hcLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hcLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	w := newLineWriter(h.l, slog.LevelInfo, "")
	if opts != nil {
		if opts.ForceLevel != hclog.NoLevel {
			w.level = toSlog(opts.ForceLevel)
		} else {
			w.infer = opts.InferLevels
		}
	}
	return w
}

// lineWriter logs each line written to it as one message at level. With
// infer, a "[DEBUG]"-style prefix sets the line's level.
type lineWriter struct {
	l      *slog.Logger
	level  slog.Level
	stream string
	infer  bool

	mu  sync.Mutex
	buf []byte
}

func newLineWriter(l *slog.Logger, level slog.Level, stream string) *lineWriter {
	if stream != "" {
		l = l.With("stream", stream)
	}
	return &lineWriter{l: l, level: level, stream: stream}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.logLine(string(bytes.TrimRight(w.buf[:i], "\r")))
		w.buf = w.buf[i+1:]
	}
	// A line longer than 64 KiB is logged in pieces.
	if len(w.buf) > 64<<10 {
		w.logLine(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

func (w *lineWriter) logLine(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	level := w.level
	if w.infer {
		for prefix, l := range map[string]slog.Level{"[TRACE]": levelTrace, "[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERROR]": slog.LevelError} {
			if strings.HasPrefix(line, prefix) {
				level = l
				line = strings.TrimSpace(strings.TrimPrefix(line, prefix))
				break
			}
		}
	}
	w.l.Log(context.Background(), level, line)
}

// levelName is the RINGSIDE_PLUGIN_LOG_LEVEL matching the lowest level l
// records, so a plugin does not write lines the host would drop.
func levelName(l *slog.Logger) string {
	ctx := context.Background()
	switch {
	case l.Enabled(ctx, levelTrace):
		return "trace"
	case l.Enabled(ctx, slog.LevelDebug):
		return "debug"
	case l.Enabled(ctx, slog.LevelInfo):
		return "info"
	case l.Enabled(ctx, slog.LevelWarn):
		return "warn"
	default:
		return "error"
	}
}
