package okta_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/okta"
)

const (
	clientID  = "0oa1remediatorsim"
	flowAlias = "0123456789abcdef0123456789abcdef"
	kid       = "kid-main"
)

var (
	rsaOnce sync.Once
	rsaKeys [2]*rsa.PrivateKey
)

// testRSA returns one of two RSA keys generated once per test binary (generation is slow
// under -race).
func testRSA(t *testing.T, i int) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

func pemPKCS8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func publicJWK(k any, id string) jose.JSONWebKey {
	switch p := k.(type) {
	case *rsa.PrivateKey:
		return jose.JSONWebKey{Key: &p.PublicKey, KeyID: id, Algorithm: "RS256", Use: "sig"}
	case *ecdsa.PrivateKey:
		return jose.JSONWebKey{Key: &p.PublicKey, KeyID: id, Algorithm: "ES256", Use: "sig"}
	}
	panic("unknown key type")
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fakeClock is a settable clock shared by the simulator and the client.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// org is a simulated org over real HTTP with one OAuth flow and one app.
type org struct {
	sim   *flowsim.Simulator
	srv   *httptest.Server
	clock *fakeClock
	// assertions records every client_assertion sent to the token endpoint.
	mu         sync.Mutex
	assertions []string
}

type orgOption func(*flowsim.Config)

func startOrg(t *testing.T, registered jose.JSONWebKey, opts ...orgOption) *org {
	t.Helper()
	o := &org{clock: newClock()}
	cfg := flowsim.Config{
		Seed: 1,
		Now:  o.clock.Now,
		Flows: []flowsim.Flow{
			{Alias: flowAlias, Name: "suspend-user", OAuth: true, RateLimit: math.Inf(1)},
		},
		Org: &flowsim.OrgConfig{
			Clients: []flowsim.OAuthClient{{
				ID:     clientID,
				Keys:   []jose.JSONWebKey{registered},
				Scopes: []string{okta.ScopeWorkflowsInvoke, okta.ScopeUsersRead, okta.ScopeUsersManage, okta.ScopeUserRiskManage, okta.ScopeLogsRead},
			}},
			Groups: []flowsim.Group{{ID: "00g-admins", Name: "Admins"}, {ID: "00g-all", Name: "Everyone"}},
			Users: []flowsim.User{
				{ID: "00u-alice", Login: "alice@example.com", Groups: []string{"00g-admins", "00g-all"}, Sessions: 2},
				{ID: "00u-bob", Login: "bob@example.com", Groups: []string{"00g-all"}},
			},
		},
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	sim, err := flowsim.New(cfg)
	if err != nil {
		t.Fatalf("flowsim.New() error = %v", err)
	}
	o.sim = sim
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == okta.TokenPath {
			body, _ := io.ReadAll(r.Body)
			if v, err := url.ParseQuery(string(body)); err == nil {
				o.mu.Lock()
				o.assertions = append(o.assertions, v.Get("client_assertion"))
				o.mu.Unlock()
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(o.srv.Close)
	t.Cleanup(sim.Close)
	return o
}

func (o *org) recordedAssertions() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.assertions...)
}

func (o *org) client(t *testing.T, key *okta.Key, logger *slog.Logger) *okta.Client {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := okta.New(okta.Config{
		OrgURL:     o.srv.URL,
		ClientID:   clientID,
		Key:        key,
		HTTPClient: hc,
		Logger:     logger,
		Now:        o.clock.Now,
	})
	if err != nil {
		t.Fatalf("okta.New() error = %v", err)
	}
	return c
}

func (o *org) endpoint(c *okta.Client) flow.Endpoint {
	return flow.Endpoint{
		Name: "suspend-user",
		URL:  o.srv.URL + "/api/flo/" + flowAlias + "/invoke",
		Auth: flow.OAuth2{Source: c.TokenSource(okta.ScopeWorkflowsInvoke)},
	}
}

func mustKey(t *testing.T, data []byte, id string) *okta.Key {
	t.Helper()
	k, err := okta.ParseKey(data, id)
	if err != nil {
		t.Fatalf("ParseKey() error = %v", err)
	}
	return k
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
