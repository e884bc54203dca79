package flow_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/remediator/remediator/flow"
)

// fakeBearer hands out tok-1, tok-2, … and counts fetches; Invalidate drops only the
// current token.
type fakeBearer struct {
	mu      sync.Mutex
	current string
	fetches int
}

func (f *fakeBearer) AccessToken(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == "" {
		f.fetches++
		f.current = "tok-" + string(rune('0'+f.fetches))
	}
	return f.current, nil
}

func (f *fakeBearer) Invalidate(tok string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == tok {
		f.current = ""
	}
}

// bearerServer accepts only the tokens in accept and records the Authorization headers.
func bearerServer(t *testing.T, accept ...string) (*httptest.Server, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		for _, a := range accept {
			if r.Header.Get("Authorization") == "Bearer "+a {
				w.Write([]byte(`{"ok":true}`))
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errorCode":"E0000011","errorSummary":"Invalid token provided","errorLink":"E0000011","errorId":"oae123","errorCauses":[]}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestOAuth2RefreshesOnceOn401(t *testing.T) {
	t.Parallel()
	c := flow.NewClient(flow.ClientConfig{})
	t.Cleanup(c.CloseIdleConnections)

	srv, seen := bearerServer(t, "tok-2")
	src := &fakeBearer{}
	ep := flow.Endpoint{Name: "f", URL: srv.URL, Auth: flow.OAuth2{Source: src}}
	res, err := c.Invoke(context.Background(), ep, flow.Request{IdempotencyKey: "k"})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("Invoke() = %v, %v; want 200 after one refresh", res, err)
	}
	if want := []string{"Bearer tok-1", "Bearer tok-2"}; strings.Join(*seen, ",") != strings.Join(want, ",") {
		t.Errorf("Authorization headers = %q, want %q", *seen, want)
	}

	// Refused again after the refresh: permanent, Okta's error object kept, token not in it.
	srv2, seen2 := bearerServer(t)
	ep.URL = srv2.URL
	_, err = c.Invoke(context.Background(), ep, flow.Request{IdempotencyKey: "k"})
	var fe *flow.Error
	if !errors.As(err, &fe) || fe.Class != flow.ClassPermanent || fe.StatusCode != 401 {
		t.Fatalf("Invoke() error = %v, want a permanent 401", err)
	}
	if fe.Okta == nil || fe.Okta.Code != "E0000011" || fe.Okta.Summary != "Invalid token provided" || fe.Okta.ID != "oae123" {
		t.Errorf("Okta error = %+v", fe.Okta)
	}
	if len(*seen2) != 2 {
		t.Errorf("sent %d requests, want 2 (one refresh, no more)", len(*seen2))
	}
	if strings.Contains(err.Error(), "tok-") {
		t.Errorf("error %q shows a token", err)
	}
}

func TestClientTokenIsNotRetriedOn401(t *testing.T) {
	t.Parallel()
	c := flow.NewClient(flow.ClientConfig{})
	t.Cleanup(c.CloseIdleConnections)
	srv, seen := bearerServer(t)
	ep := flow.Endpoint{Name: "f", URL: srv.URL, Auth: flow.ClientToken{Source: flow.StaticToken("ct")}}
	if _, err := c.Invoke(context.Background(), ep, flow.Request{}); err == nil {
		t.Fatal("Invoke() succeeded")
	}
	if len(*seen) != 1 {
		t.Errorf("sent %d requests, want 1: a client token cannot be refreshed", len(*seen))
	}
}

func TestOAuth2Authorize(t *testing.T) {
	t.Parallel()
	req, _ := http.NewRequest(http.MethodPost, "https://example.com/", nil)
	if err := (flow.OAuth2{}).Authorize(context.Background(), req); err == nil {
		t.Error("OAuth2{} without a source authorized")
	}
	if err := (flow.OAuth2{Source: &fakeBearer{}}).Authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer tok-1" {
		t.Errorf("Authorization = %q", got)
	}
}
