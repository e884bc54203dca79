package schema_test

import (
	"os"
	"reflect"
	"testing"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/schema"
)

// Parsing once (ValidateDocument, then event.DecodeDocument) gives the event that validating
// and decoding the bytes gives.
func TestValidateDocumentDecodesAsDecode(t *testing.T) {
	t.Parallel()
	v, err := schema.New()
	if err != nil {
		t.Fatal(err)
	}
	for file, kind := range map[string]event.Kind{
		"ispm-unused-admin.json": event.KindISPMIssue, "ispm-compromised-account.json": event.KindISPMIssue,
		"ispm-webhook-issue-created.json": event.KindISPMIssue, "itp-high-risk.json": event.KindEntityRisk,
		"itp-low-risk.json": event.KindEntityRisk, "okta-user-risk-detect.json": event.KindEntityRisk,
	} {
		data, err := os.ReadFile("../examples/" + file)
		if err != nil {
			t.Fatal(err)
		}
		shape, doc, err := v.ValidateDocument(kind, data)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		once, err := event.DecodeDocument(shape, doc)
		if err != nil {
			t.Errorf("%s: DecodeDocument: %v", file, err)
			continue
		}
		twice, err := event.Decode(shape, data)
		if err != nil || !reflect.DeepEqual(once, twice) {
			t.Errorf("%s: DecodeDocument gave %+v, Decode %+v (%v)", file, once, twice, err)
		}
	}
}
