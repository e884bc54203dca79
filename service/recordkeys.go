package service

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/seal"
)

// RecordKeysFileName is the file, in the data directory of the embedded server, that
// holds the record keys `run` generates when security.recordKeys names none.
const RecordKeysFileName = "record-keys"

// RecordKeysFile is where the embedded server of cfg keeps its generated record keys:
// <nats.embedded.storeDir>/record-keys, made absolute (mode 0600). It is next to the
// credentials directory, not in it: the keys are needed with nats.embedded.auth off too.
func RecordKeysFile(cfg *config.Config) (string, error) {
	dir, err := filepath.Abs(cfg.NATS.Embedded.StoreDir)
	if err != nil {
		return "", fmt.Errorf("nats.embedded.storeDir: %w", err)
	}
	return filepath.Join(dir, RecordKeysFileName), nil
}

// ErrNoRecordKeys means neither security.recordKeys nor a generated key file gives any key.
var ErrNoRecordKeys = errors.New("no record keys")

// RecordKeys returns the keyring of cfg: the keys of security.recordKeys (secrets through
// lookupEnv) when it names any; otherwise, for the embedded server, the key file in its
// credentials directory — generated there when generate is set (`run`), only read otherwise
// (the CLI: an error wrapping [ErrNoRecordKeys] when there is none).
func RecordKeys(cfg *config.Config, lookupEnv func(string) (string, bool), generate bool) (*seal.Keyring, error) {
	if len(cfg.Security.RecordKeys) > 0 {
		secrets, err := cfg.RecordKeySecrets(lookupEnv)
		if err != nil {
			return nil, err
		}
		keys := make([]seal.Key, len(secrets))
		for i, s := range secrets {
			keys[i] = seal.Key{ID: cfg.Security.RecordKeys[i].ID, Secret: s}
		}
		return seal.NewKeyring(keys...)
	}
	if cfg.NATS.URL != "" {
		return nil, fmt.Errorf("%w: security.recordKeys is required with an external NATS (nats.url)", ErrNoRecordKeys)
	}
	path, err := RecordKeysFile(cfg)
	if err != nil {
		return nil, err
	}
	if generate {
		return seal.EnsureFile(path)
	}
	k, err := seal.LoadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: security.recordKeys names none and %v (pass the --data-dir of the \"run\" that owns this server, or --config)", ErrNoRecordKeys, err)
	}
	return k, nil
}
