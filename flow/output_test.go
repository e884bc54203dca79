package flow_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/remediator/remediator/flow"
)

// TestInvokeKeepsOutput: the flow's output is kept up to ClientConfig.MaxResultBody and says
// when it was cut; the response headers are kept (the execution id can be found whatever its
// name) with secret ones and the request's credentials redacted, in the body too.
func TestInvokeKeepsOutput(t *testing.T) {
	t.Parallel()
	const token = "client-token-s3cr3t-value"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Flow-Run", "exec-42")
		w.Header().Set("Set-Cookie", "JSESSIONID=abc123; Path=/")
		w.Header().Set("X-Session-Token", "sess-xyz")
		w.Header().Set("X-Echo", "got "+r.Header.Get(flow.HeaderClientToken))
		_, _ = io.WriteString(w, `{"echo":"`+r.Header.Get(flow.HeaderClientToken)+`","pad":"`+strings.Repeat("x", 200)+`"}`)
	})
	c := flow.NewClient(flow.ClientConfig{MaxResultBody: 100})
	t.Cleanup(c.CloseIdleConnections)
	ep := endpoint(srv)
	ep.Auth = flow.ClientToken{Source: flow.StaticToken(token)}
	res, err := c.Invoke(context.Background(), ep, flow.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Body) > 100 || !res.BodyTruncated || !strings.HasPrefix(string(res.Body), `{"echo":"[REDACTED]"`) {
		t.Errorf("Body = %q (truncated %v); want at most 100 bytes, cut, the token redacted", res.Body, res.BodyTruncated)
	}
	h := res.Header
	if h.Get("X-Flow-Run") != "exec-42" || h.Get("Set-Cookie") != "[REDACTED]" || h.Get("X-Session-Token") != "[REDACTED]" || h.Get("X-Echo") != "got [REDACTED]" {
		t.Errorf("Header = %v; want X-Flow-Run kept, Set-Cookie, X-Session-Token and the echoed token redacted", h)
	}
}

// TestInvokeRefusesAnAction: an endpoint naming a native action is not a Workflows flow; the
// Workflows client refuses it without sending anything.
func TestInvokeRefusesAnAction(t *testing.T) {
	t.Parallel()
	_, err := newClient(t).Invoke(context.Background(), flow.Endpoint{Name: "okta-suspend", Action: "suspend"}, flow.Request{})
	fe := asFlowError(t, err)
	if fe.Class != flow.ClassPermanent || !strings.Contains(err.Error(), `"suspend" is an Okta native action, not a Workflows flow`) {
		t.Errorf("Invoke(action endpoint) = %v; want a permanent invalid-endpoint error", err)
	}
}
