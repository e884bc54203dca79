package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/schema"
	"github.com/remediator/remediator/status"
)

// The plain pipeline is the baseline remediator is compared with: the simplest correct
// thing that does the same job for one flow per event. Workers pull events in batches from
// a durable consumer on REMEDIATION_EVENTS, validate each with the same JSON Schema, POST it
// to its flow, publish a succeeded status (with a de-duplication id), and only then ack; a
// failure is handed back for redelivery. No rate budget, breaker, idempotency record, job
// stage, tracing or logging: what remediator adds is the difference between the two rows.

// plainBatch is how many messages one pull asks for.
const plainBatch = 16

// plainPipeline runs workers until ctx ends.
type plainPipeline struct {
	b      *broker.Broker
	cons   *broker.Consumer
	v      *schema.Validator
	http   *http.Client
	url    func(flow string) string
	titles map[string]string // issue title → flow
}

func (p *plainPipeline) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				msgs, err := p.cons.Fetch(ctx, plainBatch, time.Second)
				if err != nil {
					continue
				}
				for _, m := range msgs {
					if err := p.handle(ctx, m); err != nil {
						_ = m.Nak(100 * time.Millisecond)
						continue
					}
					_ = m.Ack(ctx)
				}
			}
		})
	}
	wg.Wait()
}

// handle validates, calls the flow and stores the status; nil means the message may be acked.
func (p *plainPipeline) handle(ctx context.Context, m *broker.Message) error {
	data := m.Data()
	if _, err := p.v.Validate(event.KindISPMIssue, data); err != nil {
		return err
	}
	var doc struct {
		EventID    string `json:"eventId"`
		IssueTitle string `json:"issueTitle"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	flow, ok := p.titles[doc.IssueTitle]
	if !ok {
		return fmt.Errorf("no flow for %q", doc.IssueTitle)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url(flow), bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-api-client-token", benchToken)
	start := time.Now()
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("flow answered %d", resp.StatusCode)
	}
	rec, err := json.Marshal(status.Record{
		EventID: doc.EventID, EventKind: string(event.KindISPMIssue), Flow: flow, Outcome: status.Succeeded,
		Attempt: m.Delivered(), HTTPStatus: resp.StatusCode, ExecutionID: resp.Header.Get("X-Execution-Id"),
		DurationMS: time.Since(start).Milliseconds(), Timestamp: time.Now().UTC(),
	})
	if err != nil {
		return err
	}
	_, err = p.b.Publish(ctx, status.Succeeded.Subject(), rec, broker.PublishOptions{MsgID: doc.EventID + ":" + flow + ":succeeded"})
	return err
}

// plain measures the plain pipeline on a fresh server, with remediator's streams as the
// default configuration provisions them.
func (r *runner) plain(ctx context.Context) (m Measurement, err error) {
	m = Measurement{Name: "plain pipeline", Flows: r.cfg.Flows, Replicas: 1}
	srv, err := startNATS(ctx, r.cfg.NATS, r.log)
	if err != nil {
		return m, err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	b, err := srv.connect(ctx, r.log)
	if err != nil {
		return m, err
	}
	defer b.Close()
	def, err := config.Default()
	if err != nil {
		return m, err
	}
	// An external server's streams are used as they are: provisioning them with the default
	// configuration would change its settings (replicas, limits) in place.
	if srv.emb != nil || b.StreamsPresent(ctx) != nil {
		s := def.Streams
		if err := b.Provision(ctx, broker.StreamsConfig{MaxAge: s.MaxAge, Replicas: s.Replicas, DuplicateWindow: s.DuplicateWindow, MaxBytes: s.MaxBytes, Storage: s.Storage}); err != nil {
			return m, err
		}
	}
	cons, err := b.Consumer(ctx, broker.ConsumerConfig{
		Stream: broker.StreamEvents, Durable: "bench-plain", FilterSubjects: []string{event.SubjectISPM},
		AckWait: 30 * time.Second, MaxDeliver: 20, MaxAckPending: 1000,
	})
	if err != nil {
		return m, err
	}
	v, err := schema.New()
	if err != nil {
		return m, err
	}
	titles := map[string]string{}
	for i := range r.cfg.Flows {
		titles[issueTitle(i)] = flowName(i)
	}
	p := &plainPipeline{
		b: b, cons: cons, v: v, url: r.flows.url, titles: titles,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: r.cfg.PlainWorkers}},
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.run(pctx, r.cfg.PlainWorkers) }()
	// The pipeline's connections to the flow server end with it: nothing of a measurement
	// outlives it.
	defer func() { stop(); <-done; p.http.CloseIdleConnections() }()
	calls := r.flows.calls.Load()
	err = r.measure(ctx, b, r.newWorkload(r.cfg.Events, r.cfg.Flows), 0, false, &m)
	m.FlowCalls = r.flows.calls.Load() - calls
	return m, err
}
