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

	// CallOutcomes counts ended calls (Call Events) by how they ended,
	// per route and notifier that rang them (route and notifier "" when
	// ringside rang nothing for the sid).
	CallOutcomes *prometheus.CounterVec
	// SharedDedupErrors counts cross-replica dedup claims that failed
	// (Redis away or slow); the replica's own dedup decided them.
	SharedDedupErrors prometheus.Counter
	// ClusterTakeovers counts replicas whose work this replica took over
	// after their heartbeat lapsed; ClusterCallsTaken the calls it took.
	ClusterTakeovers  prometheus.Counter
	ClusterCallsTaken prometheus.Counter
	// ClusterMarksDropped counts marks of pending work (delivered,
	// finished) not written to Redis because too many were waiting.
	ClusterMarksDropped prometheus.Counter
	// RingToAnswer observes, for answered calls ringside rang, the time
	// from the notify callback's arrival to the call's start_time.
	RingToAnswer prometheus.Histogram
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
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.Callbacks = m.counterVec("ringside_callbacks_total", "notify_cb callbacks answered, by HTTP status code and callback status.", "code", "status")
	m.RouteMatches = m.counterVec("ringside_route_matches_total", "Callbacks matched by each route.", "route")
	m.WhenErrors = m.counterVec("ringside_route_when_errors_total", "Run-time failures of a route's when expression (counted as no match).", "route")
	m.Deliveries = m.counterVec("ringside_deliveries_total", "Per-device delivery outcomes, by notifier and outcome.", "notifier", "outcome")
	m.TokensPruned = m.counterVec("ringside_tokens_pruned_total", "Devices removed because the provider reported the token gone.", "kind")
	m.PluginRestarts = m.counterVec("ringside_plugin_restarts_total", "Plugin processes restarted after they exited.", "notifier")
	m.Retries = m.counterVec("ringside_delivery_retries_total", "Delivery attempts after the first, by notifier.", "notifier")
	m.Fallbacks = m.counterVec("ringside_fallbacks_total", "Routes that ran their fallback notifiers, by route and reason (lookup, failed, timeout).", "route", "reason")
	m.DedupHits = m.counter("ringside_dedup_hits_total", "Callbacks answered as duplicates.")
	m.Reloads = m.counterVec("ringside_config_reloads_total", "Configuration reloads, by result (ok, error).", "result")
	m.DeliveryLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ringside_delivery_latency_seconds",
		Help:    "Time from the callback's arrival to the provider accepting the push, per delivered device.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"notifier"})
	m.reg.MustRegister(m.DeliveryLatency)
	m.JournalDamaged = m.counter("ringside_journal_damaged_records_total", "Journal records lost to damage in the middle of the file, found at open.")
	m.JournalWriteErrors = m.counter("ringside_journal_write_errors_total", "Journal writes that failed (disk full, read-only, file removed).")
	m.DirectoryWriteErrors = m.counter("ringside_directory_write_errors_total", "Directory writes that failed or were refused because the store was not durable.")
	m.RenderErrors = m.counterVec("ringside_render_errors_total", "Payloads or templates that failed to render for a call, by notifier; the notifier is skipped for that call.", "notifier")
	m.PluginKills = m.counterVec("ringside_plugin_kills_total", "Plugin processes killed by the supervisor, by notifier and reason (hung, health).", "notifier", "reason")
	m.DeliveriesShed = m.counterVec("ringside_deliveries_shed_total", "Deliveries refused at once because their notifier's plugin had too much work waiting, by notifier.", "notifier")
	m.Notifiers = m.gauge("ringside_notifiers", "Notifiers in the configuration, enabled or not.")
	m.NotifiersEnabled = m.gauge("ringside_notifiers_enabled", "Notifiers in the configuration that are enabled.")
	m.FeedbackEventsDropped = m.counter("ringside_feedback_events_dropped_total", "Call log events the feedback sender dropped because its queue was full.")
	m.FeedbackBatches = m.counterVec("ringside_feedback_batches_total", "Batches of feedback events to the app server, by result (delivered, dropped).", "result")
	m.FeedbackBatches.WithLabelValues("delivered")
	m.FeedbackBatches.WithLabelValues("dropped")
	m.CallOutcomes = m.counterVec("ringside_call_outcomes_total", "Ended calls (Call Events), by the route and notifier that rang them and how the call ended (answered, missed, rejected, canceled, busy, failed).", "route", "notifier", "outcome")
	m.SharedDedupErrors = m.counter("ringside_cluster_dedup_errors_total", "Callbacks whose cross-replica claim failed, timed out or was not tried (Redis away or slow); this replica's own dedup decided them and its journal kept their work.")
	m.ClusterTakeovers = m.counter("ringside_cluster_takeovers_total", "Replicas whose heartbeat lapsed and whose pending calls this replica took over.")
	m.ClusterCallsTaken = m.counter("ringside_cluster_calls_taken_total", "Pending calls this replica took over from replicas whose heartbeat lapsed.")
	m.ClusterMarksDropped = m.counter("ringside_cluster_marks_dropped_total", "Marks of pending work (delivered, finished) dropped instead of written to Redis because too many were waiting.")
	m.RingToAnswer = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ringside_ring_to_answer_seconds",
		Help:    "Time from the notify callback's arrival to the answered call's start_time (LINE's whole seconds).",
		Buckets: []float64{1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 120},
	})
	m.reg.MustRegister(m.RingToAnswer)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// counterVec returns a counter vector with labels, registered.
func (m *Metrics) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.reg.MustRegister(c)
	return c
}

// counter returns a counter, registered.
func (m *Metrics) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	m.reg.MustRegister(c)
	return c
}

// gauge returns a gauge, registered.
func (m *Metrics) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	m.reg.MustRegister(g)
	return g
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
