package telemetry_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/remediator/remediator/telemetry"
)

func scrape(t *testing.T, m *telemetry.Metrics) string {
	t.Helper()
	rr := httptest.NewRecorder()
	m.Handler.ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	if rr.Code != 200 {
		t.Fatalf("GET /metrics = %d", rr.Code)
	}
	if ct := rr.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want the Prometheus text format", ct)
	}
	b, _ := io.ReadAll(rr.Body)
	return string(b)
}

// TestSetupMetrics: OpenTelemetry instruments come out with Prometheus names, no scope labels,
// from a registry private to each setup.
func TestSetupMetrics(t *testing.T) {
	t.Parallel()
	a, err := telemetry.SetupMetrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	b, err := telemetry.SetupMetrics() // a second one in the same process must not collide
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })

	meter := a.Provider.Meter("test")
	c, _ := meter.Int64Counter("remediator.dispatch.attempts")
	c.Add(context.Background(), 1, metric.WithAttributes(attribute.String("flow", "suspend"), attribute.String("status_class", "2xx")))
	h, _ := meter.Float64Histogram("remediator.time_to_remediate", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.1, 1))
	h.Record(context.Background(), 0.5, metric.WithAttributes(attribute.String("flow", "suspend")))

	out := scrape(t, a)
	for _, want := range []string{
		"# TYPE remediator_dispatch_attempts_total counter",
		`remediator_dispatch_attempts_total{flow="suspend",status_class="2xx"} 1`,
		"# TYPE remediator_time_to_remediate_seconds histogram",
		`remediator_time_to_remediate_seconds_bucket{flow="suspend",le="1"} 1`,
		"target_info{",
		"go_goroutines ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "otel_scope_") {
		t.Error("series carry otel_scope_* labels")
	}
	if strings.Contains(scrape(t, b), "remediator_dispatch_attempts_total") {
		t.Error("the second setup shows the first one's series")
	}
}
