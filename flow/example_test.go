package flow_test

import (
	"fmt"

	"github.com/remediator/remediator/flow"
)

func ExampleClassify() {
	for _, status := range []int{200, 400, 404, 408, 429, 503, 302} {
		fmt.Println(status, flow.Classify(status))
	}
	// Output:
	// 200 success
	// 400 permanent
	// 404 permanent
	// 408 retryable
	// 429 retryable
	// 503 retryable
	// 302 permanent
}
