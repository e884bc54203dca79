package ingress

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/telemetry"
)

// Paths served by the ingress.
const (
	PathOktaHook  = "/hooks/okta"
	PathISPMHook  = "/hooks/ispm"
	PathEventISPM = "/v1/events/ispm"
	PathEventITP  = "/v1/events/itp"
)

// HeaderOktaChallenge carries Okta's one-time verification challenge.
const HeaderOktaChallenge = "X-Okta-Verification-Challenge"

// maxChallengeBytes bounds the verification challenge echoed back (Okta's is a short token).
const maxChallengeBytes = 1024

// Sources, the value of the "source" metric attribute and span attribute.
const (
	SourceOkta      = "okta"
	SourceISPM      = "ispm"
	SourceAPIISPM   = "api-ispm"
	SourceAPIITP    = "api-itp"
	sourceNotFound  = "none"
	instrumentation = "github.com/remediator/remediator/ingress"
)

// Validator checks a document against the worker's schemas and names its shape.
// *schema.Validator implements it.
type Validator interface {
	Validate(kind event.Kind, data []byte) (event.Shape, error)
}

// Publisher stores an event in JetStream and returns once it is acknowledged.
// *publish.Publisher implements it; its producer span carries the trace into the pipeline.
type Publisher interface {
	Publish(ctx context.Context, data []byte, opts publish.Options) (publish.Result, error)
}

var _ Publisher = (*publish.Publisher)(nil)

// HookEvent is one LogEvent of an Okta event hook delivery, as event.SplitHookDelivery
// returns it.
type HookEvent = event.HookEvent

// Splitter returns the LogEvents of a com.okta.event_hook delivery (data.events[]), in
// order, or an error for a body that is not such a delivery (event.SplitHookDelivery).
type Splitter func(delivery []byte) ([]HookEvent, error)

// JSONChecker refuses a document that is not one JSON value, has an object with a duplicate
// key, or holds invalid UTF-8: the check the worker's decoding makes (invalid_json).
type JSONChecker func(data []byte) error

// Decoder normalises a validated document; event.Decode.
type Decoder func(shape event.Shape, data []byte) (*event.Event, error)

// Token is a bearer token of the publish API and the principal it authenticates.
type Token struct {
	Value     string
	Principal string
}

// Config configures the ingress handler. Secret values are held here, never logged.
type Config struct {
	// OktaSecrets are the accepted values of the event hook's Authorization header. Required.
	OktaSecrets []string
	// OktaPrincipal is set as Remediator-Principal on Okta's events. Required.
	OktaPrincipal string
	// ISPMHeader and ISPMQueryParam say where the ISPM webhook's API key is; at least one.
	ISPMHeader, ISPMQueryParam string
	// ISPMKeys are the accepted API keys. Required.
	ISPMKeys []string
	// ISPMPrincipal is set as Remediator-Principal on webhook issues. Required.
	ISPMPrincipal string
	// Tokens are the publish API's bearer tokens. Required.
	Tokens []Token
	// MaxEventBytes caps one event: the body of /hooks/ispm and /v1/events/*, and each
	// LogEvent of an Okta delivery (limits.maxEventBytes). Required.
	MaxEventBytes int64
	// MaxHookBatchBytes caps the body of an Okta delivery; at least MaxEventBytes. Required.
	MaxHookBatchBytes int64
	// PublishTimeout bounds the wait for JetStream's acks of one request. Required, below 3s
	// (Okta's event hook timeout).
	PublishTimeout time.Duration
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
	// MeterProvider and TracerProvider default to the global ones.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
}

// FromConfig builds a Config from the configuration's ingress section and its resolved secrets.
func FromConfig(in config.IngressConfig, s *config.IngressSecrets, maxEventBytes int64, log *slog.Logger, mp metric.MeterProvider, tp trace.TracerProvider) Config {
	c := Config{
		OktaPrincipal: in.Okta.Principal, ISPMHeader: in.ISPM.Header, ISPMQueryParam: in.ISPM.QueryParam,
		ISPMPrincipal: in.ISPM.Principal, MaxEventBytes: maxEventBytes, MaxHookBatchBytes: in.Okta.MaxBatchBytes,
		PublishTimeout: in.PublishTimeout, Logger: log, MeterProvider: mp, TracerProvider: tp,
	}
	if s != nil {
		c.OktaSecrets, c.ISPMKeys = s.OktaSecrets, s.ISPMKeys
		for _, t := range s.Tokens {
			c.Tokens = append(c.Tokens, Token(t))
		}
	}
	return c
}

// Deps are what the handler needs from the rest of remediator.
type Deps struct {
	// Publisher stores events. Required.
	Publisher Publisher
	// Connected reports whether the NATS connection is up ((*broker.Broker).Connected). While
	// it is down, requests are answered 503 at once rather than publishing into the client's
	// reconnect buffer, which could store an event after its sender was told it failed.
	// Optional.
	Connected func() bool
	// Split, CheckJSON, Validator and Decode are the event and schema packages' decoding.
	// Required.
	Split     Splitter
	CheckJSON JSONChecker
	Validator Validator
	Decode    Decoder
}

// Handler is the ingress http.Handler. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	tracer  trace.Tracer
	metrics *metrics
	mux     *http.ServeMux

	okta, ispm []credential
	tokens     []credential
	skipLog    *onceSet
}

var _ http.Handler = (*Handler)(nil)

// New validates cfg and deps and returns the handler. Errors name the field.
func New(cfg Config, deps Deps) (*Handler, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ingress: "+format, args...)) }
	if cfg.MaxEventBytes <= 0 {
		bad("MaxEventBytes must be positive")
	}
	if cfg.MaxHookBatchBytes < cfg.MaxEventBytes {
		bad("MaxHookBatchBytes %d is below MaxEventBytes %d", cfg.MaxHookBatchBytes, cfg.MaxEventBytes)
	}
	if cfg.PublishTimeout <= 0 || cfg.PublishTimeout >= 3*time.Second {
		bad("PublishTimeout %s must be above 0 and below Okta's 3s", cfg.PublishTimeout)
	}
	if cfg.ISPMHeader == "" && cfg.ISPMQueryParam == "" {
		bad("ISPMHeader or ISPMQueryParam is required")
	}
	h := &Handler{cfg: cfg, deps: deps, skipLog: newOnceSet(maxLoggedTypes)}
	var err error
	if h.okta, err = credentials("OktaSecrets", cfg.OktaSecrets, cfg.OktaPrincipal); err != nil {
		errs = append(errs, err)
	}
	if h.ispm, err = credentials("ISPMKeys", cfg.ISPMKeys, cfg.ISPMPrincipal); err != nil {
		errs = append(errs, err)
	}
	if len(cfg.Tokens) == 0 {
		bad("Tokens is empty")
	}
	for i, t := range cfg.Tokens {
		c, err := credentials(fmt.Sprintf("Tokens[%d]", i), []string{t.Value}, t.Principal)
		if err != nil {
			errs = append(errs, err)
		}
		h.tokens = append(h.tokens, c...)
	}
	for name, missing := range map[string]bool{
		"Publisher": deps.Publisher == nil, "Split": deps.Split == nil, "CheckJSON": deps.CheckJSON == nil,
		"Validator": deps.Validator == nil, "Decode": deps.Decode == nil,
	} {
		if missing {
			bad("Deps.%s is required", name)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h.log = cfg.Logger
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "ingress")
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	h.tracer = tp.Tracer(instrumentation)
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if h.metrics, err = newMetrics(mp.Meter(instrumentation)); err != nil {
		return nil, fmt.Errorf("ingress: metrics: %w", err)
	}
	h.mux = http.NewServeMux()
	h.mux.Handle(PathOktaHook, h.endpoint(SourceOkta, PathOktaHook, h.oktaHook))
	h.mux.Handle(PathISPMHook, h.endpoint(SourceISPM, PathISPMHook, h.ispmHook))
	h.mux.Handle(PathEventISPM, h.endpoint(SourceAPIISPM, PathEventISPM, h.publishAPI(event.KindISPMIssue, event.SubjectISPM)))
	h.mux.Handle(PathEventITP, h.endpoint(SourceAPIITP, PathEventITP, h.publishAPI(event.KindEntityRisk, event.SubjectITP)))
	h.mux.Handle("/", h.endpoint(sourceNotFound, "/", func(*request) response {
		return errorResponse(http.StatusNotFound, "no such endpoint")
	}))
	return h, nil
}

// NewHTTPServer returns an http.Server for h with timeouts fit for a public listener: headers
// within 10s, a whole request within 30s.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

// ServeHTTP routes the request to its endpoint.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// credential is a secret, kept only as its SHA-256 so that comparisons take the same time
// whatever the lengths.
type credential struct {
	sum       [sha256.Size]byte
	principal string
}

func credentials(field string, values []string, principal string) ([]credential, error) {
	if len(values) == 0 {
		return nil, fmt.Errorf("ingress: %s is empty", field)
	}
	if strings.TrimSpace(principal) == "" {
		return nil, fmt.Errorf("ingress: the principal of %s is empty", field)
	}
	out := make([]credential, 0, len(values))
	for i, v := range values {
		if v == "" {
			return nil, fmt.Errorf("ingress: %s[%d] is empty", field, i)
		}
		out = append(out, credential{sum: sha256.Sum256([]byte(v)), principal: principal})
	}
	return out, nil
}

// match returns the principal of the credential given equals. It compares against every
// credential, in constant time each, so neither timing nor order tells which one matched.
func match(creds []credential, given string) (string, bool) {
	if given == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(given))
	found := -1
	for i := range creds {
		if subtle.ConstantTimeCompare(sum[:], creds[i].sum[:]) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return creds[found].principal, true
}

// request is what an endpoint handler gets once the door checks common to it are done.
type request struct {
	ctx       context.Context
	r         *http.Request
	body      []byte // read and checked only for endpoints whose route sets limit
	principal string
}

// response is an endpoint's answer.
type response struct {
	status int
	body   any // JSON-encoded; nil for no body
	err    string
	header map[string]string
}

func errorResponse(status int, msg string) response {
	return response{status: status, body: map[string]string{"error": msg}, err: msg}
}

// endpoint wraps an endpoint handler with the span and metrics every request gets. route names
// the span, so that unknown paths do not each make a span name of their own.
func (h *Handler) endpoint(source, route string, serve func(*request) response) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := telemetry.Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := h.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("http.route", route),
			attribute.String("url.path", r.URL.Path), // never the query: it may carry the ISPM key
			attribute.String("remediator.ingress.source", source),
		))
		defer span.End()
		resp := serve(&request{ctx: ctx, r: r})
		for k, v := range resp.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		if resp.body != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(resp.status)
			enc := json.NewEncoder(w)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(resp.body) // the client went away; nothing to do
		} else {
			w.WriteHeader(resp.status)
		}
		span.SetAttributes(attribute.Int("http.response.status_code", resp.status))
		if resp.status >= 500 {
			span.SetStatus(codes.Error, resp.err)
		}
		h.metrics.request(ctx, source, resp.status, time.Since(start))
		if resp.status >= 400 && source != sourceNotFound {
			level := slog.LevelInfo
			if resp.status >= 500 {
				level = slog.LevelError
			}
			h.log.Log(ctx, level, "ingress request refused", slog.String("source", source), slog.String("path", r.URL.Path),
				slog.Int("status", resp.status), slog.String("error", resp.err))
		}
	})
}

// door runs the checks every POST endpoint makes, in order: method, credentials, content
// type, body size, JSON. It returns the body or the refusal.
func (h *Handler) door(req *request, auth func(*http.Request) (string, bool), limit int64) (response, bool) {
	r := req.r
	if r.Method != http.MethodPost {
		resp := errorResponse(http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed; use POST")
		resp.header = map[string]string{"Allow": http.MethodPost}
		if r.URL.Path == PathOktaHook {
			resp.header["Allow"] = "GET, POST"
		}
		return resp, false
	}
	principal, ok := auth(r)
	if !ok {
		// Which credential was wrong, or that it was missing, stays unsaid.
		resp := errorResponse(http.StatusUnauthorized, "missing or wrong credentials")
		if r.URL.Path == PathEventISPM || r.URL.Path == PathEventITP {
			resp.header = map[string]string{"WWW-Authenticate": `Bearer realm="remediator"`}
		}
		return resp, false
	}
	req.principal = principal
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return errorResponse(http.StatusUnsupportedMediaType, "Content-Type must be application/json"), false
	}
	tooLarge := errorResponse(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than this endpoint's limit of %d bytes", limit))
	if r.ContentLength > limit {
		return tooLarge, false
	}
	body, err := readBody(r, limit)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge, false
		}
		return errorResponse(http.StatusBadRequest, "could not read the body: "+err.Error()), false
	}
	if err := h.deps.CheckJSON(body); err != nil {
		return errorResponse(http.StatusBadRequest, err.Error()), false
	}
	req.body = body
	return response{}, true
}

// readBody reads at most limit bytes; past that it fails with *http.MaxBytesError.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(nil, r.Body, limit)
	defer body.Close()
	return io.ReadAll(body)
}

// bearer authenticates the publish API's Authorization: Bearer <token>.
func (h *Handler) bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return match(h.tokens, strings.TrimSpace(tok))
}

// principalHeader is the only header the ingress sets on a message besides trace context:
// the authenticated source, never anything the caller sent.
func principalHeader(p string) map[string][]string {
	return map[string][]string{policy.HeaderPrincipal: {p}}
}

// publishAPI serves POST /v1/events/{ispm,itp}: one event, validated as the intake would.
func (h *Handler) publishAPI(kind event.Kind, subject string) func(*request) response {
	return func(req *request) response {
		if resp, ok := h.door(req, h.bearer, h.cfg.MaxEventBytes); !ok {
			return resp
		}
		ev, resp, ok := h.validate(kind, req.body)
		if !ok {
			return resp
		}
		res, err := h.publishOne(req.ctx, subject, req.body, ev.ID, req.principal)
		if err != nil {
			return h.unavailable(req.ctx, err)
		}
		return response{status: http.StatusAccepted, body: accepted{EventID: ev.ID, Duplicate: res.Duplicate}}
	}
}

// accepted is the body of a successful publish.
type accepted struct {
	EventID   string `json:"eventId"`
	Duplicate bool   `json:"duplicate"`
}

// validate checks data with the worker's schemas and decoding; a refusal carries the text the
// intake would put in the dead letter.
func (h *Handler) validate(kind event.Kind, data []byte) (*event.Event, response, bool) {
	shape, err := h.deps.Validator.Validate(kind, data)
	if err != nil {
		return nil, errorResponse(http.StatusBadRequest, err.Error()), false
	}
	ev, err := h.deps.Decode(shape, data)
	if err != nil {
		return nil, errorResponse(http.StatusBadRequest, err.Error()), false
	}
	return ev, response{}, true
}

// ispmHook serves POST /hooks/ispm: the issue.created envelope, keyed by its id.
func (h *Handler) ispmHook(req *request) response {
	auth := func(r *http.Request) (string, bool) {
		if h.cfg.ISPMHeader != "" {
			if v := r.Header.Get(h.cfg.ISPMHeader); v != "" {
				return match(h.ispm, v)
			}
		}
		if h.cfg.ISPMQueryParam != "" {
			return match(h.ispm, r.URL.Query().Get(h.cfg.ISPMQueryParam))
		}
		return "", false
	}
	if resp, ok := h.door(req, auth, h.cfg.MaxEventBytes); !ok {
		return resp
	}
	ev, resp, ok := h.validate(event.KindISPMIssue, req.body)
	if !ok {
		return resp
	}
	if ev.Shape != event.ShapeISPMWebhook {
		return errorResponse(http.StatusBadRequest, fmt.Sprintf("this endpoint takes ISPM's webhook envelope (type issue.created), not %s; detectors post other shapes to %s", ev.Shape, PathEventISPM))
	}
	res, err := h.publishOne(req.ctx, event.SubjectISPM, req.body, ev.ID, req.principal)
	if err != nil {
		return h.unavailable(req.ctx, err)
	}
	return response{status: http.StatusOK, body: accepted{EventID: ev.ID, Duplicate: res.Duplicate}}
}

// errUnavailable is returned while the NATS connection is down.
var errUnavailable = errors.New("not connected to NATS")

func (h *Handler) publishOne(ctx context.Context, subject string, data []byte, msgID, principal string) (publish.Result, error) {
	if h.deps.Connected != nil && !h.deps.Connected() {
		return publish.Result{}, errUnavailable
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	defer cancel()
	return h.deps.Publisher.Publish(ctx, data, publish.Options{Subject: subject, MsgID: msgID, Header: principalHeader(principal)})
}

// unavailable answers 503: JetStream did not acknowledge, so the sender must retry (the ids
// make the retry store each event once).
func (h *Handler) unavailable(ctx context.Context, err error) response {
	h.log.ErrorContext(ctx, "JetStream did not store the events; answering 503", slog.Any("error", err))
	resp := errorResponse(http.StatusServiceUnavailable, "the events could not be stored; retry")
	resp.header = map[string]string{"Retry-After": strconv.Itoa(1)}
	return resp
}
