// Package telemetry sets up OpenTelemetry tracing for remediator and carries W3C trace context
// through NATS message headers.
//
// Tracing is configured by the standard OpenTelemetry environment variables: spans are
// exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set (protocol from OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf", the default, or "grpc"),
// and the service is named by OTEL_SERVICE_NAME (default "remediator"). Without an endpoint,
// spans are still created — every status record carries a real trace id — but none leave
// the process. Jaeger accepts OTLP natively on ports 4317 (gRPC) and 4318 (HTTP).
//
// Metrics are OpenTelemetry instruments exported in the Prometheus text format from a private
// registry ([SetupMetrics]); the service serves them on /metrics. Logs are slog records that
// carry trace_id and span_id within a span ([LogHandler]) and never a secret-looking
// attribute's value ([RedactHandler]). Package otlptest is an in-process OTLP receiver for
// tests.
package telemetry
