package flow_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/flow"
)

func TestTokenFromFileRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "client-token")
	write := func(content string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		// Set the mtime explicitly: file systems with coarse timestamps must not decide the test.
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	src := flow.TokenFromFile(path)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)

	write("  token-one\n", t0)
	if tok, err := src.Token(ctx); err != nil || tok != "token-one" {
		t.Fatalf("Token() = %q, %v; want token-one", tok, err)
	}

	// Same size and mtime: the cached token is kept (no re-read).
	write("  token-ONE\n", t0)
	if tok, _ := src.Token(ctx); tok != "token-one" {
		t.Errorf("Token() = %q after an unchanged mtime, want the cached token-one", tok)
	}

	// Rotation: a new mtime is picked up.
	write("token-two\n", t0.Add(time.Minute))
	if tok, err := src.Token(ctx); err != nil || tok != "token-two" {
		t.Errorf("Token() = %q, %v after rotation; want token-two", tok, err)
	}

	write(" \n", t0.Add(2*time.Minute))
	if _, err := src.Token(ctx); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("Token() error = %v for an empty file, want 'is empty'", err)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(ctx); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Token() error = %v for a missing file, want one naming the path", err)
	}
}

// TestTokenFromFileKubernetesSecret rotates the way the kubelet does: the file is a symlink
// through ..data, which is swapped atomically to a new directory.
func TestTokenFromFileKubernetesSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkVersion := func(name, tok string, mtime time.Time) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name, "token")
		if err := os.WriteFile(f, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	swap := func(target string) {
		t.Helper()
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	mkVersion("..v1", "secret-v1", t0)
	swap("..v1")
	if err := os.Symlink(filepath.Join("..data", "token"), filepath.Join(dir, "token")); err != nil {
		t.Fatal(err)
	}
	src := flow.TokenFromFile(filepath.Join(dir, "token"))
	if tok, err := src.Token(context.Background()); err != nil || tok != "secret-v1" {
		t.Fatalf("Token() = %q, %v; want secret-v1", tok, err)
	}
	mkVersion("..v2", "secret-v2", t0.Add(time.Second))
	swap("..v2")
	if tok, err := src.Token(context.Background()); err != nil || tok != "secret-v2" {
		t.Errorf("Token() = %q, %v after the swap; want secret-v2", tok, err)
	}
}

func TestTokenFromEnv(t *testing.T) {
	// t.Setenv forbids t.Parallel.
	const name = "REMEDIATOR_FLOW_TEST_TOKEN"
	src := flow.TokenFromEnv(name)

	t.Setenv(name, "")
	_, err := src.Token(context.Background())
	if err == nil || err.Error() != "environment variable "+name+" is not set" {
		t.Errorf("Token() error = %v, want 'environment variable %s is not set'", err, name)
	}

	t.Setenv(name, " env-token-xyz \n")
	if tok, err := src.Token(context.Background()); err != nil || tok != "env-token-xyz" {
		t.Errorf("Token() = %q, %v; want env-token-xyz", tok, err)
	}
}

func TestStaticTokenAndClientToken(t *testing.T) {
	t.Parallel()
	if _, err := flow.StaticToken("").Token(context.Background()); err == nil {
		t.Error("StaticToken(\"\").Token() error = nil")
	}
	req, _ := http.NewRequest(http.MethodPost, "https://example.com/", nil)
	if err := (flow.ClientToken{Source: flow.StaticToken("abc")}).Authorize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("x-api-client-token"); got != "abc" {
		t.Errorf("x-api-client-token = %q, want abc", got)
	}
	if err := (flow.ClientToken{}).Authorize(context.Background(), req); err == nil {
		t.Error("ClientToken{} without a source authorized")
	}
}
