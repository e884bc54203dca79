package ingress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/ingress"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/schema"
)

func TestMain(m *testing.M) { brokertest.VerifyTestMain(m) }

var _ ingress.Validator = (*schema.Validator)(nil)

const (
	oktaSecret     = "okta-hook-secret-1"
	oktaSecretNext = "okta-hook-secret-2"
	ispmKey        = "ispm-api-key"
	apiToken       = "detector-token"
	maxEventBytes  = 16 << 10
	maxBatchBytes  = 64 << 10
)

// waitTimeout is generous: the machine is shared and -race is slow.
const waitTimeout = 30 * time.Second

// splitDelivery is a minimal stand-in for event.SplitHookDelivery: the LogEvents of a
// com.okta.event_hook delivery, exactly as sent.
func splitDelivery(body []byte) ([]ingress.HookEvent, error) {
	var d struct {
		EventType string `json:"eventType"`
		Data      struct {
			Events []json.RawMessage `json:"events"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, err
	}
	if d.EventType != "com.okta.event_hook" {
		return nil, fmt.Errorf("eventType %q is not com.okta.event_hook", d.EventType)
	}
	out := make([]ingress.HookEvent, len(d.Data.Events))
	for i, e := range d.Data.Events {
		var head struct{ UUID, EventType string }
		_ = json.Unmarshal(e, &head)
		out[i] = ingress.HookEvent{Raw: e, EventType: head.EventType, UUID: head.UUID}
	}
	return out, nil
}

// strictJSON is a minimal stand-in for the schema package's strict check: one JSON value,
// valid UTF-8, no duplicate keys in any object.
func strictJSON(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			keys := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				if keys[k.(string)] {
					return fmt.Errorf("duplicate key %q", k)
				}
				keys[k.(string)] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if err := walk(); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// fixture is one ingress over real HTTP into a real JetStream.
type fixture struct {
	url     string
	broker  *broker.Broker
	metrics *sdkmetric.ManualReader
}

func newHandler(t *testing.T, b *broker.Broker, log ...*slog.Logger) (*ingress.Handler, *sdkmetric.ManualReader, *sdktrace.TracerProvider) {
	t.Helper()
	v, err := schema.New()
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()); _ = tp.Shutdown(context.Background()) })
	h, err := ingress.New(ingress.Config{
		OktaSecrets: []string{oktaSecret, oktaSecretNext}, OktaPrincipal: "okta-event-hook",
		ISPMHeader: "X-API-Key", ISPMQueryParam: "apiKey", ISPMKeys: []string{ispmKey}, ISPMPrincipal: "ispm-webhook",
		Tokens:        []ingress.Token{{Value: apiToken, Principal: "detector-a"}},
		MaxEventBytes: maxEventBytes, MaxHookBatchBytes: maxBatchBytes, PublishTimeout: 2 * time.Second,
		MeterProvider: mp, TracerProvider: tp, Logger: firstLogger(log),
	}, ingress.Deps{
		Publisher: publish.New(b, tp), Connected: b.Connected,
		Split: splitDelivery, CheckJSON: strictJSON, Validator: v, Decode: event.Decode,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h, reader, tp
}

func firstLogger(l []*slog.Logger) *slog.Logger {
	if len(l) > 0 {
		return l[0]
	}
	return nil
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	b := brokertest.Connect(t)
	h, reader, _ := newHandler(t, b)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{url: srv.URL, broker: b, metrics: reader}
}

// post sends body to path with the given headers and returns the status and body.
func post(t *testing.T, url string, body []byte, header map[string]string) (int, string) {
	t.Helper()
	return do(t, http.MethodPost, url, body, header)
}

func do(t *testing.T, method, url string, body []byte, header map[string]string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stored returns the messages stored on subject in REMEDIATION_EVENTS.
func stored(t *testing.T, b *broker.Broker, subject string) []*broker.StoredMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var out []*broker.StoredMessage
	if err := b.Scan(ctx, broker.StreamEvents, subject, 0, time.Time{}, func(m *broker.StoredMessage) bool {
		out = append(out, m)
		return true
	}); err != nil {
		t.Fatalf("scan %s: %v", subject, err)
	}
	return out
}

// counter sums the data points of an Int64 counter whose attributes include every want pair.
func counter(t *testing.T, r *sdkmetric.ManualReader, name string, want map[string]string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, not an int64 sum", name, m.Data)
			}
		points:
			for _, dp := range sum.DataPoints {
				for k, v := range want {
					if got, ok := dp.Attributes.Value(attribute.Key(k)); !ok || got.Emit() != v {
						continue points
					}
				}
				n += dp.Value
			}
		}
	}
	return n
}

func fixtureFile(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{".."}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logEvent is a user.risk.* LogEvent shaped as Okta's System Log sends it.
func logEvent(uuid, eventType, level string) string {
	return fmt.Sprintf(`{"uuid":%q,"published":"2026-11-30T10:00:00.000Z","eventType":%q,"version":"0","severity":"WARN",
"displayMessage":"User risk detected","actor":{"id":"0oa1system","type":"PublicClientApp","alternateId":"system","displayName":"Okta"},
"target":[{"id":"00u1jane","type":"User","alternateId":"jane@example.com","displayName":"Jane Doe"}],
"outcome":{"result":"SUCCESS"},"debugContext":{"debugData":{"risk":"{previousLevel=LOW, level=%s, detectionName=Okta Threat Intelligence, reasons=IP seen in attacks, issuer=OKTA}","TraceId":"trace-1"}}}`,
		uuid, eventType, level)
}

func delivery(events ...string) []byte {
	return []byte(`{"eventType":"com.okta.event_hook","eventTypeVersion":"1.0","cloudEventsVersion":"0.1",
"source":"https://acme.okta.com/api/v1/eventHooks/who8abc","eventId":"b5a188b9-5ece-4636-b041-482ffda96311",
"eventTime":"2026-11-30T10:00:01.000Z","contentType":"application/json","data":{"events":[` + strings.Join(events, ",") + `]}}`)
}

func jsonHeaders(extra map[string]string) map[string]string {
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range extra {
		h[k] = v
	}
	return h
}
