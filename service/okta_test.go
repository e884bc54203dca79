package service_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

const (
	testClientID = "0oa-remediator-test"
	testKeyID    = "kid-remediator-test"
)

// writeOktaKey generates an EC P-256 private key (PKCS #8 PEM) into dir and returns its path
// and its PEM, so that a test can check the key never leaks.
func writeOktaKey(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	path := filepath.Join(dir, "okta-key.pem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// useOAuth2 configures the okta block for orgURL with the key at keyFile and switches the
// built-in flow suspend-okta-account (which the seed event's route runs) to auth: oauth2.
func useOAuth2(cfg *config.Config, orgURL, keyFile string) {
	cfg.Okta = config.OktaConfig{OrgURL: orgURL, ClientID: testClientID, KeyID: testKeyID, PrivateKey: config.Secret{File: keyFile}}
	f, _ := cfg.Flow("suspend-okta-account")
	f.Auth, f.ClientToken = config.FlowAuthOAuth2, config.Secret{}
}

// publishTitled publishes the seed ISPM issue with eventID and title.
func publishTitled(t *testing.T, pub *publish.Publisher, eventID, title string) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(readSeed(t), &doc); err != nil {
		t.Fatal(err)
	}
	doc["eventId"], doc["issueTitle"] = eventID, title
	data, _ := json.Marshal(doc)
	if _, err := pub.Publish(context.Background(), data, publish.Options{Subject: "remediation.events.ispm"}); err != nil {
		t.Fatal(err)
	}
}

func deadLetters(t *testing.T, b *broker.Broker) []status.DeadLetter {
	t.Helper()
	return decoded[status.DeadLetter](t, b, broker.StreamDLQ, broker.SubjectsDLQ)
}

// TestOAuth2FlowThroughTheService is issue 10's acceptance for flows over OAuth, end to end:
// the service calls a flow secured with OAuth 2.0 on a simulated org over real HTTP, with the
// private_key_jwt app of its okta block. A token is fetched once and reused; a revoked token
// costs one refresh; and when the fresh token is refused too (the app was also unassigned from
// the flow), the event ends permanent_failure after exactly one refresh, its status and dead
// letter carrying Okta's error code.
func TestOAuth2FlowThroughTheService(t *testing.T) {
	dir := t.TempDir()
	keyFile, _ := writeOktaKey(t, dir)
	cfg := servicetest.Config(t, filepath.Join(dir, "nats"))
	cfg.Worker.MaxAttempts = 3

	// The org is a simulator of its own, so that the test can revoke tokens and unassign the
	// app; it registers the app from the same configuration the service reads.
	const alias = "oauth-suspend"
	useOAuth2(cfg, "http://127.0.0.1:1", keyFile) // the org's address is set below
	key, err := cfg.OktaKey(os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	org, err := service.SimulatorOrg(cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := flowsim.New(flowsim.Config{Flows: []flowsim.Flow{{Alias: alias, OAuth: true}}, Org: org})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	cfg.Okta.OrgURL = srv.URL
	f, _ := cfg.Flow("suspend-okta-account")
	f.URL = srv.URL + "/api/flo/" + alias + "/invoke"

	svc := servicetest.Start(t, cfg, nil)
	b := connect(t, svc)
	statuses := servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)
	pub := publish.New(b, nil)
	final := func(eventID string) status.Record {
		t.Helper()
		var rec status.Record
		testwait.Until(t, eventID+"'s final status", func() bool {
			var ok bool
			rec, ok = terminal(statusRecords(t, b), eventID)
			return ok
		}, testwait.WakeOn(statuses))
		return rec
	}

	// Two events, one token.
	for _, id := range []string{"oauth-1", "oauth-2"} {
		publishTitled(t, pub, id, "Unused Admin Account")
		if r := final(id); r.Outcome != status.Succeeded {
			t.Fatalf("%s: %s %s (%s), want succeeded", id, r.Outcome, r.Reason, r.Error)
		}
	}
	if st := sim.OrgStats(); st.TokensIssued != 1 {
		t.Errorf("tokens issued for two invocations: %d, want 1 (cached and reused)", st.TokensIssued)
	}

	// Revoked: one 401, one refresh, success.
	if n := sim.RevokeTokens(testClientID); n != 1 {
		t.Fatalf("revoked %d tokens, want 1", n)
	}
	publishTitled(t, pub, "oauth-revoked", "Unused Admin Account")
	if r := final("oauth-revoked"); r.Outcome != status.Succeeded {
		t.Fatalf("after a revocation: %s %s (%s), want succeeded after one refresh", r.Outcome, r.Reason, r.Error)
	}
	if st, fs := sim.OrgStats(), sim.Stats(alias); st.TokensIssued != 2 || fs.Unauthorized != 1 {
		t.Errorf("after a revocation: %d tokens issued, %d refused calls; want 2 and 1", st.TokensIssued, fs.Unauthorized)
	}

	// Revoked, and the fresh token is refused too: one refresh, then permanent_failure.
	if err := sim.SetFlowClients(alias, []string{"0oa-some-other-app"}); err != nil {
		t.Fatal(err)
	}
	sim.RevokeTokens(testClientID)
	publishTitled(t, pub, "oauth-refused", "Unused Admin Account")
	r := final("oauth-refused")
	if r.Outcome != status.Failed || r.Reason != status.ReasonPermanentFailure || r.HTTPStatus != 401 {
		t.Fatalf("refused: %s %s HTTP %d (%s), want failed permanent_failure 401", r.Outcome, r.Reason, r.HTTPStatus, r.Error)
	}
	if r.Okta == nil || r.Okta.Code != "E0000011" || r.Okta.Summary != "Invalid token provided" {
		t.Errorf("status okta = %+v, want Okta's E0000011 error object", r.Okta)
	}
	if st, fs := sim.OrgStats(), sim.Stats(alias); st.TokensIssued != 3 || fs.Unauthorized != 3 {
		t.Errorf("refused: %d tokens issued, %d refused calls in all; want 3 and 3 (exactly one refresh, no retry)", st.TokensIssued, fs.Unauthorized)
	}
	var found bool
	for _, dl := range deadLetters(t, b) {
		if dl.EventID != "oauth-refused" {
			continue
		}
		found = true
		if dl.Reason != status.ReasonPermanentFailure || dl.Okta == nil || dl.Okta.Code != "E0000011" {
			t.Errorf("dead letter: reason %s, okta %+v; want permanent_failure with Okta's E0000011", dl.Reason, dl.Okta)
		}
	}
	if !found {
		t.Error("no dead letter for the refused event")
	}
}

// wireSecrets records every secret that crossed the wire to an org: the client assertions
// sent to its token endpoint, the access tokens it issued and the Bearer tokens sent to it.
type wireSecrets struct {
	mu   sync.Mutex
	seen map[string]string // secret → what it is
}

func (w *wireSecrets) add(what, v string) {
	if v == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[string]string{}
	}
	w.seen[v] = what
}

func (w *wireSecrets) all() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.seen)
}

// recordingOrg serves sim over real HTTP, recording the secrets that cross the wire.
func recordingOrg(t *testing.T, sim *flowsim.Simulator) (*httptest.Server, *wireSecrets) {
	t.Helper()
	secrets := &wireSecrets{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok {
			secrets.add("access token", tok)
		}
		if r.URL.Path == "/oauth2/v1/token" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if form, err := url.ParseQuery(string(body)); err == nil {
				secrets.add("client assertion", form.Get("client_assertion"))
			}
			rec := httptest.NewRecorder()
			sim.ServeHTTP(rec, r)
			var answer struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.Unmarshal(rec.Body.Bytes(), &answer)
			secrets.add("access token", answer.AccessToken)
			maps.Copy(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	return srv, secrets
}

// keySecrets are the forms in which key material could leak: each line of the PEM's body
// (long enough to be unique) and the JWK's private member.
func keySecrets(t *testing.T, pemData []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for l := range strings.Lines(string(pemData)) {
		if l = strings.TrimSpace(l); len(l) >= 32 && !strings.HasPrefix(l, "-----") {
			out[l] = "private key (PEM)"
		}
	}
	block, _ := pem.Decode(pemData)
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	d := priv.(*ecdsa.PrivateKey).D.FillBytes(make([]byte, 32))
	out[base64.RawURLEncoding.EncodeToString(d)] = "private key (JWK d)"
	return out
}

// TestOAuth2Example runs examples/config-oauth2.yaml, the dev path to OAuth 2.0: the built-in
// simulator plays the org for the configured app, with the key a test (or `remediator okta
// keygen`) generated, and the seed event's flow runs with a Bearer token.
func TestOAuth2Example(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Load("../examples/config-oauth2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Okta.PrivateKey.File, _ = writeOktaKey(t, dir)
	cfg.NATS.Embedded.Port = -1
	cfg.NATS.Embedded.StoreDir = filepath.Join(dir, "nats")
	cfg.HTTP.Addr = "127.0.0.1:0"
	svc := servicetest.Start(t, cfg, nil)
	if want := "http://" + cfg.Simulator.Addr; cfg.Okta.OrgURL != want {
		t.Fatalf("okta.orgUrl = %s, want the simulator at %s", cfg.Okta.OrgURL, want)
	}
	b := connect(t, svc)
	if _, err := publish.New(b, nil).Publish(context.Background(), readSeed(t), publish.Options{}); err != nil {
		t.Fatal(err)
	}
	var rec status.Record
	testwait.Until(t, "the seed event's final status", func() bool {
		var ok bool
		rec, ok = terminal(statusRecords(t, b), seedID)
		return ok
	}, testwait.WakeOn(servicetest.StreamWake(t, b, broker.StreamStatus, broker.SubjectsStatus)))
	if rec.Outcome != status.Succeeded || rec.Flow != "suspend-okta-account" {
		t.Fatalf("seed event: %s %s (%s), want suspend-okta-account succeeded", rec.Flow, rec.Outcome, rec.Error)
	}
	// The simulator secured the flow with OAuth 2.0: it issued the one token that ran it.
	code, body := get(t, svc.Addrs.Simulator+"/_sim/org/stats")
	var st flowsim.OrgStats
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.TokensIssued != 1 || st.TokensRefused != 0 {
		t.Errorf("simulator org stats: %d %s; want one token issued, none refused", code, body)
	}
	code, body = get(t, svc.Addrs.Simulator+"/_sim/flows/suspend-okta-account/invocations")
	if code != 200 || !strings.Contains(body, `"Authorization":["REDACTED"]`) {
		t.Errorf("the flow's invocation should show a (redacted) Bearer token: %d %s", code, body)
	}
}

// TestRunRefusesAMissingOktaKey: the app's private key is a secret checked at start, like a
// flow's client token: a missing or unusable key stops `run` before anything is touched,
// naming the key path and never quoting the key.
func TestRunRefusesAMissingOktaKey(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, content, want string
	}{
		{"missing", "", "okta.privateKey.file: file " + filepath.Join(dir, "missing.pem") + " does not exist"},
		{"not a key", "hunter2-not-a-key", "okta.privateKey.file: private key file " + filepath.Join(dir, "not a key.pem") + ": private key is neither PEM"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keyFile := filepath.Join(dir, tt.name+".pem")
			if tt.content != "" {
				if err := os.WriteFile(keyFile, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			storeDir := filepath.Join(dir, "nats-"+tt.name)
			cfg := servicetest.Config(t, storeDir)
			useOAuth2(cfg, "https://example.okta.com", keyFile)
			err := runUntilStarted(t, cfg, service.Options{LookupEnv: func(string) (string, bool) { return "t", true }, HTTPListener: bind(t), SimulatorListener: bind(t)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v; want an error saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error quotes the file's content: %v", err)
			}
			if _, err := os.Stat(storeDir); !os.IsNotExist(err) {
				t.Errorf("the refused start touched the data directory: %v", err)
			}
		})
	}
}
