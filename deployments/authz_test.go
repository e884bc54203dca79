package deployments

import (
	"os"
	"testing"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/schema"
)

// Each deployment configuration must let the documented sample events through: routed to
// their flows and authorized to run them. A configuration that only loads would dead-letter
// every event as unauthorized in production.
func TestDeploymentConfigsAuthorizeTheSampleEvents(t *testing.T) {
	t.Parallel()
	v, err := schema.New()
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]string{
		"ispm-unused-admin.json":          event.SubjectISPM,
		"ispm-compromised-account.json":   event.SubjectISPM,
		"ispm-webhook-issue-created.json": event.SubjectISPM,
		"itp-high-risk.json":              event.SubjectITP,
	}
	for _, path := range []string{composeConfigPath, k8sConfigPath, kindConfigPath} {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		r := policy.New(cfg)
		for file, subject := range samples {
			data, err := os.ReadFile("../examples/" + file)
			if err != nil {
				t.Fatal(err)
			}
			kind, _ := event.KindForSubject(subject)
			shape, err := v.Validate(kind, data)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			ev, err := event.Decode(shape, data)
			if err != nil {
				t.Fatal(err)
			}
			decisions, err := r.Route(ev)
			if err != nil {
				t.Errorf("%s: %s is not routed: %v", path, file, err)
				continue
			}
			p, err := r.Principal(ev, nil, subject)
			if err != nil {
				t.Errorf("%s: %s has no principal: %v", path, file, err)
				continue
			}
			for _, d := range decisions {
				if err := r.Authorize(ev, p, d.Flow); err != nil {
					t.Errorf("%s: %s may not run %s: %v", path, file, d.Flow, err)
				}
			}
		}
	}
}
