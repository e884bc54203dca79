package cli_test

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// Services started by parallel tests share one simulator client token: a service that
	// finds none generates one and sets it in the process environment, where another
	// service's flows would then read a token their simulator does not know.
	if os.Getenv("REMEDIATOR_FLOWSIM_TOKEN") == "" {
		os.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "cli-tests-token")
	}
	os.Exit(m.Run())
}
