package flowsim_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/flowsim"
)

// A dispatcher's retry after a lost answer reaches the flow as a duplicate, not a second run.
func ExampleSimulator() {
	sim, err := flowsim.New(flowsim.Config{Seed: 1, Flows: []flowsim.Flow{
		{Alias: "a1b2c3", Name: "suspend-user", Token: "s3cret"},
	}})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()

	client := flow.NewClient(flow.ClientConfig{})
	defer client.CloseIdleConnections()
	ep := flow.Endpoint{
		Name: "suspend-user",
		URL:  srv.URL + "/api/flo/a1b2c3/invoke",
		Auth: flow.ClientToken{Source: flow.StaticToken("s3cret")},
	}
	req := flow.Request{Inputs: map[string]any{"eventId": "evt-1"}, IdempotencyKey: "evt-1/suspend-user"}

	first, _ := client.Invoke(context.Background(), ep, req)
	retry, _ := client.Invoke(context.Background(), ep, req)
	fmt.Println(first.StatusCode, retry.StatusCode, first.ExecutionID == retry.ExecutionID)

	st := sim.Stats("a1b2c3")
	fmt.Printf("executed %d, duplicates %d, max per key %d\n", st.Executed, st.Duplicates, st.MaxExecutionsPerKey)
	// Output:
	// 200 200 true
	// executed 1, duplicates 1, max per key 1
}
