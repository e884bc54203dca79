package okta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Transport is an [http.RoundTripper] that sends a Bearer token for one scope set and, when
// the API answers 401, fetches a fresh token and sends the request once more. A second 401
// is returned to the caller as is. Requests whose body cannot be replayed (no GetBody) are
// not retried.
type Transport struct {
	// Source supplies the tokens. Required.
	Source *TokenSource
	// Base sends the requests. Default: the Client's own HTTP transport.
	Base http.RoundTripper
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = t.Source.c.hc.Transport
	}
	send := func(r *http.Request) (*http.Response, string, error) {
		tok, err := t.Source.AccessToken(r.Context())
		if err != nil {
			if r.Body != nil {
				_ = r.Body.Close()
			}
			return nil, "", err
		}
		r2 := r.Clone(r.Context())
		r2.Header.Set("Authorization", "Bearer "+tok)
		resp, err := base.RoundTrip(r2)
		return resp, tok, err
	}
	resp, tok, err := send(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil
	}
	// The token may have been revoked or the app's grants changed: one fresh token, once.
	t.Source.Invalidate(tok)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("okta: replaying the request body: %w", err)
		}
		retry.Body = body
	}
	resp, _, err = send(retry)
	return resp, err
}

// HTTPClient returns an HTTP client for the management API with the given scopes: Bearer
// tokens from the cache, one refresh on a 401. It has the Client's HTTP settings.
func (c *Client) HTTPClient(scopes ...string) *http.Client {
	hc := *c.hc
	hc.Transport = &Transport{Source: c.TokenSource(scopes...), Base: c.hc.Transport}
	return &hc
}

// send makes one request of the management API as the app (a Bearer token of scopes), with
// in as its JSON body when not nil. A failure to get an answer is an [*Error]; any answer is
// returned for the caller to read and close.
func (c *Client) send(ctx context.Context, op, method, target string, in any, scopes []string) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, &Error{Op: op, Kind: ErrRequest, Err: err}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, &Error{Op: op, Kind: ErrRequest, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTPClient(scopes...).Do(req)
	if err != nil {
		var oe *Error
		if errors.As(err, &oe) {
			return nil, oe
		}
		return nil, &Error{Op: op, Kind: ErrUnavailable, Err: stripURL(err)}
	}
	return resp, nil
}

// Do calls the management API: method on path (such as "/api/v1/users/00u1/groups") of the
// org, with a JSON body when in is not nil, decoding a 2xx JSON answer into out when out is
// not nil. Any other answer is an [*Error] carrying Okta's error object. The response
// headers are returned (for X-Rate-Limit-* and Link) when a response came.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, scopes ...string) (http.Header, error) {
	op := method + " " + pathOnly(path)
	target := path
	if !strings.HasPrefix(path, "https://") && !strings.HasPrefix(path, "http://") {
		target = c.org.String() + path
	} else if !strings.HasPrefix(path, c.org.String()+"/") {
		// A Link header pointing elsewhere must not receive our token.
		return nil, &Error{Op: op, Kind: ErrRequest, Hint: "refusing to send the org's token to another host"}
	}
	resp, err := c.send(ctx, op, method, target, in, scopes)
	if err != nil {
		return nil, err
	}
	if err := ResponseError(op, resp); err != nil {
		return resp.Header, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
			return resp.Header, &Error{Op: op, StatusCode: resp.StatusCode, Kind: ErrRequest, Err: fmt.Errorf("decoding the answer: %w", err)}
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return resp.Header, nil
}

// pathOnly drops the scheme, host and query from a URL or path, for error messages.
func pathOnly(p string) string {
	if i := strings.Index(p, "://"); i >= 0 {
		if j := strings.Index(p[i+3:], "/"); j >= 0 {
			p = p[i+3+j:]
		}
	}
	p, _, _ = strings.Cut(p, "?")
	return p
}
