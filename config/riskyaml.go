package config

import (
	"bytes"

	"go.yaml.in/yaml/v3"
)

// riskRuleYAML is a RiskRule written back as configuration: only what is set.
type riskRuleYAML struct {
	Name       string             `yaml:"name"`
	Priority   int                `yaml:"priority"`
	Status     string             `yaml:"status,omitempty"`
	Conditions riskConditionsYAML `yaml:"conditions,omitempty"`
	Action     string             `yaml:"action,omitempty"`
	Flow       string             `yaml:"flow,omitempty"`
}

type riskConditionsYAML struct {
	Level          string              `yaml:"level,omitempty"`
	DetectionTypes *includeExcludeYAML `yaml:"detectionTypes,omitempty"`
	Users          *includeExcludeYAML `yaml:"users,omitempty"`
	Groups         *includeExcludeYAML `yaml:"groups,omitempty"`
}

type includeExcludeYAML struct {
	Include []string `yaml:"include,flow,omitempty"`
	Exclude []string `yaml:"exclude,flow,omitempty"`
}

func ieYAML(ie IncludeExclude) *includeExcludeYAML {
	if len(ie.Include) == 0 && len(ie.Exclude) == 0 {
		return nil
	}
	return &includeExcludeYAML{ie.Include, ie.Exclude}
}

// MarshalRiskRules writes rules as the entityRiskPolicy block of a configuration file,
// leaving out what is unset or the default (status ACTIVE, level ANY).
func MarshalRiskRules(rules []RiskRule) ([]byte, error) {
	out := make([]riskRuleYAML, 0, len(rules))
	for _, r := range rules {
		y := riskRuleYAML{Name: r.Name, Priority: r.Priority, Status: r.Status, Action: r.Action, Flow: r.Flow,
			Conditions: riskConditionsYAML{Level: r.Conditions.Level,
				DetectionTypes: ieYAML(r.Conditions.DetectionTypes), Users: ieYAML(r.Conditions.Users), Groups: ieYAML(r.Conditions.Groups)}}
		if y.Status == DefaultRiskRuleStatus {
			y.Status = ""
		}
		if y.Conditions.Level == DefaultRiskLevel {
			y.Conditions.Level = ""
		}
		if (y.Action == RiskActionRunWorkflow && y.Flow != "") || (y.Action == RiskActionNone && y.Flow == "") {
			y.Action = "" // the default for the flow given, or not given
		}
		out = append(out, y)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(map[string]any{"entityRiskPolicy": out}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
