// Package otlptest is an in-process OTLP/HTTP trace receiver for tests. It speaks the real
// protocol — POST /v1/traces with a protobuf ExportTraceServiceRequest body, gzip-compressed
// or not — so that a test can point the real OTLP exporter at it (OTEL_EXPORTER_OTLP_ENDPOINT)
// and assert on the spans that left the process, as a collector or Jaeger would receive them.
package otlptest

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/remediator/remediator/internal/testwait"
)

// TracesPath is where OTLP/HTTP exporters send spans.
const TracesPath = "/v1/traces"

// Receiver is a running OTLP/HTTP trace receiver.
type Receiver struct {
	// URL is the base URL to use as OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends
	// /v1/traces).
	URL string

	srv *httptest.Server

	mu       sync.Mutex
	spans    []Span
	bodies   [][]byte // every request body, decompressed
	requests int
	gzipped  int
	changed  chan struct{} // closed and replaced whenever spans arrive
}

// Span is a received span, flattened for assertions. Ids are lower-case hex, as in
// status records and Jaeger URLs.
type Span struct {
	TraceID, SpanID, ParentSpanID string
	Name                          string
	// Kind is "internal", "server", "client", "producer", "consumer" or "unspecified".
	Kind string
	// Scope is the instrumentation scope (tracer) name; Service the resource's service.name.
	Scope, Service string
	Attributes     map[string]any
	Resource       map[string]any
	Events         []Event
	Links          []Link
	// StatusCode is "unset", "ok" or "error".
	StatusCode    string
	StatusMessage string
	Start, End    time.Time
}

// Event is a span event.
type Event struct {
	Name       string
	Attributes map[string]any
}

// Link is a span link.
type Link struct {
	TraceID, SpanID string
	Attributes      map[string]any
}

// Attr returns the attribute's value formatted with fmt ("" when absent): "nats", "200",
// "true".
func (s Span) Attr(key string) string {
	v, ok := s.Attributes[key]
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

// HasAttr reports whether the span has the attribute.
func (s Span) HasAttr(key string) bool {
	_, ok := s.Attributes[key]
	return ok
}

func (s Span) String() string {
	return fmt.Sprintf("%s [%s %s] span=%s parent=%s", s.Name, s.Kind, s.Scope, s.SpanID, s.ParentSpanID)
}

// Dump renders everything the span carries — name, attributes, events, links, status and
// resource — one item per line, for scans and failure messages.
func (s Span) Dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nstatus %s %s\n", s, s.StatusCode, s.StatusMessage)
	for _, k := range slices.Sorted(maps.Keys(s.Attributes)) {
		fmt.Fprintf(&b, "  %s=%v\n", k, s.Attributes[k])
	}
	for _, e := range s.Events {
		fmt.Fprintf(&b, "  event %s %v\n", e.Name, e.Attributes)
	}
	for _, l := range s.Links {
		fmt.Fprintf(&b, "  link %s/%s %v\n", l.TraceID, l.SpanID, l.Attributes)
	}
	fmt.Fprintf(&b, "  resource %v\n", s.Resource)
	return b.String()
}

// Start runs a receiver until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc(TracesPath, r.handleTraces)
	r.srv = httptest.NewServer(mux)
	r.URL = r.srv.URL
	t.Cleanup(r.srv.Close)
	return r
}

func (r *Receiver) handleTraces(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); ct != "application/x-protobuf" {
		http.Error(w, "this receiver takes application/x-protobuf only, got "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = req.Body
	gz := false
	switch enc := strings.ToLower(req.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, "bad gzip body: "+err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body, gz = zr, true
	default:
		http.Error(w, "unsupported Content-Encoding "+enc, http.StatusUnsupportedMediaType)
		return
	}
	data, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, "not an ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	spans := flatten(&msg)

	r.mu.Lock()
	r.requests++
	if gz {
		r.gzipped++
	}
	r.bodies = append(r.bodies, data)
	r.spans = append(r.spans, spans...)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()

	out, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func flatten(msg *coltracepb.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range msg.GetResourceSpans() {
		res := attrMap(rs.GetResource().GetAttributes())
		service, _ := res["service.name"].(string)
		for _, ss := range rs.GetScopeSpans() {
			scope := ss.GetScope().GetName()
			for _, s := range ss.GetSpans() {
				sp := Span{
					TraceID: hexID(s.GetTraceId()), SpanID: hexID(s.GetSpanId()), ParentSpanID: hexID(s.GetParentSpanId()),
					Name: s.GetName(), Kind: kindName(s.GetKind()), Scope: scope, Service: service,
					Attributes: attrMap(s.GetAttributes()), Resource: res,
					StatusCode: statusName(s.GetStatus().GetCode()), StatusMessage: s.GetStatus().GetMessage(),
					Start: time.Unix(0, int64(s.GetStartTimeUnixNano())).UTC(),
					End:   time.Unix(0, int64(s.GetEndTimeUnixNano())).UTC(),
				}
				for _, e := range s.GetEvents() {
					sp.Events = append(sp.Events, Event{Name: e.GetName(), Attributes: attrMap(e.GetAttributes())})
				}
				for _, l := range s.GetLinks() {
					sp.Links = append(sp.Links, Link{TraceID: hexID(l.GetTraceId()), SpanID: hexID(l.GetSpanId()), Attributes: attrMap(l.GetAttributes())})
				}
				out = append(out, sp)
			}
		}
	}
	return out
}

func hexID(b []byte) string {
	if len(b) == 0 || !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) {
		return ""
	}
	return hex.EncodeToString(b)
}

func kindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "internal"
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	}
	return "unspecified"
}

func statusName(c tracepb.Status_StatusCode) string {
	switch c {
	case tracepb.Status_STATUS_CODE_OK:
		return "ok"
	case tracepb.Status_STATUS_CODE_ERROR:
		return "error"
	}
	return "unset"
}

func attrMap(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyValue(kv.GetValue())
	}
	return m
}

func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		var out []any
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return attrMap(x.KvlistValue.GetValues())
	}
	return nil
}

// Spans returns every span received so far, in arrival order.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Trace returns the received spans of one trace.
func (r *Receiver) Trace(traceID string) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// Bodies returns every request body received, decompressed: the raw protobuf, for scanning
// for bytes that must never be exported.
func (r *Receiver) Bodies() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}

// Contains reports whether any received request body holds s, and whether any decoded span
// name, attribute, event, link, status or resource attribute does.
func (r *Receiver) Contains(s string) bool {
	for _, b := range r.Bodies() {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	for _, sp := range r.Spans() {
		if strings.Contains(sp.Dump(), s) {
			return true
		}
	}
	return false
}

// Requests returns how many export requests arrived, and how many of them were gzipped.
func (r *Receiver) Requests() (total, gzipped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, r.gzipped
}

// WaitFor waits until cond holds for the spans received so far, calling flush (when not nil,
// e.g. the tracer provider's ForceFlush) before each check, and fails the test after timeout
// with what was received. It re-checks as soon as an export arrives, and otherwise on
// testwait's backoff (spans may still be ending: the flush exports them).
func (r *Receiver) WaitFor(t testing.TB, timeout time.Duration, what string, flush func(), cond func([]Span) bool) []Span {
	t.Helper()
	var spans []Span
	err := testwait.Wait(func() error {
		if flush != nil {
			flush()
		}
		r.mu.Lock()
		spans = slices.Clone(r.spans)
		r.mu.Unlock()
		if cond(spans) {
			return nil
		}
		return fmt.Errorf("received %d spans", len(spans))
	}, testwait.Timeout(timeout), testwait.WakeWhen(r.changes))
	if err != nil {
		var b strings.Builder
		for _, root := range Tree(spans) {
			b.WriteString(root.String())
		}
		t.Fatalf("timed out after %v waiting for %s; received %d spans:\n%s", timeout, what, len(spans), b.String())
		return nil
	}
	return spans
}

// changes returns the channel closed at the next export.
func (r *Receiver) changes() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Node is a span and its children, in start order.
type Node struct {
	Span
	Children []*Node
}

// Tree arranges spans into parent/child trees and returns the roots, in start order. A span
// whose parent was not received is a root.
func Tree(spans []Span) []*Node {
	byID := make(map[string]*Node, len(spans))
	nodes := make([]*Node, 0, len(spans))
	for _, s := range spans {
		n := &Node{Span: s}
		byID[s.TraceID+"/"+s.SpanID] = n
		nodes = append(nodes, n)
	}
	var roots []*Node
	for _, n := range nodes {
		if p, ok := byID[n.TraceID+"/"+n.ParentSpanID]; ok && n.ParentSpanID != "" && p != n {
			p.Children = append(p.Children, n)
			continue
		}
		roots = append(roots, n)
	}
	byStart := func(a, b *Node) int { return a.Start.Compare(b.Start) }
	for _, n := range nodes {
		slices.SortStableFunc(n.Children, byStart)
	}
	slices.SortStableFunc(roots, byStart)
	return roots
}

// Find returns the first node, depth first, whose span satisfies match, or nil.
func (n *Node) Find(match func(Span) bool) *Node {
	if n == nil {
		return nil
	}
	if match(n.Span) {
		return n
	}
	for _, c := range n.Children {
		if f := c.Find(match); f != nil {
			return f
		}
	}
	return nil
}

// Child returns the first direct child whose span satisfies match, or nil.
func (n *Node) Child(match func(Span) bool) *Node {
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if match(c.Span) {
			return c
		}
	}
	return nil
}

// Named matches a span by exact name, or by prefix when name ends in "*".
func Named(name string) func(Span) bool {
	if p, ok := strings.CutSuffix(name, "*"); ok {
		return func(s Span) bool { return strings.HasPrefix(s.Name, p) }
	}
	return func(s Span) bool { return s.Name == name }
}

// String renders the tree, one span per line, indented by depth:
//
//	send remediation.events.ispm [producer]
//	  process remediation.events.ispm [consumer]
//	    validate [internal]
func (n *Node) String() string {
	var b strings.Builder
	var walk func(*Node, int)
	walk = func(n *Node, depth int) {
		fmt.Fprintf(&b, "%s%s [%s]\n", strings.Repeat("  ", depth), n.Name, n.Kind)
		for _, c := range n.Children {
			walk(c, depth+1)
		}
	}
	walk(n, 0)
	return b.String()
}
