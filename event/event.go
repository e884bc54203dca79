package event

import (
	"strings"
	"time"
)

// Kind says which family of finding an event belongs to. Its string value is the
// `eventKind` field of status and dead-letter records.
type Kind string

const (
	// KindISPMIssue is an Identity Security Posture Management issue.
	KindISPMIssue Kind = "ispm_issue"
	// KindEntityRisk is an Identity Threat Protection entity-risk policy trigger.
	KindEntityRisk Kind = "entity_risk"
)

// Subjects on which detectors publish events.
const (
	SubjectISPM = "remediation.events.ispm"
	SubjectITP  = "remediation.events.itp"
)

// KindForSubject maps a publish subject to the kind of event expected on it.
func KindForSubject(subject string) (Kind, bool) {
	switch subject {
	case SubjectISPM:
		return KindISPMIssue, true
	case SubjectITP:
		return KindEntityRisk, true
	}
	return "", false
}

// Shape names the JSON document layout an event arrived in. Each shape has its own schema.
type Shape string

const (
	// ShapeISPMOnDemand is the flat, all-string input set ISPM sends to a delegated flow.
	ShapeISPMOnDemand Shape = "ispm-issue-ondemand"
	// ShapeISPMWebhook is the ISPM outbound webhook envelope (`type: issue.created`).
	ShapeISPMWebhook Shape = "ispm-issue-webhook"
	// ShapeEntityRisk is remediator's entity-risk trigger.
	ShapeEntityRisk Shape = "entity-risk-trigger"
	// ShapeOktaLogEventRisk is an Okta System Log LogEvent of type user.risk.detect or
	// user.risk.change, as an event hook delivers it (one element of data.events) or a
	// log-streaming bridge forwards it.
	ShapeOktaLogEventRisk Shape = "okta-logevent-risk"
)

// Kind returns the kind of event a shape carries.
func (s Shape) Kind() Kind {
	if s == ShapeEntityRisk || s == ShapeOktaLogEventRisk {
		return KindEntityRisk
	}
	return KindISPMIssue
}

// Event is a finding normalised from any accepted shape.
type Event struct {
	ID    string
	Kind  Kind
	Shape Shape
	// Time is the event's own timestamp (zero when the document has none or it does not parse).
	Time   time.Time
	Source string
	Type   string
	// Principal is who the document says asks for the remediation: the oktaUserId of the admin
	// for an ISPM on-demand run, the ruleId (or oktaUserId) of an entity-risk trigger, the
	// Rule target's id of an Okta risk LogEvent. Empty when unknown. It is a claim:
	// authorization takes the principal from policy.Router.Principal, which prefers a
	// Remediator-Principal header for ISPM issues and uses the rule remediator routes an
	// entity-risk event by. It is not the oktaUserId input of an entity-risk event, which is
	// the user at risk (see Inputs).
	Principal string

	Issue *Issue       // set when Kind is KindISPMIssue
	Risk  *RiskTrigger // set when Kind is KindEntityRisk
}

// Issue is an ISPM posture issue and the entity it affects.
type Issue struct {
	ID                   string
	Category             string
	Severity             string
	Title                string
	FullDescription      string
	ShortDescription     string
	DetectedAt           string
	SuggestedRemediation string
	RiskAndImpact        string
	Link                 string

	EntityID                  string
	EntityIDInService         string
	EntityType                string
	EntityDisplayName         string
	EntitySourceProductName   string
	EntitySourceProductTenant string

	// AdditionalData holds the open `additionalData*` inputs keyed by their full input name
	// (e.g. "additionalDataLastLogin"), values flattened to strings.
	AdditionalData map[string]string
}

// Risk levels, as Okta spells them.
const (
	RiskNone   = "NONE"
	RiskLow    = "LOW"
	RiskMedium = "MEDIUM"
	RiskHigh   = "HIGH"
)

// DetectionTypes are the eight riskDetectionTypes values of Okta's entity-risk policy rules.
var DetectionTypes = []string{
	"ADMIN_REPORTED_USER_RISK",
	"BRUTE_FORCE_ATTACK",
	"ENTITY_CRITICAL_ACTION_FROM_HIGH_THREAT_IP",
	"OKTA_THREAT_INTELLIGENCE",
	"SECURITY_EVENTS_PROVIDER_REPORTED_RISK",
	"SESSION_INFLUENCED_USER_RISK",
	"SUSPICIOUS_APP_ACCESS",
	"USER_REPORTED_SUSPICIOUS_ACTIVITY",
}

// IsDetectionType reports whether s is one of [DetectionTypes].
func IsDetectionType(s string) bool {
	for _, d := range DetectionTypes {
		if d == s {
			return true
		}
	}
	return false
}

// RiskTrigger is an entity-risk signal about one user.
type RiskTrigger struct {
	UserID            string
	UserLogin         string
	RiskLevel         string // NONE, LOW, MEDIUM or HIGH
	PreviousRiskLevel string // NONE, LOW, MEDIUM, HIGH or empty
	// DetectionType is one of DetectionTypes, or DetectionUnknown for an Okta LogEvent whose
	// detection name is not in DetectionTypeForName's table.
	DetectionType string
	DetectionName string
	Reasons       string
	Issuer        string
	PolicyID      string
	RuleID        string
	RuleName      string
	OktaTraceID   string
	// RiskDebugData is debugData.risk of an Okta LogEvent exactly as Okta sent it (no
	// stable contract, so kept whole next to what was parsed from it); empty for other shapes.
	RiskDebugData string
	// Groups are the Okta group ids the user belongs to, when the detector knows them; entity-risk
	// policy rules may include or exclude people by group.
	Groups []string
}

// Priority classes for dispatch. Higher-priority work is dispatched first when both wait.
type Priority string

const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"
)

// Priorities lists the priority classes, most urgent first.
var Priorities = []Priority{PriorityHigh, PriorityNormal, PriorityLow}

// Priority derives the dispatch priority: Critical/High ISPM issues and HIGH risk are high,
// Low/Info issues and LOW risk are low, the rest normal.
func (e *Event) Priority() Priority {
	var level string
	switch {
	case e.Issue != nil:
		level = strings.ToUpper(strings.TrimSpace(e.Issue.Severity))
	case e.Risk != nil:
		level = strings.ToUpper(strings.TrimSpace(e.Risk.RiskLevel))
	}
	switch level {
	case "CRITICAL", "HIGH":
		return PriorityHigh
	case "LOW", "INFO", "INFORMATIONAL", "NONE":
		return PriorityLow
	}
	return PriorityNormal
}

// Inputs returns the flat input set a delegated-flow card accepts: every value is a string,
// number, boolean or RFC 3339 time; never a list or an object. Keys follow the ISPM
// on-demand names for issues and the entity-risk trigger names for risk (both entity-risk
// shapes give the same names; riskDebugData is set only for an Okta LogEvent). oktaUserId
// is the delegated flow's Okta User ID: the admin who ran an ISPM issue on demand, the
// user at risk for an entity-risk event.
func (e *Event) Inputs() map[string]any {
	in := map[string]any{}
	put := func(k, v string) {
		if v != "" {
			in[k] = v
		}
	}
	put("eventId", e.ID)
	if !e.Time.IsZero() {
		in["eventTimestamp"] = e.Time.UTC().Format(time.RFC3339)
	}
	put("eventSource", e.Source)
	put("eventType", e.Type)
	// oktaUserId is the Okta User ID of a delegated flow: for an ISPM issue the admin who
	// runs it, for an entity-risk event the user at risk (what ITP gives its delegated
	// flows), never the rule that fired.
	if e.Risk != nil {
		put("oktaUserId", e.Risk.UserID)
	} else {
		put("oktaUserId", e.Principal)
	}
	if i := e.Issue; i != nil {
		put("issueId", i.ID)
		put("issueCategory", i.Category)
		put("issueSeverity", i.Severity)
		put("issueTitle", i.Title)
		put("issueFullDescription", i.FullDescription)
		put("issueShortDescription", i.ShortDescription)
		put("issueDetectedAt", i.DetectedAt)
		put("issueSuggestedRemediation", i.SuggestedRemediation)
		put("issueRiskAndImpact", i.RiskAndImpact)
		put("issueLink", i.Link)
		put("entityId", i.EntityID)
		put("entityIdInService", i.EntityIDInService)
		put("entityType", i.EntityType)
		put("entityDisplayName", i.EntityDisplayName)
		put("entitySourceProductName", i.EntitySourceProductName)
		put("entitySourceProductTenant", i.EntitySourceProductTenant)
		for k, v := range i.AdditionalData {
			put(k, v)
		}
	}
	if r := e.Risk; r != nil {
		put("userId", r.UserID)
		put("userLogin", r.UserLogin)
		put("riskLevel", r.RiskLevel)
		put("previousRiskLevel", r.PreviousRiskLevel)
		put("detectionType", r.DetectionType)
		put("detectionName", r.DetectionName)
		put("reasons", r.Reasons)
		put("issuer", r.Issuer)
		put("policyId", r.PolicyID)
		put("ruleId", r.RuleID)
		put("ruleName", r.RuleName)
		put("oktaTraceId", r.OktaTraceID)
		put("riskDebugData", r.RiskDebugData)
	}
	return in
}
