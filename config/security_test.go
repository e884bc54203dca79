package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
)

// TestRecordKeys: ids and secret references are validated, secrets are read in order (first =
// primary), and an external NATS without keys is refused at start (issue 13).
func TestRecordKeys(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "k1")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("f", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"K2": strings.Repeat("e", 48), "SHORT": "tooshort"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	cfg, err := config.Parse([]byte("security:\n  recordKeys:\n    - {id: k2, secret: {env: K2}}\n    - {id: k1, secret: {file: "+keyFile+"}}\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := cfg.RecordKeySecrets(lookup)
	if err != nil || len(secrets) != 2 || string(secrets[0]) != env["K2"] || string(secrets[1]) != strings.Repeat("f", 40) {
		t.Fatalf("secrets: %d, %v", len(secrets), err)
	}
	if err := cfg.CheckSecrets(lookup); err != nil {
		t.Fatalf("CheckSecrets: %v", err)
	}

	for name, tc := range map[string]struct{ doc, want string }{
		"bad id":       {"security: {recordKeys: [{id: 'a b', secret: {env: K2}}]}\n", "id \"a b\" must be"},
		"id twice":     {"security: {recordKeys: [{id: a, secret: {env: K2}}, {id: a, secret: {env: K2}}]}\n", "given twice"},
		"no secret":    {"security: {recordKeys: [{id: a}]}\n", "secret needs exactly one of env or file"},
		"env and file": {"security: {recordKeys: [{id: a, secret: {env: K2, file: /x}}]}\n", "secret needs exactly one"},
	} {
		if _, err := config.Parse([]byte(tc.doc), "test.yaml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}

	for name, tc := range map[string]struct{ doc, want string }{
		"external NATS without keys": {"nats: {url: 'nats://nats:4222'}\n", "security.recordKeys: required with an external NATS"},
		"short secret":               {"security: {recordKeys: [{id: a, secret: {env: SHORT}}]}\n", "security.recordKeys[0] (a).secret: the secret is 8 bytes"},
		"unset env":                  {"security: {recordKeys: [{id: a, secret: {env: NOPE}}]}\n", "environment variable NOPE is not set"},
	} {
		c, err := config.Parse([]byte(tc.doc), "test.yaml")
		if err != nil {
			t.Fatal(err)
		}
		err = c.CheckSecrets(lookup)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "tooshort") {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}
