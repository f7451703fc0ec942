package telemetry

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is ringside's metrics registry. Labels never carry tokens,
// cc_param, user ids or phone numbers.
type Metrics struct {
	reg *prometheus.Registry

	// Callbacks counts notify_cb answers by HTTP status code and callback
	// status (accepted, duplicate, unrouted, no_devices, invalid, …).
	Callbacks *prometheus.CounterVec
	// RouteMatches counts callbacks matched by each route.
	RouteMatches *prometheus.CounterVec
	// WhenErrors counts run-time failures of a route's `when`.
	WhenErrors *prometheus.CounterVec
	// Deliveries counts per-device delivery outcomes by notifier and outcome
	// (delivered, retry, permanent, gone, expired, error).
	Deliveries *prometheus.CounterVec
	// TokensPruned counts devices removed because the provider reported
	// them gone, by device kind.
	TokensPruned *prometheus.CounterVec
	// PluginRestarts counts plugin processes restarted, by notifier.
	PluginRestarts *prometheus.CounterVec
	// Retries counts delivery attempts after the first, by notifier.
	Retries *prometheus.CounterVec
	// Fallbacks counts routes that ran their fallback notifiers, by route
	// and why (lookup, failed, timeout).
	Fallbacks *prometheus.CounterVec
	// DedupHits counts callbacks answered as duplicates.
	DedupHits prometheus.Counter
	// Reloads counts config reloads by result (ok, error).
	Reloads *prometheus.CounterVec
	// DeliveryLatency observes, for each device delivered, the time from
	// the callback's arrival to the provider's acceptance, by notifier.
	DeliveryLatency *prometheus.HistogramVec
	// JournalDamaged counts journal records lost to damage found at open
	// (a bad record in the middle of the file; a torn tail is not damage).
	JournalDamaged prometheus.Counter
	// JournalWriteErrors counts journal writes that failed (disk full,
	// read-only, file gone).
	JournalWriteErrors prometheus.Counter
	// DirectoryWriteErrors counts directory writes that failed or were
	// refused because the store was not durable.
	DirectoryWriteErrors prometheus.Counter
	// RenderErrors counts payloads or templates of a notifier that failed
	// to render for a call; that notifier is skipped for the call.
	RenderErrors *prometheus.CounterVec
	// PluginKills counts plugin processes the supervisor killed, by
	// notifier and reason (hung, health).
	PluginKills *prometheus.CounterVec
	// DeliveriesShed counts deliveries refused at once because their
	// notifier's plugin had too much work waiting, by notifier.
	DeliveriesShed *prometheus.CounterVec
	// Notifiers gauges the configured notifiers, NotifiersEnabled those
	// enabled; set at start and on each reload (SetNotifiers).
	Notifiers        prometheus.Gauge
	NotifiersEnabled prometheus.Gauge

	// FeedbackEventsDropped counts call log events the feedback sender
	// dropped because its queue was full.
	FeedbackEventsDropped prometheus.Counter
	// FeedbackBatches counts batches of feedback events to the app
	// server, by result (delivered, dropped).
	FeedbackBatches *prometheus.CounterVec
}

// SetNotifiers sets the notifier gauges: configured notifiers, and how
// many of them are enabled.
func (m *Metrics) SetNotifiers(configured, enabled int) {
	m.Notifiers.Set(float64(configured))
	m.NotifiersEnabled.Set(float64(enabled))
}

// GaugeFunc registers a gauge whose value is read from f at each scrape.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// NewMetrics returns a registry with ringside's metrics and the Go and
// process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		Callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringside_callbacks_total",
			Help: "notify_cb callbacks answered, by HTTP status code and callback status.",
		}, []string{"code", "status"}),
		RouteMatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringside_route_matches_total",
			Help: "Callbacks matched by each route.",
		}, []string{"route"}),
		WhenErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringside_route_when_errors_total",
			Help: "Run-time failures of a route's when expression (counted as no match).",
		}, []string{"route"}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringside_deliveries_total",
			Help: "Per-device delivery outcomes, by notifier and outcome.",
		}, []string{"notifier", "outcome"}),
		TokensPruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringside_tokens_pruned_total",
			Help: "Devices removed because the provider reported the token gone.",
		}, []string{"kind"}),
		PluginRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringside_plugin_restarts_total",
			Help: "Plugin processes restarted after they exited.",
		}, []string{"notifier"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringside_delivery_retries_total",
			Help: "Delivery attempts after the first, by notifier.",
		}, []string{"notifier"}),
		Fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringside_fallbacks_total",
			Help: "Routes that ran their fallback notifiers, by route and reason (lookup, failed, timeout).",
		}, []string{"route", "reason"}),
		DedupHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ringside_dedup_hits_total",
			Help: "Callbacks answered as duplicates.",
		}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringside_config_reloads_total",
			Help: "Configuration reloads, by result (ok, error).",
		}, []string{"result"}),
	}
	m.DeliveryLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ringside_delivery_latency_seconds",
		Help:    "Time from the callback's arrival to the provider accepting the push, per delivered device.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"notifier"})
	reg.MustRegister(m.DeliveryLatency)
	m.JournalDamaged = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ringside_journal_damaged_records_total",
		Help: "Journal records lost to damage in the middle of the file, found at open.",
	})
	m.JournalWriteErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ringside_journal_write_errors_total",
		Help: "Journal writes that failed (disk full, read-only, file removed).",
	})
	m.DirectoryWriteErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ringside_directory_write_errors_total",
		Help: "Directory writes that failed or were refused because the store was not durable.",
	})
	m.RenderErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringside_render_errors_total",
		Help: "Payloads or templates that failed to render for a call, by notifier; the notifier is skipped for that call.",
	}, []string{"notifier"})
	m.PluginKills = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringside_plugin_kills_total",
		Help: "Plugin processes killed by the supervisor, by notifier and reason (hung, health).",
	}, []string{"notifier", "reason"})
	m.DeliveriesShed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringside_deliveries_shed_total",
		Help: "Deliveries refused at once because their notifier's plugin had too much work waiting, by notifier.",
	}, []string{"notifier"})
	m.Notifiers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ringside_notifiers",
		Help: "Notifiers in the configuration, enabled or not.",
	})
	m.NotifiersEnabled = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ringside_notifiers_enabled",
		Help: "Notifiers in the configuration that are enabled.",
	})
	reg.MustRegister(m.Notifiers, m.NotifiersEnabled)
	reg.MustRegister(m.JournalDamaged, m.JournalWriteErrors, m.DirectoryWriteErrors, m.RenderErrors, m.PluginKills, m.DeliveriesShed)
	reg.MustRegister(m.Callbacks, m.RouteMatches, m.WhenErrors, m.Deliveries, m.TokensPruned, m.PluginRestarts,
		m.Retries, m.Fallbacks, m.DedupHits, m.Reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.FeedbackEventsDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ringside_feedback_events_dropped_total",
		Help: "Call log events the feedback sender dropped because its queue was full.",
	})
	m.FeedbackBatches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ringside_feedback_batches_total",
		Help: "Batches of feedback events to the app server, by result (delivered, dropped).",
	}, []string{"result"})
	m.FeedbackBatches.WithLabelValues("delivered")
	m.FeedbackBatches.WithLabelValues("dropped")
	m.reg.MustRegister(m.FeedbackEventsDropped, m.FeedbackBatches)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
