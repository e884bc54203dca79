package schema_test

import (
	"errors"
	"fmt"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/schema"
)

func ExampleValidator_Validate() {
	v, err := schema.New()
	if err != nil {
		panic(err)
	}
	doc := []byte(`{"eventId": "f73a7741", "issueTitle": "Unused Admin Account", "issueSeverity": 3}`)

	shape, err := v.Validate(event.KindISPMIssue, doc)
	fmt.Println(shape)
	fmt.Println(err)

	var ve *schema.ViolationError
	if errors.As(err, &ve) {
		fmt.Println(ve.Schema)
		for _, x := range ve.Violations {
			fmt.Printf("%s %s\n", x.Pointer, x.Keyword)
		}
	}
	// Output:
	// ispm-issue-ondemand
	// ispm-issue-ondemand v1: /issueId: missing required property (required); /issueSeverity: expected string, but got number (type)
	// https://github.com/remediator/remediator/schema/ispm-issue-ondemand.v1.json
	// /issueId required
	// /issueSeverity type
}
