package okta_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/okta"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	rsaKey := testRSA(t, 0)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ec := newECKey(t)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	for _, tc := range []struct {
		name    string
		data    []byte
		kid     string
		wantAlg string
		wantKid string
		wantErr string
	}{
		{"PKCS #8 RSA", pemPKCS8(t, rsaKey), "k", "RS256", "k", ""},
		{"PKCS #1 RSA", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), "k", "RS256", "k", ""},
		{"SEC 1 EC", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), "k", "ES256", "k", ""},
		{"P-384", pemPKCS8(t, ec384), "k", "ES384", "k", ""},
		{"JWK with kid", mustJSON(t, jose.JSONWebKey{Key: rsaKey, KeyID: "jk"}), "", "RS256", "jk", ""},
		{"JWK kid agrees", mustJSON(t, jose.JSONWebKey{Key: rsaKey, KeyID: "jk"}), "jk", "RS256", "jk", ""},
		{"JWK kid disagrees", mustJSON(t, jose.JSONWebKey{Key: rsaKey, KeyID: "jk"}), "other", "", "", `JWK says "jk"`},
		{"no kid", pemPKCS8(t, rsaKey), "", "", "", "no key id"},
		{"public JWK", mustJSON(t, jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "jk"}), "", "", "", "public key"},
		{"public PEM", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), "k", "", "", "needs the private key"},
		{"small RSA", pemPKCS8(t, small), "k", "", "", "at least 2048"},
		{"Ed25519", pemPKCS8(t, edKey), "k", "", "", "RSA or EC"},
		{"garbage", []byte("hunter2"), "k", "", "", "neither PEM"},
		{"empty", []byte("  \n"), "k", "", "", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := okta.ParseKey(tc.data, tc.kid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseKey() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Algorithm() != tc.wantAlg || k.ID() != tc.wantKid {
				t.Errorf("key = %v, want alg %s kid %s", k, tc.wantAlg, tc.wantKid)
			}
			pub, err := k.PublicJWK()
			if err != nil || strings.Contains(string(pub), `"d"`) {
				t.Errorf("PublicJWK() = %s, %v; want a public key", pub, err)
			}
		})
	}
}

func TestLoadKeyFileAndEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pemPKCS8(t, newECKey(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := okta.LoadKeyFile(path, "f"); err != nil || k.ID() != "f" {
		t.Errorf("LoadKeyFile() = %v, %v", k, err)
	}
	if _, err := okta.LoadKeyFile(path+".missing", "f"); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadKeyFile(missing) error = %v, want one naming the path", err)
	}
	const env = "REMEDIATOR_OKTA_TEST_KEY"
	t.Setenv(env, "")
	if _, err := okta.LoadKeyEnv(env, "e"); err == nil || !strings.Contains(err.Error(), env) {
		t.Errorf("LoadKeyEnv(unset) error = %v", err)
	}
	t.Setenv(env, string(mustJSON(t, jose.JSONWebKey{Key: newECKey(t), KeyID: "e"})))
	if k, err := okta.LoadKeyEnv(env, ""); err != nil || k.Algorithm() != "ES256" {
		t.Errorf("LoadKeyEnv() = %v, %v", k, err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	key := mustKey(t, pemPKCS8(t, newECKey(t)), "k")
	for name, cfg := range map[string]okta.Config{
		"no org":          {ClientID: "c", Key: key},
		"http remote org": {OrgURL: "http://example.okta.com", ClientID: "c", Key: key},
		"org with path":   {OrgURL: "https://example.okta.com/oauth2/default", ClientID: "c", Key: key},
		"no client":       {OrgURL: "https://example.okta.com", Key: key},
		"no key":          {OrgURL: "https://example.okta.com", ClientID: "c"},
		"long assertion":  {OrgURL: "https://example.okta.com", ClientID: "c", Key: key, AssertionLifetime: 2 * okta.MaxAssertionLifetime},
	} {
		if _, err := okta.New(cfg); err == nil {
			t.Errorf("%s: New() accepted it", name)
		}
	}
	if _, err := okta.New(okta.Config{OrgURL: "http://127.0.0.1:8080/", ClientID: "c", Key: key}); err != nil {
		t.Errorf("loopback http org refused: %v", err)
	}
}

func TestPublicJWKRegistersWithTheSimulator(t *testing.T) {
	t.Parallel()
	k := mustKey(t, pemPKCS8(t, newECKey(t)), "k")
	pub, err := k.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := flowsim.ParseJWKS(pub)
	if err != nil || len(keys) != 1 || keys[0].KeyID != "k" {
		t.Errorf("ParseJWKS(PublicJWK()) = %v, %v", keys, err)
	}
	if _, err := flowsim.ParseJWKS(mustJSON(t, jose.JSONWebKey{Key: newECKey(t)})); err == nil {
		t.Error("ParseJWKS accepted a private key")
	}
}
