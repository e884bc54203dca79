package console_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/service/servicetest"
)

// fakeIdP is a minimal OpenID Connect provider: discovery, an authorize endpoint that signs
// the user in at once, a token endpoint that checks the code and its PKCE verifier, and JWKS.
type fakeIdP struct {
	srv   *httptest.Server
	key   *rsa.PrivateKey
	login string
	mu    sync.Mutex
	codes map[string]url.Values // code → the authorize request
}

func newFakeIdP(t *testing.T, login string) *fakeIdP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeIdP{key: key, login: login, codes: map[string]url.Values{}}
	mux := http.NewServeMux()
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": p.srv.URL, "authorization_endpoint": p.srv.URL + "/authorize",
			"token_endpoint": p.srv.URL + "/token", "jwks_uri": p.srv.URL + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code := "code-" + q.Get("state")[:8]
		p.mu.Lock()
		p.codes[code] = q
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		q, ok := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		claims, _ := json.Marshal(map[string]any{"iss": p.srv.URL, "sub": "00u1", "aud": q.Get("client_id"), "exp": time.Now().Add(time.Hour).Unix(),
			"iat": time.Now().Unix(), "nonce": q.Get("nonce"), "preferred_username": p.login, "groups": []string{"Operators"}})
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
		jws, _ := signer.Sign(claims)
		idToken, _ := jws.CompactSerialize()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "id_token": idToken})
	})
	return p
}

// Signing in with OIDC: the round trip ends in a session for the login the ID token names,
// whose resource sets decide what it may change; a callback whose state does not match is
// refused.
func TestConsoleOIDCSignIn(t *testing.T) {
	t.Parallel()
	idp := newFakeIdP(t, "jane.doe@example.com")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + "/ui/"
	cfg := servicetest.Config(t, t.TempDir())
	secretFile := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secretFile, []byte("oidc-client-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Console.OIDC = config.ConsoleOIDC{Issuer: idp.srv.URL, ClientID: "console-app", ClientSecret: config.Secret{File: secretFile}, RedirectURL: base + "auth/callback"}
	cfg.ResourceSets = append(cfg.ResourceSets, config.ResourceSet{Name: "operators", Flows: []string{flow}, Groups: []string{"Operators"}, Permissions: []string{"run"}})
	servicetest.StartWith(t, cfg, service.Options{HTTPListener: ln})

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: time.Minute}
	if r, err := browser.Get(base + "login"); err != nil || r.StatusCode != 200 {
		t.Fatalf("login page: %v %v", r, err)
	} else {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if !strings.Contains(string(b), `id="oidc"`) {
			t.Error("the sign-in page does not offer OIDC")
		}
	}
	r, err := browser.Get(base + "auth/login?next=/ui/brakes")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(r.Body)
	r.Body.Close()
	body := string(raw)
	if r.StatusCode != 200 || r.Request.URL.Path != "/ui/brakes" || !strings.Contains(body, "jane.doe@example.com") {
		t.Fatalf("after the OIDC round trip: %d at %s:\n%.500s", r.StatusCode, r.Request.URL, body)
	}
	// The groups claim grants run on the flow (through the group), and nothing else.
	if !strings.Contains(body, `data-flow="`+flow+`"`) || strings.Count(body, "you may not run this flow") != 4 {
		t.Errorf("brakes page for the OIDC user: want changes offered for %s only:\n%s", flow, body)
	}

	// A callback with a state that does not match the browser's is refused.
	r, err = browser.Get(base + "auth/callback?code=x&state=forged")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("forged state: %d, want 400", r.StatusCode)
	}
}
