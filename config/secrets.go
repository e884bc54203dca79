package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// CheckSecrets checks that every secret the configuration refers to is there: each flow's
// client token (an environment variable that is set and not blank, or a readable file that is
// not empty) and the NATS password variable and credential files. Without it a flow whose
// token variable is unset starts cleanly, then every call fails and its events are
// dead-lettered minutes later as retries_exhausted.
//
// It is separate from [Config.Validate] because only `remediator run` needs the secrets: an
// operator's `remediator dlq list --config …` must not need the flows' tokens. lookupEnv is
// os.LookupEnv in production; the service overlays the simulator's generated token. No secret
// value ever appears in the error.
func (c *Config) CheckSecrets(lookupEnv func(string) (string, bool)) error {
	var errs []error
	bad := func(where, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", c.Source(), where, fmt.Sprintf(format, args...)))
	}
	for i, f := range c.Flows {
		where := fmt.Sprintf("flows[%d] (%s)", i, f.Name)
		switch {
		case f.ClientToken.Env != "":
			v, ok := lookupEnv(f.ClientToken.Env)
			if !ok {
				bad(where, "clientToken.env: environment variable %s is not set; flow %q cannot be called without its client token", f.ClientToken.Env, f.Name)
			} else if strings.TrimSpace(v) == "" {
				bad(where, "clientToken.env: environment variable %s is empty; flow %q cannot be called without its client token", f.ClientToken.Env, f.Name)
			}
		case f.ClientToken.File != "":
			if problem := secretFileProblem(f.ClientToken.File, true); problem != "" {
				bad(where, "clientToken.file: %s; flow %q cannot be called without its client token", problem, f.Name)
			}
		}
	}
	n := c.NATS
	if n.PasswordEnv != "" {
		if v, ok := lookupEnv(n.PasswordEnv); !ok || v == "" {
			bad("nats.passwordEnv", "environment variable %s is not set", n.PasswordEnv)
		}
	}
	for _, f := range []struct{ key, path string }{
		{"nats.credsFile", n.CredsFile}, {"nats.nkeyFile", n.NKeyFile},
		{"nats.tlsCAFile", n.TLSCAFile}, {"nats.tlsCertFile", n.TLSCertFile}, {"nats.tlsKeyFile", n.TLSKeyFile},
	} {
		if f.path == "" {
			continue
		}
		if problem := secretFileProblem(f.path, false); problem != "" {
			bad(f.key, "%s", problem)
		}
	}
	c.checkRecordKeys(lookupEnv, bad)
	return errors.Join(errs...)
}

// secretFileProblem says why path cannot supply a secret, or "" when it can. It never returns
// the content.
func secretFileProblem(path string, mustHaveText bool) string {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("file %s does not exist", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("file %s is not readable by this process", path)
	case err != nil:
		return fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err))
	case mustHaveText && strings.TrimSpace(string(b)) == "":
		return fmt.Sprintf("file %s is empty", path)
	}
	return ""
}
