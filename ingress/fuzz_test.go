package ingress_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/ingress"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/schema"
)

// memPublisher stores in memory, keyed by message id, as JetStream's de-duplication does.
type memPublisher struct {
	mu   sync.Mutex
	msgs map[string][]byte
}

func (m *memPublisher) Publish(_ context.Context, data []byte, opts publish.Options) (publish.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, dup := m.msgs[opts.MsgID]
	if !dup {
		m.msgs[opts.MsgID] = bytes.Clone(data)
	}
	return publish.Result{Subject: opts.Subject, Duplicate: dup}, nil
}

// FuzzOktaHook: whatever body an authenticated sender posts, the hook answers 204, 400 or 413,
// never panics, and stores only risk events no larger than the limit.
func FuzzOktaHook(f *testing.F) {
	f.Add(delivery(logEvent("u1", "user.risk.detect", "HIGH"), logEvent("u2", "user.session.start", "LOW")))
	f.Add([]byte(`{"eventType":"com.okta.event_hook","data":{"events":[1,"x",null,{"eventType":"user.risk.change"}]}}`))
	f.Add([]byte(`{"eventType":"com.okta.event_hook","data":{"events":{}}}`))
	f.Add([]byte("{\"a\":1,\"a\":2}"))
	f.Add([]byte("\xff"))
	v, err := schema.New()
	if err != nil {
		f.Fatal(err)
	}
	pub := &memPublisher{msgs: map[string][]byte{}}
	h, err := ingress.New(ingress.Config{
		OktaSecrets: []string{oktaSecret}, OktaPrincipal: "okta", ISPMHeader: "X-API-Key", ISPMKeys: []string{ispmKey},
		ISPMPrincipal: "ispm", Tokens: []ingress.Token{{Value: apiToken, Principal: "t"}},
		MaxEventBytes: 4096, MaxHookBatchBytes: 16384, PublishTimeout: time.Second,
	}, ingress.Deps{Publisher: pub, Split: splitDelivery, CheckJSON: strictJSON, Validator: v, Decode: event.Decode})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, ingress.PathOktaHook, bytes.NewReader(body))
		req.Header.Set("Authorization", oktaSecret)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusNoContent, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		pub.mu.Lock()
		defer pub.mu.Unlock()
		for id, m := range pub.msgs {
			if len(m) > 4096 {
				t.Fatalf("stored %s of %d bytes, over the limit", id, len(m))
			}
		}
	})
}
