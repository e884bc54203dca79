package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Metrics is a meter provider whose instruments are served in the Prometheus text format.
type Metrics struct {
	// Provider is the meter provider to give to the worker and the flow client.
	Provider *sdkmetric.MeterProvider
	// Handler serves GET /metrics.
	Handler http.Handler
	// Registry holds the series: the provider's, plus the Go runtime and process collectors.
	Registry *prometheus.Registry
}

// SetupMetrics builds a meter provider exported through a private Prometheus registry, so that
// two services in one process (as in tests) never share or collide on series. OpenTelemetry
// names are translated the Prometheus way: "remediator.dispatch.attempts" becomes
// remediator_dispatch_attempts_total, a histogram in seconds gets a _seconds suffix. Series
// carry no otel_scope_* labels; the resource is exported once as target_info.
//
// Unlike tracing it installs nothing globally: the caller passes Provider where it is needed.
func SetupMetrics() (*Metrics, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("telemetry: go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("telemetry: process collector: %w", err)
	}
	exp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
		otelprom.WithoutScopeInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	res, err := resource.New(context.Background(),
		resource.WithAttributes(semconv.ServiceName(ServiceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, as for traces
		resource.WithTelemetrySDK(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg, // its own promhttp_metric_handler_errors_total
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	})
	return &Metrics{Provider: mp, Handler: h, Registry: reg}, nil
}

// Shutdown stops the meter provider; observable callbacks are no longer run.
func (m *Metrics) Shutdown(ctx context.Context) error {
	if m == nil || m.Provider == nil {
		return nil
	}
	return m.Provider.Shutdown(ctx)
}
