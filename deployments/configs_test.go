package deployments

import (
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
