package worker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/policy"
)

// Fakes of the worker's dependencies, for tests without a server.

// fakeMsg is a message that records how it was settled.
type fakeMsg struct {
	subject   string
	data      []byte
	delivered int
	seq       uint64
	header    map[string][]string // nil: none

	mu        sync.Mutex
	acks      int
	naks      []time.Duration
	terms     []string
	beats     int
	settled   chan struct{} // closed at the first ack, nak or term
	settleOne sync.Once
	beat      chan struct{} // receives (without blocking) at each heartbeat
}

func newFakeMsg(subject string, data []byte, delivered int, seq uint64) *fakeMsg {
	return &fakeMsg{subject: subject, data: data, delivered: delivered, seq: seq,
		settled: make(chan struct{}), beat: make(chan struct{}, 1)}
}

func (m *fakeMsg) Subject() string { return m.subject }
func (m *fakeMsg) Data() []byte    { return m.data }
func (m *fakeMsg) Headers() map[string][]string {
	if m.header != nil {
		return m.header
	}
	return map[string][]string{}
}
func (m *fakeMsg) Delivered() int         { return m.delivered }
func (m *fakeMsg) StreamSequence() uint64 { return m.seq }
func (m *fakeMsg) Published() time.Time   { return time.Unix(1700000000, 0) }

func (m *fakeMsg) settle(f func()) error {
	m.mu.Lock()
	f()
	m.mu.Unlock()
	m.settleOne.Do(func() { close(m.settled) })
	return nil
}

func (m *fakeMsg) Ack(context.Context) error { return m.settle(func() { m.acks++ }) }
func (m *fakeMsg) Nak(d time.Duration) error { return m.settle(func() { m.naks = append(m.naks, d) }) }
func (m *fakeMsg) Term(reason string) error {
	return m.settle(func() { m.terms = append(m.terms, reason) })
}
func (m *fakeMsg) InProgress() error {
	m.mu.Lock()
	m.beats++
	m.mu.Unlock()
	select {
	case m.beat <- struct{}{}:
	default:
	}
	return nil
}

// outcome says how the message was settled: "ack", "nak", "term" or "" (not yet).
func (m *fakeMsg) outcome() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.acks > 0:
		return "ack"
	case len(m.terms) > 0:
		return "term"
	case len(m.naks) > 0:
		return "nak"
	}
	return ""
}

func (m *fakeMsg) heartbeats() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.beats
}

// fakeSource serves messages pushed to it; fail, when set, makes Fetch fail.
type fakeSource struct {
	name string
	msgs chan Message
	mu   sync.Mutex
	fail error
	// fetched receives (without blocking) after each successful Fetch.
	fetched chan struct{}
	// polled receives (without blocking) when a Fetch that waits begins.
	polled chan struct{}
	// requests counts every Fetch: what JetStream would be asked.
	requests atomic.Int64
}

func newFakeSource(name string) *fakeSource {
	return &fakeSource{name: name, msgs: make(chan Message, 100), fetched: make(chan struct{}, 1), polled: make(chan struct{}, 1)}
}

func (s *fakeSource) Name() string                            { return s.name }
func (s *fakeSource) Pending(context.Context) (uint64, error) { return uint64(len(s.msgs)), nil }

func (s *fakeSource) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *fakeSource) Fetch(ctx context.Context, _ int, wait time.Duration) ([]Message, error) {
	s.requests.Add(1)
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	defer func() {
		select {
		case s.fetched <- struct{}{}:
		default:
		}
	}()
	select {
	case m := <-s.msgs:
		return []Message{m}, nil
	default:
	}
	if wait <= 0 {
		return nil, nil
	}
	select {
	case s.polled <- struct{}{}:
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case m := <-s.msgs:
		return []Message{m}, nil
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fakeKV is an in-memory bucket with revisions.
type fakeKV struct {
	mu   sync.Mutex
	vals map[string][]byte
	revs map[string]uint64
	rev  uint64
}

func newFakeKV() *fakeKV { return &fakeKV{vals: map[string][]byte{}, revs: map[string]uint64{}} }

func (kv *fakeKV) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil { // as a real bucket: no answer on a cancelled context
		return nil, 0, err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	v, ok := kv.vals[key]
	if !ok {
		return nil, 0, fmt.Errorf("get %s: %w", key, broker.ErrKeyNotFound)
	}
	return v, kv.revs[key], nil
}

func (kv *fakeKV) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if _, ok := kv.vals[key]; ok {
		return 0, fmt.Errorf("create %s: %w", key, broker.ErrKeyExists)
	}
	kv.rev++
	kv.vals[key], kv.revs[key] = value, kv.rev
	return kv.rev, nil
}

func (kv *fakeKV) Update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.revs[key] != last {
		return 0, fmt.Errorf("update %s: %w", key, broker.ErrRevisionMismatch)
	}
	kv.rev++
	kv.vals[key], kv.revs[key] = value, kv.rev
	return kv.rev, nil
}

// Watch reports no values and waits for ctx.
func (kv *fakeKV) Watch(ctx context.Context, _ string, _ func(string, []byte, bool), ready func()) error {
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	return nil
}

// published is one message the worker published.
type published struct {
	subject string
	data    []byte
	msgID   string
	header  map[string][]string
}

// fakeBroker is JetStream in memory: consumers are fakeSources by durable name.
type fakeBroker struct {
	mu        sync.Mutex
	sources   map[string]*fakeSource
	buckets   map[string]*fakeKV
	pubs      []published
	events    map[uint64]*broker.StoredMessage
	publishFn func(subject string, data []byte) error // when set, may refuse a publish
	consumers []broker.ConsumerConfig                 // every Consumer call
	custom    map[string]Source                       // sources that are not fakeSources, by durable
}

func newFakeBroker() *fakeBroker {
	return &fakeBroker{sources: map[string]*fakeSource{}, buckets: map[string]*fakeKV{}, events: map[uint64]*broker.StoredMessage{}, custom: map[string]Source{}}
}

func (b *fakeBroker) source(durable string) *fakeSource {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sources[durable]
	if !ok {
		s = newFakeSource(durable)
		b.sources[durable] = s
	}
	return s
}

func (b *fakeBroker) Publish(ctx context.Context, subject string, data []byte, opts broker.PublishOptions) (broker.PubAck, error) {
	if err := ctx.Err(); err != nil { // as JetStream: no ack on a cancelled context
		return broker.PubAck{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.publishFn != nil {
		if err := b.publishFn(subject, data); err != nil {
			return broker.PubAck{}, err
		}
	}
	b.pubs = append(b.pubs, published{subject: subject, data: data, msgID: opts.MsgID, header: opts.Header})
	return broker.PubAck{Stream: "FAKE", Sequence: uint64(len(b.pubs))}, nil
}

func (b *fakeBroker) Consumer(_ context.Context, cfg broker.ConsumerConfig) (Source, error) {
	b.mu.Lock()
	b.consumers = append(b.consumers, cfg)
	custom := b.custom[cfg.Durable]
	b.mu.Unlock()
	if custom != nil {
		return custom, nil
	}
	return b.source(cfg.Durable), nil
}

func (b *fakeBroker) KeyValue(_ context.Context, cfg broker.KVConfig) (Bucket, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	kv, ok := b.buckets[cfg.Bucket]
	if !ok {
		kv = newFakeKV()
		b.buckets[cfg.Bucket] = kv
	}
	return kv, nil
}

func (b *fakeBroker) GetMessage(ctx context.Context, stream string, seq uint64) (*broker.StoredMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.events[seq]
	if !ok {
		return nil, fmt.Errorf("get #%d: %w", seq, broker.ErrMessageNotFound)
	}
	return m, nil
}

// storeEvent stores, at seq in REMEDIATION_EVENTS, a minimal ISPM issue with id: the event a
// job of that sequence refers to, which dispatch reads back to map the flow's inputs.
func (b *fakeBroker) storeEvent(seq uint64, id string) {
	data := fmt.Appendf(nil, `{"eventId":%q,"issueId":"i-%s","issueTitle":"Unused Admin Account","issueSeverity":"High","entityIdInService":"00u1"}`, id, id)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events[seq] = &broker.StoredMessage{Stream: broker.StreamEvents, Subject: event.SubjectISPM, Sequence: seq, Data: data}
}

// published returns what was published to subjects with the given prefix.
func (b *fakeBroker) publishedTo(prefix string) []published {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []published
	for _, p := range b.pubs {
		if len(p.subject) >= len(prefix) && p.subject[:len(prefix)] == prefix {
			out = append(out, p)
		}
	}
	return out
}

// Stand-ins for the validator, router and invoker, for tests that never reach them.
// nopValidator takes every ISPM document for an on-demand issue (the shape of the events
// storeEvent stores) and refuses any other kind.
type nopValidator struct{}

func (nopValidator) Validate(kind event.Kind, _ []byte) (event.Shape, error) {
	if kind != event.KindISPMIssue {
		return "", fmt.Errorf("nopValidator: kind %q not used", kind)
	}
	return event.ShapeISPMOnDemand, nil
}

type nopRouter struct{}

func (nopRouter) RouteContext(context.Context, *event.Event) ([]policy.Decision, error) {
	return nil, nil
}
func (nopRouter) Principal(*event.Event, map[string][]string, string) (policy.Principal, error) {
	return policy.Principal{}, nil
}
func (nopRouter) Authorize(*event.Event, policy.Principal, string) error      { return nil }
func (nopRouter) Inputs(*event.Event, string) (map[string]any, error)         { return nil, nil }
func (nopRouter) CheckJob(event.Kind, string, string, string, []string) error { return nil }

// invokerFunc adapts a function to Invoker.
type invokerFunc func(ctx context.Context, ep flow.Endpoint, req flow.Request) (*flow.Result, error)

func (f invokerFunc) Invoke(ctx context.Context, ep flow.Endpoint, req flow.Request) (*flow.Result, error) {
	return f(ctx, ep, req)
}

// fakeWorker is a worker on a fakeBroker, with one flow named "f" calling invoke.
func fakeWorker(t interface{ Fatal(...any) }, b *fakeBroker, mutate func(*Config)) *Worker {
	cfg := configForTests()
	cfg.Broker, cfg.Validator, cfg.Router = b, nopValidator{}, nopRouter{}
	cfg.Invoker = invokerFunc(func(context.Context, flow.Endpoint, flow.Request) (*flow.Result, error) {
		return &flow.Result{StatusCode: 200}, nil
	})
	cfg.Flows = []Flow{{Endpoint: flow.Endpoint{Name: "f"}, RateLimit: 1000, Concurrency: 2, Breaker: breakerForTests()}}
	if mutate != nil {
		mutate(&cfg)
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
