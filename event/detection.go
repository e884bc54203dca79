package event

import (
	"strings"
	"unicode"
)

// DetectionUnknown is the detection type of an Okta risk LogEvent whose detection name is
// missing or not in the table of [DetectionTypeForName]. Such an event is kept, not refused:
// an entity-risk rule with no detection condition, or with an `exclude` condition, matches
// it; a rule with an `include` condition never does (UNKNOWN is not one of the eight values
// a rule may name).
const DetectionUnknown = "UNKNOWN"

// detectionNames maps Okta's human detection names, folded by foldDetectionName, to the
// riskDetectionTypes values of entity-risk policy rules. It is the table of
// DetectionTypeForName's documentation; TestDetectionTable keeps the two in step.
var detectionNames = map[string]string{
	"admin reported user risk":                   "ADMIN_REPORTED_USER_RISK",
	"admin reported risk":                        "ADMIN_REPORTED_USER_RISK",
	"brute force attack":                         "BRUTE_FORCE_ATTACK",
	"suspected brute force":                      "BRUTE_FORCE_ATTACK",
	"suspected brute force attack":               "BRUTE_FORCE_ATTACK",
	"entity critical action from high threat ip": "ENTITY_CRITICAL_ACTION_FROM_HIGH_THREAT_IP",
	"critical action from high threat ip":        "ENTITY_CRITICAL_ACTION_FROM_HIGH_THREAT_IP",
	"okta threat intelligence":                   "OKTA_THREAT_INTELLIGENCE",
	"security events provider reported risk":     "SECURITY_EVENTS_PROVIDER_REPORTED_RISK",
	"security event provider reported risk":      "SECURITY_EVENTS_PROVIDER_REPORTED_RISK",
	"session influenced user risk":               "SESSION_INFLUENCED_USER_RISK",
	"session influenced risk":                    "SESSION_INFLUENCED_USER_RISK",
	"suspicious app access":                      "SUSPICIOUS_APP_ACCESS",
	"suspicious application access":              "SUSPICIOUS_APP_ACCESS",
	"user reported suspicious activity":          "USER_REPORTED_SUSPICIOUS_ACTIVITY",
	"this wasnt me":                              "USER_REPORTED_SUSPICIOUS_ACTIVITY",
}

// DetectionTypeForName maps the human detectionName of an Okta user.risk.detect LogEvent
// (debugData.risk) to one of the eight riskDetectionTypes values ([DetectionTypes]), or to
// [DetectionUnknown].
//
// Names are compared without regard to case, punctuation or repeated spaces ("Suspected
// brute-force" is "suspected brute force"; apostrophes are dropped, so "This wasn't me" is
// "this wasnt me"). A name that is itself a riskDetectionTypes value is that value. The
// table (names from Okta's ITP detections page; several spellings are accepted where Okta's
// pages and UI differ):
//
//	detection name (any case)                    riskDetectionTypes value
//	Admin reported user risk                     ADMIN_REPORTED_USER_RISK
//	Admin reported risk                          ADMIN_REPORTED_USER_RISK
//	Brute force attack                           BRUTE_FORCE_ATTACK
//	Suspected brute force (attack)               BRUTE_FORCE_ATTACK
//	Entity critical action from high-threat IP   ENTITY_CRITICAL_ACTION_FROM_HIGH_THREAT_IP
//	Critical action from high-threat IP          ENTITY_CRITICAL_ACTION_FROM_HIGH_THREAT_IP
//	Okta Threat Intelligence                     OKTA_THREAT_INTELLIGENCE
//	Security events provider reported risk       SECURITY_EVENTS_PROVIDER_REPORTED_RISK
//	Security event provider reported risk        SECURITY_EVENTS_PROVIDER_REPORTED_RISK
//	Session influenced user risk                 SESSION_INFLUENCED_USER_RISK
//	Session influenced risk                      SESSION_INFLUENCED_USER_RISK
//	Suspicious app access                        SUSPICIOUS_APP_ACCESS
//	Suspicious application access                SUSPICIOUS_APP_ACCESS
//	User reported suspicious activity            USER_REPORTED_SUSPICIOUS_ACTIVITY
//	This wasn't me                               USER_REPORTED_SUSPICIOUS_ACTIVITY
//	anything else, or no name                    UNKNOWN
//
// An UNKNOWN event matches entity-risk rules with no riskDetectionTypes condition or with
// an exclude condition, never a rule with an include condition.
func DetectionTypeForName(name string) string {
	folded := foldDetectionName(name)
	if t, ok := detectionNames[folded]; ok {
		return t
	}
	for _, t := range DetectionTypes {
		if folded == foldDetectionName(t) {
			return t
		}
	}
	return DetectionUnknown
}

// foldDetectionName lower-cases name, drops apostrophes and turns every run of other
// characters that are not letters or digits into one space.
func foldDetectionName(name string) string {
	var b strings.Builder
	space := false
	for _, r := range name {
		switch {
		case r == '\'' || r == '’':
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(unicode.ToLower(r))
		default:
			space = true
		}
	}
	return b.String()
}
