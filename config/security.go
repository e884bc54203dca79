package config

import (
	"fmt"
	"os"
	"strings"
)

// Security holds remediator's own secrets (issue 13).
type Security struct {
	// RecordKeys are the HMAC-SHA256 keys that sign every record remediator writes for itself
	// (dispatch jobs, status records, dead letters, audit records, job records, switch values)
	// and make job keys unpredictable; a record without a valid MAC is never acted on. The
	// first key signs, every key verifies: rotate by putting a new key first and removing an
	// old one once nothing it signed is in flight (README, Security). Every worker and
	// operator of one deployment needs the same keys.
	//
	// Default: none, which is allowed only with the embedded server: `run` then generates
	// one key into <nats.embedded.storeDir>/credentials/record-keys (mode 0600), where the CLI
	// on the same machine finds it. With an external NATS (nats.url) `run` requires them.
	RecordKeys []RecordKey `yaml:"recordKeys"`
}

// RecordKey is one record key: its id, named in every MAC it makes, and where its secret is.
type RecordKey struct {
	// ID: 1-32 letters, digits, '-' or '_', e.g. "k2026a". Required.
	ID string `yaml:"id"`
	// Secret: exactly one of env or file; the value (trimmed) must be at least 32 bytes, e.g.
	// `openssl rand -base64 48`. Required.
	Secret Secret `yaml:"secret"`
}

// minRecordKeyBytes mirrors seal.MinSecretBytes (config does not import seal).
const minRecordKeyBytes = 32

// validateSecurity checks the record keys' ids and where their secrets are.
func (c *Config) validateSecurity(bad func(where, format string, args ...any)) {
	seen := map[string]bool{}
	for i, k := range c.Security.RecordKeys {
		where := fmt.Sprintf("security.recordKeys[%d] (%s)", i, k.ID)
		switch {
		case !recordKeyIDRE(k.ID):
			bad(where, "id %q must be 1-32 letters, digits, '-' or '_'", k.ID)
		case seen[k.ID]:
			bad(where, "id %q is given twice; each key needs its own id", k.ID)
		}
		seen[k.ID] = true
		if (k.Secret.Env == "") == (k.Secret.File == "") {
			bad(where, "secret needs exactly one of env or file")
		}
	}
}

func recordKeyIDRE(id string) bool {
	return len(id) >= 1 && len(id) <= 32 && nameRE.MatchString(id)
}

// RecordKeySecrets reads the secrets of the record keys, in order, through lookupEnv
// (os.LookupEnv in production). A missing or short secret is an error naming the key, never
// showing the value.
func (c *Config) RecordKeySecrets(lookupEnv func(string) (string, bool)) ([][]byte, error) {
	out := make([][]byte, 0, len(c.Security.RecordKeys))
	for i, k := range c.Security.RecordKeys {
		v, problem := k.read(lookupEnv)
		if problem != "" {
			return nil, fmt.Errorf("%s: security.recordKeys[%d] (%s).secret: %s", c.Source(), i, k.ID, problem)
		}
		out = append(out, v)
	}
	return out, nil
}

// read returns the key's secret, or why it cannot.
func (k RecordKey) read(lookupEnv func(string) (string, bool)) ([]byte, string) {
	var v string
	switch {
	case k.Secret.Env != "":
		s, ok := lookupEnv(k.Secret.Env)
		if !ok {
			return nil, fmt.Sprintf("environment variable %s is not set", k.Secret.Env)
		}
		v = s
	case k.Secret.File != "":
		if problem := secretFileProblem(k.Secret.File, true); problem != "" {
			return nil, problem
		}
		b, err := os.ReadFile(k.Secret.File)
		if err != nil {
			return nil, fmt.Sprintf("cannot read %s", k.Secret.File)
		}
		v = string(b)
	default:
		return nil, "needs exactly one of env or file"
	}
	v = strings.TrimSpace(v)
	if len(v) < minRecordKeyBytes {
		return nil, fmt.Sprintf("the secret is %d bytes; a record key needs at least %d (e.g. openssl rand -base64 48)", len(v), minRecordKeyBytes)
	}
	return []byte(v), ""
}

// checkRecordKeys is CheckSecrets' part for the record keys: each secret is there, and an
// external NATS has keys (a generated key would differ per replica and per operator).
func (c *Config) checkRecordKeys(lookupEnv func(string) (string, bool), bad func(where, format string, args ...any)) {
	if c.NATS.URL != "" && len(c.Security.RecordKeys) == 0 {
		bad("security.recordKeys", "required with an external NATS (nats.url): every worker and operator must hold the same record keys; see the README's Security section")
	}
	for i, k := range c.Security.RecordKeys {
		if _, problem := k.read(lookupEnv); problem != "" {
			bad(fmt.Sprintf("security.recordKeys[%d] (%s).secret", i, k.ID), "%s", problem)
		}
	}
}
