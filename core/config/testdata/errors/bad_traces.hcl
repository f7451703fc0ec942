telemetry {
  traces = "jaeger"
}
