package event

import (
	"bytes"
	"encoding/json"
)

// PeekID returns the event id of a document that may not be valid — eventId, or id (the ISPM
// webhook), or uuid (an Okta System Log event) — or "" when none can be read. Dead letters
// and publishers use it to name events that failed validation.
func PeekID(data []byte) string {
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return ""
	}
	var doc map[string]any
	if json.Unmarshal(data, &doc) != nil {
		return ""
	}
	for _, k := range []string{"eventId", "id", "uuid"} {
		if s, ok := doc[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}
