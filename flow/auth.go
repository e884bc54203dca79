package flow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// HeaderClientToken is the request header that carries a flow's client token. Okta also
// accepts the token as the clientToken query parameter.
const HeaderClientToken = "X-Api-Client-Token"

// Authorizer adds credentials to an invoke request: [ClientToken] (the flow's client token)
// or [OAuth2] (a Bearer token of an API Services app, scope okta.workflows.invoke.manage).
//
// Authorize is called once per attempt, just before the request is sent. An error it returns
// becomes a retryable [*Error] (nothing is sent), unless ctx has ended.
type Authorizer interface {
	Authorize(ctx context.Context, req *http.Request) error
}

// TokenSource supplies a client token. Implementations must be safe for concurrent use and
// must never put the token in an error.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// ClientToken sends the flow's client token in the x-api-client-token header. The token
// comes from Source.
type ClientToken struct {
	Source TokenSource
}

var _ Authorizer = ClientToken{}

// Authorize sets the x-api-client-token header.
func (a ClientToken) Authorize(ctx context.Context, req *http.Request) error {
	if a.Source == nil {
		return errors.New("client token: no token source configured")
	}
	tok, err := a.Source.Token(ctx)
	if err != nil {
		return fmt.Errorf("client token: %w", err)
	}
	req.Header.Set(HeaderClientToken, tok)
	return nil
}

// BearerSource supplies OAuth 2.0 access tokens. *okta.TokenSource implements it (package
// flow does not import okta). Implementations must be safe for concurrent use, cache their
// tokens, and never put a token in an error.
type BearerSource interface {
	// AccessToken returns a current access token.
	AccessToken(ctx context.Context) (string, error)
	// Invalidate drops token from the cache if it is still the cached one, so that the
	// next AccessToken fetches a new one.
	Invalidate(token string)
}

// OAuth2 sends "Authorization: Bearer <token>" with a token from Source, for a flow secured
// with OAuth 2.0 (the token needs scope okta.workflows.invoke.manage from the org
// authorization server). When the flow answers 401, [Client.Invoke] asks it to
// [OAuth2.Refresh] and sends the request once more with a fresh token: a 401 means the flow
// did not run, so resending is safe. A second 401 is a permanent failure.
type OAuth2 struct {
	Source BearerSource
}

var (
	_ Authorizer = OAuth2{}
	_ Refresher  = OAuth2{}
)

// Authorize sets the Authorization header.
func (a OAuth2) Authorize(ctx context.Context, req *http.Request) error {
	if a.Source == nil {
		return errors.New("oauth2: no token source configured")
	}
	tok, err := a.Source.AccessToken(ctx)
	if err != nil {
		return fmt.Errorf("oauth2: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// Refresh invalidates the token the rejected request carried and reports true.
func (a OAuth2) Refresh(rejected *http.Request) bool {
	if a.Source == nil {
		return false
	}
	scheme, tok, ok := strings.Cut(rejected.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	a.Source.Invalidate(tok)
	return true
}

// Refresher is an [Authorizer] whose credentials can be renewed after a 401. Refresh is
// given the rejected request and reports whether sending it again with new credentials
// may succeed; [Client.Invoke] then authorizes and sends it once more.
type Refresher interface {
	Refresh(rejected *http.Request) bool
}

// TokenFromEnv reads the token from the environment variable name on every call. Surrounding
// whitespace is trimmed. An unset or empty variable is the error
// "environment variable NAME is not set".
func TokenFromEnv(name string) TokenSource { return envToken{name: name} }

type envToken struct{ name string }

func (e envToken) Token(context.Context) (string, error) {
	tok := strings.TrimSpace(os.Getenv(e.name))
	if tok == "" {
		return "", fmt.Errorf("environment variable %s is not set", e.name)
	}
	return tok, nil
}

// TokenFromFile reads the token from the file at path, trimming surrounding whitespace. The
// file is read again whenever its modification time or size changes, so a rotated
// Kubernetes secret (an atomic symlink swap under the mount) is picked up without a restart.
// A missing, unreadable or empty file is an error naming the path, never the contents.
func TokenFromFile(path string) TokenSource { return &fileToken{path: path} }

type fileToken struct {
	path string

	mu    sync.Mutex
	tok   string
	mtime time.Time
	size  int64
}

func (f *fileToken) Token(context.Context) (string, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", f.path, unwrapPathError(err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tok != "" && fi.ModTime().Equal(f.mtime) && fi.Size() == f.size {
		return f.tok, nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", f.path, unwrapPathError(err))
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", f.path)
	}
	f.tok, f.mtime, f.size = tok, fi.ModTime(), fi.Size()
	return tok, nil
}

// unwrapPathError drops the *fs.PathError layer, whose message repeats the path.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// StaticToken returns tok on every call. It is meant for tests and the embedded simulator.
func StaticToken(tok string) TokenSource { return staticToken(tok) }

type staticToken string

func (s staticToken) Token(context.Context) (string, error) {
	if s == "" {
		return "", errors.New("static token is empty")
	}
	return string(s), nil
}
