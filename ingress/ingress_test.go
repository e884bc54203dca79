package ingress_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/ingress"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/schema"
	"github.com/remediator/remediator/service/servicetest"
)

func TestOktaVerification(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	code, body := do(t, http.MethodGet, f.url+ingress.PathOktaHook, nil, map[string]string{ingress.HeaderOktaChallenge: `abc"</script>`})
	if code != http.StatusOK {
		t.Fatalf("GET = %d %s, want 200", code, body)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil || got["verification"] != `abc"</script>` || len(got) != 1 {
		t.Fatalf("body %s (%v), want {\"verification\": the challenge}", body, err)
	}
	if code, _ := do(t, http.MethodGet, f.url+ingress.PathOktaHook, nil, nil); code != http.StatusBadRequest {
		t.Errorf("GET without a challenge = %d, want 400", code)
	}
}

// TestOktaDeliveryStoresEachRiskEventOnce replays what Okta does: a batch with a HIGH
// user.risk.detect, a duplicate of it, a user.risk.change and an unrelated type, then the same
// delivery again as Okta's retry. Exactly the two risk events are stored, each once, as sent.
func TestOktaDeliveryStoresEachRiskEventOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	detect := logEvent("uuid-detect-1", "user.risk.detect", "HIGH")
	change := logEvent("uuid-change-1", "user.risk.change", "MEDIUM")
	other := logEvent("uuid-other-1", "user.session.start", "LOW")
	body := delivery(detect, detect, change, other)
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	hdr := jsonHeaders(map[string]string{
		"Authorization":        oktaSecret,
		policy.HeaderPrincipal: "00uAttacker", // must not reach the message
		"traceparent":          traceparent,
	})
	for i := range 2 {
		if code, resp := post(t, f.url+ingress.PathOktaHook, body, hdr); code != http.StatusNoContent {
			t.Fatalf("delivery %d = %d %s, want 204", i+1, code, resp)
		}
	}
	msgs := stored(t, f.broker, event.SubjectITP)
	if len(msgs) != 2 {
		t.Fatalf("stored %d messages on %s, want 2", len(msgs), event.SubjectITP)
	}
	want := map[string]string{"uuid-detect-1": detect, "uuid-change-1": change}
	for _, m := range msgs {
		id := first(m.Header, broker.HeaderMsgID)
		if string(m.Data) != want[id] {
			t.Errorf("message %s: data %s, want the LogEvent exactly as sent", id, m.Data)
		}
		delete(want, id)
		if p := m.Header[policy.HeaderPrincipal]; len(p) != 1 || p[0] != "okta-event-hook" {
			t.Errorf("message %s: %s = %v, want only the hook's principal", id, policy.HeaderPrincipal, p)
		}
		if tp := first(m.Header, "traceparent"); !strings.Contains(tp, "4bf92f3577b34da6a3ce929d0e0e4736") {
			t.Errorf("message %s: traceparent %q does not continue the caller's trace", id, tp)
		}
	}
	if len(want) != 0 {
		t.Errorf("not stored: %v", want)
	}
	if n := counter(t, f.metrics, "remediator.ingress.okta.events", map[string]string{"event.type": "user.session.start", "outcome": "skipped"}); n != 2 {
		t.Errorf("skipped user.session.start counted %d times, want 2", n)
	}
	if n := counter(t, f.metrics, "remediator.ingress.requests", map[string]string{"source": "okta", "http.response.status_code": "204"}); n != 2 {
		t.Errorf("okta requests with 204 counted %d, want 2", n)
	}
}

func first(h map[string][]string, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func TestOktaSecrets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	body := delivery(logEvent("uuid-s-1", "user.risk.detect", "HIGH"))
	for _, tt := range []struct {
		name, auth string
	}{
		{"missing", ""},
		{"wrong", "nope"},
		{"a prefix of the secret", oktaSecret[:5]},
		{"as a bearer token", "Bearer " + oktaSecret},
		{"the ISPM key", ispmKey},
	} {
		code, _ := post(t, f.url+ingress.PathOktaHook, body, jsonHeaders(map[string]string{"Authorization": tt.auth}))
		if code != http.StatusUnauthorized {
			t.Errorf("%s secret: %d, want 401", tt.name, code)
		}
	}
	if n := len(stored(t, f.broker, ">")); n != 0 {
		t.Fatalf("%d messages stored after refused deliveries, want none", n)
	}
	// Rotation: the next secret is accepted alongside the current one.
	if code, resp := post(t, f.url+ingress.PathOktaHook, body, jsonHeaders(map[string]string{"Authorization": oktaSecretNext})); code != http.StatusNoContent {
		t.Fatalf("second configured secret: %d %s, want 204", code, resp)
	}
}

func TestDoorRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	okta := jsonHeaders(map[string]string{"Authorization": oktaSecret})
	api := jsonHeaders(map[string]string{"Authorization": "Bearer " + apiToken})
	big := delivery(logEvent("uuid-big", "user.risk.detect", "HIGH"), `{"pad":"`+strings.Repeat("x", maxBatchBytes)+`"}`)
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		header map[string]string
		want   int
	}{
		{"hook batch over its limit", http.MethodPost, ingress.PathOktaHook, string(big), okta, http.StatusRequestEntityTooLarge},
		{"event over limits.maxEventBytes", http.MethodPost, ingress.PathEventITP, `{"pad":"` + strings.Repeat("x", maxEventBytes) + `"}`, api, http.StatusRequestEntityTooLarge},
		{"ISPM hook over the limit", http.MethodPost, ingress.PathISPMHook + "?apiKey=" + ispmKey, `{"pad":"` + strings.Repeat("x", maxEventBytes) + `"}`, jsonHeaders(nil), http.StatusRequestEntityTooLarge},
		{"text/plain", http.MethodPost, ingress.PathOktaHook, string(delivery()), map[string]string{"Authorization": oktaSecret, "Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"no content type", http.MethodPost, ingress.PathEventISPM, `{}`, map[string]string{"Authorization": "Bearer " + apiToken}, http.StatusUnsupportedMediaType},
		{"PUT", http.MethodPut, ingress.PathOktaHook, `{}`, okta, http.StatusMethodNotAllowed},
		{"GET on the API", http.MethodGet, ingress.PathEventITP, ``, api, http.StatusMethodNotAllowed},
		{"not JSON", http.MethodPost, ingress.PathOktaHook, `{"eventType":`, okta, http.StatusBadRequest},
		{"duplicate keys", http.MethodPost, ingress.PathOktaHook, `{"eventType":"com.okta.event_hook","eventType":"x","data":{"events":[]}}`, okta, http.StatusBadRequest},
		{"invalid UTF-8", http.MethodPost, ingress.PathEventISPM, "{\"eventId\":\"\xff\"}", api, http.StatusBadRequest},
		{"not a delivery", http.MethodPost, ingress.PathOktaHook, `{"eventType":"something.else"}`, okta, http.StatusBadRequest},
		{"unknown path", http.MethodPost, "/hooks/other", `{}`, okta, http.StatusNotFound},
	}
	for _, tt := range tests {
		code, body := do(t, tt.method, f.url+tt.path, []byte(tt.body), tt.header)
		if code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.want)
		}
	}
	if n := len(stored(t, f.broker, ">")); n != 0 {
		t.Fatalf("%d messages stored after refused requests, want none", n)
	}
}

// TestOktaJetStreamDown stops the embedded server: the delivery is answered 503 and nothing
// is stored; once a server is back on the same store, Okta's retry of the same delivery
// succeeds and stores the risk events once.
func TestOktaJetStreamDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	store := t.TempDir()
	start := func(port int) *broker.Embedded {
		t.Helper()
		srv, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Port: port, StoreDir: store}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("start embedded NATS: %v", err)
		}
		return srv
	}
	srv := start(-1)
	b, err := broker.Connect(ctx, brokertest.ConnConfig(srv.ClientURL()), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.Provision(ctx, brokertest.Streams()); err != nil {
		t.Fatal(err)
	}
	h, _, _ := newHandler(t, b)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)

	body := delivery(logEvent("uuid-down-1", "user.risk.detect", "HIGH"), logEvent("uuid-down-2", "user.risk.change", "LOW"))
	hdr := jsonHeaders(map[string]string{"Authorization": oktaSecret})

	port := portOf(t, srv.ClientURL())
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the client to notice the server is gone", func() bool { return !b.Connected() })
	if code, resp := post(t, hs.URL+ingress.PathOktaHook, body, hdr); code != http.StatusServiceUnavailable {
		t.Fatalf("delivery with JetStream down = %d %s, want 503", code, resp)
	}

	srv = start(port)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	testwait.Until(t, "the client to reconnect", b.Connected)
	testwait.Until(t, "the events stream to be back", func() bool {
		_, err := b.StreamInfo(ctx, broker.StreamEvents, false)
		return err == nil
	})
	if n := len(stored(t, b, event.SubjectITP)); n != 0 {
		t.Fatalf("%d messages stored by a delivery answered 503, want none", n)
	}
	if code, resp := post(t, hs.URL+ingress.PathOktaHook, body, hdr); code != http.StatusNoContent {
		t.Fatalf("retried delivery = %d %s, want 204", code, resp)
	}
	if n := len(stored(t, b, event.SubjectITP)); n != 2 {
		t.Fatalf("%d messages stored after the retry, want 2", n)
	}
}

func portOf(t *testing.T, url string) int {
	t.Helper()
	port, err := strconv.Atoi(url[strings.LastIndex(url, ":")+1:])
	if err != nil {
		t.Fatalf("port of %s: %v", url, err)
	}
	return port
}

func TestISPMHook(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	envelope := fixtureFile(t, "examples", "ispm-webhook-issue-created.json")
	var env struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(envelope, &env); err != nil || env.ID == "" {
		t.Fatalf("fixture has no id: %v", err)
	}
	if code, _ := post(t, f.url+ingress.PathISPMHook, envelope, jsonHeaders(map[string]string{"X-API-Key": "wrong"})); code != http.StatusUnauthorized {
		t.Errorf("wrong key: %d, want 401", code)
	}
	if code, _ := post(t, f.url+ingress.PathISPMHook, envelope, jsonHeaders(nil)); code != http.StatusUnauthorized {
		t.Errorf("no key: %d, want 401", code)
	}
	onDemand := fixtureFile(t, "examples", "ispm-unused-admin.json")
	if code, body := post(t, f.url+ingress.PathISPMHook, onDemand, jsonHeaders(map[string]string{"X-API-Key": ispmKey})); code != http.StatusBadRequest {
		t.Errorf("on-demand inputs on the webhook: %d %s, want 400", code, body)
	}
	for _, tt := range []struct{ name, path string }{
		{"header", ingress.PathISPMHook},
		{"query parameter", ingress.PathISPMHook + "?apiKey=" + ispmKey},
	} {
		hdr := jsonHeaders(nil)
		if tt.name == "header" {
			hdr["X-API-Key"] = ispmKey
		}
		code, body := post(t, f.url+tt.path, envelope, hdr)
		if code != http.StatusOK || !strings.Contains(body, env.ID) {
			t.Fatalf("key in the %s: %d %s, want 200 with the event id", tt.name, code, body)
		}
	}
	msgs := stored(t, f.broker, event.SubjectISPM)
	if len(msgs) != 1 {
		t.Fatalf("stored %d issues, want 1 (the second post is a duplicate)", len(msgs))
	}
	if got := first(msgs[0].Header, broker.HeaderMsgID); got != env.ID {
		t.Errorf("Nats-Msg-Id = %q, want the envelope id %q", got, env.ID)
	}
	if got := first(msgs[0].Header, policy.HeaderPrincipal); got != "ispm-webhook" {
		t.Errorf("principal = %q, want ispm-webhook", got)
	}
}

func TestPublishAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	auth := jsonHeaders(map[string]string{"Authorization": "Bearer " + apiToken, policy.HeaderPrincipal: "00uSomeoneElse"})

	invalid := fixtureFile(t, "examples", "invalid-missing-issueid.json")
	v, err := schema.New()
	if err != nil {
		t.Fatal(err)
	}
	_, verr := v.Validate(event.KindISPMIssue, invalid)
	if verr == nil {
		t.Fatal("the invalid example validates")
	}
	code, body := post(t, f.url+ingress.PathEventISPM, invalid, auth)
	var refusal map[string]string
	_ = json.Unmarshal([]byte(body), &refusal)
	if code != http.StatusBadRequest || refusal["error"] != verr.Error() {
		t.Fatalf("invalid issue: %d %s, want 400 with the dead-letter text %q", code, body, verr.Error())
	}

	if code, _ := post(t, f.url+ingress.PathEventITP, fixtureFile(t, "examples", "itp-high-risk.json"), jsonHeaders(map[string]string{"Authorization": "Bearer wrong"})); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	code, body = post(t, f.url+ingress.PathEventITP, fixtureFile(t, "examples", "itp-high-risk.json"), auth)
	if code != http.StatusAccepted || !strings.Contains(body, `"eventId":"9f5b2c1e-4d7a-4b8e-9a31-2f0c6d8e7b14"`) {
		t.Fatalf("valid trigger: %d %s, want 202 with its event id", code, body)
	}
	msgs := stored(t, f.broker, event.SubjectITP)
	if len(msgs) != 1 {
		t.Fatalf("stored %d, want 1", len(msgs))
	}
	if p := msgs[0].Header[policy.HeaderPrincipal]; len(p) != 1 || p[0] != "detector-a" {
		t.Errorf("principal header = %v, want the token's principal only", p)
	}
	if n := counter(t, f.metrics, "remediator.ingress.requests", map[string]string{"source": "api-ispm", "http.response.status_code": "400"}); n != 1 {
		t.Errorf("api-ispm 400s counted %d, want 1", n)
	}
}

func TestNewNamesMissingFields(t *testing.T) {
	t.Parallel()
	_, err := ingress.New(ingress.Config{PublishTimeout: 5 * time.Second}, ingress.Deps{})
	if err == nil {
		t.Fatal("New accepted an empty configuration")
	}
	for _, want := range []string{"MaxEventBytes", "PublishTimeout", "OktaSecrets", "ISPMKeys", "Tokens", "Deps.Publisher", "Deps.Split", "Deps.CheckJSON"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// A LogEvent over limits.maxEventBytes inside a batch under the batch limit is not stored and is
// counted; the rest of the batch is stored (Okta would not retry a 4xx, so refusing the whole
// batch would lose them). A LogEvent without a uuid is keyed by its content, so Okta's retry
// still stores it once.
func TestOktaBatchEdges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	huge := strings.Replace(logEvent("uuid-huge", "user.risk.detect", "HIGH"), `"severity":"WARN"`, `"severity":"WARN","pad":"`+strings.Repeat("x", maxEventBytes)+`"`, 1)
	noUUID := strings.Replace(logEvent("", "user.risk.detect", "LOW"), `"uuid":"",`, ``, 1)
	body := delivery(huge, logEvent("uuid-ok", "user.risk.detect", "HIGH"), noUUID)
	if len(body) > maxBatchBytes {
		t.Fatalf("test batch is %d bytes, over the batch limit", len(body))
	}
	for range 2 {
		if code, resp := post(t, f.url+ingress.PathOktaHook, body, jsonHeaders(map[string]string{"Authorization": oktaSecret})); code != http.StatusNoContent {
			t.Fatalf("delivery = %d %s, want 204", code, resp)
		}
	}
	msgs := stored(t, f.broker, event.SubjectITP)
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		ids = append(ids, first(m.Header, broker.HeaderMsgID))
	}
	slices.Sort(ids) // published concurrently: order is not guaranteed
	if len(ids) != 2 || !strings.HasPrefix(ids[0], "sha256:") || ids[1] != "uuid-ok" {
		t.Fatalf("stored ids %v, want uuid-ok and a sha256 content id", ids)
	}
	if n := counter(t, f.metrics, "remediator.ingress.okta.events", map[string]string{"outcome": "too_large"}); n != 2 {
		t.Errorf("too_large counted %d, want 2", n)
	}
	if n := counter(t, f.metrics, "remediator.ingress.okta.events", map[string]string{"outcome": "duplicate"}); n != 2 {
		t.Errorf("duplicates (the retry) counted %d, want 2", n)
	}
}

// No secret reaches the logs, whatever the request: refused, accepted, key in the query.
func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	var logs servicetest.LogBuffer
	h, _, _ := newHandler(t, b, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	body := delivery(logEvent("uuid-l1", "user.risk.detect", "HIGH"), logEvent("uuid-l2", "user.other", "LOW"))
	post(t, srv.URL+ingress.PathOktaHook, body, jsonHeaders(map[string]string{"Authorization": oktaSecret}))
	post(t, srv.URL+ingress.PathOktaHook, body, jsonHeaders(map[string]string{"Authorization": oktaSecretNext + "x"}))
	post(t, srv.URL+ingress.PathOktaHook, []byte("{"), jsonHeaders(map[string]string{"Authorization": oktaSecret}))
	post(t, srv.URL+ingress.PathISPMHook+"?apiKey="+ispmKey, []byte(`{}`), jsonHeaders(nil))
	post(t, srv.URL+ingress.PathEventITP, []byte(`{}`), jsonHeaders(map[string]string{"Authorization": "Bearer " + apiToken}))
	out := logs.String()
	if !strings.Contains(out, "user.other") {
		t.Fatalf("the logs do not show the requests were handled:\n%s", out)
	}
	for _, secret := range []string{oktaSecret, oktaSecretNext, ispmKey, apiToken} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs contain the secret %q:\n%s", secret, out)
		}
	}
}
