package backfill_test

import (
	"testing"

	"github.com/remediator/remediator/broker/brokertest"
)

func TestMain(m *testing.M) { brokertest.VerifyTestMain(m) }
