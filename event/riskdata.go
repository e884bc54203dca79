package event

import (
	"strings"
	"unicode"
)

// ParseRiskData reads the debugData.risk string of an Okta user.risk.detect LogEvent, a map
// rendered as text:
//
//	{previousLevel=LOW, level=MEDIUM, detectionName=Session Influenced User Risk, reasons=Anomalous location, new device, issuer=OKTA}
//
// Okta says debugData is no stable contract, so the parser is tolerant and never fails:
//
//   - the outer braces are optional;
//   - a member starts at the beginning or after a comma, with a key of letters, digits,
//     '_', '.' or '-' followed by '=' (spaces around the key allowed); anything else,
//     commas and '=' included, belongs to the value before it, so
//     "reasons=Anomalous location, new device" keeps its comma and "a=b=c" is a: "b=c";
//   - a comma inside {…} or […] nested in a value does not end the value (so nested maps
//     and lists stay whole), unless the brackets do not balance, in which case they are
//     ignored;
//   - text before the first key is dropped, a key given twice keeps its first value, and
//     values are trimmed of spaces.
//
// A value that itself holds ", key=" text cannot be told from a new member; the raw string
// is kept on the event (RiskTrigger.RiskDebugData) for that reason. Use [RiskValue] to look
// members up under the several spellings Okta has used.
func ParseRiskData(s string) map[string]string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}' {
		s = s[1 : len(s)-1]
	}
	starts, ok := memberStarts(s, true)
	if !ok {
		starts, _ = memberStarts(s, false)
	}
	out := make(map[string]string, len(starts))
	for i, st := range starts {
		end := len(s)
		if i+1 < len(starts) {
			end = starts[i+1] - 1 // the comma before the next member
		}
		eq := strings.IndexByte(s[st:end], '=')
		key := strings.TrimSpace(s[st : st+eq])
		if _, dup := out[key]; !dup {
			out[key] = strings.TrimSpace(s[st+eq+1 : end])
		}
	}
	return out
}

// memberStarts returns the offsets where members begin. With nesting, commas inside
// brackets are skipped; ok is false when the brackets do not balance.
func memberStarts(s string, nesting bool) (starts []int, ok bool) {
	if keyAt(s, 0) {
		starts = append(starts, 0)
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth < 0 && nesting {
				return nil, false
			}
		case ',':
			if (depth == 0 || !nesting) && keyAt(s, i+1) {
				starts = append(starts, i+1)
			}
		}
	}
	return starts, depth == 0 || !nesting
}

// keyAt reports whether s[i:] starts with optional spaces, a key and '='.
func keyAt(s string, i int) bool {
	for i < len(s) && s[i] == ' ' {
		i++
	}
	n := 0
	for i < len(s) && isKeyByte(s[i]) {
		i++
		n++
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return n > 0 && i < len(s) && s[i] == '='
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// RiskValue returns the first non-empty value of m under any of names, comparing keys
// without regard to case, '_', '-', '.' or spaces (so "previous_level", "PreviousLevel"
// and "previousLevel" are one key). ok is false when none has a value.
func RiskValue(m map[string]string, names ...string) (string, bool) {
	for _, n := range names {
		want := foldKey(n)
		for k, v := range m {
			if v != "" && foldKey(k) == want {
				return v, true
			}
		}
	}
	return "", false
}

func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ' ':
			return -1
		}
		return unicode.ToLower(r)
	}, k)
}

// Keys of debugData.risk (and fall-backs in debugData) that Decode reads, in order of
// preference.
var (
	riskLevelKeys    = []string{"level", "riskLevel", "currentLevel", "newLevel", "newRiskLevel"}
	riskPreviousKeys = []string{"previousLevel", "previousRiskLevel", "oldLevel", "oldRiskLevel"}
	riskNameKeys     = []string{"detectionName", "detection"}
	riskTypeKeys     = []string{"detectionType", "riskDetectionType"}
	riskReasonKeys   = []string{"reasons", "reason"}
	riskIssuerKeys   = []string{"issuer"}
)

// NormalizeRiskLevel upper-cases and trims a risk level and reports whether it is one of
// NONE, LOW, MEDIUM or HIGH, the levels of Okta's User Risk API (its SSF feed spells them
// in lower case).
func NormalizeRiskLevel(s string) (string, bool) {
	l := strings.ToUpper(strings.TrimSpace(s))
	switch l {
	case RiskNone, RiskLow, RiskMedium, RiskHigh:
		return l, true
	}
	return l, false
}
