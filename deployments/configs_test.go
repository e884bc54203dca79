package deployments

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
)

// ---------------------------------------------------------------------------------------------
// remediator configurations
// ---------------------------------------------------------------------------------------------

func TestConfigs(t *testing.T) {
	t.Parallel()
	def, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	oktaInvokeRE := regexp.MustCompile(`^https://[a-z0-9-]+\.workflows\.okta\.com/api/flo/[0-9a-f]{32}/invoke$`)
	tests := []struct {
		path string
		// sameAsDefault: the demo must behave as the shipped default (same flows, routes and policy).
		sameAsDefault bool
		flowURL       *regexp.Regexp
	}{
		{composeConfigPath, true, regexp.MustCompile(`^http://flowsim:8090/api/flo/[a-z0-9-]+/invoke$`)},
		{k8sConfigPath, false, oktaInvokeRE},
		{kindConfigPath, false, oktaInvokeRE},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(tt.path)
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			if cfg.NATS.URL == "" {
				t.Error("nats.url is empty: remediator would embed a single-node NATS server instead of using the cluster")
			}
			if cfg.Streams.Replicas != 3 {
				t.Errorf("streams.replicas = %d, want 3 (one copy per NATS node)", cfg.Streams.Replicas)
			}
			if cfg.HTTP.Addr != "0.0.0.0:8080" {
				t.Errorf("http.addr = %q, want 0.0.0.0:8080 (reachable from outside the container)", cfg.HTTP.Addr)
			}
			if cfg.Simulator.Enabled {
				t.Error("simulator.enabled: the workers must call the configured flows, not an in-process simulator")
			}
			// The ingress is on, reachable from outside the container, and its secrets are the
			// documented variables (the deployment files pass exactly those).
			if !cfg.Ingress.Enabled() {
				t.Error("ingress.addr is off: Okta's event hook and ISPM's webhook could not reach remediator")
			} else if host, _, err := net.SplitHostPort(cfg.Ingress.Addr); err != nil || host != "0.0.0.0" {
				t.Errorf("ingress.addr = %q, want 0.0.0.0:PORT (reachable from outside the container)", cfg.Ingress.Addr)
			}
			documented := []string{config.EnvOktaHookSecret, config.EnvISPMWebhookKey, config.EnvIngressToken}
			for key, s := range ingressSecrets(cfg) {
				if !slices.Contains(documented, s.Env) {
					t.Errorf("%s = %+v, want one of the documented variables %v", key, s, documented)
				}
			}
			if len(cfg.Flows) == 0 {
				t.Fatal("no flows")
			}
			urls := map[string]string{}
			for _, f := range cfg.Flows {
				if (f.ClientToken.Env == "") == (f.ClientToken.File == "") {
					t.Errorf("flow %s: the client token must come from exactly one of env or file", f.Name)
				}
				if strings.Contains(strings.ToLower(f.URL), "clienttoken=") {
					t.Errorf("flow %s: the URL carries the client token in clear", f.Name)
				}
				if !tt.flowURL.MatchString(f.URL) {
					t.Errorf("flow %s: URL %q does not match %s", f.Name, f.URL, tt.flowURL)
				}
				if other, dup := urls[f.URL]; dup {
					t.Errorf("flows %s and %s invoke the same URL %s: one of them runs the wrong flow", other, f.Name, f.URL)
				}
				urls[f.URL] = f.Name
			}
			if !tt.sameAsDefault {
				return
			}
			if got, want := flowNames(cfg), flowNames(def); !slices.Equal(got, want) {
				t.Errorf("flows %v, want the default's %v", got, want)
			}
			if !reflect.DeepEqual(cfg.Routes, def.Routes) {
				t.Errorf("routes differ from config/default.yaml:\n got %+v\nwant %+v", cfg.Routes, def.Routes)
			}
			if !reflect.DeepEqual(cfg.RiskRules, def.RiskRules) {
				t.Errorf("entityRiskPolicy differs from config/default.yaml:\n got %+v\nwant %+v", cfg.RiskRules, def.RiskRules)
			}
			if !reflect.DeepEqual(cfg.Simulator.Flows, def.Simulator.Flows) {
				t.Errorf("simulator.flows differ from config/default.yaml:\n got %+v\nwant %+v", cfg.Simulator.Flows, def.Simulator.Flows)
			}
			for _, f := range cfg.Flows {
				if m := invokeAliasRE.FindStringSubmatch(f.URL); m == nil || m[1] != f.Name {
					t.Errorf("flow %s invokes %s, not the simulator flow of the same name", f.Name, f.URL)
				}
			}
		})
	}
}

var invokeAliasRE = regexp.MustCompile(`/api/flo/([^/]+)/invoke$`)

func flowNames(c *config.Config) []string {
	var out []string
	for _, f := range c.Flows {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

// ingressSecrets lists every secret reference of the ingress, by configuration key.
func ingressSecrets(c *config.Config) map[string]config.Secret {
	out := map[string]config.Secret{}
	for i, s := range c.Ingress.Okta.Secrets {
		out[fmt.Sprintf("ingress.okta.secrets[%d]", i)] = s
	}
	for i, s := range c.Ingress.ISPM.Keys {
		out[fmt.Sprintf("ingress.ispm.keys[%d]", i)] = s
	}
	for i, t := range c.Ingress.Tokens {
		out[fmt.Sprintf("ingress.tokens[%d]", i)] = t.Secret
	}
	return out
}

// startProblems is what `remediator run` would refuse to start for, with the environment a
// deployment documents (lookupEnv) and the files it mounts (mounted): the flows' and NATS's
// secrets (config.CheckSecrets) and the ingress secrets (config.ResolveIngressSecrets, as for
// a configuration file: nothing is generated). A mounted file reads as a placeholder, since
// its content is the operator's.
func startProblems(c *config.Config, lookupEnv func(string) (string, bool), mounted func(string) bool) error {
	var errs []error
	// CheckSecrets reads the NATS files itself; here they only have to be mounted.
	cc := *c
	cc.NATS.CredsFile, cc.NATS.NKeyFile, cc.NATS.TLSCAFile, cc.NATS.TLSCertFile, cc.NATS.TLSKeyFile = "", "", "", "", ""
	for _, f := range []string{c.NATS.CredsFile, c.NATS.NKeyFile, c.NATS.TLSCAFile, c.NATS.TLSCertFile, c.NATS.TLSKeyFile} {
		if f != "" && !mounted(f) {
			errs = append(errs, fmt.Errorf("%s: %s is not mounted", c.Source(), f))
		}
	}
	if err := cc.CheckSecrets(lookupEnv); err != nil {
		errs = append(errs, err)
	}
	getenv := func(k string) string { v, _ := lookupEnv(k); return v }
	readFile := func(p string) ([]byte, error) {
		if mounted(p) {
			return []byte("placeholder"), nil
		}
		return nil, fmt.Errorf("%s is not mounted", p)
	}
	if _, err := c.ResolveIngressSecrets(false, getenv, readFile); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// The check above bites: a shipped configuration with one ingress variable missing from its
// environment is refused, naming the key and the variable.
func TestStartProblemsNamesAMissingIngressSecret(t *testing.T) {
	t.Parallel()
	for _, path := range []string{composeConfigPath, k8sConfigPath, kindConfigPath} {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		lookup := func(k string) (string, bool) {
			if k == config.EnvISPMWebhookKey {
				return "", false
			}
			return "set", true
		}
		err = startProblems(cfg, lookup, func(string) bool { return true })
		if err == nil || !strings.Contains(err.Error(), "ingress.ispm.keys[0]") || !strings.Contains(err.Error(), config.EnvISPMWebhookKey) {
			t.Errorf("%s without %s: %v, want a refusal naming ingress.ispm.keys[0] and the variable", path, config.EnvISPMWebhookKey, err)
		}
	}
}
