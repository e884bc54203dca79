package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/okta"
	"github.com/remediator/remediator/service"
)

func newOktaCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "okta", Short: "The Okta org remediator works against: its app's key, and a check of its access"}
	cmd.AddCommand(newOktaKeyCmd(g), newOktaKeygenCmd(g), newOktaCheckCmd(g))
	return cmd
}

func newOktaKeyCmd(g *globals) *cobra.Command {
	var file, env, kid string
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Print the public JWK of the app's private key, to paste into the Okta app",
		Long: `key prints the public half of the API Services app's private key as a JWK (with its
key id, algorithm and use "sig"): paste it on the app's General tab, under Client
Credentials > Public keys > Add key. The private key is okta.privateKey of the
configuration, or the one --private-key-file or --private-key-env names (with --key-id).
Nothing secret is printed.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var (
				key *okta.Key
				err error
			)
			switch {
			case file != "" && env != "":
				return usageError{errors.New("give --private-key-file or --private-key-env, not both")}
			case file != "":
				key, err = okta.LoadKeyFile(file, kid)
			case env != "":
				key, err = okta.LoadKeyEnv(env, kid)
			default:
				key, err = configuredKey(g)
			}
			if err != nil {
				return err
			}
			return printJWK(g, key)
		},
	}
	cmd.Flags().StringVar(&file, "private-key-file", "", "private key `FILE` (PEM or JWK) instead of okta.privateKey")
	cmd.Flags().StringVar(&env, "private-key-env", "", "environment `VARIABLE` holding the private key instead of okta.privateKey")
	cmd.Flags().StringVar(&kid, "key-id", "", "key `ID` to give the public key (default okta.keyId, or the JWK's own kid)")
	return cmd
}

// configuredKey is okta.privateKey of the configuration, checked.
func configuredKey(g *globals) (*okta.Key, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	if !cfg.Okta.Enabled() {
		return nil, fmt.Errorf("%s has no okta block: configure okta.orgUrl, okta.clientId, okta.keyId and okta.privateKey, or give --private-key-file and --key-id", cfg.Source())
	}
	return cfg.OktaKey(os.LookupEnv)
}

func printJWK(g *globals, key *okta.Key) error {
	jwk, err := key.PublicJWK()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, jwk, "", "  "); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, out.String())
	return nil
}

func newOktaKeygenCmd(g *globals) *cobra.Command {
	var out, kid string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE --key-id ID",
		Short: "Generate an EC P-256 private key for the app and print its public JWK",
		Long: `keygen writes a new EC P-256 private key (PKCS #8 PEM, mode 0600) to --out, which must
not exist, and prints its public JWK with --key-id, to paste into the Okta app (General
tab > Client Credentials > Public keys > Add key). Point okta.privateKey.file at the file
and set okta.keyId to the same id. For production, prefer a key made and kept by your
secret store; this is for trying remediator out and for the simulator.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if out == "" || kid == "" {
				return usageError{errors.New("keygen needs --out FILE and --key-id ID")}
			}
			priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			der, err := x509.MarshalPKCS8PrivateKey(priv)
			if err != nil {
				return err
			}
			data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
			key, err := okta.ParseKey(data, kid)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("keygen: %w (an existing key is never overwritten)", err)
			}
			if _, err := f.Write(data); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			return printJWK(g, key)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "`FILE` to write the private key to (must not exist)")
	cmd.Flags().StringVar(&kid, "key-id", "", "key `ID` (the KID Okta will show for the key)")
	return cmd
}

// harmlessReads are, per read scope, one call that changes nothing and proves the scope
// works end to end (token, admin role, API). Scopes without one (the manage scopes) are
// checked by fetching a token only: their only calls are remediations.
var harmlessReads = map[string]string{
	"okta.users.read":    "/api/v1/users?limit=1",
	"okta.groups.read":   "/api/v1/groups?limit=1",
	"okta.logs.read":     "/api/v1/logs?limit=1",
	"okta.policies.read": "/api/v1/policies?type=ENTITY_RISK",
}

// oktaCheckTimeout bounds the whole check.
const oktaCheckTimeout = 2 * time.Minute

func newOktaCheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check the org access the configuration needs: a token per scope, a harmless read per read scope, each oauth2 flow's token",
		Long: `check fetches a token for each scope the configuration needs (okta.scopes, and
okta.workflows.invoke.manage when a flow has auth: oauth2), makes one harmless read for
each read scope (users?limit=1, groups?limit=1, logs?limit=1, the ENTITY_RISK policy),
and confirms for each flow with auth: oauth2 that a token to invoke it can be fetched. It
runs no flow and changes nothing in the org.

It prints one line per check, OK or FAIL with what Okta said and what to change (the key
id Okta refused, the scope not granted, the DPoP setting, the admin role), and exits 1
when any check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if !cfg.Okta.Enabled() {
				return fmt.Errorf("%s has no okta block: nothing to check (see the README, \"Working against a real Okta org\")", cfg.Source())
			}
			// Each refusal is printed as a check line; the client's own log lines would say
			// it again, so they are shown at --log-level debug only.
			if g.logLevel != "debug" {
				log = slog.New(slog.DiscardHandler)
			}
			oc, _, err := service.OktaClient(cfg, os.LookupEnv, log)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), oktaCheckTimeout)
			defer cancel()
			if failed, total := checkOkta(ctx, cfg, oc, g); failed > 0 {
				return fmt.Errorf("okta check: %d of %d checks failed", failed, total)
			}
			return nil
		},
	}
}

// checkOkta runs the checks, printing a line each, and counts them.
func checkOkta(ctx context.Context, cfg *config.Config, oc *okta.Client, g *globals) (failed, total int) {
	line := func(what string, err error) bool {
		total++
		if err != nil {
			failed++
			fmt.Fprintf(g.stdout, "FAIL  %s: %s\n", what, safeText(err.Error()))
			return false
		}
		fmt.Fprintf(g.stdout, "OK    %s\n", what)
		return true
	}
	fmt.Fprintf(g.stdout, "org %s, client id %s, key id %s\n", oc.OrgURL(), oc.ClientID(), oc.KeyID())
	for _, scope := range cfg.OktaScopes() {
		// Each scope alone, so that a scope not granted is named by its own line.
		_, err := oc.AccessToken(ctx, scope)
		if !line("token for "+scope, err) {
			continue
		}
		if path, ok := harmlessReads[scope]; ok {
			var answer json.RawMessage
			_, err := oc.Do(ctx, "GET", path, nil, &answer, scope)
			line(scope+": GET "+path, err)
		}
	}
	for _, f := range cfg.Flows {
		if f.Auth != config.FlowAuthOAuth2 {
			continue
		}
		// The token is the shared one the service would send; the flow is not invoked,
		// since any call to it runs it.
		_, err := oc.TokenSource(okta.ScopeWorkflowsInvoke).AccessToken(ctx)
		line("flow "+f.Name+": token for "+okta.ScopeWorkflowsInvoke, err)
	}
	return failed, total
}
