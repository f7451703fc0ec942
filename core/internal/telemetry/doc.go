// Package telemetry sets up ringside's OpenTelemetry tracing and its
// Prometheus metrics registry.
package telemetry
