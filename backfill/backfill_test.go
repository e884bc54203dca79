package backfill_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remediator/remediator/backfill"
	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/okta"
	"github.com/remediator/remediator/publish"
)

const clientID = "0oaBackfill"

// org serves a simulated org over real HTTP whose app may read the System Log.
func org(t *testing.T) (*flowsim.Simulator, *okta.Client) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	key, err := okta.ParseKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), "kid-backfill")
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := key.PublicJWK()
	keys, err := flowsim.ParseJWKS(jwk)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := flowsim.New(flowsim.Config{Org: &flowsim.OrgConfig{
		Clients: []flowsim.OAuthClient{{ID: clientID, Keys: keys, Scopes: []string{okta.ScopeLogsRead}}},
		Users:   []flowsim.User{{ID: "00uJane"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	oc, err := okta.New(okta.Config{OrgURL: srv.URL, ClientID: clientID, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return sim, oc
}

// logEvents returns n LogEvents of type typ, published a second apart from start.
func logEvents(prefix, typ string, start time.Time, n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range n {
		out[i] = json.RawMessage(fmt.Sprintf(`{"uuid":"%s-%04d","published":%q,"eventType":%q,"version":"0","severity":"WARN",
			"target":[{"id":"00uJane","type":"User","alternateId":"jane@example.com"}],
			"debugContext":{"debugData":{"risk":"{level=HIGH, detectionName=User reported suspicious activity, issuer=OKTA}"}}}`,
			prefix, i, start.Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339Nano), typ))
	}
	return out
}

type report struct {
	published int
	leader    bool
}

// poller runs a backfill.Poller and keeps what each of its polls reported.
type poller struct {
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	mu      sync.Mutex
	reports []report
	seen    int // reports already looked at by waitPoll
}

func (p *poller) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	<-p.done
}

// waitPoll waits for a poll, after those already looked at, whose report satisfies ok.
func (p *poller) waitPoll(t *testing.T, what string, ok func(published int, leader bool) bool) {
	t.Helper()
	testwait.Until(t, what, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for ; p.seen < len(p.reports); p.seen++ {
			if r := p.reports[p.seen]; ok(r.published, r.leader) {
				p.seen++
				return true
			}
		}
		return false
	}, testwait.WakeOn(p.wake), testwait.Timeout(30*time.Second))
}

func startPoller(t *testing.T, src backfill.Source, b *broker.Broker, kv backfill.Store, holder string) *poller {
	t.Helper()
	p := &poller{done: make(chan struct{}), wake: make(chan struct{}, 1)}
	bp, err := backfill.New(backfill.Config{
		Source: src, Publisher: publish.New(b, nil), Store: kv,
		Filter:   `eventType eq "user.risk.detect" or eventType eq "user.risk.change"`,
		Interval: 20 * time.Millisecond, Lookback: time.Hour, PageSize: 100,
		MaxEventBytes: 256 << 10, PublishTimeout: 10 * time.Second, Holder: holder,
		Polled: func(n int, leader bool) {
			p.mu.Lock()
			p.reports = append(p.reports, report{n, leader})
			p.mu.Unlock()
			select {
			case p.wake <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		defer close(p.done)
		_ = bp.Run(ctx)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func bucket(t *testing.T, b *broker.Broker) *broker.KV {
	t.Helper()
	kv, err := b.KeyValue(t.Context(), broker.KVConfig{Bucket: broker.KVBackfill, History: 1, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// storedIDs are the Nats-Msg-Id of every message on remediation.events.itp, with counts.
func storedIDs(t *testing.T, b *broker.Broker) map[string]int {
	t.Helper()
	ids := map[string]int{}
	err := b.Scan(t.Context(), broker.StreamEvents, "remediation.events.itp", 1, time.Time{}, func(m *broker.StoredMessage) bool {
		ids[m.Header[broker.HeaderMsgID][0]]++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func eventCount(t *testing.T, b *broker.Broker) uint64 {
	t.Helper()
	si, err := b.StreamInfo(t.Context(), broker.StreamEvents, false)
	if err != nil {
		t.Fatal(err)
	}
	return si.Messages
}

// The poller pages through the System Log (three pages of 100), publishes each risk event
// once with its uuid as Nats-Msg-Id and leaves other event types out; its cursor survives
// a restart, so a new poller publishes only what was logged since.
func TestBackfillPublishesEachRiskEventOnceAndResumes(t *testing.T) {
	t.Parallel()
	sim, oc := org(t)
	b := brokertest.Connect(t)
	kv := bucket(t, b)
	start := time.Now().Add(-30 * time.Minute)
	if err := sim.AddLogEvents(append(logEvents("risk", "user.risk.detect", start, 250), logEvents("other", "user.session.start", start, 20)...)...); err != nil {
		t.Fatal(err)
	}
	old := logEvents("old", "user.risk.detect", time.Now().Add(-2*time.Hour), 3) // before the lookback
	if err := sim.AddLogEvents(old...); err != nil {
		t.Fatal(err)
	}

	p := startPoller(t, oc, b, kv, "replica-a")
	testwait.Until(t, "250 events stored", func() bool { return eventCount(t, b) == 250 }, testwait.Timeout(30*time.Second))
	p.waitPoll(t, "a caught-up poll", func(n int, leader bool) bool { return leader && n == 0 })
	p.stop(t)
	ids := storedIDs(t, b)
	for i := range 250 {
		if id := fmt.Sprintf("risk-%04d", i); ids[id] != 1 {
			t.Errorf("%s stored %d times, want once", id, ids[id])
		}
	}
	if len(ids) != 250 {
		t.Errorf("%d distinct ids stored, want 250 (no session events, nothing before the lookback)", len(ids))
	}
	raw, _, err := kv.Get(t.Context(), backfill.CursorKey)
	if err != nil {
		t.Fatal(err)
	}
	var c backfill.Cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Next == "" || !c.Published.Equal(start.Add(249*time.Second).Truncate(time.Nanosecond).UTC()) && c.Published.Before(start.Add(249*time.Second)) {
		t.Errorf("cursor %s (%v), want the next link and the last event's time", raw, err)
	}

	// A restart: only the new events.
	if err := sim.AddLogEvents(logEvents("later", "user.risk.change", time.Now().Add(-time.Minute), 5)...); err != nil {
		t.Fatal(err)
	}
	p2 := startPoller(t, oc, b, kv, "replica-b")
	testwait.Until(t, "255 events stored", func() bool { return eventCount(t, b) == 255 }, testwait.Timeout(30*time.Second))
	p2.waitPoll(t, "a caught-up poll", func(n int, leader bool) bool { return leader && n == 0 })
	if n := eventCount(t, b); n != 255 {
		t.Errorf("%d events stored after the restart, want 255", n)
	}
}

// countingSource counts the pages a poller asks for.
type countingSource struct {
	backfill.Source
	calls atomic.Int64
}

func (s *countingSource) LogPage(ctx context.Context, path string) ([]json.RawMessage, string, okta.RateLimit, error) {
	s.calls.Add(1)
	return s.Source.LogPage(ctx, path)
}

// Two replicas: one polls, the other waits; when the first stops, it hands the lease back and
// the second takes over from the shared cursor.
func TestBackfillLeaseLetsOneReplicaPoll(t *testing.T) {
	t.Parallel()
	sim, oc := org(t)
	b := brokertest.Connect(t)
	kv := bucket(t, b)
	if err := sim.AddLogEvents(logEvents("risk", "user.risk.detect", time.Now().Add(-10*time.Minute), 10)...); err != nil {
		t.Fatal(err)
	}
	srcA, srcB := &countingSource{Source: oc}, &countingSource{Source: oc}
	a := startPoller(t, srcA, b, kv, "replica-a")
	a.waitPoll(t, "replica a polls", func(_ int, leader bool) bool { return leader })
	bp := startPoller(t, srcB, b, kv, "replica-b")
	for range 3 {
		bp.waitPoll(t, "replica b waits", func(_ int, leader bool) bool { return !leader })
	}
	if n := srcB.calls.Load(); n != 0 {
		t.Errorf("replica b read %d pages while a held the lease", n)
	}
	a.stop(t)
	if err := sim.AddLogEvents(logEvents("after", "user.risk.detect", time.Now().Add(-time.Minute), 3)...); err != nil {
		t.Fatal(err)
	}
	bp.waitPoll(t, "replica b takes over", func(_ int, leader bool) bool { return leader })
	testwait.Until(t, "13 events stored", func() bool { return eventCount(t, b) == 13 }, testwait.Timeout(30*time.Second))
	if ids := storedIDs(t, b); len(ids) != 13 {
		t.Errorf("%d distinct events, want 13", len(ids))
	}
}

// rateLimitedSource answers full pages with the window used up, resetting a second later.
type rateLimitedSource struct {
	mu    sync.Mutex
	calls []time.Time
}

func (s *rateLimitedSource) LogPage(_ context.Context, path string) ([]json.RawMessage, string, okta.RateLimit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.calls = append(s.calls, now)
	page := logEvents(fmt.Sprintf("p%d", len(s.calls)), "user.risk.detect", now.Add(-time.Hour), 100)
	// Date = now, Reset = now+1s: the poller must not ask again before the reset.
	return page, "/api/v1/logs?after=" + fmt.Sprint(len(s.calls)), okta.RateLimit{Limit: 120, Remaining: 0, Reset: now.Add(time.Second), Date: now}, nil
}

func (s *rateLimitedSource) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.calls...)
}

func TestBackfillWaitsForTheRateLimitReset(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	src := &rateLimitedSource{}
	startPoller(t, src, b, bucket(t, b), "replica-a")
	testwait.Until(t, "three pages", func() bool { return len(src.times()) >= 3 }, testwait.Timeout(30*time.Second))
	calls := src.times()
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < time.Second {
			t.Errorf("page %d asked %s after the one that used the window up; want the reset waited for", i+1, gap)
		}
	}
}

// throttledSource answers 429 (Okta's E0000047) with the window resetting a second later.
type throttledSource struct {
	rateLimitedSource
}

func (s *throttledSource) LogPage(_ context.Context, _ string) ([]json.RawMessage, string, okta.RateLimit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.calls = append(s.calls, now)
	rl := okta.RateLimit{Limit: 120, Remaining: 0, Reset: now.Add(time.Second), Date: now}
	return nil, "", rl, &okta.Error{Op: "GET /api/v1/logs", StatusCode: 429, Kind: okta.ErrRateLimited, Code: "E0000047", RateLimit: &rl}
}

func TestBackfillBacksOffOnTooManyRequests(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	src := &throttledSource{}
	startPoller(t, src, b, bucket(t, b), "replica-a")
	testwait.Until(t, "two requests", func() bool { return len(src.times()) >= 2 }, testwait.Timeout(30*time.Second))
	calls := src.times()
	if gap := calls[1].Sub(calls[0]); gap < time.Second {
		t.Errorf("asked again %s after a 429; want the reset waited for", gap)
	}
}
