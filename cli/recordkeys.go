package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/remediator/remediator/seal"
	"github.com/remediator/remediator/service"
)

// recordKeys returns the record keys the client commands verify records with (and sign switch
// values with): security.recordKeys of --config when it names any, else the keys `run`
// generated for the local embedded server in <data dir>/record-keys (--data-dir, else
// nats.embedded.storeDir of --config, else ./data/nats).
func (g *globals) recordKeys() (*seal.Keyring, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	if len(cfg.Security.RecordKeys) > 0 {
		return service.RecordKeys(cfg, os.LookupEnv, false)
	}
	if _, err := g.natsConn(); err != nil { // works out the data directory
		return nil, err
	}
	path, err := filepath.Abs(filepath.Join(g.storeDir, service.RecordKeysFileName))
	if err != nil {
		return nil, err
	}
	k, err := seal.LoadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --config names no security.recordKeys and %v (pass --config, or the --data-dir of the \"run\" that owns this server)", service.ErrNoRecordKeys, err)
	}
	return k, nil
}

// unverified says why a stored record does not verify with keys ("" when it does).
func unverified(keys *seal.Keyring, subject string, data []byte, header map[string][]string) string {
	if keys == nil {
		return ""
	}
	if _, err := keys.VerifyHeader(subject, data, header); err != nil {
		return err.Error()
	}
	return ""
}

// markUnverified puts a warning before the detail of a record remediator did not write.
func markUnverified(detail, why string) string {
	if why == "" {
		return detail
	}
	return "UNVERIFIED (" + why + ": not written by remediator; do not trust it) " + detail
}

// verifyKeys is recordKeys for commands that only mark what they cannot verify: without keys
// they say so once, on standard error, and mark nothing.
func (g *globals) verifyKeys() *seal.Keyring {
	k, err := g.recordKeys()
	if err != nil {
		fmt.Fprintf(g.stderr, "warning: records are not verified: %s\n", safeText(err.Error()))
		return nil
	}
	return k
}
